//! Traces that join up. With Spin's OpenTelemetry export on, Spin replaces
//! the `traceparent` of every request a component sends with its own span's
//! (tests/host/src/telemetry.rs models it). The backends take their
//! correlation id from that `traceparent`, and the gateway answers and logs
//! under the trace id the backend answered with, so the response, every log
//! line and the audit record carry the trace id of the exported spans,
//! whether or not the client sent a `traceparent`.

use std::collections::HashMap;

use e2e::{Start, TestApp};
use serde_json::{json, Value};

fn traced_app() -> TestApp {
    TestApp::in_process(Start {
        environment: HashMap::from([(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            "http://127.0.0.1:4318".to_string(),
        )]),
        ..Start::default()
    })
}

fn patient() -> Value {
    json!({"firstName": "Trace", "lastName": "Joined", "gender": "other",
           "dateOfBirth": "1990-01-01", "postCode": "3000"})
}

/// The correlation ids of every structured log line, by component.
fn logged_correlations(app: &TestApp) -> Vec<(String, String)> {
    app.host()
        .app
        .logs()
        .into_iter()
        .filter_map(|l| {
            let line: Value = serde_json::from_str(&l.line).ok()?;
            Some((l.component, line["correlationId"].as_str()?.to_string()))
        })
        .collect()
}

/// Creates a patient with `headers` and checks that the answer, the log
/// lines and the audit record all carry the trace id Spin exported.
fn everything_carries_the_exported_trace(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let key = app.key("clinic").to_string();
    let mut all = vec![
        ("ocp-apim-subscription-key", key.as_str()),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    let body = patient().to_string();
    let created = app.send("POST", "/patient", &all, Some(body.as_bytes()));
    assert_eq!(created.status, 201, "{}", created.text());
    app.host().settle();
    let exported = app.host().app.exported_trace_ids();
    let trace = exported.last().expect("a span was exported").clone();
    assert_eq!(created.header("x-correlation-id"), Some(trace.as_str()));

    let id = created.json()["id"].as_str().unwrap().to_string();
    let records = app.call(
        "admin",
        "GET",
        &format!("/audit/records?resourceType=patient&resourceId={id}"),
        None,
    );
    assert_eq!(
        records.json()[0]["correlationId"],
        trace.as_str(),
        "the audit record"
    );

    let lines: Vec<(String, String)> = logged_correlations(app)
        .into_iter()
        .filter(|(_, c)| *c == trace)
        .collect();
    for component in ["gateway", "patient-api", "audit-api"] {
        assert!(
            lines.iter().any(|(c, _)| c == component),
            "no {component} log line under {trace}: {:?}",
            logged_correlations(app)
        );
    }
    trace
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn without_a_client_traceparent_the_answer_logs_and_audit_carry_spin_s_trace() {
    let app = traced_app();
    everything_carries_the_exported_trace(&app, &[]);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn with_a_client_traceparent_everything_carries_the_client_s_trace() {
    let app = traced_app();
    let client = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{client}-00f067aa0ba902b7-01");
    let trace = everything_carries_the_exported_trace(&app, &[("traceparent", &traceparent)]);
    assert_eq!(trace, client);
}
