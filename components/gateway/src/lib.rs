//! gateway: the app's only public component and its single managed entry
//! point. For each request it:
//!
//! 1. continues or starts the W3C trace (the trace id is the correlation id);
//! 2. checks the client address allow-list (`/health` is exempt: it reveals
//!    nothing and probes come from the cluster);
//! 3. routes (404, 405 with `Allow`), serves `/health`, `/health/ready` and
//!    `/openapi.json` itself;
//! 4. authenticates (subscription key and/or bearer JWT) and authorizes the
//!    route's scope (401 with `WWW-Authenticate`, 403);
//! 5. counts the rate limit and quota atomically in the key-value store
//!    (429 with `Retry-After`; `RateLimit-*` on every counted response);
//! 6. reads the body within the size limit (413);
//! 7. forwards to the private backend with its host key, the trace, the
//!    actor and only allow-listed client headers, with a time limit (504);
//! 8. writes one JSON access-log line.
//!
//! Every decision is `gateway_policy`'s; this file wires HTTP, variables and
//! the key-value store to it.

mod config;
mod counters;
mod error;
mod incoming;
mod reply;

use std::time::Duration;

use component_kit::{
    outbound, HttpRequest, HttpResponse, Method, TransportError, CACHE_CONTROL_HEADER, NO_STORE,
};
use gateway_policy::{
    access_log_line, authorize, bearer_token, continue_or_start, is_forwardable_response_header,
    route, split_subscription_key, AccessLog, Actor, Credentials, Denial, GatewaySettings,
    LimitDecision, RouteMatch, Scope, TraceContext, Verifiers, ACTOR_HEADER, CORRELATION_ID_HEADER,
    HEALTH_KEY_HEADER, SUBSCRIPTION_KEY_HEADER, TRACEPARENT_HEADER,
};
use hostkey::{AcceptedKeys, HOST_KEY_HEADER};
use http::StatusCode;
use spin_sdk::http::{IncomingRequest, Response};

use error::GatewayError;
use incoming::Incoming;
use reply::Reply;

/// The public contract, served at `GET /openapi.json`.
const OPENAPI: &str = include_str!("../openapi.json");
/// Time limit of each readiness probe.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the access log needs besides the response.
#[derive(Default)]
struct Outcome {
    actor: Option<String>,
    reason: Option<&'static str>,
    limits: Option<LimitDecision>,
    /// The trace id the backend answered under, when it is not the
    /// gateway's: under Spin with telemetry on, Spin replaced the
    /// gateway's `traceparent` with its own span's, so this is the trace of
    /// the exported spans and of the audit record.
    backend_trace: Option<String>,
}

component_kit::export_http!(component_kit::serve, crate::handle_request);

fn handle_request(request: IncomingRequest) -> Response {
    let started = wasi::clocks::monotonic_clock::now();
    let request = Incoming::new(request);
    let random: [u8; 24] = component_kit::random_bytes();
    let trace = continue_or_start(request.single_or_none(TRACEPARENT_HEADER), random);
    let correlation = trace.correlation_id();
    let matched = route(request.method_name(), &request.path);

    let mut outcome = Outcome::default();
    let mut reply = match serve(&request, matched, &trace, &mut outcome) {
        Ok(reply) => reply,
        Err(error) => {
            outcome.reason = Some(error.reason());
            error.into_reply(&correlation)
        }
    };
    if let Some(decision) = &outcome.limits {
        reply.set_limit_headers(decision);
    }
    let correlation = outcome.backend_trace.take().unwrap_or(correlation);
    reply.set(CORRELATION_ID_HEADER, correlation.clone());

    let elapsed_ns = wasi::clocks::monotonic_clock::now().saturating_sub(started);
    eprintln!(
        "{}",
        access_log_line(&AccessLog {
            correlation_id: &correlation,
            actor: outcome.actor.as_deref(),
            method: request.method_name(),
            route: matched.template(),
            status: reply.status.as_u16(),
            duration_ms: elapsed_ns / 1_000_000,
            reason: outcome.reason,
        })
    );
    reply.into_response()
}

fn serve(
    request: &Incoming,
    matched: RouteMatch,
    trace: &TraceContext,
    outcome: &mut Outcome,
) -> Result<Reply, GatewayError> {
    if let RouteMatch::Public(_) = matched {
        return Ok(health());
    }
    let settings = config::settings()?;
    let client = settings.trusted_proxies.client_address(
        request.single_or_none("spin-client-addr"),
        &request.all("x-forwarded-for"),
    );
    if !settings.client_allow_list.allows_client(client) {
        return Err(GatewayError::ClientAddressRefused);
    }
    match matched {
        RouteMatch::NotFound => Err(GatewayError::NotFound),
        RouteMatch::MethodNotAllowed { allow } => Err(GatewayError::MethodNotAllowed { allow }),
        RouteMatch::OpenApi => Ok(Reply::new(
            StatusCode::OK,
            "application/json",
            OPENAPI.as_bytes().to_vec(),
        )),
        RouteMatch::HealthReady => ready(request, trace),
        RouteMatch::Protected { scope, .. } => protected(request, &settings, scope, trace, outcome),
        RouteMatch::Public(_) => Ok(health()),
    }
}

/// An API route: authenticate, authorize, count, read the body, forward.
fn protected(
    request: &Incoming,
    settings: &GatewaySettings,
    scope: Scope,
    trace: &TraceContext,
    outcome: &mut Outcome,
) -> Result<Reply, GatewayError> {
    let body_limit = settings.body_limit;
    request.check_declared_length(body_limit)?;

    let subscriptions = config::subscriptions(settings)?;
    let (query_key, forwarded_query) = split_subscription_key(&request.query);
    // A header key takes precedence over a query key.
    let subscription_key = request
        .single(SUBSCRIPTION_KEY_HEADER)?
        .or(query_key.as_deref());
    let bearer = request.single("authorization")?.and_then(bearer_token);
    let now = unix_now();
    let actor = authorize(
        Credentials {
            subscription_key,
            bearer,
        },
        settings.credentials,
        scope,
        Verifiers {
            subscriptions: &subscriptions,
            jwt: settings.jwt.as_ref(),
        },
        now,
    )
    .map_err(|denial| {
        if let Denial::Forbidden { actor, .. } = &denial {
            outcome.actor = Some(actor.clone());
        }
        GatewayError::Denied(denial)
    })?;
    outcome.actor = Some(actor.audit_name());

    let limits = actor.limits().unwrap_or(settings.token_limits);
    let decision = counters::count(&actor.limit_owner(), &limits, now)?;
    if !decision.allowed {
        return Err(GatewayError::RateLimited(decision));
    }
    outcome.limits = Some(decision);

    let body = request.read_body(body_limit, settings.body_timeout)?;
    let (reply, backend_trace) = forward(
        request,
        &forwarded_query,
        &actor,
        trace,
        body,
        settings.backend_timeout,
    )?;
    outcome.backend_trace = backend_trace.filter(|t| *t != trace.correlation_id());
    Ok(reply)
}

/// Liveness: reveals nothing but that the gateway runs.
fn health() -> Reply {
    Reply::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// Sends the request on to patient-api and passes the answer back, with
/// the trace id it answered under (its `x-correlation-id`, when it is one).
fn forward(
    request: &Incoming,
    query: &str,
    actor: &Actor,
    trace: &TraceContext,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(Reply, Option<String>), GatewayError> {
    let backend = config::backend()?;
    // The route table has no other methods.
    let method = request.forward_method().ok_or(GatewayError::NotFound)?;
    let mut url = backend.endpoint().url(&request.path);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    // Client headers first (allow-listed), then what only the gateway sets.
    let mut headers = request.forwardable_headers();
    headers.extend([
        (HOST_KEY_HEADER.to_string(), backend.key().to_string()),
        (CORRELATION_ID_HEADER.to_string(), trace.correlation_id()),
        (TRACEPARENT_HEADER.to_string(), trace.traceparent()),
        (ACTOR_HEADER.to_string(), actor.audit_name()),
    ]);
    let outgoing = HttpRequest {
        method,
        url,
        headers,
        body,
    };
    let response = outbound::send(&outgoing, timeout).map_err(|e| match e {
        TransportError::Timeout => GatewayError::BackendTimeout,
        _ => GatewayError::BackendUnreachable,
    })?;
    // A status outside 100-999 is not HTTP: the backend failed.
    let status = StatusCode::from_u16(response.status).map_err(|_| GatewayError::BackendFailed)?;
    if status == StatusCode::UNAUTHORIZED {
        return Err(GatewayError::BackendRejectedHostKey);
    }
    // Every error a client sees is problem+json (docs/contract.md); a backend
    // 5xx that is not one is a crash, and its text stays inside.
    let is_problem = response.header("content-type").is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with(problem::CONTENT_TYPE)
    });
    if status.as_u16() >= 500 && !is_problem {
        return Err(GatewayError::BackendFailed);
    }
    let backend_trace = response
        .header(CORRELATION_ID_HEADER)
        .filter(|id| gateway_policy::is_trace_id(id))
        .map(str::to_string);
    Ok((pass_back(status, response), backend_trace))
}

fn pass_back(status: StatusCode, response: HttpResponse) -> Reply {
    let mut reply = Reply::passthrough(status, response.body);
    for (name, value) in &response.headers {
        if is_forwardable_response_header(name) {
            reply.set(name, value.clone());
        }
    }
    // Every backend answer is about patients or the audit register: never
    // cacheable, even if a backend forgot to say so.
    if !reply.has(CACHE_CONTROL_HEADER) {
        reply.set(CACHE_CONTROL_HEADER, NO_STORE);
    }
    reply
}

/// Readiness walks every hop: patient-api checks audit-api and the store,
/// audit-api checks the store.
fn ready(request: &Incoming, trace: &TraceContext) -> Result<Reply, GatewayError> {
    let keys = AcceptedKeys::single(&config::key("healthkey")?)
        .map_err(|_| GatewayError::Misconfigured)?;
    if keys.verify(request.single(HEALTH_KEY_HEADER)?).is_err() {
        return Err(GatewayError::HealthKeyRejected);
    }
    let backend = config::backend()?;
    let probe = HttpRequest {
        method: Method::Get,
        url: backend.endpoint().url("/health/ready"),
        headers: vec![
            (HOST_KEY_HEADER.to_string(), backend.key().to_string()),
            (CORRELATION_ID_HEADER.to_string(), trace.correlation_id()),
            (TRACEPARENT_HEADER.to_string(), trace.traceparent()),
        ],
        body: Vec::new(),
    };
    match outbound::send(&probe, READY_TIMEOUT) {
        Ok(response) if response.status == StatusCode::OK.as_u16() => {}
        _ => return Err(GatewayError::NotReady("patient-api")),
    }
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({"status": "ready"}),
    ))
}

fn unix_now() -> i64 {
    i64::try_from(wasi::clocks::wall_clock::now().seconds).unwrap_or(i64::MAX)
}
