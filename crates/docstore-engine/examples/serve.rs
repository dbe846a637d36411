//! Serves the engine over HTTP on a loopback address with rusqlite, for the
//! Python SDK conformance run (`conformance/run.sh`). Development only.
//!
//! Environment:
//! - `DOCSTORE_ADDR`: listen address, default `127.0.0.1:8081` (loopback only)
//! - `DOCSTORE_DB`: SQLite file, default a new file under the temp directory
//! - `DOCSTORE_KEY`: base64 master key (required)
//! - `DOCSTORE_CONTAINERS`: container specification, default the app's

#[path = "../src/rusqlite_sql.rs"]
mod rusqlite_sql;

// `Sql`, `SqlError` and `SqlValue` are used by the included module via `super`.
#[allow(unused_imports)]
use docstore_engine::{
    handle, LockWait, Sql, SqlError, SqlValue, StoreConfig, StoreRequest, StoreResponse,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const DEFAULT_CONTAINERS: &str =
    "patients/patients=/id;patients/tests=/patientId;audit/records=/chainKey";

fn main() {
    if let Err(message) = run() {
        eprintln!("serve: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let addr: SocketAddr = std::env::var("DOCSTORE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8081".into())
        .parse()
        .map_err(|e| format!("DOCSTORE_ADDR: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err("DOCSTORE_ADDR must be a loopback address".into());
    }
    let key = std::env::var("DOCSTORE_KEY").map_err(|_| "DOCSTORE_KEY is not set".to_string())?;
    let containers =
        std::env::var("DOCSTORE_CONTAINERS").unwrap_or_else(|_| DEFAULT_CONTAINERS.into());
    let config =
        Arc::new(StoreConfig::from_variables(&key, &containers).map_err(|e| e.to_string())?);
    let db: PathBuf = std::env::var("DOCSTORE_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::temp_dir().join(format!("docstore-{}.sqlite", std::process::id()))
        });
    let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| e.to_string())?);
    let base_url = format!(
        "http://{}",
        server.server_addr().to_ip().ok_or("not an IP listener")?
    );
    println!(
        "docstore listening on {base_url} (database {})",
        db.display()
    );

    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (server, config, db, base_url) =
                (server.clone(), config.clone(), db.clone(), base_url.clone());
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    serve_one(request, &config, &db, &base_url);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

fn serve_one(mut request: tiny_http::Request, config: &StoreConfig, db: &Path, base_url: &str) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("/").to_string();
    let store_request = StoreRequest {
        method: request.method().as_str().to_string(),
        path,
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
        base_url: base_url.to_string(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // A fresh connection per request, as Spin opens one.
    let response = match rusqlite_sql::RusqliteSql::open(db) {
        Ok(sql) => handle(
            &sql,
            config,
            &store_request,
            now,
            &mut rusqlite_sql::ThreadLockWait::new(),
        ),
        Err(e) => StoreResponse {
            status: 500,
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(
                "{{\"code\":\"InternalServerError\",\"message\":{:?}}}",
                e.to_string()
            )
            .into_bytes(),
        },
    };
    if std::env::var_os("DOCSTORE_LOG").is_some() {
        eprintln!(
            "{} {} -> {}",
            store_request.method, store_request.path, response.status
        );
    }
    let mut reply = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            reply.add_header(header);
        }
    }
    let _ = request.respond(reply);
}
