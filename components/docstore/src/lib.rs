//! docstore: the local document store. It speaks the subset of the Azure
//! Cosmos DB REST API the other components use, on Spin's embedded SQLite,
//! so `spin up` needs nothing else. Never deployed to Azure.
//!
//! This shell adapts Spin's HTTP and SQLite interfaces to
//! `docstore-engine`, which holds all the behaviour.

use component_kit::{header, variable, WasiClock};
use docstore_engine::{
    handle as engine_handle, LockWait, Sql, SqlError, SqlValue, StoreConfig, StoreRequest,
};
use http_transport::Clock;
use spin_sdk::http::{Request, Response};
use spin_sdk::sqlite::{Connection, Value};
use std::time::Duration;

struct SpinSql(Connection);

impl Sql for SpinSql {
    fn execute(
        &self,
        statement: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, SqlError> {
        let params: Vec<Value> = params
            .iter()
            .map(|p| match p {
                SqlValue::Integer(i) => Value::Integer(*i),
                SqlValue::Real(r) => Value::Real(*r),
                SqlValue::Text(t) => Value::Text(t.clone()),
                SqlValue::Blob(b) => Value::Blob(b.clone()),
                SqlValue::Null => Value::Null,
            })
            .collect();
        let result = self
            .0
            .execute(statement, &params)
            .map_err(|e| SqlError::from_message(e.to_string()))?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(|v| match v {
                        Value::Integer(i) => SqlValue::Integer(i),
                        Value::Real(r) => SqlValue::Real(r),
                        Value::Text(t) => SqlValue::Text(t),
                        Value::Blob(b) => SqlValue::Blob(b),
                        Value::Null => SqlValue::Null,
                    })
                    .collect()
            })
            .collect())
    }
}

/// The clock the engine waits on for a database another request has locked.
struct WasiLockWait {
    started_nanos: u64,
}

impl LockWait for WasiLockWait {
    fn elapsed(&self) -> Duration {
        Duration::from_nanos(
            WasiClock
                .monotonic_nanos()
                .saturating_sub(self.started_nanos),
        )
    }

    fn sleep(&mut self, duration: Duration) {
        // Half to all of it, so that waiting requests spread out.
        WasiClock.sleep(backoff::spread(duration, WasiClock.jitter()));
    }
}

fn cosmos_error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "{{\"code\":\"{code}\",\"message\":{}}}",
        serde_json_string(message)
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

fn serde_json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn config() -> Result<StoreConfig, &'static str> {
    let key = component_kit::store_key().map_err(|missing| missing.0)?;
    let spec = variable("containers").map_err(|_| "containers")?;
    let containers = StoreConfig::parse_containers(&spec).map_err(|_| "containers")?;
    StoreConfig::new(key, containers).map_err(|_| "containers")
}

/// The base URL to advertise: the scheme and authority the caller used.
fn base_url(request: &Request) -> String {
    let full = header(request, "spin-full-url").unwrap_or("http://localhost/");
    match full.find("://").map(|i| i + 3) {
        Some(start) => {
            let end = full[start..]
                .find('/')
                .map(|i| start + i)
                .unwrap_or(full.len());
            full[..end].to_string()
        }
        None => "http://localhost".to_string(),
    }
}

component_kit::export_http!(component_kit::serve, crate::handle_request);

fn handle_request(request: Request) -> Response {
    let config = match config() {
        Ok(config) => config,
        Err(variable) => {
            eprintln!("{{\"level\":\"error\",\"msg\":\"docstore misconfigured\",\"variable\":\"{variable}\"}}");
            return cosmos_error(503, "ServiceUnavailable", "The store is not configured.");
        }
    };
    let connection = match Connection::open_default() {
        Ok(connection) => SpinSql(connection),
        Err(_) => return cosmos_error(503, "ServiceUnavailable", "The database is unavailable."),
    };
    let store_request = StoreRequest {
        method: request.method().to_string(),
        path: request.path().to_string(),
        headers: request
            .headers()
            .filter_map(|(name, value)| {
                value
                    .as_str()
                    .map(|v| (name.to_ascii_lowercase(), v.to_string()))
            })
            .collect(),
        base_url: base_url(&request),
        body: request.into_body(),
    };
    let now = WasiClock.now_unix_seconds();
    let mut lock_wait = WasiLockWait {
        started_nanos: WasiClock.monotonic_nanos(),
    };
    let reply = engine_handle(&connection, &config, &store_request, now, &mut lock_wait);
    let mut builder = Response::builder();
    builder.status(reply.status);
    for (name, value) in reply.headers {
        builder.header(name, value);
    }
    builder.body(reply.body).build()
}
