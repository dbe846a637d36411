//! The docstore component under the test host, driven by the same Cosmos
//! client the components use, and by raw signed requests for hostile input.
//! (The official Python SDK judges it too: tests/conformance/run.)

use cosmos::{
    ContainerRef, CosmosClient, CosmosError, DocumentId, ETag, MasterKey, PageRequest,
    PartitionKey, Query, QueryScope,
};
use cosmos_auth::{http_date, sign, SignedRequest};
use e2e::native::{SystemClock, UreqTransport};
use e2e::{repo_root, Start, TestApp};
use serde_json::json;

fn store() -> TestApp {
    TestApp::in_process(Start {
        manifest: Some(repo_root().join("tests/conformance/spin.toml")),
        ..Start::default()
    })
}

fn client(app: &TestApp, key: &str) -> CosmosClient<UreqTransport, SystemClock> {
    CosmosClient::new(
        &app.base_url,
        MasterKey::from_base64(key).unwrap(),
        UreqTransport::default(),
        SystemClock::default(),
    )
    .unwrap()
}

fn patients() -> ContainerRef {
    ContainerRef::new("patients", "patients").unwrap()
}

fn tests_container() -> ContainerRef {
    ContainerRef::new("patients", "tests").unwrap()
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn our_client_round_trips_documents_with_etags() {
    let app = store();
    let c = client(&app, &app.secrets.variables["cosmoskey"]);
    let id = "5f0c6a2e-8d2b-4a55-9a51-3b8f0d3b1c11";
    let pk = PartitionKey::string(id);
    let created = c
        .create_document(&patients(), &pk, &json!({"id": id, "firstName": "Ada"}))
        .unwrap();
    assert_eq!(created.body["firstName"], "Ada");
    assert!(created.body["_ts"].is_i64());
    let read = c
        .read_document(&patients(), &pk, &DocumentId::new(id).unwrap())
        .unwrap();
    assert_eq!(read.etag, created.etag);

    let replaced = c
        .replace_document(
            &patients(),
            &pk,
            &DocumentId::new(id).unwrap(),
            &json!({"id": id, "firstName": "Grace"}),
            Some(&created.etag),
        )
        .unwrap();
    assert_ne!(replaced.etag, created.etag);
    let stale = c.replace_document(
        &patients(),
        &pk,
        &DocumentId::new(id).unwrap(),
        &json!({"id": id, "firstName": "Stale"}),
        Some(&created.etag),
    );
    assert!(
        matches!(stale, Err(CosmosError::PreconditionFailed)),
        "{stale:?}"
    );
    let again = c.create_document(&patients(), &pk, &json!({"id": id}));
    assert!(matches!(again, Err(CosmosError::Conflict)), "{again:?}");

    c.delete_document(&patients(), &pk, &DocumentId::new(id).unwrap())
        .unwrap();
    let gone = c.read_document(&patients(), &pk, &DocumentId::new(id).unwrap());
    assert!(matches!(gone, Err(CosmosError::NotFound)), "{gone:?}");
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn queries_page_across_three_pages_without_losing_or_repeating_documents() {
    let app = store();
    let c = client(&app, &app.secrets.variables["cosmoskey"]);
    let patient = "0b7e1d9c-1111-4c3a-8f00-000000000001";
    let pk = PartitionKey::string(patient);
    for i in 0..25 {
        c.create_document(
            &tests_container(),
            &pk,
            &json!({"id": format!("t{i:02}"), "patientId": patient, "n": i}),
        )
        .unwrap();
    }
    let query = Query::new("SELECT * FROM c WHERE c.patientId = @p AND c.n >= @min ORDER BY c.n")
        .unwrap()
        .with_parameter("@p", json!(patient))
        .unwrap()
        .with_parameter("@min", json!(3))
        .unwrap();
    let mut seen = Vec::new();
    let mut continuation = None;
    let mut pages = 0;
    loop {
        let page = c
            .query_documents(
                &tests_container(),
                &query,
                QueryScope::Partition(pk.clone()),
                PageRequest {
                    max_item_count: Some(8),
                    continuation,
                },
            )
            .unwrap();
        pages += 1;
        seen.extend(page.documents.iter().map(|d| d["n"].as_i64().unwrap()));
        continuation = page.continuation;
        if continuation.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (3..25).collect::<Vec<_>>());
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn a_client_with_the_wrong_key_is_refused() {
    let app = store();
    let wrong = e2e::random_bytes(64);
    use base64::Engine as _;
    let c = client(
        &app,
        &base64::engine::general_purpose::STANDARD.encode(wrong),
    );
    assert!(matches!(
        c.database_account(),
        Err(CosmosError::Unauthorized)
    ));
    let read = c.read_document(
        &patients(),
        &PartitionKey::string("x"),
        &DocumentId::new("x").unwrap(),
    );
    assert!(matches!(read, Err(CosmosError::Unauthorized)));
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn injection_like_values_are_stored_and_matched_literally() {
    let app = store();
    let c = client(&app, &app.secrets.variables["cosmoskey"]);
    let hostile = [
        "'; DROP TABLE documents; --",
        "\" OR 1=1 --",
        "x') OR ('1'='1",
        "$.firstName",
        "%_*",
    ];
    for (i, value) in hostile.iter().enumerate() {
        let id = format!("h{i}");
        c.create_document(
            &patients(),
            &PartitionKey::string(&id),
            &json!({"id": id, "firstName": value}),
        )
        .unwrap();
    }
    for value in hostile {
        let query = Query::new("SELECT * FROM c WHERE c.firstName = @v")
            .unwrap()
            .with_parameter("@v", json!(value))
            .unwrap();
        let page = c
            .query_documents(
                &patients(),
                &query,
                QueryScope::CrossPartition,
                PageRequest::default(),
            )
            .unwrap();
        assert_eq!(page.documents.len(), 1, "{value}");
        assert_eq!(page.documents[0]["firstName"], value);
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn concurrent_replaces_with_one_etag_have_exactly_one_winner() {
    let app = store();
    let key = app.secrets.variables["cosmoskey"].clone();
    let c = client(&app, &key);
    let id = "c0ffee00-0000-4000-8000-000000000000";
    let pk = PartitionKey::string(id);
    let created = c
        .create_document(&patients(), &pk, &json!({"id": id, "v": 0}))
        .unwrap();
    let etag: ETag = created.etag.clone();
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=8)
            .map(|v| {
                let (app, key, etag, pk) = (&app, &key, &etag, &pk);
                s.spawn(move || {
                    client(app, key)
                        .replace_document(
                            &patients(),
                            pk,
                            &DocumentId::new(id).unwrap(),
                            &json!({"id": id, "v": v}),
                            Some(etag),
                        )
                        .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
}

/// A raw request signed like the client signs it.
fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    kind: &str,
    link: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> e2e::Reply {
    let key = MasterKey::from_base64(&app.secrets.variables["cosmoskey"]).unwrap();
    let date = http_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let auth = sign(
        &key,
        &SignedRequest {
            verb: method,
            resource_type: kind,
            resource_link: link,
            date: &date,
        },
    );
    let mut all = vec![
        ("authorization", auth.as_str()),
        ("x-ms-date", date.as_str()),
        ("x-ms-version", "2018-12-31"),
    ];
    all.extend_from_slice(headers);
    app.send(
        method,
        path,
        &all,
        if body.is_empty() { None } else { Some(body) },
    )
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn hostile_requests_get_4xx_with_a_cosmos_error_body_never_500() {
    let app = store();
    let feed = "/dbs/patients/colls/patients/docs";
    let link = "dbs/patients/colls/patients";
    let pk = [
        ("x-ms-documentdb-partitionkey", "[\"a\"]"),
        ("content-type", "application/json"),
    ];
    let cases: Vec<(&str, e2e::Reply, u16)> = vec![
        (
            "malformed JSON",
            raw(&app, "POST", feed, "docs", link, &pk, b"{\"id\": \"a\","),
            400,
        ),
        (
            "not an object",
            raw(&app, "POST", feed, "docs", link, &pk, b"[1,2]"),
            400,
        ),
        (
            "missing partition key",
            raw(
                &app,
                "GET",
                &format!("{feed}/a"),
                "docs",
                &format!("{link}/docs/a"),
                &[],
                b"",
            ),
            400,
        ),
        (
            "over 2 MB",
            raw(
                &app,
                "POST",
                feed,
                "docs",
                link,
                &pk,
                format!(
                    "{{\"id\":\"a\",\"pad\":\"{}\"}}",
                    "x".repeat(2 * 1024 * 1024 + 10)
                )
                .as_bytes(),
            ),
            413,
        ),
        (
            "unsupported query",
            raw(
                &app,
                "POST",
                feed,
                "docs",
                link,
                &[
                    ("content-type", "application/query+json"),
                    ("x-ms-documentdb-isquery", "True"),
                    ("x-ms-documentdb-query-enablecrosspartition", "True"),
                ],
                br#"{"query":"SELECT c.id FROM c JOIN t IN c.tags","parameters":[]}"#,
            ),
            400,
        ),
    ];
    for (name, reply, status) in cases {
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        let body = reply.json();
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{name}: {body}"
        );
        assert!(
            !reply.text().contains(&app.secrets.variables["cosmoskey"]),
            "{name}"
        );
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn the_heads_query_of_a_full_page_finds_each_head_in_its_own_partition() {
    use audit_chain::{heads_from_documents, heads_query, ChainKey, MAX_HEADS_PER_QUERY};
    let app = store();
    let c = client(&app, &app.secrets.variables["cosmoskey"]);
    let records = ContainerRef::new("audit", "records").unwrap();
    let keys: Vec<ChainKey> = (0..MAX_HEADS_PER_QUERY)
        .map(|i| ChainKey::parse(&format!("patient:0b7e1d9c-2222-4c3a-8f00-{i:012}")).unwrap())
        .collect();
    // Every chain but the last has a head and a record; a forged head of
    // the last chain sits in another chain's partition and must not count.
    for key in &keys[..keys.len() - 1] {
        let pk = PartitionKey::string(key.as_str());
        for id in [format!("{key}:head"), format!("{key}:00000000000000000001")] {
            c.create_document(&records, &pk, &json!({"id": id, "chainKey": key.as_str()}))
                .unwrap();
        }
    }
    let last = keys.last().unwrap();
    c.create_document(
        &records,
        &PartitionKey::string(keys[0].as_str()),
        &json!({"id": format!("{last}:head"), "chainKey": keys[0].as_str()}),
    )
    .unwrap();

    let query = heads_query(&keys);
    let query = Query::with_parameters(query.text, query.parameters).unwrap();
    let page = c
        .query_documents(
            &records,
            &query,
            QueryScope::CrossPartition,
            PageRequest {
                max_item_count: Some(keys.len() as u32),
                continuation: None,
            },
        )
        .unwrap();
    assert_eq!(page.continuation, None);
    let heads = heads_from_documents(&keys, page.documents).unwrap();
    for (key, head) in keys.iter().zip(&heads).take(keys.len() - 1) {
        let (doc, etag) = head.as_ref().unwrap_or_else(|| panic!("{key} has a head"));
        assert_eq!(doc["chainKey"], json!(key.as_str()));
        assert_eq!(doc["_etag"], json!(etag));
    }
    assert!(heads.last().unwrap().is_none(), "{:?}", heads.last());
}
