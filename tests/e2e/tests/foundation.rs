//! The foundation: health, readiness through every hop, private components,
//! host keys, and the sandbox each component runs in.

use e2e::{built_wasm, Start, TestApp};
use spin_test_host::Fault;
use std::collections::HashMap;

#[test]
fn health_answers_without_credentials_and_reveals_nothing_else() {
    let app = TestApp::start();
    let reply = app.get("/health", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
}

#[test]
fn readiness_walks_every_hop_and_needs_the_health_key() {
    let app = TestApp::start();
    let key = app.secrets.variables["healthkey"].clone();
    assert_eq!(
        app.get("/health/ready", &[("x-health-key", &key)]).status,
        200
    );
    let missing = app.get("/health/ready", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        app.get("/health/ready", &[("x-health-key", "wrong")])
            .status,
        401
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn readiness_is_503_when_the_store_or_audit_is_down() {
    let app = TestApp::start();
    let host = app.host();
    let key = app.secrets.variables["healthkey"].clone();
    host.set_fault("docstore", Some(Fault::Refuse));
    let reply = app.get("/health/ready", &[("x-health-key", &key)]);
    assert_eq!(reply.status, 503);
    assert!(reply.header("retry-after").is_some());
    host.set_fault("docstore", None);
    assert_eq!(
        app.get("/health/ready", &[("x-health-key", &key)]).status,
        200
    );
    host.set_fault("audit-api", Some(Fault::Refuse));
    assert_eq!(
        app.get("/health/ready", &[("x-health-key", &key)]).status,
        503
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn readiness_is_503_when_the_store_endpoint_does_not_answer() {
    // A store URL on loopback where nothing listens: a real connection refusal.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::in_process(Start {
        environment: HashMap::from([(
            "SPIN_VARIABLE_COSMOSENDPOINT".to_string(),
            format!("http://127.0.0.1:{port}"),
        )]),
        ..Start::default()
    });
    let key = app.secrets.variables["healthkey"].clone();
    assert_eq!(
        app.get("/health/ready", &[("x-health-key", &key)]).status,
        503
    );
}

#[test]
fn only_the_gateway_is_routable_from_outside() {
    let app = TestApp::start();
    // The private components' own routes are not reachable: the gateway owns
    // every public path and serves none of theirs.
    for path in ["/auditrecord", "/dbs/patients/colls/patients/docs", "/"] {
        assert_eq!(app.get(path, &[]).status, 404, "{path}");
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn the_host_routes_only_the_gateway_and_the_portal_publicly() {
    let app = TestApp::start();
    let host = app.host();
    // The developer portal's route is more specific, so it is listed first.
    assert_eq!(
        host.app.public_routes(),
        vec![
            ("/portal/...".to_string(), "portal".to_string()),
            ("/...".to_string(), "gateway".to_string())
        ]
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn private_components_demand_their_own_host_key() {
    let app = TestApp::start();
    let host = app.host();
    let v = &app.secrets.variables;
    for (component, primary, secondary, other) in [
        (
            "patient-api",
            "patientapiprimarykey",
            "patientapisecondarykey",
            "auditapiprimarykey",
        ),
        (
            "audit-api",
            "auditapiprimarykey",
            "auditapisecondarykey",
            "patientapiprimarykey",
        ),
    ] {
        let call = |key: Option<&str>| {
            let headers: Vec<(&str, &str)> = key
                .map(|k| vec![("x-functions-key", k)])
                .unwrap_or_default();
            host.invoke(component, "GET", "/health/ready", &headers, b"")
                .status
        };
        assert_eq!(call(None), 401, "{component}: no key");
        assert_eq!(call(Some("")), 401, "{component}: empty key");
        assert_eq!(
            call(Some(&v[other])),
            401,
            "{component}: another service's key"
        );
        assert_eq!(call(Some(&v[primary])), 200, "{component}: primary");
        assert_eq!(call(Some(&v[secondary])), 200, "{component}: secondary");
        // Rotating the primary makes the old value stale at once.
        let old = v[primary].clone();
        host.app
            .set_variable(primary, "a-freshly-rotated-primary-key")
            .unwrap();
        assert_eq!(call(Some(&old)), 401, "{component}: stale primary");
        assert_eq!(
            call(Some("a-freshly-rotated-primary-key")),
            200,
            "{component}: new primary"
        );
    }
}

/// Runs the probe fixture in a component's place: same id, same manifest
/// capabilities.
fn probe_as(component: &str) -> TestApp {
    TestApp::in_process(Start {
        source_overrides: HashMap::from([(component.to_string(), built_wasm("probe"))]),
        ..Start::default()
    })
}

fn probe(app: &TestApp, component: &str, query: &str) -> String {
    let host = app.host.as_ref().expect("in process");
    let reply = host.invoke(component, "GET", &format!("/?{query}"), &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["outcome"].as_str().unwrap().to_string()
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn each_component_can_reach_only_what_the_manifest_lists() {
    let cases = [
        // (component, url, allowed)
        (
            "audit-api",
            "http://patient-api.spin.internal/health",
            false,
        ),
        ("audit-api", "http://gateway.spin.internal/health", false),
        ("audit-api", "http://docstore.spin.internal/", true),
        ("patient-api", "http://gateway.spin.internal/health", false),
        (
            "patient-api",
            "http://audit-api.spin.internal/health/ready",
            true,
        ),
        ("patient-api", "http://docstore.spin.internal/", true),
        ("docstore", "http://audit-api.spin.internal/", false),
        ("docstore", "http://127.0.0.1:9/", false),
        ("gateway", "http://docstore.spin.internal/", false),
        // patient-api relays the audit reads; the gateway has one backend.
        (
            "gateway",
            "http://audit-api.spin.internal/health/ready",
            false,
        ),
        (
            "gateway",
            "http://patient-api.spin.internal/health/ready",
            true,
        ),
    ];
    for (component, url, allowed) in cases {
        let app = probe_as(component);
        let host = app.host.as_ref().unwrap();
        let outcome = probe(&app, component, &format!("url={url}"));
        if allowed {
            assert!(
                outcome.starts_with("status "),
                "{component} -> {url}: {outcome}"
            );
            assert!(host.app.denials().is_empty());
        } else {
            assert_eq!(outcome, "denied", "{component} -> {url}");
            let denials = host.app.denials();
            assert_eq!(denials.len(), 1, "the host reports the denial");
            assert_eq!(denials[0].component, component);
        }
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn a_component_reads_only_the_variables_mapped_to_it() {
    for (component, readable, unreadable) in [
        ("docstore", "cosmoskey", "patientapiprimarykey"),
        ("audit-api", "auditapiprimarykey", "subscriptions"),
        ("patient-api", "auditapi", "auditapiprimarykey"),
        ("gateway", "subscriptions", "cosmoskey"),
    ] {
        let app = probe_as(component);
        assert_eq!(
            probe(&app, component, &format!("var={readable}")),
            "readable",
            "{component}"
        );
        assert_eq!(
            probe(&app, component, &format!("var={unreadable}")),
            "unreadable",
            "{component}"
        );
    }
}

/// The split deployment's probes call `GET /health` on patient-api and
/// audit-api in their own pods, without a host key: that one answer says
/// only that the instance runs; anything else still needs the key.
#[test]
#[cfg_attr(e2e_external, ignore = "calls private components directly")]
fn private_components_answer_liveness_and_nothing_else_without_a_host_key() {
    let app = TestApp::in_process(Start::default());
    let host = app.host.as_ref().unwrap();
    for component in ["patient-api", "audit-api"] {
        let alive = host.invoke(component, "GET", "/health", &[], b"");
        assert_eq!(alive.status, 200, "{component}: {}", alive.text());
        assert_eq!(alive.json(), serde_json::json!({"status": "ok"}));
        for (method, path) in [
            ("GET", "/health/ready"),
            ("POST", "/health"),
            ("GET", "/health/"),
            ("GET", "/audit/records"),
        ] {
            let refused = host.invoke(component, method, path, &[], b"");
            assert_eq!(refused.status, 401, "{component} {method} {path}");
        }
    }
}
