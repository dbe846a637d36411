//! gateway: the app's only public component. It answers health checks and
//! forwards API routes to the private components with their host keys.

use component_kit::{
    correlation_id, header, json_response, misconfigured, outbound, problem_response, variable,
    HttpRequest, Method, CORRELATION_HEADER,
};
use hostkey::{AcceptedKeys, HOST_KEY_HEADER};
use problem::Problem;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use std::time::Duration;

const PATIENT_API: &str = "http://patient-api.spin.internal";
const AUDIT_API: &str = "http://audit-api.spin.internal";
const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

#[http_component]
fn handle(request: Request) -> Response {
    let correlation = correlation_id(&request);
    let path = request.path().to_string();
    match (request.method(), path.as_str()) {
        (spin_sdk::http::Method::Get, "/health") => {
            json_response(200, &serde_json::json!({"status": "ok"}), &correlation)
        }
        (spin_sdk::http::Method::Get, "/health/ready") => ready(&request, &correlation),
        _ => problem_response(
            Problem::new(404, "No such route.").with_correlation_id(&correlation),
        ),
    }
}

/// Readiness walks every hop: patient-api checks audit-api and the store,
/// audit-api checks the store.
fn ready(request: &Request, correlation: &str) -> Response {
    let keys = match variable("healthkey").map(|k| AcceptedKeys::single(&k)) {
        Ok(Ok(keys)) => keys,
        Ok(Err(_)) => return misconfigured(&component_kit::MissingVariable("healthkey"), correlation),
        Err(missing) => return misconfigured(&missing, correlation),
    };
    if keys.verify(header(request, "x-health-key")).is_err() {
        return problem_response(
            Problem::new(401, "A valid x-health-key is required.").with_correlation_id(correlation),
        );
    }
    for (name, base, key_var) in [
        ("patient-api", PATIENT_API, "patientapikey"),
        ("audit-api", AUDIT_API, "auditapikey"),
    ] {
        let key = match variable(key_var) {
            Ok(key) => key,
            Err(missing) => return misconfigured(&missing, correlation),
        };
        let probe = HttpRequest {
            method: Method::Get,
            url: format!("{base}/health/ready"),
            headers: vec![
                (HOST_KEY_HEADER.to_string(), key),
                (CORRELATION_HEADER.to_string(), correlation.to_string()),
            ],
            body: Vec::new(),
        };
        match outbound::send(&probe, BACKEND_TIMEOUT) {
            Ok(response) if response.status == 200 => {}
            _ => {
                return problem_response(
                    Problem::new(503, format!("{name} is not ready."))
                        .with_correlation_id(correlation),
                )
            }
        }
    }
    json_response(200, &serde_json::json!({"status": "ready"}), correlation)
}
