//! Serving the app over real HTTP on a loopback port.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Result};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiBody;

use crate::runtime::AppInner;
use crate::App;

/// A server running in the background; dropping it stops accepting.
pub struct RunningServer {
    pub addr: SocketAddr,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl App {
    /// Listens on `addr` (loopback only) and serves requests until dropped.
    /// Must be called within a tokio runtime.
    pub async fn serve(&self, addr: SocketAddr) -> Result<RunningServer> {
        if !addr.ip().is_loopback() {
            bail!("the test host listens on loopback addresses only, not {addr}");
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = self.inner.clone();
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((stream, client)) = listener.accept().await else {
                    continue;
                };
                // Spin does not set TCP_NODELAY on accepted connections, and
                // neither do we (docs/architecture.md).
                let app = app.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(handle(&app, req, client, addr).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RunningServer { addr, accept_loop })
    }
}

async fn handle(
    app: &Arc<AppInner>,
    request: hyper::Request<hyper::body::Incoming>,
    client: SocketAddr,
    local: SocketAddr,
) -> hyper::Response<WasiBody> {
    let path = request.uri().path().to_string();
    let Some(route) = app.router.route(&path) else {
        return hyper::Response::builder()
            .status(404)
            .body(
                Full::new("Not Found".into())
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            )
            .expect("static response");
    };
    // Spin reads every header value as UTF-8 before it instantiates the
    // component, and a value that is not (say `caf\xe9`) is an error that
    // `respond_wasm_component` answers with `internal_error(None, ..)`: 500,
    // empty body, no component run (spin v4.0.2 and main,
    // crates/trigger-http/src/headers.rs `prepare_request_headers`, called by
    // wasi.rs `prepare_request`). Valid UTF-8 beyond ASCII passes.
    if request
        .headers()
        .values()
        .any(|value| std::str::from_utf8(value.as_bytes()).is_err())
    {
        return empty(500);
    }
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local.to_string());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let full_url = format!("http://{host}{path_and_query}");
    let request = request.map(|body| {
        body.map_err(wasmtime_wasi_http::Error::Hyper)
            .boxed_unsync()
    });
    // Spin's span for this request (telemetry on): the client's trace, or a new one.
    let trace_id = app.telemetry.as_ref().map(|t| {
        t.start_trace(
            request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok()),
        )
    });
    let request = AppInner::prepare(request, &full_url, &route, &client.to_string(), true);
    app.invoke(
        &route.component,
        &crate::costs::Lineage::traced(trace_id),
        request,
    )
    .await
}

/// A response with no body, as Spin's own answers have.
fn empty(status: u16) -> hyper::Response<WasiBody> {
    hyper::Response::builder()
        .status(status)
        .body(
            Full::new(hyper::body::Bytes::new())
                .map_err(|n| match n {})
                .boxed_unsync(),
        )
        .expect("static response")
}
