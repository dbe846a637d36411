//! The developer portal at `/portal/`: its files, the security headers on
//! every answer, 404 for anything that is not one of its files (traversal
//! included), 405 for methods other than GET and HEAD, and the contract's
//! examples it shows being accepted by the API. The browser test
//! (tests/portal/run) drives the page itself.

use std::io::{Read, Write};

use e2e::{repo_root, Reply, TestApp};
use serde_json::Value;

const FILES: [(&str, &str); 4] = [
    ("/portal/", "text/html; charset=utf-8"),
    ("/portal/portal.js", "text/javascript; charset=utf-8"),
    ("/portal/portal.css", "text/css; charset=utf-8"),
    ("/portal/favicon.svg", "image/svg+xml"),
];

/// The headers every portal answer carries, whatever its status.
fn assert_secured(reply: &Reply, what: &str) {
    let csp = reply
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for expected in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(
            directives.contains(&expected),
            "{what}: {expected} in {csp}"
        );
    }
    for loose in [
        "'unsafe-inline'",
        "'unsafe-eval'",
        "data:",
        "http:",
        "https:",
        "*",
    ] {
        assert!(!csp.contains(loose), "{what}: {loose} in {csp}");
    }
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        reply.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
    assert!(reply.header("set-cookie").is_none(), "{what}");
}

fn assert_not_found(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(reply.json()["status"], 404, "{what}");
    assert_secured(reply, what);
}

#[test]
fn the_page_and_its_files_are_served_publicly_with_the_security_headers() {
    let app = TestApp::start();
    for (path, content_type) in FILES {
        let reply = app.get(path, &[]);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert!(!reply.body.is_empty(), "{path}");
        assert_secured(&reply, path);
    }
    let page = app.get("/portal/", &[]).text();
    for (path, _) in &FILES[1..] {
        let name = path.trim_start_matches("/portal/");
        assert!(
            page.contains(&format!("\"{name}\"")),
            "the page loads {name}"
        );
    }
    assert!(!page.contains("<style"), "no inline style");
    for script in page.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src=\""),
            "no inline script"
        );
    }
    // The page reads the contract from the gateway: one copy of it.
    let script = app.get("/portal/portal.js", &[]).text();
    assert!(script.contains("fetch('/openapi.json'"));
    for forbidden in [
        "localStorage",
        "sessionStorage",
        "document.cookie",
        "innerHTML",
    ] {
        assert!(!script.contains(forbidden), "portal.js uses {forbidden}");
    }
}

#[test]
fn head_answers_like_get_without_a_body() {
    let app = TestApp::start();
    for (path, content_type) in FILES {
        let reply = app.send("HEAD", path, &[], None);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert!(reply.body.is_empty(), "{path}");
        assert_secured(&reply, path);
    }
}

/// One request on a fresh connection, as raw bytes (no client that
/// follows redirects or normalises paths); the whole response as text.
fn raw_get(app: &TestApp, target: &str) -> String {
    let address = app.base_url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn the_mount_without_its_slash_redirects_to_the_page() {
    let app = TestApp::start();
    let response = raw_get(&app, "/portal").to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 308"), "{response}");
    assert!(
        response.contains("\r\nlocation: /portal/\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\ncontent-security-policy: default-src 'none';"));
    assert!(response.contains("\r\nx-content-type-options: nosniff\r\n"));
}

#[test]
fn unknown_portal_paths_are_not_found() {
    let app = TestApp::start();
    for path in [
        "/portal/nope",
        "/portal/index.htm",
        "/portal/Portal.js",
        "/portal/portal.js.map",
        "/portal/portal.js/",
        "/portal/openapi.json",
        "/portal/src/lib.rs",
        "/portal/assets/portal.js",
        "/portal/Cargo.toml",
        "/portal//portal.js",
    ] {
        assert_not_found(&app.get(path, &[]), path);
    }
    // The query is not part of the name: this is the page itself.
    assert_eq!(app.get("/portal/?x=1", &[]).status, 200);
}

#[test]
fn no_path_leaves_the_bundled_files() {
    let app = TestApp::start();
    for path in [
        "/portal/../openapi.json",
        "/portal/./portal.js",
        "/portal/x/../portal.js",
        "/portal/../../spin.toml",
        "/portal/%2e%2e/openapi.json",
        "/portal/%2E%2E/%2E%2E/spin.toml",
        "/portal/%2e%2e%2fspin.toml",
        "/portal/..%2fCargo.toml",
        "/portal/..%5cspin.toml",
        "/portal/%5c..%5cspin.toml",
        "/portal/portal%2ejs",
        "/portal/portal.js%00",
        "/portal/%00",
    ] {
        assert_not_found(&app.get(path, &[]), path);
    }
    // Raw bytes no client would send (a backslash, a dot segment the client
    // cannot normalise away): what the server does with the bytes as sent.
    for target in [
        "/portal/..\\spin.toml",
        "/portal/\\..\\..\\spin.toml",
        "/portal/../openapi.json",
    ] {
        let response = raw_get(&app, target);
        let status = response.split(' ').nth(1).unwrap_or_default();
        // 404 from the portal, or 400 if the server refuses the bytes first.
        assert!(status == "404" || status == "400", "{target}: {response}");
        assert!(!response.contains("\"openapi\""), "{target}");
        assert!(!response.contains("spin_manifest_version"), "{target}");
    }
}

#[test]
fn methods_other_than_get_and_head_are_405_with_allow() {
    let app = TestApp::start();
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for path in ["/portal/", "/portal/portal.js", "/portal"] {
            let what = format!("{method} {path}");
            let reply = app.send(method, path, &[], Some(b"{}"));
            assert_eq!(reply.status, 405, "{what}");
            assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{what}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
            assert_secured(&reply, &what);
        }
    }
    // An unknown path is 404 whatever the method, as at the gateway.
    assert_not_found(
        &app.send("DELETE", "/portal/nope", &[], None),
        "DELETE /portal/nope",
    );
}

#[test]
fn the_gateway_keeps_every_other_path() {
    let app = TestApp::start();
    // Longest route wins: /portalx and /portal.js are the gateway's (404,
    // without the portal's headers); /openapi.json is still the gateway's.
    for path in ["/portalx", "/portal.js", "/Portal/"] {
        let reply = app.get(path, &[]);
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.header("content-security-policy").is_none(), "{path}");
    }
    assert_eq!(app.get("/openapi.json", &[]).status, 200);
    // The route table itself is visible only in the in-process host.
    if let Some(host) = &app.host {
        let routes = host.app.public_routes();
        assert!(routes.contains(&("/portal/...".to_string(), "portal".to_string())));
        assert!(routes.contains(&("/...".to_string(), "gateway".to_string())));
    }
}

/// The request-body example of an operation in the gateway's document.
fn example(doc: &Value, path: &str, method: &str) -> Value {
    let media = &doc["paths"][path][method]["requestBody"]["content"]["application/json"];
    let (_, first) = media["examples"]
        .as_object()
        .and_then(|m| m.iter().next())
        .unwrap_or_else(|| panic!("{method} {path} has an example"));
    let pointer = first["$ref"].as_str().expect("a shared example");
    doc.pointer(pointer.trim_start_matches('#')).unwrap()["value"].clone()
}

#[test]
fn the_examples_the_portal_shows_are_accepted_by_the_api() {
    let text =
        std::fs::read_to_string(repo_root().join("components/gateway/openapi.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let app = TestApp::start();
    let patient = example(&doc, "/patient", "post");
    let created = app.call("admin", "POST", "/patient", Some(&patient));
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(created.json()["firstName"], patient["firstName"]);

    let test = example(&doc, "/patient/{patientId}/tests", "post");
    let stored = app.call(
        "admin",
        "POST",
        &format!("/patient/{id}/tests"),
        Some(&test),
    );
    assert_eq!(stored.status, 201, "{}", stored.text());
    assert_eq!(stored.json()["patientId"], id.as_str());

    let criteria = example(&doc, "/patient/search", "post");
    let found = app.call("admin", "POST", "/patient/search", Some(&criteria));
    assert_eq!(found.status, 200, "{}", found.text());
    assert!(found
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == id.as_str()));
}
