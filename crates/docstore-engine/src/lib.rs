//! The engine of `docstore`, the LOCAL document store: the subset of the Azure
//! Cosmos DB for NoSQL REST API that this app's components use, on SQLite.
//! It makes `spin up` work with nothing else installed; in Azure it is never
//! deployed and the same components talk to a real Cosmos DB account.
//!
//! The crate is pure Rust over an injected [`Sql`] connection (Spin's SQLite in
//! the component, rusqlite in tests) and one entry point, [`handle`].
//!
//! What it must never do:
//! - answer anything without a valid master-key signature and a fresh
//!   `x-ms-date` (every request, including `GET /`);
//! - put a request value into SQL text: every value, and every JSON path, is a
//!   bound parameter; SQL text is built only from fixed fragments;
//! - echo the master key or an expected signature, or put SQL error text in a
//!   response;
//! - create, change or delete databases or containers: they come only from
//!   configuration;
//! - answer 500 for bad input, or panic.

mod batch;
mod config;
mod documents;
mod feed;
mod metadata;
mod partition;
pub mod query;
mod reply;
mod rid;
mod route;
#[cfg(test)]
mod rusqlite_sql;
mod sqlstore;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, ContainerDef, PartitionKeyPath, ResourceName, StoreConfig};

use reply::Failure;
use route::Route;

/// A value bound to, or read from, SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

/// Why a statement failed, as far as the store needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlError {
    /// The database is locked by another connection ("database is locked").
    Busy(String),
    /// A constraint (such as the document key) was violated.
    Constraint(String),
    /// The documents table does not exist: a new, empty database file.
    NoTable(String),
    /// Anything else.
    Other(String),
}

impl SqlError {
    /// Classifies an SQLite error message, for connections (such as Spin's)
    /// that report errors only as text.
    pub fn from_message(message: impl Into<String>) -> Self {
        let message = message.into();
        let lower = message.to_ascii_lowercase();
        if lower.contains("database is locked")
            || lower.contains("database is busy")
            || lower.contains("database table is locked")
            || lower.contains("sqlite_busy")
        {
            SqlError::Busy(message)
        } else if lower.contains("constraint failed") {
            SqlError::Constraint(message)
        } else if lower.contains("no such table") {
            SqlError::NoTable(message)
        } else {
            SqlError::Other(message)
        }
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::Busy(m) => write!(f, "database busy: {m}"),
            SqlError::Constraint(m) => write!(f, "constraint violated: {m}"),
            SqlError::NoTable(m) => write!(f, "no table: {m}"),
            SqlError::Other(m) => write!(f, "SQL error: {m}"),
        }
    }
}

impl std::error::Error for SqlError {}

/// One SQLite connection, opened for one request.
pub trait Sql {
    /// Runs one statement with positional (`?`) parameters and returns its
    /// rows (empty for statements that return none).
    fn execute(&self, statement: &str, params: &[SqlValue])
        -> Result<Vec<Vec<SqlValue>>, SqlError>;
}

/// An HTTP request as the store sees it.
#[derive(Debug, Clone)]
pub struct StoreRequest {
    pub method: String,
    /// The percent-encoded path, without the query string.
    pub path: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The base URL the store advertises, e.g. `http://127.0.0.1:3000`.
    pub base_url: String,
}

impl StoreRequest {
    /// The first value of a header (`name` in lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header_is_true(&self, name: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// The answer to a [`StoreRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoreResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl StoreResponse {
    /// The first value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The largest request body accepted (Cosmos DB's 2 MB document limit).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The clock a request waits on while another request holds the database's
/// write lock. Connections have no busy timeout (Spin's default), so a
/// locked database fails a statement at once and `handle` decides how long
/// to wait (see [`lock_backoff`]); the shell only measures and sleeps.
pub trait LockWait {
    /// Time since the request started.
    fn elapsed(&self) -> std::time::Duration;
    /// Sleeps for about `duration`, jittered so that waiting requests
    /// spread out.
    fn sleep(&mut self, duration: std::time::Duration);
}

/// How long the store keeps trying before answering 429.
const LOCK_WAIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Retries made at once, before any wait: each retried statement is itself
/// a round trip to the host of some tens of microseconds, and a write holds
/// the lock for a few hundred, while the shortest sleep a host timer gives
/// is about a millisecond (SQLite's own busy handler also starts at 1 ms).
const IMMEDIATE_LOCK_RETRIES: u32 = 8;

/// The wait before retry `retry` (from 0): none for the first
/// [`IMMEDIATE_LOCK_RETRIES`], then 1 ms doubling up to 8 ms.
fn lock_backoff(retry: u32) -> std::time::Duration {
    match retry.checked_sub(IMMEDIATE_LOCK_RETRIES) {
        None => std::time::Duration::ZERO,
        Some(n) => std::time::Duration::from_millis(1u64 << n.min(3)),
    }
}

/// Waits before retry `retry`; false when the budget is spent (the request
/// is then answered 429 with `x-ms-retry-after-ms`).
fn wait_for_lock(lock_wait: &mut impl LockWait, retry: u32) -> bool {
    if lock_wait.elapsed() >= LOCK_WAIT_BUDGET {
        return false;
    }
    let step = lock_backoff(retry);
    if !step.is_zero() {
        lock_wait.sleep(step);
    }
    true
}

/// Answers one request. `now_unix_seconds` is the clock used for the
/// `x-ms-date` check and for `_ts`.
pub fn handle(
    sql: &impl Sql,
    config: &StoreConfig,
    request: &StoreRequest,
    now_unix_seconds: i64,
    lock_wait: &mut impl LockWait,
) -> StoreResponse {
    let outcome = route::parse(&request.path).and_then(|route| {
        authorize(config, request, &route, now_unix_seconds)?;
        if request.body.len() > MAX_BODY_BYTES {
            return Err(Failure::TooLarge);
        }
        // Every operation either only reads, is one statement, or runs in a
        // transaction that was rolled back on failure, so running it again
        // is safe: after a lock wait, and after creating the schema, which
        // is made on first use rather than checked on every request.
        let (mut retry, mut schema_made) = (0, false);
        loop {
            let failure = match dispatch(sql, config, request, &route, now_unix_seconds) {
                Ok(response) => return Ok(response),
                Err(Failure::NoSchema) if !schema_made => match sqlstore::create_schema(sql) {
                    Ok(()) => {
                        schema_made = true;
                        continue;
                    }
                    Err(failure) => failure,
                },
                Err(failure) => failure,
            };
            if failure != Failure::Busy || !wait_for_lock(lock_wait, retry) {
                return Err(failure);
            }
            retry += 1;
        }
    });
    let mut response = match outcome {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    };
    reply::add_common_headers(&mut response);
    response
}

fn authorize(
    config: &StoreConfig,
    request: &StoreRequest,
    route: &route::ParsedPath,
    now: i64,
) -> Result<(), Failure> {
    let date = request.header(cosmos_auth::DATE_HEADER);
    let signed = cosmos_auth::SignedRequest {
        verb: &request.method,
        resource_type: &route.resource_type,
        resource_link: &route.resource_link,
        date: date.unwrap_or(""),
    };
    cosmos_auth::verify(config.key(), &signed, request.header("authorization"))
        .and_then(|()| cosmos_auth::check_date(date, now))
        .map_err(|e| Failure::Unauthorized(e.to_string()))
}

fn dispatch(
    sql: &impl Sql,
    config: &StoreConfig,
    request: &StoreRequest,
    parsed: &route::ParsedPath,
    now: i64,
) -> Result<StoreResponse, Failure> {
    let method = request.method.to_ascii_uppercase();
    match (&parsed.route, method.as_str()) {
        (Route::Account, "GET") => Ok(metadata::account(&request.base_url)),
        (Route::Account, _) => Err(Failure::method(&method, "the database account", "GET")),
        (Route::Databases, "GET") => Ok(metadata::list_databases(config)),
        (Route::Databases, "POST") => metadata::create_database(config, request),
        (Route::Databases, _) => Err(Failure::method(&method, "the database feed", "GET")),
        (Route::Database(db), "GET") => metadata::database(config, db),
        (Route::Database(db), _) => metadata::refuse_change(config, db, None),
        (Route::Collections(db), "GET") => metadata::list_containers(config, db),
        (Route::Collections(db), "POST") => metadata::create_container(config, db, request),
        (Route::Collections(_), _) => Err(Failure::method(&method, "the container feed", "GET")),
        (Route::Collection(db, coll), "GET") => metadata::container(config, db, coll),
        (Route::Collection(db, coll), _) => metadata::refuse_change(config, db, Some(coll)),
        (Route::PartitionKeyRanges(db, coll), "GET") => {
            metadata::partition_key_ranges(config, db, coll, request)
        }
        (Route::PartitionKeyRanges(..), _) => {
            Err(Failure::method(&method, "partition key ranges", "GET"))
        }
        (Route::Documents(db, coll), "POST") => {
            let container = known_container(config, db, coll)?;
            if request.header_is_true("x-ms-cosmos-is-batch-request") {
                return batch::execute(sql, container, request, now);
            }
            if request.header_is_true("x-ms-cosmos-is-query-plan-request") {
                return feed::query_plan(request);
            }
            if is_query(request) {
                return feed::query(sql, container, request);
            }
            documents::create(sql, container, request, now)
        }
        (Route::Documents(db, coll), "GET") => {
            let container = known_container(config, db, coll)?;
            feed::read_feed(sql, container, request)
        }
        (Route::Documents(..), _) => {
            Err(Failure::method(&method, "the document feed", "GET, POST"))
        }
        (Route::Document(db, coll, id), "GET") => {
            documents::read(sql, known_container(config, db, coll)?, id, request)
        }
        (Route::Document(db, coll, id), "PUT") => {
            documents::replace(sql, known_container(config, db, coll)?, id, request, now)
        }
        (Route::Document(db, coll, id), "DELETE") => {
            documents::delete(sql, known_container(config, db, coll)?, id, request)
        }
        (Route::Document(..), "PATCH") => Err(Failure::MethodNotAllowed(
            "partial document update (PATCH) is not supported by the local document store; use PUT"
                .into(),
        )),
        (Route::Document(..), _) => Err(Failure::method(&method, "a document", "GET, PUT, DELETE")),
        (Route::Unsupported(what), _) => Err(Failure::NotFound(format!(
            "{what} are not supported by the local document store"
        ))),
    }
}

fn is_query(request: &StoreRequest) -> bool {
    let content_type = request.header("content-type").unwrap_or("");
    request.header_is_true("x-ms-documentdb-isquery")
        || content_type
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/query+json")
}

fn known_container<'a>(
    config: &'a StoreConfig,
    db: &str,
    coll: &str,
) -> Result<&'a ContainerDef, Failure> {
    if !config.has_database(db) {
        return Err(Failure::NotFound(format!("database '{db}' does not exist")));
    }
    config.container(db, coll).ok_or_else(|| {
        Failure::NotFound(format!(
            "container '{coll}' does not exist in database '{db}'"
        ))
    })
}
