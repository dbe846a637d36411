//! [`Sql`] over rusqlite, for native tests and the `serve` example. Like
//! Spin, it opens a fresh connection per request with SQLite's defaults (no
//! busy timeout), so concurrency bugs show up here as they would under Spin.

// `super` is the crate root in unit tests and the example's root (which
// imports these from the crate) in `examples/serve.rs`.
use super::{LockWait, Sql, SqlError, SqlValue};
use rusqlite::types::{Value as RValue, ValueRef};
use rusqlite::{params_from_iter, Connection, ErrorCode};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct RusqliteSql {
    conn: Connection,
}

impl RusqliteSql {
    /// Opens a new connection to the database file, as Spin does per request.
    pub fn open(path: &Path) -> Result<Self, SqlError> {
        let conn = Connection::open(path).map_err(map_error)?;
        conn.busy_timeout(Duration::ZERO).map_err(map_error)?;
        Ok(Self { conn })
    }
}

/// Waits for a locked database with the thread's sleep, as the docstore
/// component does with WASI's clock.
pub struct ThreadLockWait {
    started: Instant,
}

impl ThreadLockWait {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
        }
    }
}

impl LockWait for ThreadLockWait {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

fn map_error(error: rusqlite::Error) -> SqlError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            SqlError::Busy(error.to_string())
        }
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation => {
            SqlError::Constraint(error.to_string())
        }
        // The rest is classified by message, as for Spin's (e.g. "no such table").
        _ => SqlError::from_message(error.to_string()),
    }
}

fn to_rusqlite(value: &SqlValue) -> RValue {
    match value {
        SqlValue::Integer(i) => RValue::Integer(*i),
        SqlValue::Real(r) => RValue::Real(*r),
        SqlValue::Text(t) => RValue::Text(t.clone()),
        SqlValue::Blob(b) => RValue::Blob(b.clone()),
        SqlValue::Null => RValue::Null,
    }
}

impl Sql for RusqliteSql {
    fn execute(
        &self,
        statement: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, SqlError> {
        let mut stmt = self.conn.prepare(statement).map_err(map_error)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(params_from_iter(params.iter().map(to_rusqlite)))
            .map_err(map_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_error)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(map_error)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(i) => SqlValue::Integer(i),
                    ValueRef::Real(r) => SqlValue::Real(r),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                });
            }
            out.push(values);
        }
        Ok(out)
    }
}
