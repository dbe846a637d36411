//! The shell every component of this app shares, so that each component's
//! `lib.rs` is only routing and wiring.
//!
//! - [`outbound`]: synchronous outbound HTTP over `wasi:http` with a
//!   time limit (Spin enforces `allowed_outbound_hosts` underneath).
//! - [`WasiClock`]: wall and monotonic clocks, sleeping and jitter from WASI.
//! - [`variable`], [`accepted_keys`]: Spin variables, read per request so a
//!   rotated key is picked up without a restart.
//! - [`problem_response`], [`json_response`]: responses in one place;
//!   [`respond::serve`] hands them to the host so each leaves in one write.
//!
//! This crate must never log or return a variable's value, and never answer
//! 500 for something a client sent.

pub mod outbound;
pub mod respond;

use hostkey::{AcceptedKeys, KeyRejection, HOST_KEY_HEADER};
use problem::Problem;
use spin_sdk::http::{Request, Response};

pub use cosmos::{HttpRequest, HttpResponse, Method, TransportError};
pub use respond::{serve, serve_then, AfterResponse};

/// The header carrying the correlation id between components.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// The header carrying the actor the gateway authenticated.
pub const ACTOR_HEADER: &str = "x-actor";

/// A variable that could not be read. Says which, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariable(pub &'static str);

/// Reads a Spin variable mapped to this component.
pub fn variable(name: &'static str) -> Result<String, MissingVariable> {
    spin_sdk::variables::get(name).map_err(|_| MissingVariable(name))
}

/// The primary/secondary key pair held in two variables.
pub fn accepted_keys(
    primary: &'static str,
    secondary: &'static str,
) -> Result<AcceptedKeys, MissingVariable> {
    let p = variable(primary)?;
    let s = variable(secondary)?;
    AcceptedKeys::pair(&p, &s).map_err(|_| MissingVariable(primary))
}

/// Checks `x-functions-key` against the component's key pair; the error is
/// the response to send.
pub fn require_host_key(
    request: &Request,
    primary: &'static str,
    secondary: &'static str,
    correlation_id: &str,
) -> Result<(), Response> {
    let keys = accepted_keys(primary, secondary)
        .map_err(|missing| misconfigured(&missing, correlation_id))?;
    let presented = header(request, HOST_KEY_HEADER);
    keys.verify(presented).map_err(|rejection| {
        let detail = match rejection {
            KeyRejection::Missing => "A host key is required (x-functions-key).",
            KeyRejection::Wrong => "The host key is not valid.",
        };
        problem_response(Problem::new(401, detail).with_correlation_id(correlation_id))
    })
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

/// A header as text; absent if missing or not visible ASCII.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.header(name).and_then(|v| v.as_str())
}

/// The correlation id the caller sent, if it is a plausible one, else a new
/// random one (32 lowercase hex digits, the shape of a W3C trace id).
pub fn correlation_id(request: &Request) -> String {
    match header(request, CORRELATION_HEADER) {
        Some(id) if is_correlation_id(id) => id.to_string(),
        _ => random_hex(16),
    }
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

/// A problem+json response.
pub fn problem_response(problem: Problem) -> Response {
    let mut builder = Response::builder();
    builder
        .status(problem.status)
        .header("content-type", problem::CONTENT_TYPE)
        .header(CORRELATION_HEADER, problem.correlation_id.clone());
    if problem.status == 503 {
        builder.header("retry-after", "1");
    }
    builder.body(problem.to_json()).build()
}

/// A JSON response.
pub fn json_response(status: u16, body: &serde_json::Value, correlation_id: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header(CORRELATION_HEADER, correlation_id)
        .body(serde_json::to_vec(body).expect("JSON values serialise"))
        .build()
}

/// Exports a component's HTTP handler: `export_http!(serve, handle_request)`
/// where `serve` is [`serve`] or [`serve_then`] and `handle_request` the
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

impl cosmos::Clock for WasiClock {
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

/// The Cosmos transport: outbound HTTP with a per-attempt time limit.
#[derive(Debug, Clone, Copy)]
pub struct WasiTransport {
    pub timeout: std::time::Duration,
}

impl cosmos::Transport for WasiTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        outbound::send(&request, self.timeout)
    }
}
