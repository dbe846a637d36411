//! patient-api: patients and their laboratory tests (private; reachable only
//! by service chaining, and only with its host key).
//!
//! This file is the shell: it checks the host key, routes, and wires the
//! service (src/service.rs) to audit-api, the document store and WASI.

mod error;
mod idempotency;
mod relay;
mod route;
mod service;
mod store;

use audit_chain::{Actor, AuditInput, AuditResource, SourceSystemName};
use component_kit::{
    correlation_id, header, json_response, method_name, outbound, problem_response,
    problem_response_with, require_host_key, service_connection, HttpRequest, HttpResponse,
    Method as OutMethod, RequestLog, ServiceConnection, WasiClock, WasiTransport, ACTOR_HEADER,
    CACHE_CONTROL_HEADER, CORRELATION_HEADER, NO_STORE,
};
use cosmos::{Clock, CosmosClient};
use problem::Problem;
use records::Timestamp;
use spin_sdk::http::{Request, Response};
use std::time::Duration;

use error::ApiError;
use route::{route, NoRoute, Route};
use service::{AuditFailed, Auditor, Environment, Incoming, Reply, Service, CONTINUATION_HEADER};

/// The variable holding where audit-api is and the key to call it with
/// (`Endpoint=…;Key=…`, composed in spin.toml from `auditapiurl` and
/// `auditapikey`).
const AUDIT_API_CONNECTION: &str = "auditapi";
/// The audit call's time limit (CONTRACT: a slower audit counts as failed).
const AUDIT_TIMEOUT: Duration = Duration::from_secs(3);
/// Per attempt; the Cosmos client's retry budget bounds the total.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);
const SOURCE_SYSTEM: &str = "patient-api";

component_kit::export_http!(component_kit::serve, crate::handle_request);

fn handle_request(request: Request) -> Response {
    let started = WasiClock.now_millis();
    let correlation = correlation_id(&request);
    let method = method_name(request.method());
    let (response, template, outcome) = respond(&request, method, &correlation);
    let mut line = RequestLog {
        component: "patient-api",
        method,
        route: template,
        status: *response.status(),
        correlation_id: &correlation,
        started_millis: started,
    }
    .line(WasiClock.now_millis());
    line["outcome"] = outcome.into();
    component_kit::log(&line);
    response
}

/// The response, the route template and a data-free outcome for the log.
fn respond(request: &Request, method: &str, correlation: &str) -> (Response, &'static str, String) {
    if let Some(alive) = component_kit::liveness(request, correlation) {
        return (alive, "/health", "alive".into());
    }
    if let Err(denied) = require_host_key(
        request,
        "patientapiprimarykey",
        "patientapisecondarykey",
        correlation,
    ) {
        return (denied, "-", "host key rejected".into());
    }
    let route = match route(method, request.path()) {
        Ok(route) => route,
        Err(NoRoute::NotFound) => {
            return failed(ApiError::NotFound("No such route."), "-", correlation)
        }
        Err(NoRoute::MethodNotAllowed(allow)) => {
            return failed(ApiError::MethodNotAllowed { allow }, "-", correlation)
        }
    };
    let template = route.template();
    match route {
        Route::Ready => return (ready(correlation), template, "ready".into()),
        Route::AuditRecords | Route::AuditVerify => {
            let (response, outcome) = relay_to_audit_api(request, template, correlation);
            return (response, template, outcome.into());
        }
        _ => {}
    }
    match serve(request, route, correlation) {
        Ok(reply) => (reply_response(reply, correlation), template, "ok".into()),
        Err(e) => failed(e, template, correlation),
    }
}

fn serve(request: &Request, route: Route<'_>, correlation: &str) -> Result<Reply, ApiError> {
    // Every data operation is attributed; the gateway always says who acts.
    let actor = header(request, ACTOR_HEADER)
        .and_then(|a| Actor::parse(a).ok())
        .ok_or(ApiError::BadParameter {
            field: ACTOR_HEADER,
            detail: "x-actor must name the authenticated caller.",
        })?;
    let auditor = AuditApi {
        connection: audit_api()?,
        correlation: correlation.to_string(),
        actor: actor.as_str().to_string(),
        traceparent: header(request, "traceparent").map(str::to_string),
    };
    let service = Service {
        auditor,
        documents: store()?,
        environment: Wasi,
    };
    let incoming = Incoming {
        actor: actor.as_str(),
        query: request.query(),
        body: request.body(),
        if_match: header(request, "if-match"),
        if_none_match: header(request, "if-none-match"),
        continuation: header(request, CONTINUATION_HEADER),
        idempotency_key: header(request, idempotency::IDEMPOTENCY_HEADER),
    };
    service.handle(route, &incoming)
}

fn audit_api() -> Result<ServiceConnection, ApiError> {
    service_connection(AUDIT_API_CONNECTION).map_err(|missing| ApiError::Misconfigured(missing.0))
}

/// `GET /audit/records` and `/audit/verify`, answered by audit-api.
fn relay_to_audit_api(
    request: &Request,
    path: &'static str,
    correlation: &str,
) -> (Response, &'static str) {
    let unavailable =
        |detail: &str| problem_response(Problem::new(503, detail).with_correlation_id(correlation));
    let audit = match audit_api() {
        Ok(audit) => audit,
        Err(e) => return (error_response(&e, correlation), "misconfigured"),
    };
    match relay::relay(&audit, request, path) {
        Ok(answer) => (relayed_response(answer, correlation), "relayed"),
        Err(relay::RelayFailed::KeyRejected) => {
            warn("audit-api refused the host key", "status 401", correlation);
            (
                unavailable("The service is not configured."),
                "audit key rejected",
            )
        }
        Err(relay::RelayFailed::Unreachable) => (
            unavailable("The audit register is not available."),
            "audit unreachable",
        ),
    }
}

fn relayed_response(answer: HttpResponse, correlation: &str) -> Response {
    let mut builder = Response::builder();
    builder
        .status(answer.status)
        .header(CACHE_CONTROL_HEADER, NO_STORE)
        .header(CORRELATION_HEADER, correlation);
    for (name, value) in answer.headers {
        if !name.eq_ignore_ascii_case(CACHE_CONTROL_HEADER) {
            builder.header(name, value);
        }
    }
    builder.body(answer.body).build()
}

fn store() -> Result<CosmosClient<WasiTransport, WasiClock>, ApiError> {
    component_kit::store_client(STORE_TIMEOUT, CosmosClient::new)
        .map_err(|missing| ApiError::Misconfigured(missing.0))
}

/// `POST /auditrecord` and `POST /auditrecords` on audit-api; only a 201
/// counts as written.
struct AuditApi {
    connection: ServiceConnection,
    correlation: String,
    actor: String,
    traceparent: Option<String>,
}

/// Extra time a batch of disclosure records may take per record, on top of
/// [`AUDIT_TIMEOUT`]; the total stays under the gateway's default backend
/// timeout (15 s) even for the largest page.
const AUDIT_TIME_PER_RECORD: Duration = Duration::from_millis(8);

impl AuditApi {
    fn input(resource: &AuditResource) -> Result<AuditInput, AuditFailed> {
        Ok(AuditInput {
            source_system_name: SourceSystemName::parse(SOURCE_SYSTEM).map_err(|_| AuditFailed)?,
            resource: resource.clone(),
        })
    }

    /// Sends `body` to `path`; the 201's body.
    fn post(&self, path: &str, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, AuditFailed> {
        let mut headers = vec![
            (
                hostkey::HOST_KEY_HEADER.to_string(),
                self.connection.key().to_string(),
            ),
            (CORRELATION_HEADER.to_string(), self.correlation.clone()),
            (ACTOR_HEADER.to_string(), self.actor.clone()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        if let Some(tp) = &self.traceparent {
            headers.push(("traceparent".to_string(), tp.clone()));
        }
        let request = HttpRequest {
            method: OutMethod::Post,
            url: self.connection.endpoint().url(path),
            headers,
            body,
        };
        match outbound::send(&request, timeout) {
            Ok(response) if response.status == 201 => Ok(response.body),
            Ok(response) => {
                warn(
                    "audit record refused",
                    &format!("status {}", response.status),
                    &self.correlation,
                );
                Err(AuditFailed)
            }
            Err(e) => {
                warn("audit record failed", &format!("{e:?}"), &self.correlation);
                Err(AuditFailed)
            }
        }
    }
}

impl Auditor for AuditApi {
    fn record(&self, resource: &AuditResource) -> Result<uuid::Uuid, AuditFailed> {
        let body = Self::input(resource)?.to_json().to_string().into_bytes();
        let answer = self.post("/auditrecord", body, AUDIT_TIMEOUT)?;
        // The 201 is the stored record; its id is what disclosures name.
        serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|record| record.get("id")?.as_str()?.parse().ok())
            .ok_or_else(|| {
                warn(
                    "audit record unreadable",
                    "no id in the 201",
                    &self.correlation,
                );
                AuditFailed
            })
    }

    fn record_all(&self, resources: &[AuditResource]) -> Result<(), AuditFailed> {
        let records = resources
            .iter()
            .map(|r| Self::input(r).map(|input| input.to_json()))
            .collect::<Result<Vec<_>, _>>()?;
        let body = serde_json::json!({ "records": records })
            .to_string()
            .into_bytes();
        let count = u32::try_from(resources.len()).unwrap_or(u32::MAX);
        let timeout = AUDIT_TIMEOUT + AUDIT_TIME_PER_RECORD * count;
        self.post("/auditrecords", body, timeout).map(|_| ())
    }
}

/// Time and ids from WASI.
struct Wasi;

impl Environment for Wasi {
    fn now(&self) -> Timestamp {
        // The wall clock is within years 0001–9999; the fallback is unreachable.
        Timestamp::from_unix_millis(WasiClock.unix_millis())
            .unwrap_or_else(|_| Timestamp::from_unix_millis(0).expect("epoch is in range"))
    }

    fn new_uuid(&self) -> uuid::Uuid {
        component_kit::random_uuid()
    }
}

/// Ready when audit-api is ready and the document store answers.
fn ready(correlation: &str) -> Response {
    let audit = match audit_api() {
        Ok(audit) => audit,
        Err(e) => return error_response(&e, correlation),
    };
    let probe = HttpRequest {
        method: OutMethod::Get,
        url: audit.endpoint().url("/health/ready"),
        headers: vec![
            (
                hostkey::HOST_KEY_HEADER.to_string(),
                audit.key().to_string(),
            ),
            (CORRELATION_HEADER.to_string(), correlation.to_string()),
        ],
        body: Vec::new(),
    };
    let audit_ready =
        matches!(outbound::send(&probe, Duration::from_secs(10)), Ok(r) if r.status == 200);
    if !audit_ready {
        return problem_response(
            Problem::new(503, "audit-api is not ready.").with_correlation_id(correlation),
        );
    }
    let client = match store() {
        Ok(client) => client,
        Err(e) => return error_response(&e, correlation),
    };
    match client.database_account() {
        Ok(_) => json_response(200, &serde_json::json!({"status": "ready"}), correlation),
        Err(_) => problem_response(
            Problem::new(503, "The document store is not reachable.")
                .with_correlation_id(correlation),
        ),
    }
}

fn failed(
    e: ApiError,
    template: &'static str,
    correlation: &str,
) -> (Response, &'static str, String) {
    (error_response(&e, correlation), template, e.reason())
}

/// The one place an [`ApiError`] becomes a response.
fn error_response(e: &ApiError, correlation: &str) -> Response {
    problem_response_with(e.problem().with_correlation_id(correlation), e.headers())
}

fn reply_response(reply: Reply, correlation: &str) -> Response {
    let mut builder = Response::builder();
    builder
        .status(reply.status)
        .header(CACHE_CONTROL_HEADER, NO_STORE)
        .header(CORRELATION_HEADER, correlation);
    for (name, value) in reply.headers {
        builder.header(name, value);
    }
    match reply.body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("JSON values serialise"))
            .build(),
        None => builder.body(Vec::new()).build(),
    }
}

fn warn(msg: &str, detail: &str, correlation: &str) {
    let line = serde_json::json!({
        "level": "warn", "component": "patient-api", "msg": msg, "detail": detail, "correlationId": correlation,
    });
    component_kit::log(&line);
}
