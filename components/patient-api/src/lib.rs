//! patient-api: patients and their laboratory tests (private; reachable only
//! by service chaining, and only with its host key).

use component_kit::{
    correlation_id, json_response, misconfigured, outbound, problem_response, require_host_key,
    variable, HttpRequest, Method as OutMethod, WasiClock, WasiTransport, CORRELATION_HEADER,
};
use cosmos::{CosmosClient, MasterKey};
use problem::Problem;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use std::time::Duration;

const AUDIT_API: &str = "http://audit-api.spin.internal";

#[http_component]
fn handle(request: Request) -> Response {
    let correlation = correlation_id(&request);
    if let Err(denied) = require_host_key(
        &request,
        "patientapiprimarykey",
        "patientapisecondarykey",
        &correlation,
    ) {
        return denied;
    }
    match (request.method(), request.path()) {
        (Method::Get, "/health/ready") => ready(&correlation),
        _ => problem_response(
            Problem::new(501, "This route is not built yet.").with_correlation_id(&correlation),
        ),
    }
}

fn store() -> Result<CosmosClient<WasiTransport, WasiClock>, component_kit::MissingVariable> {
    let endpoint = variable("cosmosendpoint")?;
    let key = variable("cosmoskey")?;
    let key = MasterKey::from_base64(&key).map_err(|_| component_kit::MissingVariable("cosmoskey"))?;
    CosmosClient::new(&endpoint, key, WasiTransport { timeout: Duration::from_secs(5) }, WasiClock)
        .map_err(|_| component_kit::MissingVariable("cosmosendpoint"))
}

/// Ready when audit-api is ready and the document store answers.
fn ready(correlation: &str) -> Response {
    let key = match variable("auditapikey") {
        Ok(key) => key,
        Err(missing) => return misconfigured(&missing, correlation),
    };
    let probe = HttpRequest {
        method: OutMethod::Get,
        url: format!("{AUDIT_API}/health/ready"),
        headers: vec![
            (hostkey::HOST_KEY_HEADER.to_string(), key),
            (CORRELATION_HEADER.to_string(), correlation.to_string()),
        ],
        body: Vec::new(),
    };
    let audit_ready = matches!(outbound::send(&probe, Duration::from_secs(10)), Ok(r) if r.status == 200);
    if !audit_ready {
        return problem_response(
            Problem::new(503, "audit-api is not ready.").with_correlation_id(correlation),
        );
    }
    let client = match store() {
        Ok(client) => client,
        Err(missing) => return misconfigured(&missing, correlation),
    };
    match client.database_account() {
        Ok(_) => json_response(200, &serde_json::json!({"status": "ready"}), correlation),
        Err(_) => problem_response(
            Problem::new(503, "The document store is not reachable.").with_correlation_id(correlation),
        ),
    }
}
