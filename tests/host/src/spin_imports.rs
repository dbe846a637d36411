//! Host implementations of the Spin interfaces: variables, key-value
//! (`fermyon:spin/key-value` and `wasi:keyvalue` draft 2) and SQLite.
//!
//! Storage behaves as Spin's defaults do with no runtime config: key-value
//! store `default` is `.spin/sqlite_key_value.db`; SQLite database `default`
//! is `.spin/sqlite_db.db`, and every `open` makes a new SQLite connection
//! with SQLite's defaults (no busy timeout, rollback journal unless the file
//! was switched to WAL), with `ATTACH` refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use wasmtime::component::Resource;

use crate::runtime::InstanceState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-imports",
    imports: {
        "fermyon:spin/sqlite": async | trappable,
        default: trappable,
    },
    with: {
        "fermyon:spin/sqlite.connection": SqliteConnection,
        "fermyon:spin/key-value.store": KvStoreHandle,
        "wasi:keyvalue/store.bucket": KvStoreHandle,
        "wasi:keyvalue/atomics.cas": CasHandle,
    },
});

use fermyon::spin::{key_value, sqlite, variables};
use wasi::keyvalue::{atomics, store as wkv};

/// An open SQLite connection handed to a guest.
pub struct SqliteConnection(Arc<Mutex<rusqlite::Connection>>);

/// An open key-value store handed to a guest.
#[derive(Clone)]
pub struct KvStoreHandle {
    label: String,
}

/// A compare-and-swap handle: the value seen when it was made.
pub struct CasHandle {
    label: String,
    key: String,
    seen: Option<Vec<u8>>,
}

/// The key-value backend shared by all components: one SQLite file, one
/// connection behind a lock, so `increment` and `swap` are atomic.
pub struct KeyValueBackend {
    conn: Mutex<rusqlite::Connection>,
}

impl KeyValueBackend {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening key-value store {}", path.display()))?;
        // WAL with synchronous=NORMAL: a counter survives a crash of the
        // process but not necessarily of the machine, and an increment costs
        // no fsync, which matches the key-value write times observed for Spin
        // (SPIN-PARITY.md). The document store is not affected.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (store, key));",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn get(&self, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        self.conn
            .lock()
            .unwrap()
            .query_row(
                "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                (store, key),
                |row| row.get(0),
            )
            .optional()
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
        self.conn.lock().unwrap().execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            (store, key, value),
        )?;
        Ok(())
    }

    fn delete(&self, store: &str, key: &str) -> rusqlite::Result<()> {
        self.conn.lock().unwrap().execute(
            "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
            (store, key),
        )?;
        Ok(())
    }

    fn keys(&self, store: &str) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT key FROM spin_key_value WHERE store = ?1")?;
        let keys = stmt.query_map([store], |row| row.get(0))?.collect();
        keys
    }

    /// Atomic add; a missing key counts as 0. Values are decimal text, as in
    /// Spin's implementation, so `get` of a counter reads naturally.
    fn increment(&self, store: &str, key: &str, delta: i64) -> anyhow::Result<i64> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let current: Option<Vec<u8>> = {
            use rusqlite::OptionalExtension;
            tx.query_row(
                "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                (store, key),
                |row| row.get(0),
            )
            .optional()?
        };
        let current = match current {
            None => 0,
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .context("value is not an integer")?,
        };
        let next = current.checked_add(delta).context("counter overflow")?;
        tx.execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            (store, key, next.to_string().into_bytes()),
        )?;
        tx.commit()?;
        Ok(next)
    }

    /// Swaps in `value` only if the key still holds `expected`.
    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: &Option<Vec<u8>>,
        value: &[u8],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let current: Option<Vec<u8>> = {
            use rusqlite::OptionalExtension;
            tx.query_row(
                "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                (store, key),
                |row| row.get(0),
            )
            .optional()?
        };
        if &current != expected {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            (store, key, value),
        )?;
        tx.commit()?;
        Ok(true)
    }
}

/// Where each SQLite database label lives.
pub struct SqliteDatabases {
    pub default_path: PathBuf,
}

impl SqliteDatabases {
    fn open(&self, label: &str) -> Option<rusqlite::Result<rusqlite::Connection>> {
        if label != "default" {
            return None;
        }
        Some(
            rusqlite::Connection::open(&self.default_path).and_then(|conn| {
                // rusqlite sets a 5 s busy timeout by default; SQLite's own default
                // (which the component sees under Spin) is none.
                conn.busy_timeout(std::time::Duration::ZERO)?;
                conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
                    AuthAction::Attach { .. } => Authorization::Deny,
                    _ => Authorization::Allow,
                }));
                Ok(conn)
            }),
        )
    }
}

impl variables::Host for InstanceState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        use crate::variables::GetError;
        // Every call is a provider call: Spin caches nothing.
        self.app.variables.count_get(&self.component.decl.id);
        Ok(crate::variables::component_get(
            &self.app.variables,
            &self.component.decl.variables,
            &name,
        )
        .map_err(|e| match e {
            GetError::InvalidName(m) => variables::Error::InvalidName(m),
            GetError::Undefined(m) => variables::Error::Undefined(m),
            GetError::Provider(m) => variables::Error::Provider(m),
        }))
    }
}

impl InstanceState {
    fn kv_access(&self, label: &str) -> Result<(), String> {
        if label != "default" {
            return Err("no-such-store".into());
        }
        if !self
            .component
            .decl
            .key_value_stores
            .iter()
            .any(|s| s == label)
        {
            return Err("access-denied".into());
        }
        Ok(())
    }

    fn kv_label(&self, handle: &Resource<KvStoreHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(handle)?.label.clone())
    }
}

fn kv_other(e: impl std::fmt::Display) -> key_value::Error {
    key_value::Error::Other(e.to_string())
}

impl key_value::Host for InstanceState {}

impl key_value::HostStore for InstanceState {
    fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvStoreHandle>, key_value::Error>> {
        match self.kv_access(&label) {
            Ok(()) => Ok(Ok(self.table.push(KvStoreHandle { label })?)),
            Err(e) if e == "no-such-store" => Ok(Err(key_value::Error::NoSuchStore)),
            Err(_) => Ok(Err(key_value::Error::AccessDenied)),
        }
    }

    fn get(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self.app.key_value.get(&label, &key).map_err(kv_other))
    }

    fn set(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self
            .app
            .key_value
            .set(&label, &key, &value)
            .map_err(kv_other))
    }

    fn delete(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self.app.key_value.delete(&label, &key).map_err(kv_other))
    }

    fn exists(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self
            .app
            .key_value
            .get(&label, &key)
            .map(|v| v.is_some())
            .map_err(kv_other))
    }

    fn get_keys(
        &mut self,
        store: Resource<KvStoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self.app.key_value.keys(&label).map_err(kv_other))
    }

    fn drop(&mut self, store: Resource<KvStoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

fn wkv_other(e: impl std::fmt::Display) -> wkv::Error {
    wkv::Error::Other(e.to_string())
}

impl wkv::Host for InstanceState {
    fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<KvStoreHandle>, wkv::Error>> {
        match self.kv_access(&identifier) {
            Ok(()) => Ok(Ok(self.table.push(KvStoreHandle { label: identifier })?)),
            Err(e) if e == "no-such-store" => Ok(Err(wkv::Error::NoSuchStore)),
            Err(_) => Ok(Err(wkv::Error::AccessDenied)),
        }
    }
}

impl wkv::HostBucket for InstanceState {
    fn get(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self.app.key_value.get(&label, &key).map_err(wkv_other))
    }

    fn set(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .app
            .key_value
            .set(&label, &key, &value)
            .map_err(wkv_other))
    }

    fn delete(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self.app.key_value.delete(&label, &key).map_err(wkv_other))
    }

    fn exists(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .app
            .key_value
            .get(&label, &key)
            .map(|v| v.is_some())
            .map_err(wkv_other))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wkv::KeyResponse, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .app
            .key_value
            .keys(&label)
            .map(|keys| wkv::KeyResponse { keys, cursor: None })
            .map_err(wkv_other))
    }

    fn drop(&mut self, bucket: Resource<KvStoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for InstanceState {
    fn increment(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .app
            .key_value
            .increment(&label, &key, delta)
            .map_err(wkv_other))
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        match self
            .app
            .key_value
            .compare_and_swap(&handle.label, &handle.key, &handle.seen, &value)
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                let seen = self.app.key_value.get(&handle.label, &handle.key);
                match seen {
                    Ok(seen) => {
                        let fresh = self.table.push(CasHandle { seen, ..handle })?;
                        Ok(Err(atomics::CasError::CasFailed(fresh)))
                    }
                    Err(e) => Ok(Err(atomics::CasError::StoreError(wkv_other(e)))),
                }
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(wkv_other(e)))),
        }
    }
}

impl atomics::HostCas for InstanceState {
    fn new(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        match self.app.key_value.get(&label, &key) {
            Ok(seen) => Ok(Ok(self.table.push(CasHandle { label, key, seen })?)),
            Err(e) => Ok(Err(wkv_other(e))),
        }
    }

    fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl sqlite::Host for InstanceState {}

impl sqlite::HostConnection for InstanceState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<SqliteConnection>, sqlite::Error>> {
        if !self
            .component
            .decl
            .sqlite_databases
            .iter()
            .any(|d| *d == database)
        {
            return Ok(Err(if database == "default" {
                sqlite::Error::AccessDenied
            } else {
                sqlite::Error::NoSuchDatabase
            }));
        }
        let app = self.app.clone();
        let opened = tokio::task::spawn_blocking(move || app.sqlite.open(&database)).await?;
        match opened {
            None => Ok(Err(sqlite::Error::NoSuchDatabase)),
            Some(Err(e)) => Ok(Err(sqlite::Error::Io(e.to_string()))),
            Some(Ok(conn)) => Ok(Ok(self
                .table
                .push(SqliteConnection(Arc::new(Mutex::new(conn))))?)),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> wasmtime::Result<Result<sqlite::QueryResult, sqlite::Error>> {
        let conn = self.table.get(&connection)?.0.clone();
        let result = tokio::task::spawn_blocking(move || {
            execute(&conn.lock().unwrap(), &statement, parameters)
        })
        .await?;
        Ok(result.map_err(|e| sqlite::Error::Io(e.to_string())))
    }

    async fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> rusqlite::Result<sqlite::QueryResult> {
    use rusqlite::types::{Value as V, ValueRef};
    let mut stmt = conn.prepare(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params: Vec<V> = parameters
        .into_iter()
        .map(|p| match p {
            sqlite::Value::Integer(i) => V::Integer(i),
            sqlite::Value::Real(r) => V::Real(r),
            sqlite::Value::Text(t) => V::Text(t),
            sqlite::Value::Blob(b) => V::Blob(b),
            sqlite::Value::Null => V::Null,
        })
        .collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => sqlite::Value::Null,
                ValueRef::Integer(i) => sqlite::Value::Integer(i),
                ValueRef::Real(r) => sqlite::Value::Real(r),
                ValueRef::Text(t) => sqlite::Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => sqlite::Value::Blob(b.to_vec()),
            });
        }
        out.push(sqlite::RowResult { values });
    }
    Ok(sqlite::QueryResult { columns, rows: out })
}
