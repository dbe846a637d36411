//! The SQLite side: connection setup, the schema and transactions.
//!
//! Every request gets a fresh connection with SQLite's defaults (no busy
//! timeout: a locked database is waited for by `handle`, see
//! [`crate::LockWait`]). The file is switched to WAL mode (a persistent
//! property) and the table created the first time a statement finds no
//! table. A create is one `INSERT` (the key constraint answers 409); every
//! read-check-write runs inside one `BEGIN IMMEDIATE ... COMMIT`, so
//! concurrent requests serialize on the write lock instead of racing
//! between the check and the write.

use crate::reply::Failure;
use crate::{Sql, SqlValue};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS docstore_documents (\
    db TEXT NOT NULL, \
    coll TEXT NOT NULL, \
    pk TEXT NOT NULL, \
    id TEXT NOT NULL, \
    rid TEXT NOT NULL, \
    etag TEXT NOT NULL, \
    ts INTEGER NOT NULL, \
    body TEXT NOT NULL, \
    PRIMARY KEY (db, coll, pk, id))";

/// Switches the file to WAL (a persistent property) and creates the table.
pub(crate) fn create_schema(sql: &impl Sql) -> Result<(), Failure> {
    let mode = sql.execute("PRAGMA journal_mode", &[])?;
    let is_wal = matches!(mode.first().and_then(|row| row.first()),
        Some(SqlValue::Text(m)) if m.eq_ignore_ascii_case("wal"));
    if !is_wal {
        // Switching needs a moment of exclusive access; if another connection
        // holds the file the switch is left to a later request. Failing to
        // switch only costs concurrency, never correctness.
        let _ = sql.execute("PRAGMA journal_mode = WAL", &[]);
    }
    sql.execute(SCHEMA, &[])?;
    Ok(())
}

/// Runs `work` inside `BEGIN IMMEDIATE ... COMMIT`, rolling back on any error.
pub(crate) fn transaction<T, E: From<Failure>>(
    sql: &impl Sql,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    sql.execute("BEGIN IMMEDIATE", &[])
        .map_err(|e| E::from(e.into()))?;
    let outcome = work().and_then(|value| {
        sql.execute("COMMIT", &[])
            .map_err(|e| E::from(Failure::from(e)))?;
        Ok(value)
    });
    if outcome.is_err() {
        // Nothing more can be done if the rollback fails too: the connection
        // is dropped at the end of the request, which rolls back.
        let _ = sql.execute("ROLLBACK", &[]);
    }
    outcome
}

pub(crate) fn text(value: Option<&SqlValue>) -> Result<String, Failure> {
    match value {
        Some(SqlValue::Text(t)) => Ok(t.clone()),
        _ => Err(Failure::Internal),
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}
