//! How responses leave on the wire. Spin does not set TCP_NODELAY, so a
//! response written in two pieces (headers, then a body the component had
//! not written yet) can stall a kept-alive client for a delayed ACK
//! (docs/architecture.md). Every component hands its response over with the body
//! already written and finished (component_kit::respond), which shows on the
//! wire as a Content-Length instead of chunked framing.
//!
//! It is also where Spin itself answers, or refuses to, before any component
//! runs (docs/architecture.md, "Spin behaviours"): these tests speak raw
//! HTTP/1.1 on loopback, since a client library would not send such bytes.

use std::io::{Read, Write};

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

/// One response as it came off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `request` as raw bytes on a fresh connection; every byte the app sent
/// back until it closed the connection. The last request in `request`
/// carries `connection: close`, so the app closes once it has answered.
fn exchange(app: &TestApp, request: &[u8]) -> Vec<u8> {
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    // Only a guard against a hung test, never part of what is asserted.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            // A close with unread input arrives as a reset: still the end.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer: {e} (after {received:?})"),
        }
    }
    received
}

/// The responses in `bytes`, in order; each must carry a Content-Length.
fn responses(mut bytes: &[u8]) -> Vec<Raw> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (k, v) = line.split_once(':').expect("header line");
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut raw = Raw {
            status,
            headers,
            body: Vec::new(),
        };
        let length: usize = raw
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("a response without content-length: {head}"));
        let rest = &bytes[end + 4..];
        raw.body = rest[..length].to_vec();
        bytes = &rest[length..];
        out.push(raw);
    }
    out
}

/// Component instances started so far (in process only; an external app
/// has no such count, and `None` skips the check).
fn instances(app: &TestApp) -> Option<u64> {
    app.host.as_ref().map(|host| host.app.costs().instances)
}

#[test]
fn a_header_value_that_is_not_utf8_is_a_500_from_spin_before_any_component_runs() {
    let app = TestApp::start();
    let address = app.base_url.trim_start_matches("http://").to_string();
    let key = app.key("reader").to_string();
    let get = |path: &str, header: &[u8]| {
        let mut request =
            format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n").into_bytes();
        request.extend_from_slice(header);
        request.extend_from_slice(b"\r\n\r\n");
        let answers = responses(&exchange(&app, &request));
        assert_eq!(answers.len(), 1, "{answers:?}");
        answers.into_iter().next().unwrap()
    };

    // UTF-8 beyond ASCII is passed on: the gateway answers.
    let passed = get("/health", "x-note: caf\u{e9}".as_bytes());
    assert_eq!(passed.status, 200, "{passed:?}");

    let before = instances(&app);
    let mut bad_key = format!("ocp-apim-subscription-key: {key}").into_bytes();
    bad_key.push(0xff);
    for (path, header) in [
        ("/health", b"x-note: caf\xe9".to_vec()),
        ("/patient/00000000-0000-4000-8000-000000000000", bad_key),
    ] {
        let refused = get(path, &header);
        assert_eq!(refused.status, 500, "{path}: {refused:?}");
        assert!(refused.body.is_empty(), "{path}: {refused:?}");
        assert_eq!(refused.header("content-type"), None, "{path}");
    }
    assert_eq!(instances(&app), before, "no component may have run");
}

#[test]
fn a_spin_internal_host_from_outside_gets_no_answer() {
    let app = TestApp::start();
    let before = instances(&app);
    let silent = |head: String| {
        let received = exchange(&app, head.as_bytes());
        assert!(
            received.is_empty(),
            "{head:?} was answered: {}",
            String::from_utf8_lossy(&received)
        );
    };
    for host in [
        "patient-api.spin.internal",
        "audit-api.spin.internal:80",
        "gateway.spin.internal",
        "nosuch.spin.internal",
    ] {
        for path in [
            "/health",
            "/patient/00000000-0000-4000-8000-000000000000",
            "/portal/",
        ] {
            silent(format!(
                "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
            ));
        }
    }
    // The same happens to a request that names no authority at all.
    silent("GET /health HTTP/1.1\r\nconnection: close\r\n\r\n".to_string());
    assert_eq!(instances(&app), before, "no component may have run");

    // Only `<one label>.spin.internal` is a chaining host to Spin: a deeper
    // name is an ordinary Host, and the gateway answers it.
    let answered = responses(&exchange(
        &app,
        b"GET /health HTTP/1.1\r\nhost: x.patient-api.spin.internal\r\nconnection: close\r\n\r\n",
    ));
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].status, 200, "{answered:?}");
}

#[test]
fn content_length_beside_chunked_is_ignored_and_a_request_hidden_behind_it_is_answered() {
    // Spin's hyper (before 1.11) frames such a request by its chunked body
    // and keeps the connection open (tests/host/Cargo.toml): whatever the
    // Content-Length claimed beyond it is read as the next request.
    let app = TestApp::start();
    let address = app.base_url.trim_start_matches("http://").to_string();
    let hidden = format!("GET /health HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    // The chunked body ends at once; Content-Length claims the hidden
    // request as body as well.
    let body = format!("0\r\n\r\n{hidden}");
    let length = format!("content-length: {}", body.len());
    let chunked = "transfer-encoding: chunked".to_string();
    for (first, second) in [(&length, &chunked), (&chunked, &length)] {
        let request = format!(
            "POST /patient HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
             {first}\r\n{second}\r\n\r\n{body}"
        );
        let answers = responses(&exchange(&app, request.as_bytes()));
        assert_eq!(answers.len(), 2, "{first}, then {second}: {answers:?}");
        // No credentials: the gateway's 401 to the POST, with an empty body.
        assert_eq!(answers[0].status, 401, "{answers:?}");
        assert_ne!(
            answers[0].header("connection"),
            Some("close"),
            "{answers:?}"
        );
        // Then the hidden request, as the next one on the connection.
        assert_eq!(answers[1].status, 200, "{answers:?}");
        assert_eq!(answers[1].body, br#"{"status":"ok"}"#, "{answers:?}");
    }
}
