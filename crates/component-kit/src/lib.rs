//! The shell every component of this app shares, so that each component's
//! `lib.rs` is only routing and wiring.
//!
//! - [`outbound`]: synchronous outbound HTTP over `wasi:http` with a
//!   time limit (Spin enforces `allowed_outbound_hosts` underneath).
//! - [`WasiClock`]: wall and monotonic clocks, sleeping and jitter from WASI.
//! - [`variable`], [`require_host_key`], [`service_connection`]: Spin
//!   variables, read per request so a rotated key is picked up without a
//!   restart.
//! - [`store_client`]: the document store client, opened the same way by
//!   every component that has one (this crate knows no store protocol: the
//!   component passes the client's constructor).
//! - [`problem_response`], [`problem_response_with`], [`json_response`]:
//!   responses in one place; [`respond::serve`] hands them to the host so
//!   each leaves in one write.
//! - [`RequestLog`]: the one JSON log line per request, [`method_name`] for
//!   the method in it.
//! - [`continuation_token`]: the one reading of a client's
//!   `x-continuation-token`.
//!
//! This crate must never log or return a variable's value, and never answer
//! 500 for something a client sent. It holds no policy: who may do what,
//! and what is audited, is decided by the components and their crates.

pub mod outbound;
pub mod respond;

use std::time::Duration;

use connection_string::CosmosConnection;
use cosmos_auth::MasterKey;
use hostkey::{AcceptedKeys, KeyRejection, HOST_KEY_HEADER};
use problem::Problem;
use spin_sdk::http::{Request, Response};

pub use connection_string::ServiceConnection;
pub use http_transport::{HttpRequest, HttpResponse, Method, TransportError};
pub use respond::serve;

/// The header carrying the correlation id between components.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// The header carrying the actor the gateway authenticated.
pub const ACTOR_HEADER: &str = "x-actor";
/// The header carrying a query's continuation token, both ways.
pub const CONTINUATION_HEADER: &str = "x-continuation-token";
/// Longest continuation token accepted from a client (a store's tokens are
/// far shorter; the bound keeps a hostile header from being passed on).
pub const MAX_CONTINUATION_CHARS: usize = 8192;
/// Every answer about patients or the audit register says `Cache-Control:
/// no-store`: no browser, proxy or CDN may keep a copy of health data (and an
/// error answer is not worth keeping either).
pub const CACHE_CONTROL_HEADER: &str = "cache-control";
pub const NO_STORE: &str = "no-store";
/// The variable holding the document store's connection string
/// (`AccountEndpoint=…;AccountKey=…`, composed in spin.toml from
/// `cosmosendpoint` and `cosmoskey`).
pub const STORE_CONNECTION_VARIABLE: &str = "cosmos";
/// The variable holding the document store's master key alone: the
/// docstore's, which checks signatures and needs no endpoint.
pub const STORE_KEY_VARIABLE: &str = "cosmoskey";

/// A variable that could not be read. Says which, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariable(pub &'static str);

/// Reads a Spin variable mapped to this component.
pub fn variable(name: &'static str) -> Result<String, MissingVariable> {
    spin_sdk::variables::get(name).map_err(|_| MissingVariable(name))
}

/// One accepted key held in a variable.
fn accepted_key(name: &'static str) -> Result<AcceptedKeys, MissingVariable> {
    AcceptedKeys::single(&variable(name)?).map_err(|_| MissingVariable(name))
}

/// Checks `x-functions-key` against the component's primary key and, only
/// if that does not match, its secondary key; the error is the response to
/// send.
///
/// The secondary is read lazily because under Spin each variable read walks
/// the provider chain (a Key Vault GET on AKS), and callers send the primary
/// except while it is being replaced: a request costs one key read, not two.
/// All the extra read's timing can tell is that a presented key is not the
/// primary, which every wrong key also is.
pub fn require_host_key(
    request: &Request,
    primary: &'static str,
    secondary: &'static str,
    correlation_id: &str,
) -> Result<(), Response> {
    let unavailable = |missing| misconfigured(&missing, correlation_id);
    let presented = header(request, HOST_KEY_HEADER);
    let verdict = match accepted_key(primary)
        .map_err(unavailable)?
        .verify(presented)
    {
        Err(KeyRejection::Wrong) => accepted_key(secondary)
            .map_err(unavailable)?
            .verify(presented),
        verdict => verdict,
    };
    verdict.map_err(|rejection| {
        let detail = match rejection {
            KeyRejection::Missing => "A host key is required (x-functions-key).",
            KeyRejection::Wrong => "The host key is not valid.",
        };
        problem_response(Problem::new(401, detail).with_correlation_id(correlation_id))
    })
}

/// `GET /health`: 200 `{"status":"ok"}` without a host key, for the
/// kubelet's probes of a private service in its own pod (the split
/// deployment). It reveals that the instance runs and nothing else; every
/// other path still needs the host key.
pub fn liveness(request: &Request, correlation_id: &str) -> Option<Response> {
    let is_probe =
        matches!(request.method(), spin_sdk::http::Method::Get) && request.path() == "/health";
    is_probe.then(|| json_response(200, &serde_json::json!({"status": "ok"}), correlation_id))
}

/// 503 for a component whose configuration is incomplete. Names the
/// variable, which is configuration, not a secret.
pub fn misconfigured(missing: &MissingVariable, correlation_id: &str) -> Response {
    eprintln!(
        "{{\"level\":\"error\",\"msg\":\"variable not available\",\"variable\":\"{}\"}}",
        missing.0
    );
    problem_response(
        Problem::new(503, "The service is not configured.").with_correlation_id(correlation_id),
    )
}

/// A variable holding a connection string that cannot be used: logged
/// with what is wrong (never any of its text), then [`MissingVariable`].
fn unusable_connection(name: &'static str, problem: impl std::fmt::Display) -> MissingVariable {
    let line = serde_json::json!({
        "level": "error",
        "msg": "variable is not a usable connection string",
        "variable": name,
        "problem": problem.to_string(),
    });
    eprintln!("{line}");
    MissingVariable(name)
}

/// The connection to a private service (`Endpoint=…;Key=…`) from its
/// variable: one read for where the service is and the key to present.
pub fn service_connection(name: &'static str) -> Result<ServiceConnection, MissingVariable> {
    ServiceConnection::parse(&variable(name)?).map_err(|e| unusable_connection(name, e))
}

/// A header as text; absent if missing or not visible ASCII.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.header(name).and_then(|v| v.as_str())
}

/// The request's correlation id: the trace id of its `traceparent` when
/// that is valid, else the `x-correlation-id` the caller sent when it is
/// plausible, else a new random one (32 lowercase hex digits, the shape of
/// a W3C trace id).
///
/// `traceparent` first because under Spin with its OpenTelemetry export on,
/// Spin replaces the `traceparent` of every chained request with its own
/// span's: its trace id is the one of the exported spans, which the
/// gateway (told nothing by Spin) cannot know. With the export off the
/// gateway's `traceparent` arrives, whose trace id is its correlation id.
pub fn correlation_id(request: &Request) -> String {
    if let Some(trace_id) = header(request, "traceparent").and_then(trace_id_of) {
        return trace_id.to_string();
    }
    match header(request, CORRELATION_HEADER) {
        Some(id) if is_correlation_id(id) => id.to_string(),
        _ => random_hex(16),
    }
}

/// The trace id of a valid version-00 W3C `traceparent`
/// (`00-<32 hex>-<16 hex>-<2 hex>`, lower case, ids not all zeros).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let valid = parts.next().is_none()
        && version == "00"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && nonzero(trace)
        && nonzero(span);
    valid.then_some(trace)
}

fn is_correlation_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `N` bytes from WASI's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let bytes = wasi::random::random::get_random_bytes(N as u64);
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// A version 4 GUID from WASI's secure random source.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(random_bytes()).into_uuid()
}

/// `n` random bytes as lowercase hex, from WASI's secure random source.
pub fn random_hex(n: usize) -> String {
    wasi::random::random::get_random_bytes(n as u64)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A problem+json response; a 503 says `retry-after: 1`.
pub fn problem_response(problem: Problem) -> Response {
    problem_response_with(problem, Vec::new())
}

/// A problem+json response with more headers (`allow` on a 405, a
/// `retry-after` of the component's own); a 503 without its own
/// `retry-after` says `retry-after: 1`. Never to be cached.
pub fn problem_response_with(problem: Problem, headers: Vec<(&'static str, String)>) -> Response {
    let mut builder = Response::builder();
    builder
        .status(problem.status)
        .header("content-type", problem::CONTENT_TYPE)
        .header(CACHE_CONTROL_HEADER, NO_STORE)
        .header(CORRELATION_HEADER, problem.correlation_id.clone());
    let has_retry_after = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("retry-after"));
    if problem.status == 503 && !has_retry_after {
        builder.header("retry-after", "1");
    }
    for (name, value) in headers {
        builder.header(name, value);
    }
    builder.body(problem.to_json()).build()
}

/// A JSON response, never to be cached (see [`NO_STORE`]).
pub fn json_response(status: u16, body: &serde_json::Value, correlation_id: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header(CACHE_CONTROL_HEADER, NO_STORE)
        .header(CORRELATION_HEADER, correlation_id)
        .body(serde_json::to_vec(body).expect("JSON values serialise"))
        .build()
}

/// Exports a component's HTTP handler: `export_http!(serve, handle_request)`
/// where `serve` is [`serve`] and `handle_request` the
/// component's own function (by path). The WASI export glue that
/// `#[http_component]` generates is the only unsafe code a component has;
/// the workspace denies `unsafe_code`, and this module is its one exception.
#[macro_export]
macro_rules! export_http {
    ($serve:path, $handler:path) => {
        #[allow(unsafe_code)]
        mod http_export {
            #[::spin_sdk::http_component]
            async fn handle(
                request: ::spin_sdk::http::IncomingRequest,
                out: ::spin_sdk::http::ResponseOutparam,
            ) {
                $serve(request, out, $handler).await
            }
        }
    };
}

/// Blocks this instance for `d` (a WASI monotonic-clock wait).
pub fn sleep(d: std::time::Duration) {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
}

/// Time from WASI, for the Cosmos client and for timestamps.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasiClock;

impl WasiClock {
    pub fn unix_millis(&self) -> i64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds as i64 * 1000 + i64::from(now.nanoseconds / 1_000_000)
    }

    /// The monotonic clock in nanoseconds, for measuring short waits.
    pub fn monotonic_nanos(&self) -> u64 {
        wasi::clocks::monotonic_clock::now()
    }
}

impl http_transport::Clock for WasiClock {
    fn now_unix_seconds(&self) -> i64 {
        wasi::clocks::wall_clock::now().seconds as i64
    }

    fn now_millis(&self) -> u64 {
        wasi::clocks::monotonic_clock::now() / 1_000_000
    }

    fn sleep(&self, d: std::time::Duration) {
        sleep(d);
    }

    fn jitter(&self) -> f64 {
        (wasi::random::random::get_random_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The store client's transport: outbound HTTP with a per-attempt time limit.
#[derive(Debug, Clone, Copy)]
pub struct WasiTransport {
    pub timeout: Duration,
}

impl http_transport::Transport for WasiTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        outbound::send(&request, self.timeout)
    }

    fn send_all(&self, requests: Vec<HttpRequest>) -> Vec<Result<HttpResponse, TransportError>> {
        outbound::send_all(&requests, self.timeout)
    }
}

/// The store's master key from its variable.
pub fn store_key() -> Result<MasterKey, MissingVariable> {
    let key = variable(STORE_KEY_VARIABLE)?;
    MasterKey::from_base64(&key).map_err(|_| MissingVariable(STORE_KEY_VARIABLE))
}

/// The document store client: endpoint and key from the one connection
/// string variable (one provider call, not two), outbound HTTP with
/// `timeout` per attempt, the WASI clock. `connect` is the client's
/// constructor (`cosmos::CosmosClient::new`); any error it gives is about
/// the endpoint, the only setting it still judges.
pub fn store_client<S, E>(
    timeout: Duration,
    connect: impl FnOnce(&str, MasterKey, WasiTransport, WasiClock) -> Result<S, E>,
) -> Result<S, MissingVariable> {
    let name = STORE_CONNECTION_VARIABLE;
    let connection =
        CosmosConnection::parse(&variable(name)?).map_err(|e| unusable_connection(name, e))?;
    let key = MasterKey::from_base64(connection.account_key())
        .map_err(|_| unusable_connection(name, "`AccountKey` is not a base64 master key"))?;
    connect(
        connection.endpoint().as_str(),
        key,
        WasiTransport { timeout },
        WasiClock,
    )
    .map_err(|_| MissingVariable(name))
}

/// A method as logged: its name when it is a standard one; anything else
/// is `OTHER` (an unusual method is client text and could carry anything).
pub fn method_name(method: &spin_sdk::http::Method) -> &'static str {
    use spin_sdk::http::Method as M;
    match method {
        M::Get => "GET",
        M::Post => "POST",
        M::Put => "PUT",
        M::Delete => "DELETE",
        M::Patch => "PATCH",
        M::Head => "HEAD",
        M::Options => "OPTIONS",
        M::Connect => "CONNECT",
        M::Trace => "TRACE",
        M::Other(_) => "OTHER",
    }
}

/// A client's `x-continuation-token` that cannot be one: empty, too long,
/// or not printable ASCII. Whether the store issued it for this query is
/// the store's to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidContinuation;

/// Reads a client's continuation token (`None`: the first page).
pub fn continuation_token(header: Option<&str>) -> Result<Option<String>, InvalidContinuation> {
    match header {
        None => Ok(None),
        Some(t)
            if !t.is_empty()
                && t.len() <= MAX_CONTINUATION_CHARS
                && t.bytes().all(|b| (0x20..=0x7e).contains(&b)) =>
        {
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(InvalidContinuation),
    }
}

/// The fields every component's request log line has. One JSON line per
/// request: method name, route template (never a concrete path, a query
/// string, a header value or a body), status, time to the response and
/// correlation id; the component adds its own data-free fields.
#[derive(Debug, Clone)]
pub struct RequestLog<'a> {
    pub component: &'static str,
    pub method: &'static str,
    pub route: &'a str,
    pub status: u16,
    pub correlation_id: &'a str,
    /// [`WasiClock::now_millis`](http_transport::Clock::now_millis) when
    /// the request arrived.
    pub started_millis: u64,
}

impl RequestLog<'_> {
    /// The line: `error` for a 5xx, `warn` for a 4xx, else `info`.
    pub fn line(&self, now_millis: u64) -> serde_json::Value {
        let level = match self.status {
            500..=599 => "error",
            400..=499 => "warn",
            _ => "info",
        };
        serde_json::json!({
            "level": level,
            "component": self.component,
            "msg": "request",
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "correlationId": self.correlation_id,
            "durationMs": now_millis.saturating_sub(self.started_millis),
        })
    }
}

/// Writes a log line to stderr (the runtime collects it).
pub fn log(line: &serde_json::Value) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_are_bounded_printable_ascii() {
        assert_eq!(continuation_token(None), Ok(None));
        assert_eq!(
            continuation_token(Some("{\"token\":\"+RID:~a\"}")),
            Ok(Some("{\"token\":\"+RID:~a\"}".to_string()))
        );
        let longest = "t".repeat(MAX_CONTINUATION_CHARS);
        assert_eq!(
            continuation_token(Some(&longest)),
            Ok(Some(longest.clone()))
        );
        for bad in [
            String::new(),
            format!("{longest}t"),
            "a\u{7f}".into(),
            "a\tb".into(),
            "é".into(),
        ] {
            assert_eq!(
                continuation_token(Some(&bad)),
                Err(InvalidContinuation),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unusual_methods_are_logged_by_kind() {
        use spin_sdk::http::Method as M;
        assert_eq!(method_name(&M::Get), "GET");
        assert_eq!(method_name(&M::Patch), "PATCH");
        assert_eq!(method_name(&M::Other("GET\n{}".into())), "OTHER");
    }

    #[test]
    fn the_log_line_level_follows_the_status() {
        let entry = |status| RequestLog {
            component: "c",
            method: "GET",
            route: "/r/{id}",
            status,
            correlation_id: "abc",
            started_millis: 10,
        };
        let line = entry(200).line(25);
        assert_eq!(line["level"], "info");
        assert_eq!(line["durationMs"], 15);
        assert_eq!(line["route"], "/r/{id}");
        assert_eq!(entry(404).line(25)["level"], "warn");
        assert_eq!(entry(503).line(25)["level"], "error");
        // A clock that went backwards gives 0, not a wrapped number.
        assert_eq!(entry(200).line(0)["durationMs"], 0);
    }

    #[test]
    fn only_a_valid_traceparent_yields_a_trace_id() {
        let trace = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(
            trace_id_of(&format!("00-{trace}-b7ad6b7169203331-01")),
            Some(trace)
        );
        for bad in [
            "",
            "00",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad:?}");
        }
    }
}
