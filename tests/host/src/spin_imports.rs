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

/// A compare-and-swap handle: the value its last `current` read.
pub struct CasHandle {
    label: String,
    key: String,
    seen: Option<Vec<u8>>,
}

/// The key-value backend shared by all components, as Spin's
/// `key-value-spin` store is: one SQLite connection for the whole process
/// behind one lock, SQLite's defaults (rollback journal, `synchronous=FULL`:
/// every write is its own committed, fsynced transaction), and the same
/// statements, so that what a key-value operation costs and what it can
/// race with are what they are under `spin up`.
pub struct KeyValueBackend {
    conn: Mutex<rusqlite::Connection>,
    /// Transactions committed on `conn`, counted by its commit hook.
    commits: Arc<std::sync::atomic::AtomicU64>,
}

/// Result of one key-value operation and the commits it made.
pub(crate) struct Committed<T> {
    pub value: T,
    pub commits: u64,
}

const KV_UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
     ON CONFLICT(store, key) DO UPDATE SET value=$3";
const KV_SELECT: &str = "SELECT value FROM spin_key_value WHERE store=$1 AND key=$2";

impl KeyValueBackend {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.exists()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening key-value store {}", path.display()))?;
        Self::with_connection(conn)
    }

    /// A store in memory, as Spin's `type = "spin"` without a `path`: the
    /// same one connection and statements, commits that touch no disk.
    pub fn open_in_memory() -> anyhow::Result<Self> {
        Self::with_connection(rusqlite::Connection::open_in_memory()?)
    }

    fn with_connection(conn: rusqlite::Connection) -> anyhow::Result<Self> {
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
             )",
            [],
        )?;
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = commits.clone();
        on_durable_commit(&conn, move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        Ok(Self {
            conn: Mutex::new(conn),
            commits,
        })
    }

    /// Runs `op` holding the store's one lock, as every Spin key-value
    /// operation does, and counts the commits it made.
    fn locked<T>(
        &self,
        op: impl FnOnce(&mut rusqlite::Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<Committed<T>> {
        use std::sync::atomic::Ordering;
        let mut conn = self.conn.lock().unwrap();
        let before = self.commits.load(Ordering::SeqCst);
        let value = op(&mut conn)?;
        let commits = self.commits.load(Ordering::SeqCst) - before;
        Ok(Committed { value, commits })
    }

    fn get(&self, store: &str, key: &str) -> anyhow::Result<Committed<Option<Vec<u8>>>> {
        self.locked(|conn| Ok(select(conn, store, key)?))
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> anyhow::Result<Committed<()>> {
        self.locked(|conn| {
            conn.prepare_cached(KV_UPSERT)?
                .execute(rusqlite::params![store, key, value])?;
            Ok(())
        })
    }

    fn delete(&self, store: &str, key: &str) -> anyhow::Result<Committed<()>> {
        self.locked(|conn| {
            conn.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?
                .execute([store, key])?;
            Ok(())
        })
    }

    fn keys(&self, store: &str) -> anyhow::Result<Committed<Vec<String>>> {
        self.locked(|conn| {
            let mut stmt = conn.prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")?;
            let keys = stmt
                .query_map([store], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(keys)
        })
    }

    /// Spin's increment: a transaction that reads, adds and upserts. The
    /// value is the counter as 8 little-endian bytes; a missing key is 0.
    fn increment(&self, store: &str, key: &str, delta: i64) -> anyhow::Result<Committed<i64>> {
        self.locked(|conn| {
            let tx = conn.transaction()?;
            let current = match select(&tx, store, key)? {
                None => 0,
                Some(bytes) => i64::from_le_bytes(
                    bytes
                        .try_into()
                        .map_err(|_| anyhow::anyhow!("value is not an 8-byte counter"))?,
                ),
            };
            let next = current.checked_add(delta).context("counter overflow")?;
            tx.prepare_cached(KV_UPSERT)?.execute(rusqlite::params![
                store,
                key,
                next.to_le_bytes()
            ])?;
            tx.commit()?;
            Ok(next)
        })
    }

    /// Spin's compare-and-swap `swap`: with a value seen by `current`, an
    /// `UPDATE … WHERE value = seen` that must change exactly one row; with
    /// none seen (the key was missing, or `current` was never called), an
    /// unconditional upsert, exactly as Spin does, race included.
    fn swap(
        &self,
        store: &str,
        key: &str,
        seen: &Option<Vec<u8>>,
        value: &[u8],
    ) -> anyhow::Result<Committed<bool>> {
        self.locked(|conn| {
            let changed = match seen {
                Some(old) => conn
                    .prepare_cached(
                        "UPDATE spin_key_value SET value=?4 WHERE store=?1 AND key=?2 AND value=?3",
                    )?
                    .execute(rusqlite::params![store, key, old, value])?,
                None => {
                    let tx = conn.transaction()?;
                    let rows = tx
                        .prepare_cached(KV_UPSERT)?
                        .execute(rusqlite::params![store, key, value])?;
                    tx.commit()?;
                    rows
                }
            };
            Ok(changed == 1)
        })
    }
}

/// Calls `counted` for every transaction on `conn` that commits a change to
/// a row: the commits that write (and, on a disk, fsync). A statement that
/// changes nothing (a lost compare-and-swap, a read) commits nothing durable.
fn on_durable_commit(conn: &rusqlite::Connection, mut counted: impl FnMut() + Send + 'static) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dirty = Arc::new(AtomicBool::new(false));
    let (on_change, on_rollback) = (dirty.clone(), dirty.clone());
    conn.update_hook(Some(
        move |_: rusqlite::hooks::Action, _: &str, _: &str, _: i64| {
            on_change.store(true, Ordering::SeqCst);
        },
    ));
    conn.rollback_hook(Some(move || on_rollback.store(false, Ordering::SeqCst)));
    conn.commit_hook(Some(move || {
        if dirty.swap(false, Ordering::SeqCst) {
            counted();
        }
        false
    }));
}

fn select(
    conn: &rusqlite::Connection,
    store: &str,
    key: &str,
) -> rusqlite::Result<Option<Vec<u8>>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(KV_SELECT)?
        .query_row([store, key], |row| row.get(0))
        .optional()
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
        self.app.costs.variable_read();
        // Every call is a provider call: Spin caches nothing.
        self.variable_gets += 1;
        self.app
            .variables
            .count_get(&self.component.decl.id, self.variable_gets);
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

    /// Counts one key-value operation (and the commits it made) for this
    /// instance, and yields its value.
    fn kv_counted<T>(&self, result: anyhow::Result<Committed<T>>) -> anyhow::Result<T> {
        let done = result?;
        self.app.costs.kv_operation(done.commits, &self.lineage);
        Ok(done.value)
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
        Ok(self
            .kv_counted(self.app.key_value.get(&label, &key))
            .map_err(kv_other))
    }

    fn set(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self
            .kv_counted(self.app.key_value.set(&label, &key, &value))
            .map_err(kv_other))
    }

    fn delete(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self
            .kv_counted(self.app.key_value.delete(&label, &key))
            .map_err(kv_other))
    }

    fn exists(
        &mut self,
        store: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self
            .kv_counted(self.app.key_value.get(&label, &key))
            .map(|v| v.is_some())
            .map_err(kv_other))
    }

    fn get_keys(
        &mut self,
        store: Resource<KvStoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let label = self.kv_label(&store)?;
        Ok(self
            .kv_counted(self.app.key_value.keys(&label))
            .map_err(kv_other))
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
        Ok(self
            .kv_counted(self.app.key_value.get(&label, &key))
            .map_err(wkv_other))
    }

    fn set(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .kv_counted(self.app.key_value.set(&label, &key, &value))
            .map_err(wkv_other))
    }

    fn delete(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .kv_counted(self.app.key_value.delete(&label, &key))
            .map_err(wkv_other))
    }

    fn exists(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(self
            .kv_counted(self.app.key_value.get(&label, &key))
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
            .kv_counted(self.app.key_value.keys(&label))
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
            .kv_counted(self.app.key_value.increment(&label, &key, delta))
            .map_err(wkv_other))
    }

    /// Spin's `swap`: on a lost race the guest gets a fresh handle that has
    /// already read the current value (Spin makes a new CAS and calls
    /// `current` on it).
    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let swapped = self.kv_counted(self.app.key_value.swap(
            &handle.label,
            &handle.key,
            &handle.seen,
            &value,
        ));
        match swapped {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                match self.kv_counted(self.app.key_value.get(&handle.label, &handle.key)) {
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
    /// As in Spin, making a handle reads nothing; `current` does.
    fn new(
        &mut self,
        bucket: Resource<KvStoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wkv::Error>> {
        let label = self.kv_label(&bucket)?;
        Ok(Ok(self.table.push(CasHandle {
            label,
            key,
            seen: None,
        })?))
    }

    fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        let (label, key) = {
            let handle = self.table.get(&cas)?;
            (handle.label.clone(), handle.key.clone())
        };
        match self.kv_counted(self.app.key_value.get(&label, &key)) {
            Ok(seen) => {
                self.table.get_mut(&cas)?.seen = seen.clone();
                Ok(Ok(seen))
            }
            Err(e) => Ok(Err(wkv_other(e))),
        }
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
        if !self.component.decl.sqlite_databases.contains(&database) {
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
            Some(Ok(conn)) => {
                self.app.costs.sqlite_open();
                let (costs, lineage) = (self.app.costs.clone(), self.lineage.clone());
                on_durable_commit(&conn, move || costs.sqlite_commit(&lineage));
                Ok(Ok(self
                    .table
                    .push(SqliteConnection(Arc::new(Mutex::new(conn))))?))
            }
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> wasmtime::Result<Result<sqlite::QueryResult, sqlite::Error>> {
        let conn = self.table.get(&connection)?.0.clone();
        self.app.costs.sqlite_statement();
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

#[cfg(test)]
mod key_value_tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KeyValueBackend) {
        let dir = tempfile::tempdir().unwrap();
        let kv = KeyValueBackend::open(&dir.path().join("kv.db")).unwrap();
        (dir, kv)
    }

    #[test]
    fn the_file_keeps_sqlite_defaults_as_spin_leaves_them() {
        let (_dir, kv) = store();
        let conn = kv.conn.lock().unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            (mode.as_str(), sync),
            ("delete", 2),
            "rollback journal, FULL"
        );
    }

    #[test]
    fn increments_are_little_endian_counters_committed_one_by_one() {
        let (_dir, kv) = store();
        let first = kv.increment("default", "c", 5).unwrap();
        assert_eq!((first.value, first.commits), (5, 1));
        assert_eq!(kv.increment("default", "c", -2).unwrap().value, 3);
        let raw = kv.get("default", "c").unwrap();
        assert_eq!(raw.value, Some(3i64.to_le_bytes().to_vec()));
        assert_eq!(raw.commits, 0, "a read commits nothing");
        kv.set("default", "text", b"7").unwrap();
        assert!(kv.increment("default", "text", 1).is_err());
    }

    #[test]
    fn swap_is_conditional_on_the_value_seen_and_an_unseen_key_is_upserted() {
        let (_dir, kv) = store();
        // Nothing seen: Spin upserts unconditionally, even over a value
        // written meanwhile (the race the gateway works around).
        kv.set("default", "k", b"meanwhile").unwrap();
        let blind = kv.swap("default", "k", &None, b"a").unwrap();
        assert_eq!((blind.value, blind.commits), (true, 1));
        let stale = kv
            .swap("default", "k", &Some(b"old".to_vec()), b"b")
            .unwrap();
        assert_eq!((stale.value, stale.commits), (false, 0));
        let fresh = kv.swap("default", "k", &Some(b"a".to_vec()), b"b").unwrap();
        assert_eq!((fresh.value, fresh.commits), (true, 1));
        assert_eq!(kv.get("default", "k").unwrap().value, Some(b"b".to_vec()));
    }

    #[test]
    fn stores_share_one_file_but_not_their_keys() {
        let (_dir, kv) = store();
        kv.set("default", "k", b"1").unwrap();
        assert_eq!(kv.get("other", "k").unwrap().value, None);
        assert_eq!(kv.keys("default").unwrap().value, vec!["k".to_string()]);
    }
}
