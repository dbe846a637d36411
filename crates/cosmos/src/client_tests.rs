use super::*;
use crate::testing::*;
use proptest::prelude::*;
use serde_json::json;

const ETAG: &str = "\"00000a00-0000-0000-0000-000000000001\"";

fn container() -> ContainerRef {
    ContainerRef::new("patients", "Patients").unwrap()
}

fn pk() -> PartitionKey {
    PartitionKey::string("p-1")
}

fn id() -> DocumentId {
    DocumentId::new("doc 1").unwrap()
}

fn client<'t, 'a>(
    transport: &'t FakeTransport<'a>,
    clock: &'t FakeClock,
) -> CosmosClient<&'t FakeTransport<'a>, &'t FakeClock> {
    CosmosClient::new(&format!("{BASE}/"), key(), transport, clock).unwrap()
}

fn stored(doc: &Value) -> String {
    let mut body = doc.clone();
    let extra = json!({"_rid": "abc==", "_self": "dbs/x/colls/y/docs/abc==/", "_etag": ETAG, "_ts": 1795000000, "_attachments": "attachments/"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

fn ok_doc(doc: &Value) -> Result<HttpResponse, TransportError> {
    response(200, &[("etag", ETAG)], &stored(doc))
}

fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request.header(name)
}

// ---- signing and headers ---------------------------------------------------

/// Every request carries the protocol headers and a signature the store accepts.
fn assert_signed(request: &HttpRequest) {
    assert_eq!(
        header(request, "x-ms-date"),
        Some(cosmos_auth::http_date(NOW).as_str())
    );
    assert_eq!(header(request, "x-ms-version"), Some("2018-12-31"));
    assert_eq!(server_verify(request, &key()), Ok(()), "{request:?}");
}

#[test]
fn every_operation_is_signed_for_the_resource_it_names() {
    let doc = json!({"id": "doc 1", "name": "x"});
    let transport = FakeTransport::scripted(vec![
        response(200, &[], r#"{"id":"acct","writableLocations":[]}"#),
        response(201, &[("etag", ETAG)], &stored(&doc)),
        ok_doc(&doc),
        ok_doc(&doc),
        status(204),
        response(200, &[], r#"{"_rid":"r","Documents":[],"_count":0}"#),
    ]);
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    c.database_account().unwrap();
    c.create_document(&container(), &pk(), &doc).unwrap();
    c.read_document(&container(), &pk(), &id()).unwrap();
    c.replace_document(&container(), &pk(), &id(), &doc, None)
        .unwrap();
    c.delete_document(&container(), &pk(), &id()).unwrap();
    let q = Query::new("SELECT * FROM c").unwrap();
    c.query_documents(
        &container(),
        &q,
        QueryScope::CrossPartition,
        PageRequest::default(),
    )
    .unwrap();

    let requests = transport.requests();
    let seen: Vec<(Method, &str, String, String)> = requests
        .iter()
        .map(|r| {
            assert_signed(r);
            let view = server_view(r);
            (
                r.method,
                r.url.strip_prefix(BASE).unwrap(),
                view.resource_type,
                view.link,
            )
        })
        .collect();
    let feed = "dbs/patients/colls/Patients".to_string();
    let item = "dbs/patients/colls/Patients/docs/doc 1".to_string();
    assert_eq!(
        seen,
        vec![
            (Method::Get, "/", String::new(), String::new()),
            (
                Method::Post,
                "/dbs/patients/colls/Patients/docs",
                "docs".into(),
                feed.clone()
            ),
            (
                Method::Get,
                "/dbs/patients/colls/Patients/docs/doc%201",
                "docs".into(),
                item.clone()
            ),
            (
                Method::Put,
                "/dbs/patients/colls/Patients/docs/doc%201",
                "docs".into(),
                item.clone()
            ),
            (
                Method::Delete,
                "/dbs/patients/colls/Patients/docs/doc%201",
                "docs".into(),
                item
            ),
            (
                Method::Post,
                "/dbs/patients/colls/Patients/docs",
                "docs".into(),
                feed
            ),
        ]
    );
    // Document operations carry the partition key; the account read does not.
    assert_eq!(header(&requests[0], "x-ms-documentdb-partitionkey"), None);
    for r in &requests[1..5] {
        assert_eq!(
            header(r, "x-ms-documentdb-partitionkey"),
            Some(r#"["p-1"]"#)
        );
    }
    // Bodies are JSON documents (create, replace); reads and deletes send none.
    for (i, content_type) in [
        (1, Some("application/json")),
        (2, None),
        (3, Some("application/json")),
        (4, None),
    ] {
        assert_eq!(header(&requests[i], "content-type"), content_type);
    }
    assert_eq!(
        serde_json::from_slice::<Value>(&requests[1].body).unwrap(),
        doc
    );
}

#[test]
fn a_wrong_key_or_stale_date_does_not_verify() {
    // Guards the verifier used above: it must be able to fail.
    let transport = FakeTransport::scripted(vec![ok_doc(&json!({"id": "doc 1"}))]);
    let clock = FakeClock::new();
    let other_key = MasterKey::from_base64("b3RoZXIga2V5").unwrap();
    CosmosClient::new(BASE, other_key, &transport, &clock)
        .unwrap()
        .read_document(&container(), &pk(), &id())
        .unwrap();
    let request = &transport.requests()[0];
    assert_eq!(
        server_verify(request, &key()),
        Err(cosmos_auth::AuthError::SignatureMismatch)
    );

    let transport = FakeTransport::scripted(vec![ok_doc(&json!({"id": "doc 1"}))]);
    let stale = FakeClock {
        unix_seconds: NOW - 3600,
        ..FakeClock::new()
    };
    client(&transport, &stale)
        .read_document(&container(), &pk(), &id())
        .unwrap();
    assert_eq!(
        server_verify(&transport.requests()[0], &key()),
        Err(cosmos_auth::AuthError::DateOutOfRange)
    );
}

fn name() -> impl Strategy<Value = String> {
    // Anything Cosmos allows: unicode, spaces, '%', '+', quotes; never / \ ? #.
    "[^/\\\\?#]{0,20}[^/\\\\?# ]"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn what_the_client_signs_the_server_verifies(db in name(), coll in name(), doc_id in "[^/\\\\?#]{1,40}") {
        let c = ContainerRef::new(db.clone(), coll.clone()).unwrap();
        let id = DocumentId::new(doc_id.clone()).unwrap();
        let doc = json!({"id": doc_id});
        let transport = FakeTransport::with(|_| ok_doc(&doc));
        let clock = FakeClock::new();
        let cl = client(&transport, &clock);
        cl.read_document(&c, &pk(), &id).unwrap();
        cl.replace_document(&c, &pk(), &id, &doc, None).unwrap();
        cl.create_document(&c, &pk(), &doc).unwrap();
        cl.delete_document(&c, &pk(), &id).unwrap();
        for request in transport.requests() {
            prop_assert_eq!(server_verify(&request, &key()), Ok(()));
            // The URL decodes back to exactly the names given.
            let view = server_view(&request);
            prop_assert_eq!(&view.segments[..4], &["dbs".to_string(), db.clone(), "colls".to_string(), coll.clone()]);
            if request.method != Method::Post {
                prop_assert_eq!(&view.segments[5], &doc_id);
            }
        }
    }
}

// ---- status mapping ----------------------------------------------------------

#[test]
fn statuses_map_to_errors() {
    let cases: Vec<(Result<HttpResponse, TransportError>, CosmosError)> = vec![
        (status(404), CosmosError::NotFound),
        (status(409), CosmosError::Conflict),
        (status(412), CosmosError::PreconditionFailed),
        (status(401), CosmosError::Unauthorized),
        (status(403), CosmosError::Forbidden),
        (status(413), CosmosError::TooLarge),
        (
            response(
                400,
                &[],
                r#"{"code":"BadRequest","message":"Message: bad\r\nActivityId: 1"}"#,
            ),
            CosmosError::BadRequest {
                message: "Message: bad  ActivityId: 1".into(),
            },
        ),
        (
            response(400, &[], "not json"),
            CosmosError::BadRequest {
                message: "no message".into(),
            },
        ),
        (
            status(408),
            CosmosError::Unavailable {
                reason: "the store answered 408".into(),
            },
        ),
        (
            status(500),
            CosmosError::Unavailable {
                reason: "the store answered 500".into(),
            },
        ),
        (
            status(503),
            CosmosError::Unavailable {
                reason: "the store answered 503".into(),
            },
        ),
        (
            status(501),
            CosmosError::Unavailable {
                reason: "the store answered 501".into(),
            },
        ),
        (
            Err(TransportError::Timeout),
            CosmosError::Unavailable {
                reason: "the request timed out".into(),
            },
        ),
        (
            Err(TransportError::Connect("refused".into())),
            CosmosError::Unavailable {
                reason: "connection failed: refused".into(),
            },
        ),
        (
            Err(TransportError::Denied),
            CosmosError::Unavailable {
                reason: "the outbound request was denied (host not allowed)".into(),
            },
        ),
        (
            response(429, &[("x-ms-retry-after-ms", "250")], ""),
            CosmosError::Throttled {
                retry_after: Duration::from_millis(250),
            },
        ),
        (
            status(418),
            CosmosError::Protocol("unexpected status 418".into()),
        ),
        (
            status(302),
            CosmosError::Protocol("unexpected status 302".into()),
        ),
    ];
    for (answer, expected) in cases {
        let transport = FakeTransport::scripted(vec![answer]);
        let clock = FakeClock::new();
        let result = client(&transport, &clock)
            .with_retry_policy(RetryPolicy::no_retries())
            .read_document(&container(), &pk(), &id());
        assert_eq!(result, Err(expected));
    }
}

#[test]
fn bad_request_messages_are_truncated() {
    let long = "x".repeat(1000);
    let transport = FakeTransport::scripted(vec![response(
        400,
        &[],
        &json!({"code": "BadRequest", "message": long}).to_string(),
    )]);
    let clock = FakeClock::new();
    match client(&transport, &clock).read_document(&container(), &pk(), &id()) {
        Err(CosmosError::BadRequest { message }) => assert_eq!(message.chars().count(), 300),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_do_not_echo_response_bodies() {
    let secret = "Jane Doe 1970-01-01";
    for answer in [
        response(500, &[], secret),
        response(200, &[], secret),
        response(418, &[], secret),
    ] {
        let transport = FakeTransport::scripted(vec![answer]);
        let clock = FakeClock::new();
        let error = client(&transport, &clock)
            .with_retry_policy(RetryPolicy::no_retries())
            .read_document(&container(), &pk(), &id())
            .unwrap_err();
        assert!(!format!("{error} {error:?}").contains("Jane"), "{error:?}");
    }
}

#[test]
fn client_errors_are_not_retried() {
    for code in [400, 401, 403, 404, 409, 412, 413, 418] {
        let transport = FakeTransport::with(|_| status(code));
        let clock = FakeClock::new();
        let _ = client(&transport, &clock).read_document(&container(), &pk(), &id());
        assert_eq!(transport.count(), 1, "status {code}");
        assert!(clock.sleeps_ms().is_empty());
    }
    let transport = FakeTransport::with(|_| Err(TransportError::Denied));
    let clock = FakeClock::new();
    let _ = client(&transport, &clock).read_document(&container(), &pk(), &id());
    assert_eq!(transport.count(), 1);
}

// ---- retries -----------------------------------------------------------------

#[test]
fn throttling_waits_the_servers_retry_after() {
    let doc = json!({"id": "doc 1"});
    let transport = FakeTransport::scripted(vec![
        response(429, &[("x-ms-retry-after-ms", "120")], ""),
        response(429, &[("x-ms-retry-after-ms", "7.5")], ""),
        ok_doc(&doc),
    ]);
    let clock = FakeClock::new();
    let read = client(&transport, &clock)
        .read_document(&container(), &pk(), &id())
        .unwrap();
    assert_eq!(read.body["id"], "doc 1");
    assert_eq!(clock.sleeps_ms(), vec![120, 8]);
    // Each retry is dated and signed afresh.
    transport.requests().iter().for_each(assert_signed);
}

#[test]
fn throttle_waits_are_capped_and_missing_hints_back_off() {
    let transport = FakeTransport::scripted(vec![
        response(429, &[("x-ms-retry-after-ms", "60000")], ""),
        status(429),
        ok_doc(&json!({"id": "doc 1"})),
    ]);
    let clock = FakeClock::new(); // jitter 0.5
    client(&transport, &clock)
        .read_document(&container(), &pk(), &id())
        .unwrap();
    // Capped at 1 s; then no hint: backoff for attempt 2 = 0.5 * 100 ms.
    assert_eq!(clock.sleeps_ms(), vec![1000, 50]);
}

#[test]
fn transient_failures_back_off_exponentially_up_to_the_cap() {
    let transport = FakeTransport::with(|_| status(503));
    let clock = FakeClock::new();
    clock.jitter.set(0.5);
    let policy = RetryPolicy {
        max_attempts: 9,
        ..RetryPolicy::default()
    };
    let result = client(&transport, &clock)
        .with_retry_policy(policy)
        .read_document(&container(), &pk(), &id());
    assert_eq!(
        result,
        Err(CosmosError::Unavailable {
            reason: "the store answered 503".into()
        })
    );
    assert_eq!(transport.count(), 9);
    // Half of 50, 100, 200, 400, 800, then the 1 s cap.
    assert_eq!(
        clock.sleeps_ms(),
        vec![25, 50, 100, 200, 400, 500, 500, 500]
    );
}

#[test]
fn full_jitter_spans_zero_to_the_ceiling() {
    for (jitter, expected) in [(0.0, vec![0, 0]), (0.999, vec![49, 99])] {
        let transport = FakeTransport::scripted(vec![
            Err(TransportError::Timeout),
            status(502),
            ok_doc(&json!({"id": "doc 1"})),
        ]);
        let clock = FakeClock::new();
        clock.jitter.set(jitter);
        client(&transport, &clock)
            .read_document(&container(), &pk(), &id())
            .unwrap();
        assert_eq!(clock.sleeps_ms(), expected);
    }
}

#[test]
fn default_policy_stops_after_five_attempts() {
    let transport = FakeTransport::with(|_| Err(TransportError::Connect("reset".into())));
    let clock = FakeClock::new();
    let result = client(&transport, &clock).read_document(&container(), &pk(), &id());
    assert!(matches!(result, Err(CosmosError::Unavailable { .. })));
    assert_eq!(transport.count(), 5);
    assert_eq!(clock.sleeps.borrow().len(), 4);
}

#[test]
fn throttling_stops_at_the_time_budget() {
    let transport = FakeTransport::with(|_| response(429, &[("x-ms-retry-after-ms", "1500")], ""));
    let clock = FakeClock::new();
    let policy = RetryPolicy {
        max_attempts: 100,
        ..RetryPolicy::default()
    };
    let result = client(&transport, &clock)
        .with_retry_policy(policy)
        .read_document(&container(), &pk(), &id());
    // Waits of 1 s (capped): five fit into 5 s, a sixth would not.
    assert_eq!(
        result,
        Err(CosmosError::Throttled {
            retry_after: Duration::from_millis(1500)
        })
    );
    assert_eq!(clock.sleeps_ms(), vec![1000; 5]);
    assert_eq!(transport.count(), 6);
}

#[test]
fn the_budget_counts_time_spent_in_requests() {
    let clock = FakeClock::new();
    let transport = FakeTransport::with(|_| {
        clock.advance(2000); // each attempt times out after 2 s
        Err(TransportError::Timeout)
    });
    let result = client(&transport, &clock).read_document(&container(), &pk(), &id());
    assert_eq!(
        result,
        Err(CosmosError::Unavailable {
            reason: "the request timed out".into()
        })
    );
    // 2000 + 25, 4025 + 50, then 6075 + 100 > 5000: stop.
    assert_eq!(clock.sleeps_ms(), vec![25, 50]);
    assert_eq!(transport.count(), 3);
}

// ---- ambiguous writes ---------------------------------------------------------

#[test]
fn retried_create_that_finds_its_own_document_succeeds() {
    let doc = json!({"id": "doc 1", "n": 1.0, "tags": ["a", {"b": 2}]});
    // The store may hand back 1.0 as 1; the content is still ours.
    let as_stored = json!({"id": "doc 1", "n": 1, "tags": ["a", {"b": 2}]});
    for first in [status(503), Err(TransportError::Timeout), status(408)] {
        let transport = FakeTransport::scripted(vec![first, status(409), ok_doc(&as_stored)]);
        let clock = FakeClock::new();
        let created = client(&transport, &clock)
            .create_document(&container(), &pk(), &doc)
            .unwrap();
        assert_eq!(created.etag.as_str(), ETAG);
        assert_eq!(created.body["_rid"], "abc==");
        let requests = transport.requests();
        let methods: Vec<Method> = requests.iter().map(|r| r.method).collect();
        assert_eq!(methods, vec![Method::Post, Method::Post, Method::Get]);
        assert_eq!(
            server_view(&requests[2]).link,
            "dbs/patients/colls/Patients/docs/doc 1"
        );
        assert_eq!(
            header(&requests[2], "x-ms-documentdb-partitionkey"),
            Some(r#"["p-1"]"#)
        );
        assert_signed(&requests[2]);
    }
}

#[test]
fn retried_create_that_finds_other_content_is_a_conflict() {
    let doc = json!({"id": "doc 1", "name": "ours"});
    let transport = FakeTransport::scripted(vec![
        status(500),
        status(409),
        ok_doc(&json!({"id": "doc 1", "name": "theirs"})),
    ]);
    let clock = FakeClock::new();
    assert_eq!(
        client(&transport, &clock).create_document(&container(), &pk(), &doc),
        Err(CosmosError::Conflict)
    );
    assert_eq!(transport.count(), 3);

    // An extra property is different content too.
    let transport = FakeTransport::scripted(vec![
        status(500),
        status(409),
        ok_doc(&json!({"id": "doc 1", "name": "ours", "more": true})),
    ]);
    assert_eq!(
        client(&transport, &clock).create_document(&container(), &pk(), &doc),
        Err(CosmosError::Conflict)
    );
}

#[test]
fn first_attempt_conflicts_are_conflicts_without_a_read() {
    let doc = json!({"id": "doc 1"});
    let transport = FakeTransport::scripted(vec![status(409)]);
    let clock = FakeClock::new();
    assert_eq!(
        client(&transport, &clock).create_document(&container(), &pk(), &doc),
        Err(CosmosError::Conflict)
    );
    assert_eq!(transport.count(), 1);

    // Throttled attempts were not executed: no ambiguity, no read-back.
    let transport = FakeTransport::scripted(vec![status(429), status(409)]);
    assert_eq!(
        client(&transport, &clock).create_document(&container(), &pk(), &doc),
        Err(CosmosError::Conflict)
    );
    assert_eq!(transport.count(), 2);
}

#[test]
fn a_failed_read_back_reports_the_unknown_outcome() {
    let doc = json!({"id": "doc 1"});
    let transport = FakeTransport::scripted(vec![status(503), status(409), status(403)]);
    let clock = FakeClock::new();
    assert_eq!(
        client(&transport, &clock).create_document(&container(), &pk(), &doc),
        Err(CosmosError::Forbidden)
    );
    // Gone again by the time we look: a conflict we cannot claim as ours.
    let transport = FakeTransport::scripted(vec![status(503), status(409), status(404)]);
    assert_eq!(
        client(&transport, &clock).create_document(&container(), &pk(), &doc),
        Err(CosmosError::Conflict)
    );
}

#[test]
fn retried_conditional_replace_checks_for_its_own_write() {
    let doc = json!({"id": "doc 1", "v": 2});
    let old = ETag::new("\"old\"").unwrap();
    let transport = FakeTransport::scripted(vec![
        Err(TransportError::Timeout),
        status(412),
        ok_doc(&doc),
    ]);
    let clock = FakeClock::new();
    let replaced = client(&transport, &clock)
        .replace_document(&container(), &pk(), &id(), &doc, Some(&old))
        .unwrap();
    assert_eq!(replaced.etag.as_str(), ETAG);
    assert_eq!(
        header(&transport.requests()[1], "if-match"),
        Some("\"old\"")
    );

    let transport = FakeTransport::scripted(vec![
        Err(TransportError::Timeout),
        status(412),
        ok_doc(&json!({"id": "doc 1", "v": 3})),
    ]);
    let result =
        client(&transport, &clock).replace_document(&container(), &pk(), &id(), &doc, Some(&old));
    assert_eq!(result, Err(CosmosError::PreconditionFailed));

    let transport = FakeTransport::scripted(vec![status(412)]);
    let result =
        client(&transport, &clock).replace_document(&container(), &pk(), &id(), &doc, Some(&old));
    assert_eq!(result, Err(CosmosError::PreconditionFailed));
    assert_eq!(transport.count(), 1);
}

#[test]
fn retried_delete_that_finds_nothing_succeeded() {
    let transport = FakeTransport::scripted(vec![status(502), status(404)]);
    let clock = FakeClock::new();
    assert_eq!(
        client(&transport, &clock).delete_document(&container(), &pk(), &id()),
        Ok(())
    );
    let transport = FakeTransport::scripted(vec![status(404)]);
    assert_eq!(
        client(&transport, &clock).delete_document(&container(), &pk(), &id()),
        Err(CosmosError::NotFound)
    );
}

// ---- documents -----------------------------------------------------------------

#[test]
fn replace_sends_if_match_only_when_given() {
    let doc = json!({"id": "doc 1"});
    let transport = FakeTransport::with(|_| ok_doc(&doc));
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    c.replace_document(&container(), &pk(), &id(), &doc, None)
        .unwrap();
    c.replace_document(
        &container(),
        &pk(),
        &id(),
        &doc,
        Some(&ETag::new(ETAG).unwrap()),
    )
    .unwrap();
    let requests = transport.requests();
    assert_eq!(header(&requests[0], "if-match"), None);
    assert_eq!(header(&requests[1], "if-match"), Some(ETAG));
}

#[test]
fn etag_comes_from_the_header_then_the_body() {
    let clock = FakeClock::new();
    let transport = FakeTransport::scripted(vec![response(
        200,
        &[("ETag", "\"h\"")],
        r#"{"id":"doc 1","_etag":"\"b\""}"#,
    )]);
    assert_eq!(
        client(&transport, &clock)
            .read_document(&container(), &pk(), &id())
            .unwrap()
            .etag
            .as_str(),
        "\"h\""
    );
    let transport = FakeTransport::scripted(vec![response(
        200,
        &[],
        r#"{"id":"doc 1","_etag":"\"b\""}"#,
    )]);
    assert_eq!(
        client(&transport, &clock)
            .read_document(&container(), &pk(), &id())
            .unwrap()
            .etag
            .as_str(),
        "\"b\""
    );
    let transport = FakeTransport::scripted(vec![response(200, &[], r#"{"id":"doc 1"}"#)]);
    assert_eq!(
        client(&transport, &clock).read_document(&container(), &pk(), &id()),
        Err(CosmosError::Protocol("the response has no etag".into()))
    );
}

#[test]
fn partition_keys_go_out_as_json_arrays() {
    let doc = json!({"id": "doc 1"});
    let transport = FakeTransport::with(|_| ok_doc(&doc));
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    c.read_document(&container(), &PartitionKey::string("Zoë \"x\""), &id())
        .unwrap();
    c.read_document(&container(), &PartitionKey::integer(-7), &id())
        .unwrap();
    c.read_document(&container(), &PartitionKey::number(2.5).unwrap(), &id())
        .unwrap();
    let values: Vec<String> = transport
        .requests()
        .iter()
        .map(|r| {
            header(r, "x-ms-documentdb-partitionkey")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(values, vec![r#"["Zo\u00eb \"x\""]"#, "[-7]", "[2.5]"]);
}

#[test]
fn bad_input_is_rejected_before_any_request() {
    let transport = FakeTransport::scripted(vec![]);
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    let invalid = |e| Err(CosmosError::InvalidInput(e));
    assert_eq!(
        c.create_document(&container(), &pk(), &json!({"id": "a/b"})),
        invalid(InputError::ForbiddenCharacter {
            what: "document id",
            character: '/'
        })
    );
    assert_eq!(
        c.create_document(&container(), &pk(), &json!({"id": ""})),
        invalid(InputError::Empty {
            what: "document id"
        })
    );
    assert_eq!(
        c.create_document(&container(), &pk(), &json!({"name": "x"})),
        invalid(InputError::DocumentIdMissing)
    );
    assert_eq!(
        c.create_document(&container(), &pk(), &json!({"id": 5})),
        invalid(InputError::DocumentIdMissing)
    );
    assert_eq!(
        c.create_document(&container(), &pk(), &json!(["x"])),
        invalid(InputError::DocumentNotObject)
    );
    assert_eq!(
        c.replace_document(&container(), &pk(), &id(), &json!({"id": "other"}), None),
        invalid(InputError::DocumentIdMismatch)
    );
    let q = Query::new("SELECT * FROM c").unwrap();
    let page = PageRequest {
        max_item_count: Some(0),
        continuation: None,
    };
    assert_eq!(
        c.query_documents(&container(), &q, QueryScope::CrossPartition, page),
        Err(CosmosError::InvalidInput(InputError::ZeroMaxItemCount))
    );
    assert!(DocumentId::new("a?b").is_err());
    assert!(DocumentId::new("x".repeat(256)).is_err());
    assert_eq!(transport.count(), 0);
}

// ---- queries -----------------------------------------------------------------

#[test]
fn query_body_and_headers_follow_the_rest_protocol() {
    let transport = FakeTransport::scripted(vec![
        response(
            200,
            &[],
            r#"{"_rid":"r","Documents":[{"id":"a"},{"id":"b"}],"_count":2}"#,
        ),
        response(200, &[], r#"{"_rid":"r","Documents":[],"_count":0}"#),
    ]);
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    let q = Query::new("SELECT * FROM c WHERE c.lastName = @last AND c.age > @age")
        .unwrap()
        .with_parameter("@last", "O'Brien")
        .unwrap()
        .with_parameter("@age", 40)
        .unwrap();
    let page = c
        .query_documents(
            &container(),
            &q,
            QueryScope::Partition(pk()),
            PageRequest::default(),
        )
        .unwrap();
    assert_eq!(page.documents, vec![json!({"id": "a"}), json!({"id": "b"})]);
    assert_eq!(page.continuation, None);
    c.query_documents(
        &container(),
        &q,
        QueryScope::CrossPartition,
        PageRequest::default(),
    )
    .unwrap();

    let requests = transport.requests();
    for r in &requests {
        assert_signed(r);
        assert_eq!(r.method, Method::Post);
        assert_eq!(header(r, "content-type"), Some("application/query+json"));
        assert_eq!(header(r, "x-ms-documentdb-isquery"), Some("True"));
        assert_eq!(header(r, "x-ms-max-item-count"), None);
        assert_eq!(header(r, "x-ms-continuation"), None);
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({
                "query": "SELECT * FROM c WHERE c.lastName = @last AND c.age > @age",
                "parameters": [{"name": "@last", "value": "O'Brien"}, {"name": "@age", "value": 40}]
            })
        );
    }
    assert_eq!(
        header(&requests[0], "x-ms-documentdb-partitionkey"),
        Some(r#"["p-1"]"#)
    );
    assert_eq!(
        header(&requests[0], "x-ms-documentdb-query-enablecrosspartition"),
        None
    );
    assert_eq!(header(&requests[1], "x-ms-documentdb-partitionkey"), None);
    assert_eq!(
        header(&requests[1], "x-ms-documentdb-query-enablecrosspartition"),
        Some("True")
    );
}

#[test]
fn paging_passes_the_continuation_through() {
    let token = r#"{"token":"+RID:~abc#RT:1#TRC:2","range":{"min":"","max":"FF"}}"#;
    let transport = FakeTransport::scripted(vec![
        response(
            200,
            &[("x-ms-continuation", token)],
            r#"{"_rid":"r","Documents":[{"id":"a"}],"_count":1}"#,
        ),
        response(
            200,
            &[("x-ms-continuation", "")],
            r#"{"_rid":"r","Documents":[{"id":"b"}],"_count":1}"#,
        ),
    ]);
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    let q = Query::new("SELECT * FROM c").unwrap();
    let first = c
        .query_documents(
            &container(),
            &q,
            QueryScope::CrossPartition,
            PageRequest {
                max_item_count: Some(1),
                continuation: None,
            },
        )
        .unwrap();
    assert_eq!(first.continuation.as_deref(), Some(token));
    let second = c
        .query_documents(
            &container(),
            &q,
            QueryScope::CrossPartition,
            PageRequest {
                max_item_count: Some(1),
                continuation: first.continuation,
            },
        )
        .unwrap();
    assert_eq!(second.documents, vec![json!({"id": "b"})]);
    assert_eq!(
        second.continuation, None,
        "an empty continuation means no more pages"
    );
    let requests = transport.requests();
    assert_eq!(header(&requests[0], "x-ms-continuation"), None);
    assert_eq!(header(&requests[1], "x-ms-continuation"), Some(token));
    assert_eq!(header(&requests[1], "x-ms-max-item-count"), Some("1"));
}

#[test]
fn malformed_query_responses_are_protocol_errors() {
    for body in [r#"{"_rid":"r"}"#, r#"{"Documents":{}}"#, "[]", "nope"] {
        let transport = FakeTransport::scripted(vec![response(200, &[], body)]);
        let clock = FakeClock::new();
        let q = Query::new("SELECT * FROM c").unwrap();
        let result = client(&transport, &clock).query_documents(
            &container(),
            &q,
            QueryScope::CrossPartition,
            PageRequest::default(),
        );
        assert!(
            matches!(result, Err(CosmosError::Protocol(_))),
            "{body}: {result:?}"
        );
    }
}

// ---- configuration -------------------------------------------------------------

#[test]
fn endpoints_are_normalised_or_rejected() {
    for (given, base) in [
        (
            "https://acct.documents.azure.com:443/",
            "https://acct.documents.azure.com:443",
        ),
        (
            "http://docstore.spin.internal",
            "http://docstore.spin.internal",
        ),
        ("HTTP://localhost:8081/", "http://localhost:8081"),
        ("http://[::1]:8081", "http://[::1]:8081"),
        ("http://[::1]", "http://[::1]"),
    ] {
        assert_eq!(parse_endpoint(given).as_deref(), Ok(base), "{given}");
    }
    for bad in [
        "acct.documents.azure.com",
        "ftp://host",
        "https://",
        "https://host/dbs",
        "https://host?x=1",
        "https://user:pw@host",
        "https://host:0",
        "https://host:http",
        "https://ho st",
        "https://:443",
    ] {
        assert!(
            matches!(parse_endpoint(bad), Err(ConfigError::InvalidEndpoint(_))),
            "{bad}"
        );
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let transport = FakeTransport::scripted(vec![ok_doc(&json!({"id": "doc 1"}))]);
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    let shown = format!("{c:?}");
    assert!(
        !shown.contains(KEY_B64) && shown.contains("acct.documents.azure.com"),
        "{shown}"
    );
    c.read_document(&container(), &pk(), &id()).unwrap();
    let request = &transport.requests()[0];
    let auth = header(request, "authorization").unwrap();
    assert!(!format!("{request:?}").contains(auth));
}

// ---- bulk ------------------------------------------------------------------

#[test]
fn bulk_sends_every_first_attempt_together_and_answers_in_order() {
    let a = json!({"id": "a", "n": 1});
    let b = json!({"id": "b", "n": 2});
    let (ida, idb) = (DocumentId::new("a").unwrap(), DocumentId::new("b").unwrap());
    let transport = FakeTransport::with(|request| match (request.method, request.url.as_str()) {
        (Method::Post, _) => response(201, &[("etag", ETAG)], &stored(&a)),
        (Method::Get, url) if url.ends_with("/docs/b") => ok_doc(&b),
        (Method::Put, _) => response(200, &[("etag", ETAG)], &stored(&b)),
        _ => status(404),
    });
    let clock = FakeClock::new();
    let (c, pk) = (client(&transport, &clock), pk());
    let etag = ETag::new(ETAG).unwrap();
    let results = c.bulk(&[
        PointOperation::Create {
            container: &container(),
            pk: &pk,
            doc: &a,
        },
        PointOperation::Read {
            container: &container(),
            pk: &pk,
            id: &idb,
        },
        PointOperation::Read {
            container: &container(),
            pk: &pk,
            id: &ida,
        },
        PointOperation::Replace {
            container: &container(),
            pk: &pk,
            id: &idb,
            doc: &b,
            if_match: Some(&etag),
        },
    ]);
    assert_eq!(*transport.batches.borrow(), vec![4]);
    assert_eq!(results[0].as_ref().unwrap().body["n"], 1);
    assert_eq!(results[1].as_ref().unwrap().body["n"], 2);
    assert!(matches!(results[2], Err(CosmosError::NotFound)));
    assert_eq!(results[3].as_ref().unwrap().body["n"], 2);
    let sent = transport.requests();
    assert_eq!(sent.len(), 4, "no retries");
    sent.iter().for_each(assert_signed);
    assert_eq!(header(&sent[3], "If-Match"), Some(ETAG));
}

#[test]
fn bulk_finishes_each_operation_as_the_single_call_would() {
    // First attempts: a timeout (ambiguous), a 503, a 409. Then each alone:
    // the timed-out create is retried and gets 409, the 503 is retried and
    // succeeds, and the 409 after the timeout is resolved by reading back
    // (its own content: success); the first-attempt 409 stays a conflict.
    let docs = [json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})];
    let transport = FakeTransport::scripted(vec![
        Err(TransportError::Timeout),
        status(503),
        status(409),
        status(409),
        response(201, &[("etag", ETAG)], &stored(&docs[1])),
        ok_doc(&docs[0]),
    ]);
    let clock = FakeClock::new();
    let (c, pk, container) = (client(&transport, &clock), pk(), container());
    let operations: Vec<PointOperation<'_>> = docs
        .iter()
        .map(|doc| PointOperation::Create {
            container: &container,
            pk: &pk,
            doc,
        })
        .collect();
    let results = c.bulk(&operations);
    assert_eq!(*transport.batches.borrow(), vec![3]);
    assert_eq!(results[0].as_ref().unwrap().body["id"], "a");
    assert_eq!(results[1].as_ref().unwrap().body["id"], "b");
    assert!(matches!(results[2], Err(CosmosError::Conflict)));
    assert_eq!(transport.count(), 6);
}

#[test]
fn bulk_refuses_bad_input_alone_and_sends_the_rest() {
    let good = json!({"id": "good"});
    let no_id = json!({"name": "x"});
    let other = DocumentId::new("other").unwrap();
    let transport = FakeTransport::scripted(vec![response(201, &[("etag", ETAG)], &stored(&good))]);
    let clock = FakeClock::new();
    let (c, pk) = (client(&transport, &clock), pk());
    let results = c.bulk(&[
        PointOperation::Create {
            container: &container(),
            pk: &pk,
            doc: &no_id,
        },
        PointOperation::Create {
            container: &container(),
            pk: &pk,
            doc: &good,
        },
        PointOperation::Replace {
            container: &container(),
            pk: &pk,
            id: &other,
            doc: &good,
            if_match: None,
        },
    ]);
    assert!(matches!(
        results[0],
        Err(CosmosError::InvalidInput(InputError::DocumentIdMissing))
    ));
    assert!(results[1].is_ok());
    assert!(matches!(
        results[2],
        Err(CosmosError::InvalidInput(InputError::DocumentIdMismatch))
    ));
    assert_eq!(*transport.batches.borrow(), vec![1]);
    assert!(c.bulk(&[]).is_empty());
}

#[test]
fn query_pages_go_together_and_each_reads_its_own_page() {
    let transport = FakeTransport::with(|request| {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        if body.contains("@broken") {
            return status(503);
        }
        let n = if body.contains("@one") { 1 } else { 2 };
        response(
            200,
            &[],
            &format!(r#"{{"_rid":"r","Documents":[{{"id":"{n}"}}],"_count":1}}"#),
        )
    });
    let clock = FakeClock::new();
    let c = client(&transport, &clock).with_retry_policy(RetryPolicy::no_retries());
    let queries = [
        Query::new("SELECT * FROM c WHERE c.x = @one").unwrap(),
        Query::new("SELECT * FROM c WHERE c.x = @two").unwrap(),
        Query::new("SELECT * FROM c WHERE c.x = @broken").unwrap(),
    ];
    let scope = QueryScope::Partition(pk());
    let first = PageRequest {
        max_item_count: Some(1),
        continuation: None,
    };
    let bad = PageRequest {
        max_item_count: Some(0),
        continuation: None,
    };
    let container = container();
    let page = |query, page| PageQuery {
        container: &container,
        query,
        scope: &scope,
        page,
    };
    let pages = c.query_pages(&[
        page(&queries[0], &first),
        page(&queries[1], &first),
        page(&queries[2], &first),
        page(&queries[0], &bad),
    ]);
    assert_eq!(
        *transport.batches.borrow(),
        vec![3],
        "the invalid page is not sent"
    );
    assert_eq!(pages[0].as_ref().unwrap().documents[0]["id"], "1");
    assert_eq!(pages[1].as_ref().unwrap().documents[0]["id"], "2");
    assert!(matches!(pages[2], Err(CosmosError::Unavailable { .. })));
    assert!(matches!(
        pages[3],
        Err(CosmosError::InvalidInput(InputError::ZeroMaxItemCount))
    ));
    for request in transport.requests() {
        assert_signed(&request);
        assert_eq!(header(&request, "x-ms-max-item-count"), Some("1"));
    }
}

// ---- transactional batch -----------------------------------------------------

/// A 200 batch answer with these per-operation results.
fn committed(results: Value) -> Result<HttpResponse, TransportError> {
    response(200, &[], &results.to_string())
}

/// A 207 batch answer: each status in order, an error body on every one but 424.
fn refused(statuses: &[u16]) -> Result<HttpResponse, TransportError> {
    let results: Vec<Value> = statuses
        .iter()
        .map(|&code| match code {
            424 => json!({"statusCode": 424, "requestCharge": 0}),
            code => json!({"statusCode": code, "requestCharge": 1,
                           "resourceBody": {"code": "Failed", "message": "Message: failed"}}),
        })
        .collect();
    response(207, &[], &Value::Array(results).to_string())
}

/// One successful result per operation, each with `{"id": ...}` as its document.
fn committed_ids(ids: &[&str]) -> Result<HttpResponse, TransportError> {
    let results: Vec<Value> = ids
        .iter()
        .map(|id| json!({"statusCode": 200, "eTag": ETAG, "resourceBody": {"id": id}, "requestCharge": 1}))
        .collect();
    committed(Value::Array(results))
}

#[test]
fn batch_request_follows_the_sdk_wire_protocol() {
    let created = json!({"id": "a", "n": 1});
    let replaced = json!({"id": "doc 1", "v": 2});
    let (etag, read) = (ETag::new(ETAG).unwrap(), DocumentId::new("b").unwrap());
    let transport = FakeTransport::scripted(vec![committed_ids(&["a", "doc 1", "b"])]);
    let clock = FakeClock::new();
    client(&transport, &clock)
        .batch(&Batch {
            container: &container(),
            pk: &pk(),
            operations: &[
                BatchOperation::Create { doc: &created },
                BatchOperation::Replace {
                    id: &id(),
                    doc: &replaced,
                    if_match: Some(&etag),
                },
                BatchOperation::Read { id: &read },
            ],
        })
        .unwrap();

    let requests = transport.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_signed(request);
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url.strip_prefix(BASE),
        Some("/dbs/patients/colls/Patients/docs")
    );
    let view = server_view(request);
    assert_eq!(
        (view.resource_type.as_str(), view.link.as_str()),
        ("docs", "dbs/patients/colls/Patients")
    );
    for (name, value) in [
        ("x-ms-documentdb-partitionkey", r#"["p-1"]"#),
        ("content-type", "application/json"),
        ("x-ms-cosmos-is-batch-request", "True"),
        ("x-ms-cosmos-batch-atomic", "True"),
        ("x-ms-cosmos-batch-continue-on-error", "False"),
    ] {
        assert_eq!(header(request, name), Some(value), "{name}");
    }
    // The etag travels inside its operation, not as the request's If-Match.
    assert_eq!(header(request, "if-match"), None);
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).unwrap(),
        json!([
            {"operationType": "Create", "resourceBody": created},
            {"operationType": "Replace", "id": "doc 1", "resourceBody": replaced, "ifMatch": ETAG},
            {"operationType": "Read", "id": "b"},
        ])
    );
}

#[test]
fn a_committed_batch_answers_each_operations_status_etag_and_document() {
    let doc = json!({"id": "a"});
    let transport = FakeTransport::scripted(vec![committed(json!([
        {"statusCode": 201, "eTag": "\"e1\"", "resourceBody": serde_json::from_str::<Value>(&stored(&doc)).unwrap(), "requestCharge": 6.2},
        {"statusCode": 200, "requestCharge": 1},
    ]))]);
    let clock = FakeClock::new();
    let outcome = client(&transport, &clock)
        .batch(&Batch {
            container: &container(),
            pk: &pk(),
            operations: &[
                BatchOperation::Create { doc: &doc },
                BatchOperation::Read { id: &id() },
            ],
        })
        .unwrap();
    let BatchOutcome::Committed(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].status, 201);
    assert_eq!(results[0].etag, Some(ETag::new("\"e1\"").unwrap()));
    assert_eq!(results[0].body.as_ref().unwrap()["_rid"], "abc==");
    assert_eq!(
        results[1],
        BatchResult {
            status: 200,
            etag: None,
            body: None
        }
    );
}

#[test]
fn a_refused_batch_names_the_first_operation_that_is_not_424() {
    let doc = json!({"id": "doc 1"});
    let etag = ETag::new(ETAG).unwrap();
    let cases = [
        (refused(&[424, 412, 424]), 1, CosmosError::PreconditionFailed),
        (refused(&[409, 424, 424]), 0, CosmosError::Conflict),
        (refused(&[424, 424, 404]), 2, CosmosError::NotFound),
        (refused(&[424, 403, 424]), 1, CosmosError::Forbidden),
        (
            response(
                207,
                &[],
                &json!([
                    {"statusCode": 424, "requestCharge": 0},
                    {"statusCode": 400, "requestCharge": 1,
                     "resourceBody": {"code": "BadRequest", "message": "Message: bad\r\nActivityId: 1"}},
                    {"statusCode": 424, "requestCharge": 0},
                ])
                .to_string(),
            ),
            1,
            CosmosError::BadRequest {
                message: "Message: bad  ActivityId: 1".into(),
            },
        ),
    ];
    for (answer, index, error) in cases {
        let transport = FakeTransport::scripted(vec![answer]);
        let clock = FakeClock::new();
        let outcome = client(&transport, &clock).batch(&Batch {
            container: &container(),
            pk: &pk(),
            operations: &[
                BatchOperation::Create { doc: &doc },
                BatchOperation::Replace {
                    id: &id(),
                    doc: &doc,
                    if_match: Some(&etag),
                },
                BatchOperation::Read { id: &id() },
            ],
        });
        assert_eq!(outcome, Ok(BatchOutcome::Refused { index, error }));
        // A refusal on the first attempt is final: no retry, no read-back.
        assert_eq!(transport.count(), 1);
        assert!(clock.sleeps_ms().is_empty());
    }

    // A batch the store rejects as a whole is an error, not a refusal, and not retried.
    let transport = FakeTransport::with(|_| status(400));
    let clock = FakeClock::new();
    let outcome = client(&transport, &clock).batch(&Batch {
        container: &container(),
        pk: &pk(),
        operations: &[BatchOperation::Read { id: &id() }],
    });
    assert_eq!(
        outcome,
        Err(CosmosError::BadRequest {
            message: "no message".into()
        })
    );
    assert_eq!(transport.count(), 1);
}

#[test]
fn malformed_batch_answers_are_protocol_errors() {
    let ok = |result: Value| json!([result, {"statusCode": 200}, {"statusCode": 200}]).to_string();
    let cases: Vec<(u16, String)> = vec![
        (200, "nope".into()),
        (200, json!({"results": []}).to_string()),
        (
            200,
            json!([{"statusCode": 200}, {"statusCode": 200}]).to_string(),
        ),
        (
            200,
            Value::Array(vec![json!({"statusCode": 200}); 4]).to_string(),
        ),
        (200, ok(json!({"requestCharge": 1}))),
        (200, ok(json!({"statusCode": "200"}))),
        (200, ok(json!({"statusCode": 70000}))),
        (200, ok(json!({"statusCode": 409}))),
        (200, ok(json!({"statusCode": 200, "eTag": 5}))),
        (200, ok(json!({"statusCode": 200, "eTag": "a\r\nb"}))),
        (200, ok(json!({"statusCode": 200, "resourceBody": "x"}))),
        (
            207,
            Value::Array(vec![json!({"statusCode": 424}); 3]).to_string(),
        ),
        (
            207,
            json!([{"statusCode": 424}, {"statusCode": 200}, {"statusCode": 409}]).to_string(),
        ),
        (
            207,
            json!([{"statusCode": 424}, {"statusCode": 409}]).to_string(),
        ),
        (
            207,
            json!([{"statusCode": 424}, {}, {"statusCode": 409}]).to_string(),
        ),
        (207, "{}".into()),
        (
            201,
            Value::Array(vec![json!({"statusCode": 201}); 3]).to_string(),
        ),
    ];
    for (code, body) in cases {
        let transport = FakeTransport::scripted(vec![response(code, &[], &body)]);
        let clock = FakeClock::new();
        let outcome = client(&transport, &clock).batch(&Batch {
            container: &container(),
            pk: &pk(),
            operations: &[BatchOperation::Read { id: &id() }; 3],
        });
        assert!(
            matches!(outcome, Err(CosmosError::Protocol(_))),
            "{code} {body}: {outcome:?}"
        );
    }
}

#[test]
fn bad_batches_are_refused_before_anything_is_sent() {
    let good = json!({"id": "doc 1"});
    let transport = FakeTransport::scripted(vec![]);
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    let (container, pk, id) = (container(), pk(), id());
    let batch = |operations: &[BatchOperation<'_>]| {
        c.batch(&Batch {
            container: &container,
            pk: &pk,
            operations,
        })
    };
    let invalid = |e| Err(CosmosError::InvalidInput(e));
    assert_eq!(batch(&[]), invalid(InputError::EmptyBatch));
    assert_eq!(
        batch(&[BatchOperation::Read { id: &id }; 101]),
        invalid(InputError::TooManyOperations {
            max_operations: 100
        })
    );
    let create = BatchOperation::Create { doc: &good };
    let other = DocumentId::new("other").unwrap();
    let replace = |id, doc| BatchOperation::Replace {
        id,
        doc,
        if_match: None,
    };
    for (operation, error) in [
        (replace(&other, &good), InputError::DocumentIdMismatch),
        (
            replace(&id, &json!({"v": 1})),
            InputError::DocumentIdMissing,
        ),
        (
            BatchOperation::Create {
                doc: &json!({"name": "x"}),
            },
            InputError::DocumentIdMissing,
        ),
        (
            BatchOperation::Create {
                doc: &json!({"id": "a/b"}),
            },
            InputError::ForbiddenCharacter {
                what: "document id",
                character: '/',
            },
        ),
        (
            BatchOperation::Create { doc: &json!(["x"]) },
            InputError::DocumentNotObject,
        ),
    ] {
        // One bad operation refuses the whole batch, wherever it stands.
        assert_eq!(batch(&[create, operation]), invalid(error));
    }
    assert_eq!(transport.count(), 0);
    assert_eq!(
        InputError::EmptyBatch.to_string(),
        "batch has no operations"
    );
    assert_eq!(
        InputError::TooManyOperations {
            max_operations: 100
        }
        .to_string(),
        "batch has more than 100 operations"
    );

    // Exactly the limit is sent.
    let transport = FakeTransport::scripted(vec![committed_ids(&["doc 1"; 100])]);
    let outcome = client(&transport, &clock).batch(&Batch {
        container: &container,
        pk: &pk,
        operations: &[BatchOperation::Read { id: &id }; 100],
    });
    assert!(
        matches!(&outcome, Ok(BatchOutcome::Committed(results)) if results.len() == 100),
        "{outcome:?}"
    );
    assert_eq!(transport.count(), 1);
}

#[test]
fn a_retried_batch_refused_by_its_own_lost_commit_committed_earlier() {
    let created = json!({"id": "a", "n": 1.0});
    let replaced = json!({"id": "doc 1", "v": 2});
    let old = ETag::new("\"old\"").unwrap();
    let (container, pk, id) = (container(), pk(), id());
    let operations = [
        BatchOperation::Create { doc: &created },
        BatchOperation::Replace {
            id: &id,
            doc: &replaced,
            if_match: Some(&old),
        },
    ];
    let run = |script| {
        let transport = FakeTransport::scripted(script);
        let clock = FakeClock::new();
        let outcome = client(&transport, &clock).batch(&Batch {
            container: &container,
            pk: &pk,
            operations: &operations,
        });
        (outcome, transport.requests())
    };

    // The create is refused as a conflict; the stored document is ours (1.0 back as 1).
    let (outcome, requests) = run(vec![
        status(503),
        refused(&[409, 424]),
        ok_doc(&json!({"id": "a", "n": 1})),
    ]);
    assert_eq!(outcome, Ok(BatchOutcome::CommittedEarlier));
    let methods: Vec<Method> = requests.iter().map(|r| r.method).collect();
    assert_eq!(methods, vec![Method::Post, Method::Post, Method::Get]);
    assert_eq!(requests[0].body, requests[1].body, "the same batch again");
    assert_eq!(
        server_view(&requests[2]).link,
        "dbs/patients/colls/Patients/docs/a"
    );
    assert_eq!(
        header(&requests[2], "x-ms-documentdb-partitionkey"),
        Some(r#"["p-1"]"#)
    );
    requests.iter().for_each(assert_signed);

    // Someone else's document under that id: the refusal stands.
    let (outcome, requests) = run(vec![
        status(503),
        refused(&[409, 424]),
        ok_doc(&json!({"id": "a", "n": 2})),
    ]);
    assert_eq!(
        outcome,
        Ok(BatchOutcome::Refused {
            index: 0,
            error: CosmosError::Conflict
        })
    );
    assert_eq!(requests.len(), 3);

    // The conditional replace is refused as stale; the stored document is ours.
    let (outcome, requests) = run(vec![
        Err(TransportError::Timeout),
        refused(&[424, 412]),
        ok_doc(&replaced),
    ]);
    assert_eq!(outcome, Ok(BatchOutcome::CommittedEarlier));
    assert_eq!(
        server_view(&requests[2]).link,
        "dbs/patients/colls/Patients/docs/doc 1"
    );
    let (outcome, _) = run(vec![
        Err(TransportError::Timeout),
        refused(&[424, 412]),
        ok_doc(&json!({"id": "doc 1", "v": 3})),
    ]);
    assert_eq!(
        outcome,
        Ok(BatchOutcome::Refused {
            index: 1,
            error: CosmosError::PreconditionFailed
        })
    );

    // Gone by the time we look: not ours to claim.
    let (outcome, _) = run(vec![status(503), refused(&[409, 424]), status(404)]);
    assert_eq!(
        outcome,
        Ok(BatchOutcome::Refused {
            index: 0,
            error: CosmosError::Conflict
        })
    );
    // A failed read-back leaves the outcome unknown: its error is the answer.
    let (outcome, _) = run(vec![status(503), refused(&[409, 424]), status(403)]);
    assert_eq!(outcome, Err(CosmosError::Forbidden));
}

#[test]
fn batch_refusals_our_own_write_could_not_cause_are_not_read_back() {
    let doc = json!({"id": "doc 1"});
    let (container, pk, id) = (container(), pk(), id());
    let cases = [
        // No ambiguous attempt: the first attempt, or only throttled ones before it.
        (
            vec![refused(&[409])],
            BatchOperation::Create { doc: &doc },
            CosmosError::Conflict,
        ),
        (
            vec![status(429), refused(&[409])],
            BatchOperation::Create { doc: &doc },
            CosmosError::Conflict,
        ),
        // Ambiguous, but an unconditional replace has no etag to change, and a read writes nothing.
        (
            vec![status(503), refused(&[412])],
            BatchOperation::Replace {
                id: &id,
                doc: &doc,
                if_match: None,
            },
            CosmosError::PreconditionFailed,
        ),
        (
            vec![status(503), refused(&[404])],
            BatchOperation::Read { id: &id },
            CosmosError::NotFound,
        ),
    ];
    for (script, operation, error) in cases {
        let sends = script.len();
        let transport = FakeTransport::scripted(script);
        let clock = FakeClock::new();
        let outcome = client(&transport, &clock).batch(&Batch {
            container: &container,
            pk: &pk,
            operations: &[operation],
        });
        assert_eq!(
            outcome,
            Ok(BatchOutcome::Refused {
                index: 0,
                error: error.clone()
            })
        );
        assert_eq!(transport.count(), sends, "no read-back for {error:?}");
    }
}

#[test]
fn a_throttled_batch_waits_and_is_sent_again() {
    let transport = FakeTransport::scripted(vec![
        response(429, &[("x-ms-retry-after-ms", "120")], ""),
        status(503),
        committed_ids(&["doc 1"]),
    ]);
    let clock = FakeClock::new(); // jitter 0.5: backoff for attempt 2 = 50 ms
    let outcome = client(&transport, &clock)
        .batch(&Batch {
            container: &container(),
            pk: &pk(),
            operations: &[BatchOperation::Read { id: &id() }],
        })
        .unwrap();
    assert!(matches!(outcome, BatchOutcome::Committed(ref r) if r.len() == 1));
    assert_eq!(clock.sleeps_ms(), vec![120, 50]);
    let requests = transport.requests();
    assert_eq!(requests.len(), 3);
    requests.iter().for_each(assert_signed);
    assert!(requests.iter().all(|r| r.body == requests[0].body));
}

#[test]
fn batches_send_every_first_attempt_together_and_answer_in_order() {
    let mut b_attempts = 0;
    let transport = FakeTransport::with(move |request| {
        match header(request, "x-ms-documentdb-partitionkey").unwrap() {
            r#"["a"]"# => committed_ids(&["a"]),
            r#"["b"]"# => {
                b_attempts += 1;
                if b_attempts == 1 {
                    status(503)
                } else {
                    committed_ids(&["b"])
                }
            }
            _ => refused(&[409]),
        }
    });
    let clock = FakeClock::new();
    let c = client(&transport, &clock);
    let container = container();
    let pks = ["a", "b", "c"].map(PartitionKey::string);
    let doc = json!({"id": "doc 1"});
    let id = id();
    let read = [BatchOperation::Read { id: &id }];
    let create = [BatchOperation::Create { doc: &doc }];
    let batch = |pk, operations| Batch {
        container: &container,
        pk,
        operations,
    };
    let outcomes = c.batches(&[
        batch(&pks[0], &read),
        batch(&pks[1], &[]),
        batch(&pks[1], &read),
        batch(&pks[2], &create),
    ]);
    assert_eq!(
        *transport.batches.borrow(),
        vec![3],
        "the empty batch is not sent"
    );
    assert_eq!(transport.count(), 4, "only b is retried");
    let first_id = |outcome: &Result<BatchOutcome, CosmosError>| match outcome {
        Ok(BatchOutcome::Committed(results)) => results[0].body.as_ref().unwrap()["id"].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(first_id(&outcomes[0]), "a");
    assert_eq!(
        outcomes[1],
        Err(CosmosError::InvalidInput(InputError::EmptyBatch))
    );
    assert_eq!(first_id(&outcomes[2]), "b");
    assert_eq!(
        outcomes[3],
        Ok(BatchOutcome::Refused {
            index: 0,
            error: CosmosError::Conflict
        })
    );
    assert!(c.batches(&[]).is_empty());
}
