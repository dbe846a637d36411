//! How responses leave on the wire. Spin does not set TCP_NODELAY, so a
//! response written in two pieces (headers, then a body the component had
//! not written yet) can stall a kept-alive client for a delayed ACK
//! (docs/architecture.md). Every component hands its response over with the body
//! already written and finished (component_kit::respond), which shows on the
//! wire as a Content-Length instead of chunked framing.

use e2e::{Reply, TestApp};
use serde_json::json;

fn assert_whole(reply: &Reply, what: &str) {
    assert_eq!(
        reply.header("transfer-encoding"),
        None,
        "{what}: a chunked response was streamed, not handed over whole"
    );
    let length = reply
        .header("content-length")
        .unwrap_or_else(|| panic!("{what}: no content-length"));
    assert_eq!(
        length.parse::<usize>().ok(),
        Some(reply.body.len()),
        "{what}: content-length"
    );
}

#[test]
fn responses_carry_their_length_and_are_not_chunked() {
    let app = TestApp::start();
    let health = app.get("/health", &[]);
    assert_eq!(health.status, 200);
    assert_whole(&health, "GET /health");

    let created = app.call(
        "admin",
        "POST",
        "/patient",
        Some(
            &json!({"firstName": "Wire", "lastName": "Test", "gender": "other",
                     "dateOfBirth": "1990-05-17", "postCode": "3000"}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_whole(&created, "POST /patient (forwarded from patient-api)");

    let id = created.json()["id"].as_str().unwrap().to_string();
    let loaded = app.call("admin", "GET", &format!("/patient/{id}"), None);
    assert_eq!(loaded.status, 200);
    assert_whole(&loaded, "GET /patient/{id}");

    let invalid = app.call("admin", "POST", "/patient", Some(&json!({"firstName": 7})));
    assert_eq!(invalid.status, 400);
    assert_whole(&invalid, "a 400 problem from patient-api");

    let unauthenticated = app.get(&format!("/patient/{id}"), &[]);
    assert_eq!(unauthenticated.status, 401);
    assert_whole(&unauthenticated, "a 401 problem from the gateway");
}
