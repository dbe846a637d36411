//! Serving the app over real HTTP on a loopback port.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Result};
use http::uri::Authority;
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
                    // An error from `handle` makes hyper drop the connection
                    // without an answer, as Spin's service does when its
                    // handler fails (crates/trigger-http/src/server.rs
                    // `serve_connection`).
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { handle(&app, req, client).await }
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
    mut request: hyper::Request<hyper::body::Incoming>,
    client: SocketAddr,
) -> Result<hyper::Response<WasiBody>> {
    // Spin removes a Host naming a chaining target (`<id>.spin.internal`)
    // from every incoming request before it routes it
    // (crates/trigger-http/src/headers.rs `strip_forbidden_headers`, called
    // first in server.rs `HttpServer::handle`).
    if request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(is_service_chaining_host)
    {
        request.headers_mut().remove(http::header::HOST);
    }
    let path = request.uri().path().to_string();
    let Some(route) = app.router.route(&path) else {
        return Ok(hyper::Response::builder()
            .status(404)
            .body(
                Full::new("Not Found".into())
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            )
            .expect("static response"));
    };
    // Spin then needs one unambiguous authority for a routed request, from
    // Host or from an absolute request target; without one its handler
    // fails and the client gets no answer at all (server.rs `set_req_uri`,
    // called by `handle_trigger_route`). So a `*.spin.internal` Host sent
    // from outside, now removed, closes the connection.
    request_authority(&request)?;
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
        return Ok(empty(500));
    }
    // `spin-full-url` names the Host header, else `localhost`
    // (headers.rs `prepare_request_headers`); request_authority has checked
    // that a Host is visible ASCII.
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
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
    Ok(app
        .invoke(
            &route.component,
            &crate::costs::Lineage::traced(trace_id),
            request,
        )
        .await)
}

/// Whether Spin takes `host` for a service-chaining target: one label, then
/// exactly `spin.internal`, with any port; case-sensitive, as in Spin
/// (crates/outbound-networking-config/src/allowed_hosts.rs
/// `is_service_chaining_host`).
fn is_service_chaining_host(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, _port)| name);
    name.split_once('.')
        .is_some_and(|(_label, domain)| domain == "spin.internal")
}

/// The one authority a request names, as Spin's `set_req_uri` demands: a
/// Host header must be visible ASCII and a valid authority, and must agree
/// with an absolute request target; one of the two must be there.
fn request_authority<B>(request: &hyper::Request<B>) -> Result<Authority> {
    let from_host = match request.headers().get(http::header::HOST) {
        Some(value) => Some(value.to_str()?.parse::<Authority>()?),
        None => None,
    };
    match (from_host, request.uri().authority()) {
        (None, None) => bail!("no Host header and no authority in the request target"),
        (Some(host), Some(target)) if &host != target => {
            bail!("the Host header and the request target name different authorities")
        }
        (Some(host), _) => Ok(host),
        (None, Some(target)) => Ok(target.clone()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaining_hosts_are_one_label_before_spin_internal() {
        for host in [
            "patient-api.spin.internal",
            "audit-api.spin.internal:80",
            "nosuch.spin.internal",
            ".spin.internal",
        ] {
            assert!(is_service_chaining_host(host), "{host}");
        }
        for host in [
            "spin.internal",
            "x.patient-api.spin.internal",
            "patient-api.spin.internal.",
            "PATIENT-API.SPIN.INTERNAL",
            "patient-api.spin.internal.example.com",
            "127.0.0.1:3000",
        ] {
            assert!(!is_service_chaining_host(host), "{host}");
        }
    }

    #[test]
    fn a_request_must_name_one_authority() {
        let request = |target: &str, host: Option<&[u8]>| {
            let mut builder = hyper::Request::builder().uri(target);
            if let Some(host) = host {
                builder = builder.header("host", http::HeaderValue::from_bytes(host).unwrap());
            }
            builder.body(()).unwrap()
        };
        let named = |r| request_authority(&r).ok().map(|a| a.to_string());
        assert_eq!(named(request("/", Some(b"a:1"))), Some("a:1".into()));
        assert_eq!(named(request("http://a:1/", None)), Some("a:1".into()));
        assert_eq!(
            named(request("http://A:1/", Some(b"a:1"))),
            Some("a:1".into())
        );
        assert_eq!(named(request("/", None)), None);
        assert_eq!(named(request("http://b/", Some(b"a"))), None);
        assert_eq!(named(request("/", Some(b"caf\xc3\xa9"))), None);
        assert_eq!(named(request("/", Some(b"a b"))), None);
    }
}
