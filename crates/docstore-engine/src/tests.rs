//! Behaviour of [`handle`] end to end, on a real SQLite file through rusqlite,
//! with a fresh connection per request (no busy timeout) as under Spin.

use crate::rusqlite_sql::{RusqliteSql, ThreadLockWait};
use crate::{handle, route, Sql, SqlError, SqlValue, StoreConfig, StoreRequest, StoreResponse};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cosmos_auth::{http_date, sign, MasterKey, SignedRequest};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

const NOW: i64 = 1_800_000_000;
const KEY: &str = "dGVzdCBrZXkgZm9yIHRoZSBsb2NhbCBkb2N1bWVudCBzdG9yZSwgNjQgYnl0ZXMgbG9uZy4uLg==";
const SPEC: &str = "patients/patients=/id;patients/tests=/patientId;audit/records=/chainKey";
const BASE: &str = "http://127.0.0.1:3000";
const TESTS: &str = "/dbs/patients/colls/tests/docs";
const PATIENTS: &str = "/dbs/patients/colls/patients/docs";

struct Store {
    path: PathBuf,
    config: StoreConfig,
}

impl Drop for Store {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

fn store() -> Store {
    let path = std::env::temp_dir().join(format!("docstore-test-{}.sqlite", uuid::Uuid::new_v4()));
    Store {
        path,
        config: StoreConfig::from_variables(KEY, SPEC).unwrap(),
    }
}

fn signed_headers(key: &str, method: &str, path: &str, date: &str) -> Vec<(String, String)> {
    let parsed = route::parse(path).unwrap();
    let auth = sign(
        &MasterKey::from_base64(key).unwrap(),
        &SignedRequest {
            verb: method,
            resource_type: &parsed.resource_type,
            resource_link: &parsed.resource_link,
            date,
        },
    );
    vec![
        ("authorization".into(), auth),
        ("x-ms-date".into(), date.into()),
    ]
}

fn pk_header(value: Value) -> (String, String) {
    (
        "x-ms-documentdb-partitionkey".into(),
        json!([value]).to_string(),
    )
}

fn body_json(response: &StoreResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

impl Store {
    fn send(
        &self,
        method: &str,
        path: &str,
        extra: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> StoreResponse {
        let mut headers = signed_headers(KEY, method, path, &http_date(NOW));
        headers.extend(extra);
        self.raw(StoreRequest {
            method: method.into(),
            path: path.into(),
            headers,
            body,
            base_url: BASE.into(),
        })
    }

    fn raw(&self, request: StoreRequest) -> StoreResponse {
        // A new connection per request, with SQLite's defaults, as Spin.
        let sql = RusqliteSql::open(&self.path).unwrap();
        handle(
            &sql,
            &self.config,
            &request,
            NOW,
            &mut ThreadLockWait::new(),
        )
    }

    fn create(&self, doc: Value, pk: Value) -> StoreResponse {
        self.send(
            "POST",
            TESTS,
            vec![pk_header(pk)],
            doc.to_string().into_bytes(),
        )
    }

    fn test_doc(&self, id: &str, patient: &str, extra: Value) -> StoreResponse {
        let mut doc = json!({"id": id, "patientId": patient});
        if let (Value::Object(d), Value::Object(e)) = (&mut doc, extra) {
            d.extend(e);
        }
        self.create(doc, json!(patient))
    }

    fn query(
        &self,
        query: &str,
        params: Value,
        pk: Option<Value>,
        page: Option<i64>,
        token: Option<&str>,
    ) -> StoreResponse {
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/query+json".to_string(),
            ),
            ("x-ms-documentdb-isquery".to_string(), "True".to_string()),
        ];
        if let Some(pk) = pk {
            headers.push(pk_header(pk));
        }
        if let Some(n) = page {
            headers.push(("x-ms-max-item-count".into(), n.to_string()));
        }
        if let Some(t) = token {
            headers.push(("x-ms-continuation".into(), t.to_string()));
        }
        let body = json!({"query": query, "parameters": params})
            .to_string()
            .into_bytes();
        self.send("POST", TESTS, headers, body)
    }

    /// All pages of a query: the ids in order, and how many pages it took.
    fn query_all(
        &self,
        query: &str,
        params: Value,
        pk: Option<Value>,
        page: i64,
    ) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let r = self.query(
                query,
                params.clone(),
                pk.clone(),
                Some(page),
                token.as_deref(),
            );
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            pages += 1;
            let body = body_json(&r);
            let docs = body["Documents"].as_array().unwrap();
            assert!(docs.len() as i64 <= page);
            assert_eq!(body["_count"], json!(docs.len()));
            assert_eq!(
                r.header("x-ms-item-count"),
                Some(docs.len().to_string().as_str())
            );
            ids.extend(docs.iter().map(|d| d["id"].as_str().unwrap().to_string()));
            match r.header("x-ms-continuation") {
                Some(t) => token = Some(t.to_string()),
                None => return (ids, pages),
            }
        }
    }

    fn ids(&self, query: &str, params: Value) -> Vec<String> {
        self.query_all(query, params, None, 1000).0
    }
}

fn error_code(response: &StoreResponse) -> String {
    body_json(response)["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn message(response: &StoreResponse) -> String {
    body_json(response)["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------- auth

#[test]
fn every_request_needs_a_valid_signature_and_fresh_date() {
    let s = store();
    let ok = s.send("GET", "/", vec![], vec![]);
    assert_eq!(ok.status, 200);

    let bare = StoreRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: vec![],
        body: vec![],
        base_url: BASE.into(),
    };
    let r = s.raw(bare.clone());
    assert_eq!((r.status, error_code(&r).as_str()), (401, "Unauthorized"));

    let wrong_key = BASE64.encode(b"another key entirely");
    let r = s.raw(StoreRequest {
        headers: signed_headers(&wrong_key, "GET", "/", &http_date(NOW)),
        ..bare.clone()
    });
    assert_eq!(r.status, 401);

    // Signed for another resource: the link is part of the signature.
    let mut headers = signed_headers(KEY, "GET", "/dbs/audit", &http_date(NOW));
    let r = s.raw(StoreRequest {
        path: "/dbs/patients".into(),
        headers: headers.clone(),
        ..bare.clone()
    });
    assert_eq!(r.status, 401);

    // Stale and future dates beyond 15 minutes.
    for date in [NOW - 15 * 60 - 1, NOW + 15 * 60 + 1] {
        let r = s.raw(StoreRequest {
            headers: signed_headers(KEY, "GET", "/", &http_date(date)),
            ..bare.clone()
        });
        assert_eq!(r.status, 401, "{date}");
        assert!(message(&r).contains("15 minutes"));
    }
    let r = s.raw(StoreRequest {
        headers: signed_headers(KEY, "GET", "/", &http_date(NOW - 15 * 60)),
        ..bare.clone()
    });
    assert_eq!(r.status, 200);

    headers.retain(|(n, _)| n != "x-ms-date");
    let r = s.raw(StoreRequest {
        path: "/dbs/audit".into(),
        headers,
        ..bare
    });
    assert_eq!(r.status, 401);
    assert!(!String::from_utf8_lossy(&r.body).contains(KEY));
}

#[test]
fn unauthorized_requests_touch_nothing() {
    let s = store();
    let body = json!({"id": "a", "patientId": "p"})
        .to_string()
        .into_bytes();
    let mut headers = signed_headers(&BASE64.encode(b"wrong"), "POST", TESTS, &http_date(NOW));
    headers.push(pk_header(json!("p")));
    let r = s.raw(StoreRequest {
        method: "POST".into(),
        path: TESTS.into(),
        headers,
        body,
        base_url: BASE.into(),
    });
    assert_eq!(r.status, 401);
    let sql = RusqliteSql::open(&s.path).unwrap();
    let tables = sql
        .execute("SELECT count(*) FROM sqlite_master", &[])
        .unwrap();
    assert_eq!(
        tables,
        vec![vec![SqlValue::Integer(0)]],
        "an unauthenticated request reached SQL"
    );
}

// ---------------------------------------------------------------- metadata

#[test]
fn database_account_advertises_the_base_url_with_its_scheme() {
    let s = store();
    let r = s.send("GET", "/", vec![], vec![]);
    assert_eq!(r.status, 200);
    let body = body_json(&r);
    for field in ["writableLocations", "readableLocations"] {
        assert_eq!(
            body[field],
            json!([{"name": "local", "databaseAccountEndpoint": "http://127.0.0.1:3000/"}])
        );
    }
    assert_eq!(
        body["userConsistencyPolicy"]["defaultConsistencyLevel"],
        "Session"
    );
    let engine: Value =
        serde_json::from_str(body["queryEngineConfiguration"].as_str().unwrap()).unwrap();
    assert!(engine["maxSqlQueryInputLength"].is_number());
    let https = s.raw(StoreRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: signed_headers(KEY, "GET", "/", &http_date(NOW)),
        body: vec![],
        base_url: "https://store.local/".into(),
    });
    assert_eq!(
        body_json(&https)["writableLocations"][0]["databaseAccountEndpoint"],
        "https://store.local/"
    );
}

#[test]
fn databases_containers_and_ranges_come_from_configuration() {
    let s = store();
    let db = s.send("GET", "/dbs/patients", vec![], vec![]);
    assert_eq!(
        (db.status, body_json(&db)["id"].clone()),
        (200, json!("patients"))
    );
    let coll = body_json(&s.send("GET", "/dbs/patients/colls/tests", vec![], vec![]));
    assert_eq!(
        coll["partitionKey"],
        json!({"paths": ["/patientId"], "kind": "Hash", "version": 2})
    );
    for field in ["_rid", "_self", "_etag", "_ts", "indexingPolicy"] {
        assert!(!coll[field].is_null(), "{field}");
    }
    assert!(coll["_self"]
        .as_str()
        .unwrap()
        .starts_with(body_json(&db)["_self"].as_str().unwrap()));

    let listed = body_json(&s.send("GET", "/dbs", vec![], vec![]));
    let names: Vec<&str> = listed["Databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["patients", "audit"]);
    let colls = body_json(&s.send("GET", "/dbs/patients/colls", vec![], vec![]));
    assert_eq!(colls["_count"], 2);

    assert_eq!(s.send("GET", "/dbs/nope", vec![], vec![]).status, 404);
    assert_eq!(
        s.send("GET", "/dbs/nope/colls/tests", vec![], vec![])
            .status,
        404
    );
    let r = s.send("GET", "/dbs/patients/colls/nope", vec![], vec![]);
    assert_eq!((r.status, error_code(&r).as_str()), (404, "NotFound"));
    assert_eq!(
        s.send(
            "GET",
            "/dbs/patients/colls/nope/docs/x",
            vec![pk_header(json!("x"))],
            vec![]
        )
        .status,
        404
    );

    let ranges = s.send("GET", "/dbs/patients/colls/tests/pkranges", vec![], vec![]);
    assert_eq!(ranges.status, 200);
    let body = body_json(&ranges);
    assert_eq!(body["_count"], 1);
    assert_eq!(body["PartitionKeyRanges"][0]["minInclusive"], "");
    assert_eq!(body["PartitionKeyRanges"][0]["maxExclusive"], "FF");
    // SDKs drain the ranges as a change feed until 304.
    let etag = ranges.header("etag").unwrap().to_string();
    let again = s.send(
        "GET",
        "/dbs/patients/colls/tests/pkranges",
        vec![("if-none-match".into(), etag)],
        vec![],
    );
    assert_eq!((again.status, again.body.len()), (304, 0));
}

#[test]
fn databases_and_containers_cannot_be_created_or_removed() {
    let s = store();
    let r = s.send(
        "POST",
        "/dbs",
        vec![],
        json!({"id": "newdb"}).to_string().into_bytes(),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (403, "Forbidden"));
    assert!(message(&r).contains("configuration"));
    let r = s.send(
        "POST",
        "/dbs",
        vec![],
        json!({"id": "patients"}).to_string().into_bytes(),
    );
    assert_eq!(r.status, 409, "an existing database answers as Cosmos does");
    let r = s.send(
        "POST",
        "/dbs/patients/colls",
        vec![],
        json!({"id": "tests"}).to_string().into_bytes(),
    );
    assert_eq!(r.status, 409);
    let r = s.send(
        "POST",
        "/dbs/patients/colls",
        vec![],
        json!({"id": "other"}).to_string().into_bytes(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        s.send("DELETE", "/dbs/patients/colls/tests", vec![], vec![])
            .status,
        403
    );
    assert_eq!(
        s.send("DELETE", "/dbs/patients", vec![], vec![]).status,
        403
    );
    assert_eq!(s.send("DELETE", "/dbs/nope", vec![], vec![]).status, 404);
    assert_eq!(s.send("POST", "/dbs", vec![], b"{".to_vec()).status, 400);
}

#[test]
fn unsupported_methods_and_paths_are_answered_clearly() {
    let s = store();
    let r = s.send("DELETE", "/", vec![], vec![]);
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (405, "MethodNotAllowed")
    );
    let r = s.send(
        "PATCH",
        "/dbs/patients/colls/tests/docs/x",
        vec![pk_header(json!("p"))],
        b"[]".to_vec(),
    );
    assert_eq!(r.status, 405);
    assert!(message(&r).contains("PATCH"));
    assert_eq!(s.send("PUT", TESTS, vec![], vec![]).status, 405);
    let r = s.send("GET", "/dbs/patients/users", vec![], vec![]);
    assert_eq!(r.status, 404);
    assert!(message(&r).contains("users"));
    assert_eq!(
        s.send("GET", "/dbs/patients/colls/tests/sprocs/x", vec![], vec![])
            .status,
        404
    );
}

fn batch(s: &Store, pk: &str, atomic: bool, operations: Value) -> StoreResponse {
    s.send(
        "POST",
        TESTS,
        vec![
            pk_header(json!(pk)),
            ("x-ms-cosmos-is-batch-request".into(), "True".into()),
            (
                "x-ms-cosmos-batch-atomic".into(),
                if atomic { "True" } else { "False" }.into(),
            ),
            ("x-ms-cosmos-batch-continue-on-error".into(), "False".into()),
        ],
        operations.to_string().into_bytes(),
    )
}

fn read_status(s: &Store, pk: &str, id: &str) -> u16 {
    s.send(
        "GET",
        &format!("{TESTS}/{id}"),
        vec![pk_header(json!(pk))],
        vec![],
    )
    .status
}

fn create_head(s: &Store) -> StoreResponse {
    s.send(
        "POST",
        TESTS,
        vec![pk_header(json!("p"))],
        json!({"id": "head", "patientId": "p", "n": 0})
            .to_string()
            .into_bytes(),
    )
}

#[test]
fn a_transactional_batch_commits_every_operation_together() {
    let s = store();
    let created = create_head(&s);
    let etag = body_json(&created)["_etag"].as_str().unwrap().to_string();
    let r = batch(
        &s,
        "p",
        true,
        json!([
            {"operationType": "Create", "resourceBody": {"id": "r1", "patientId": "p"}},
            {"operationType": "Replace", "id": "head", "ifMatch": etag,
             "resourceBody": {"id": "head", "patientId": "p", "n": 1}},
            {"operationType": "Upsert", "resourceBody": {"id": "u", "patientId": "p"}},
            {"operationType": "Read", "id": "r1"},
        ]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let results = body_json(&r);
    let statuses: Vec<_> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 200, 201, 200]);
    assert_eq!(results[1]["resourceBody"]["n"], 1);
    assert_eq!(results[1]["eTag"], results[1]["resourceBody"]["_etag"]);
    assert_eq!(results[3]["resourceBody"]["id"], "r1");
    assert_eq!(read_status(&s, "p", "r1"), 200);
    assert_eq!(read_status(&s, "p", "u"), 200);
}

#[test]
fn a_failing_operation_rolls_the_whole_batch_back_and_names_itself() {
    let s = store();
    let created = create_head(&s);
    assert_eq!(created.status, 201);
    // A stale ifMatch on the second operation: the first one's create and
    // the third one's delete must not happen.
    let r = batch(
        &s,
        "p",
        true,
        json!([
            {"operationType": "Create", "resourceBody": {"id": "r1", "patientId": "p"}},
            {"operationType": "Replace", "id": "head", "ifMatch": "\"stale\"",
             "resourceBody": {"id": "head", "patientId": "p", "n": 1}},
            {"operationType": "Delete", "id": "head"},
        ]),
    );
    assert_eq!(r.status, 207);
    let statuses: Vec<_> = body_json(&r)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [424, 412, 424]);
    assert_eq!(read_status(&s, "p", "r1"), 404);
    let head = s.send(
        "GET",
        &format!("{TESTS}/head"),
        vec![pk_header(json!("p"))],
        vec![],
    );
    assert_eq!(body_json(&head)["n"], 0);
    // A create of a taken id is the 409 of its operation.
    let r = batch(
        &s,
        "p",
        true,
        json!([{"operationType": "Create", "resourceBody": {"id": "head", "patientId": "p"}}]),
    );
    assert_eq!(r.status, 207);
    assert_eq!(body_json(&r)[0]["statusCode"], 409);
}

#[test]
fn malformed_batches_are_refused_whole_and_write_nothing() {
    let s = store();
    let create = |id: &str, pk: &str| json!({"operationType": "Create", "resourceBody": {"id": id, "patientId": pk}});
    let too_many: Vec<Value> = (0..101).map(|i| create(&format!("d{i}"), "p")).collect();
    for (atomic, body, needle) in [
        (false, json!([create("a", "p")]), "atomic"),
        (true, json!({"operationType": "Create"}), "array"),
        (true, json!([]), "at least one"),
        (true, Value::Array(too_many), "more operations"),
        (
            true,
            json!([create("a", "p"), create("b", "other")]),
            "operation 1",
        ),
        (
            true,
            json!([create("a", "p"), {"operationType": "Patch", "id": "a", "resourceBody": {"operations": []}}]),
            "Patch",
        ),
        (
            true,
            json!([create("a", "p"), {"operationType": "Drop", "id": "a"}]),
            "Drop",
        ),
        (
            true,
            json!([{"operationType": "Read", "id": "a", "extra": 1}]),
            "extra",
        ),
        (
            true,
            json!([{"operationType": "Create", "ifMatch": "x", "resourceBody": {"id": "a", "patientId": "p"}}]),
            "ifMatch",
        ),
        (
            true,
            json!([{"operationType": "Replace", "id": "a", "resourceBody": {"id": "b", "patientId": "p"}}]),
            "id",
        ),
    ] {
        let r = batch(&s, "p", atomic, body.clone());
        assert_eq!(r.status, 400, "{body}");
        assert!(message(&r).contains(needle), "{body}: {}", message(&r));
    }
    assert_eq!(read_status(&s, "p", "a"), 404);
    assert_eq!(read_status(&s, "p", "d0"), 404);
    let r = s.send(
        "POST",
        TESTS,
        vec![
            pk_header(json!("p")),
            ("x-ms-cosmos-is-batch-request".into(), "True".into()),
            ("x-ms-cosmos-batch-atomic".into(), "True".into()),
        ],
        b"[{".to_vec(),
    );
    assert_eq!(r.status, 400);
    assert!(message(&r).contains("not valid JSON"));
}

#[test]
fn every_response_carries_the_common_headers() {
    let s = store();
    for r in [
        s.send("GET", "/", vec![], vec![]),
        s.send("GET", "/dbs/nope", vec![], vec![]),
        s.test_doc("a", "p", json!({})),
        s.send(
            "DELETE",
            "/dbs/patients/colls/tests/docs/a",
            vec![pk_header(json!("p"))],
            vec![],
        ),
    ] {
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(uuid::Uuid::parse_str(r.header("x-ms-activity-id").unwrap()).is_ok());
        assert_eq!(r.header("x-ms-request-charge"), Some("1"));
    }
}

// ---------------------------------------------------------------- documents

#[test]
fn document_lifecycle_follows_cosmos_status_codes() {
    let s = store();
    let created = s.test_doc(
        "t1",
        "p1",
        json!({"performer": "lab", "_etag": "client value", "_ts": 1}),
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let doc = body_json(&created);
    assert_eq!(doc["performer"], "lab");
    assert_eq!(doc["_ts"], NOW);
    let etag = doc["_etag"].as_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag != "client value");
    assert_eq!(created.header("etag"), Some(etag.as_str()));
    assert!(doc["_self"]
        .as_str()
        .unwrap()
        .ends_with(&format!("docs/{}/", doc["_rid"].as_str().unwrap())));
    assert_eq!(doc["_attachments"], "attachments/");

    let path = format!("{TESTS}/t1");
    let read = s.send("GET", &path, vec![pk_header(json!("p1"))], vec![]);
    assert_eq!((read.status, body_json(&read)), (200, doc.clone()));
    // Same id in another partition is another document.
    assert_eq!(
        s.send("GET", &path, vec![pk_header(json!("p2"))], vec![])
            .status,
        404
    );
    assert_eq!(s.test_doc("t1", "p2", json!({})).status, 201);

    let again = s.test_doc("t1", "p1", json!({}));
    assert_eq!(
        (again.status, error_code(&again).as_str()),
        (409, "Conflict")
    );

    let not_modified = s.send(
        "GET",
        &path,
        vec![
            pk_header(json!("p1")),
            ("if-none-match".into(), etag.clone()),
        ],
        vec![],
    );
    assert_eq!(not_modified.status, 304);

    let new_body = json!({"id": "t1", "patientId": "p1", "performer": "lab-2"})
        .to_string()
        .into_bytes();
    let replaced = s.send(
        "PUT",
        &path,
        vec![pk_header(json!("p1")), ("if-match".into(), etag.clone())],
        new_body.clone(),
    );
    assert_eq!(replaced.status, 200);
    let replaced_doc = body_json(&replaced);
    assert_eq!(replaced_doc["performer"], "lab-2");
    assert_eq!(replaced_doc["_rid"], doc["_rid"], "replace keeps the rid");
    assert_ne!(replaced_doc["_etag"], doc["_etag"]);

    let stale = s.send(
        "PUT",
        &path,
        vec![pk_header(json!("p1")), ("if-match".into(), etag.clone())],
        new_body.clone(),
    );
    assert_eq!(
        (stale.status, error_code(&stale).as_str()),
        (412, "PreconditionFailed")
    );
    let stale_delete = s.send(
        "DELETE",
        &path,
        vec![pk_header(json!("p1")), ("if-match".into(), etag)],
        vec![],
    );
    assert_eq!(stale_delete.status, 412);

    let missing = s.send(
        "PUT",
        &format!("{TESTS}/nope"),
        vec![pk_header(json!("p1"))],
        json!({"id": "nope", "patientId": "p1"})
            .to_string()
            .into_bytes(),
    );
    assert_eq!(
        (missing.status, error_code(&missing).as_str()),
        (404, "NotFound")
    );

    let deleted = s.send("DELETE", &path, vec![pk_header(json!("p1"))], vec![]);
    assert_eq!((deleted.status, deleted.body.len()), (204, 0));
    assert_eq!(
        s.send("GET", &path, vec![pk_header(json!("p1"))], vec![])
            .status,
        404
    );
    assert_eq!(
        s.send("DELETE", &path, vec![pk_header(json!("p1"))], vec![])
            .status,
        404
    );
    // The other partition's document is untouched.
    assert_eq!(
        s.send("GET", &path, vec![pk_header(json!("p2"))], vec![])
            .status,
        200
    );
}

#[test]
fn upsert_creates_then_replaces() {
    let s = store();
    let upsert = |doc: Value, extra: Vec<(String, String)>| {
        let mut headers = vec![
            pk_header(json!("p")),
            ("x-ms-documentdb-is-upsert".into(), "True".into()),
        ];
        headers.extend(extra);
        s.send("POST", TESTS, headers, doc.to_string().into_bytes())
    };
    let first = upsert(json!({"id": "u", "patientId": "p", "v": 1}), vec![]);
    assert_eq!(first.status, 201);
    let second = upsert(json!({"id": "u", "patientId": "p", "v": 2}), vec![]);
    assert_eq!(second.status, 200);
    assert_eq!(body_json(&second)["v"], 2);
    assert_eq!(body_json(&second)["_rid"], body_json(&first)["_rid"]);
    let stale = upsert(
        json!({"id": "u", "patientId": "p", "v": 3}),
        vec![(
            "if-match".into(),
            body_json(&first)["_etag"].as_str().unwrap().into(),
        )],
    );
    assert_eq!(stale.status, 412);
}

#[test]
fn partition_keys_must_be_sent_and_must_match_the_document() {
    let s = store();
    let body = json!({"id": "a", "patientId": "p"})
        .to_string()
        .into_bytes();
    let r = s.send("POST", TESTS, vec![], body.clone());
    assert_eq!(r.status, 400);
    assert!(message(&r).contains("PartitionKey"));
    let r = s.send("POST", TESTS, vec![pk_header(json!("q"))], body.clone());
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r),
        "PartitionKey extracted from document doesn't match the one specified in the header"
    );
    // A number is not the string of its digits.
    let r = s.create(json!({"id": "n", "patientId": 5}), json!("5"));
    assert_eq!(r.status, 400);
    assert_eq!(
        s.create(json!({"id": "n", "patientId": 5}), json!(5.0))
            .status,
        201
    );
    assert_eq!(
        s.send(
            "GET",
            &format!("{TESTS}/n"),
            vec![pk_header(json!(5))],
            vec![]
        )
        .status,
        200
    );
    for bad in ["p", "[]", "[\"a\",\"b\"]", "[[1]]"] {
        let r = s.send(
            "POST",
            TESTS,
            vec![("x-ms-documentdb-partitionkey".into(), bad.into())],
            body.clone(),
        );
        assert_eq!(r.status, 400, "{bad}");
    }
    for method in ["GET", "DELETE"] {
        let r = s.send(method, &format!("{TESTS}/a"), vec![], vec![]);
        assert_eq!(r.status, 400, "{method} without a partition key");
    }
    // A document without the property belongs to the "none" partition [{}].
    let none = s.send(
        "POST",
        TESTS,
        vec![("x-ms-documentdb-partitionkey".into(), "[{}]".into())],
        json!({"id": "nopk"}).to_string().into_bytes(),
    );
    assert_eq!(none.status, 201);
    let r = s.create(json!({"id": "obj", "patientId": {"a": 1}}), json!("x"));
    assert_eq!(r.status, 400);
}

#[test]
fn ids_and_bodies_are_validated() {
    let s = store();
    for bad_id in [
        json!(""),
        json!("a/b"),
        json!("a\\b"),
        json!("a?b"),
        json!("a#b"),
        json!("x".repeat(256)),
        json!(5),
        json!(null),
    ] {
        let r = s.create(json!({"id": bad_id, "patientId": "p"}), json!("p"));
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (400, "BadRequest"),
            "{bad_id}"
        );
    }
    assert_eq!(
        s.create(json!({"id": "x".repeat(255), "patientId": "p"}), json!("p"))
            .status,
        201
    );
    assert_eq!(
        s.create(json!({"id": "ünïcode id", "patientId": "p"}), json!("p"))
            .status,
        201
    );
    let r = s.create(json!({"patientId": "p"}), json!("p"));
    assert!(r.status == 400 && message(&r).contains("'id"));
    for body in [&b"{\"id\": "[..], b"[1,2]", b"\"text\"", b"", b"\xff\xfe"] {
        let r = s.send("POST", TESTS, vec![pk_header(json!("p"))], body.to_vec());
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = s.send(
        "POST",
        TESTS,
        vec![pk_header(json!("p"))],
        deep.into_bytes(),
    );
    assert_eq!(r.status, 400);

    let big = json!({"id": "big", "patientId": "p", "blob": "x".repeat(crate::MAX_BODY_BYTES)});
    let r = s.create(big, json!("p"));
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (413, "RequestEntityTooLarge")
    );
    assert!(message(&r).contains("Request size is too large"));

    let path = format!("{TESTS}/one");
    assert_eq!(s.test_doc("one", "p", json!({})).status, 201);
    let r = s.send(
        "PUT",
        &path,
        vec![pk_header(json!("p"))],
        json!({"id": "two", "patientId": "p"})
            .to_string()
            .into_bytes(),
    );
    assert_eq!(r.status, 400, "body id differs from the path id");
    let encoded = s.send(
        "GET",
        &format!("{TESTS}/%C3%BCn%C3%AFcode%20id"),
        vec![pk_header(json!("p"))],
        vec![],
    );
    assert_eq!(encoded.status, 200);
}

// ---------------------------------------------------------------- queries

#[test]
fn queries_follow_cosmos_type_rules() {
    let s = store();
    for (id, value) in [
        ("num5", json!(5)),
        ("real5", json!(5.0)),
        ("str5", json!("5")),
        ("num7", json!(7.5)),
        ("null", json!(null)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("arr", json!([5])),
        ("obj", json!({"v": 5})),
    ] {
        assert_eq!(s.test_doc(id, "p", json!({"v": value})).status, 201);
    }
    assert_eq!(s.test_doc("undef", "p", json!({})).status, 201);
    let q = |op: &str, value: Value| {
        let mut ids = s.ids(
            &format!("SELECT * FROM c WHERE c.v {op} @x"),
            json!([{"name": "@x", "value": value}]),
        );
        ids.sort();
        ids
    };
    assert_eq!(q("=", json!(5)), ["num5", "real5"]);
    assert_eq!(q("=", json!("5")), ["str5"]);
    assert_eq!(
        q("!=", json!(5)),
        ["num7"],
        "!= only matches values of the same type"
    );
    assert_eq!(q("<>", json!("x")), ["str5"]);
    assert_eq!(q(">", json!(5)), ["num7"]);
    assert_eq!(q(">=", json!(5)), ["num5", "num7", "real5"]);
    assert_eq!(q("<", json!("6")), ["str5"]);
    assert_eq!(q("=", json!(null)), ["null"]);
    assert_eq!(q("!=", json!(null)), Vec::<String>::new());
    assert_eq!(q("=", json!(true)), ["true"]);
    assert_eq!(q("<", json!(true)), ["false"]);
    assert_eq!(q("=", json!(1)), Vec::<String>::new(), "true is not 1");
    // Parameter first, operator flipped.
    let ids = s.ids(
        "SELECT * FROM c WHERE @x < c.v",
        json!([{"name": "@x", "value": 5}]),
    );
    assert_eq!(ids, ["num7"]);
    let r = s.query(
        "SELECT * FROM c WHERE c.v = @x",
        json!([{"name": "@x", "value": [5]}]),
        None,
        None,
        None,
    );
    assert_eq!(r.status, 400);
    assert!(message(&r).starts_with("Unsupported query:"));
}

#[test]
fn queries_support_nested_paths_startswith_and_partition_scope() {
    let s = store();
    s.test_doc(
        "a",
        "p1",
        json!({"name": "Anna", "addr": {"city": "Oslo"}, "tags": ["x", "y"], "we ird": 1}),
    );
    s.test_doc(
        "b",
        "p1",
        json!({"name": "Annette", "addr": {"city": "Bergen"}, "tags": ["y"]}),
    );
    s.test_doc("c", "p2", json!({"name": "anna", "addr": {"city": "Oslo"}}));
    s.test_doc("d", "p2", json!({"name": 5}));
    let p = |v: &str| json!([{"name": "@v", "value": v}]);
    assert_eq!(
        s.ids("SELECT * FROM c WHERE STARTSWITH(c.name, @v)", p("Ann")),
        ["a", "b"]
    );
    assert_eq!(
        s.ids("SELECT * FROM c WHERE STARTSWITH(c.name, @v)", p("")),
        ["a", "b", "c"]
    );
    assert!(s
        .ids(
            "SELECT * FROM c WHERE STARTSWITH(c.name, @v)",
            json!([{"name": "@v", "value": 5}])
        )
        .is_empty());
    assert_eq!(
        s.ids("SELECT * FROM c WHERE c.addr.city = @v", p("Oslo")),
        ["a", "c"]
    );
    assert_eq!(
        s.ids(
            "SELECT * FROM c WHERE c[\"addr\"]['city'] = @v",
            p("Bergen")
        ),
        ["b"]
    );
    assert_eq!(s.ids("SELECT * FROM c WHERE c.tags[1] = @v", p("y")), ["a"]);
    assert_eq!(
        s.ids(
            "SELECT * FROM c WHERE c[\"we ird\"] = @v",
            json!([{"name": "@v", "value": 1}])
        ),
        ["a"]
    );
    assert_eq!(
        s.ids(
            "select * from root r where r.addr.city = @v and STARTSWITH(r.name, @w)",
            json!([{"name": "@v", "value": "Oslo"}, {"name": "@w", "value": "a"}])
        ),
        ["c"]
    );
    let (ids, _) = s.query_all(
        "SELECT * FROM c WHERE c.addr.city = @v",
        p("Oslo"),
        Some(json!("p2")),
        10,
    );
    assert_eq!(ids, ["c"]);
    let (ids, _) = s.query_all("SELECT * FROM c", json!([]), Some(json!("p1")), 10);
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn order_by_sorts_by_cosmos_type_order_both_ways() {
    let s = store();
    for (id, value) in [
        ("s", json!("b")),
        ("n2", json!(2)),
        ("n1", json!(1.5)),
        ("t", json!(true)),
        ("f", json!(false)),
        ("z", json!(null)),
        ("s0", json!("a")),
        ("a", json!([1])),
    ] {
        s.test_doc(id, &format!("p-{id}"), json!({"v": value}));
    }
    s.test_doc("u", "p-u", json!({}));
    let expected = ["u", "z", "f", "t", "n1", "n2", "s0", "s", "a"];
    for page in [1, 2, 4, 100] {
        let (asc, pages) = s.query_all("SELECT * FROM c ORDER BY c.v", json!([]), None, page);
        assert_eq!(asc, expected, "page size {page}");
        assert_eq!(pages, expected.len().div_ceil(page as usize).max(1));
        let (desc, _) = s.query_all("SELECT * FROM c ORDER BY c.v DESC", json!([]), None, page);
        let mut reversed = expected.to_vec();
        reversed.reverse();
        assert_eq!(desc, reversed, "page size {page}");
    }
}

#[test]
fn injection_like_values_are_stored_and_matched_literally() {
    let s = store();
    let evil = [
        "'; DROP TABLE docstore_documents; --",
        "\" OR 1=1 --",
        "x') OR json_extract(body, '$.id') IS NOT NULL --",
        "%_*?",
        "$.id",
    ];
    for (i, value) in evil.iter().enumerate() {
        assert_eq!(
            s.test_doc(&format!("e{i}"), value, json!({"name": value}))
                .status,
            201
        );
    }
    for (i, value) in evil.iter().enumerate() {
        let ids = s.ids(
            "SELECT * FROM c WHERE c.name = @n",
            json!([{"name": "@n", "value": value}]),
        );
        assert_eq!(ids, [format!("e{i}")], "{value}");
        let (ids, _) = s.query_all("SELECT * FROM c", json!([]), Some(json!(value)), 10);
        assert_eq!(ids, [format!("e{i}")], "{value}");
        let doc = s.send(
            "GET",
            &format!("{TESTS}/e{i}"),
            vec![pk_header(json!(value))],
            vec![],
        );
        assert_eq!(body_json(&doc)["name"], json!(value));
    }
    assert!(
        s.ids(
            "SELECT * FROM c WHERE STARTSWITH(c.name, @n)",
            json!([{"name": "@n", "value": "%"}])
        )
        .len()
            == 1
    );
    assert_eq!(
        s.ids("SELECT * FROM c", json!([])).len(),
        evil.len(),
        "the table is intact"
    );
}

#[test]
fn unsupported_and_malformed_queries_are_400() {
    let s = store();
    for query in [
        "SELECT c.id FROM c",
        "SELECT * FROM c WHERE c.a = 'x'",
        "SELECT * FROM c WHERE c.a = @a AND (c.b = @a OR c.c = @a)",
        "SELECT COUNT(1) FROM c",
        "UPDATE c SET x = 1",
    ] {
        let r = s.query(query, json!([{"name": "@a", "value": 1}]), None, None, None);
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (400, "BadRequest"),
            "{query}"
        );
        assert!(
            message(&r).starts_with("Unsupported query: "),
            "{query}: {}",
            message(&r)
        );
    }
    let r = s.query(
        "SELECT * FROM c WHERE c.a = @missing",
        json!([]),
        None,
        None,
        None,
    );
    assert!(r.status == 400 && message(&r).contains("@missing"));
    let r = s.query(
        "SELECT * FROM c",
        json!([{"name": "nope", "value": 1}]),
        None,
        None,
        None,
    );
    assert_eq!(r.status, 400);
    let r = s.query(
        "SELECT * FROM c",
        json!([{"name": "@a", "value": 1}, {"name": "@a", "value": 2}]),
        None,
        None,
        None,
    );
    assert_eq!(r.status, 400);
    let headers = vec![(
        "content-type".to_string(),
        "application/query+json".to_string(),
    )];
    for body in [
        &b"{\"query\": \"SELECT * FROM c\"}"[..],
        b"{\"query\": \"SELECT * FROM c\", \"parameters\": null}",
    ] {
        assert_eq!(
            s.send("POST", TESTS, headers.clone(), body.to_vec()).status,
            200
        );
    }
    for body in [&b"{"[..], b"{\"parameters\": []}", b"[]", b"{\"query\": 5}"] {
        assert_eq!(
            s.send("POST", TESTS, headers.clone(), body.to_vec()).status,
            400
        );
    }
    for bad in ["0", "-2", "ten", "1.5"] {
        let r = s.send(
            "POST",
            TESTS,
            vec![
                headers[0].clone(),
                ("x-ms-max-item-count".into(), bad.into()),
            ],
            json!({"query": "SELECT * FROM c"}).to_string().into_bytes(),
        );
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[test]
fn query_plan_requests_get_a_single_range_plan() {
    let s = store();
    let headers = vec![
        (
            "content-type".to_string(),
            "application/query+json".to_string(),
        ),
        (
            "x-ms-cosmos-is-query-plan-request".to_string(),
            "True".to_string(),
        ),
    ];
    let r = s.send(
        "POST",
        TESTS,
        headers.clone(),
        json!({"query": "SELECT * FROM c ORDER BY c.n"})
            .to_string()
            .into_bytes(),
    );
    assert_eq!(r.status, 200);
    let plan = body_json(&r);
    assert_eq!(
        plan["queryRanges"],
        json!([{"min": "", "max": "FF", "isMinInclusive": true, "isMaxInclusive": false}])
    );
    assert_eq!(plan["queryInfo"]["rewrittenQuery"], "");
    let r = s.send(
        "POST",
        TESTS,
        headers,
        json!({"query": "SELECT VALUE COUNT(1) FROM c"})
            .to_string()
            .into_bytes(),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn paging_covers_every_document_once_and_rejects_foreign_tokens() {
    let s = store();
    for i in 0..25 {
        s.test_doc(
            &format!("d{i:02}"),
            &format!("p{}", i % 4),
            json!({"n": i % 7}),
        );
    }
    let (ids, pages) = s.query_all("SELECT * FROM c", json!([]), None, 10);
    assert_eq!(pages, 3);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25);
    // Without ORDER BY the order is (partition key, id): stable across calls.
    assert_eq!(s.query_all("SELECT * FROM c", json!([]), None, 7).0, ids);

    let (ordered, pages) = s.query_all(
        "SELECT * FROM c WHERE c.n >= @z ORDER BY c.n",
        json!([{"name": "@z", "value": 0}]),
        None,
        4,
    );
    assert_eq!(pages, 7);
    assert_eq!(ordered.len(), 25);

    // Read feed pages too.
    let mut token: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut headers = vec![("x-ms-max-item-count".to_string(), "10".to_string())];
        if let Some(t) = &token {
            headers.push(("x-ms-continuation".into(), t.clone()));
        }
        let r = s.send("GET", TESTS, headers, vec![]);
        seen += body_json(&r)["_count"].as_u64().unwrap();
        match r.header("x-ms-continuation") {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, 25);

    let first = s.query(
        "SELECT * FROM c WHERE c.n = @n",
        json!([{"name": "@n", "value": 1}]),
        None,
        Some(1),
        None,
    );
    let token = first.header("x-ms-continuation").unwrap().to_string();
    let same = s.query(
        "SELECT * FROM c WHERE c.n = @n",
        json!([{"name": "@n", "value": 1}]),
        None,
        Some(1),
        Some(&token),
    );
    assert_eq!(same.status, 200);
    for (query, value, pk) in [
        ("SELECT * FROM c WHERE c.n = @n", 2, None),
        ("SELECT * FROM c WHERE c.n >= @n", 1, None),
        ("SELECT * FROM c WHERE c.n = @n ORDER BY c.n", 1, None),
        ("SELECT * FROM c WHERE c.n = @n", 1, Some(json!("p1"))),
    ] {
        let r = s.query(
            query,
            json!([{"name": "@n", "value": value}]),
            pk,
            Some(1),
            Some(&token),
        );
        assert_eq!(r.status, 400, "{query}");
        assert!(message(&r).contains("continuation"));
    }
    let r = s.query(
        "SELECT * FROM c",
        json!([]),
        None,
        Some(1),
        Some("garbage!"),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn page_size_defaults_to_100_and_caps_at_1000() {
    let s = store();
    let sql = RusqliteSql::open(&s.path).unwrap();
    crate::sqlstore::create_schema(&sql).unwrap();
    // Bulk insert directly: 1,001 documents through the API would be slow.
    sql.execute("BEGIN", &[]).unwrap();
    for i in 0..1001 {
        let id = format!("d{i:04}");
        let body = json!({"id": id, "patientId": "p"}).to_string();
        sql.execute(
            "INSERT INTO docstore_documents (db, coll, pk, id, rid, etag, ts, body) VALUES ('patients', 'tests', '\"p\"', ?, 'r', 'e', 0, ?)",
            &[SqlValue::Text(id), SqlValue::Text(body)],
        )
        .unwrap();
    }
    sql.execute("COMMIT", &[]).unwrap();
    let count = |page: Option<i64>| {
        let r = s.query("SELECT * FROM c", json!([]), None, page, None);
        body_json(&r)["_count"].as_u64().unwrap()
    };
    assert_eq!(count(None), 100);
    assert_eq!(count(Some(-1)), 100);
    assert_eq!(count(Some(5000)), 1000);
    assert_eq!(count(Some(1)), 1);
}

#[test]
fn pages_stop_at_the_size_budget() {
    let s = store();
    let blob = "x".repeat(crate::MAX_BODY_BYTES - 200);
    for i in 0..5 {
        assert_eq!(
            s.test_doc(&format!("big{i}"), "p", json!({"blob": blob}))
                .status,
            201
        );
    }
    // 2 MB documents: two fit under the 4 MB budget only without overhead,
    // so each page holds at most two, and every document still comes back.
    let (ids, pages) = s.query_all("SELECT * FROM c", json!([]), None, 100);
    assert_eq!(ids, ["big0", "big1", "big2", "big3", "big4"]);
    assert!(pages >= 3, "{pages} pages");
}

// ---------------------------------------------------------------- concurrency

#[test]
fn concurrent_replaces_with_the_same_etag_let_exactly_one_win() {
    let s = Arc::new(store());
    for round in 0..8 {
        let id = format!("c{round}");
        let created = s.test_doc(&id, "p", json!({"v": 0}));
        let etag = body_json(&created)["_etag"].as_str().unwrap().to_string();
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (s, barrier, etag, id) = (s.clone(), barrier.clone(), etag.clone(), id.clone());
                std::thread::spawn(move || {
                    let body = json!({"id": id, "patientId": "p", "v": t + 1})
                        .to_string()
                        .into_bytes();
                    barrier.wait();
                    s.send(
                        "PUT",
                        &format!("{TESTS}/{id}"),
                        vec![pk_header(json!("p")), ("if-match".into(), etag)],
                        body,
                    )
                    .status
                })
            })
            .collect();
        let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 412], "round {round}");
    }
}

#[test]
fn concurrent_creates_of_one_id_give_one_201_and_one_409() {
    let s = Arc::new(store());
    for round in 0..8 {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (s, barrier) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    s.test_doc(&format!("race{round}"), "p", json!({"writer": t}))
                        .status
                })
            })
            .collect();
        let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

#[test]
fn paging_is_stable_while_documents_are_inserted() {
    let s = Arc::new(store());
    for i in 0..30 {
        s.test_doc(
            &format!("base{i:02}"),
            &format!("p{}", i % 5),
            json!({"n": i}),
        );
    }
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            for i in 0..60 {
                // Lands before, between and after the reader's position.
                let r = s.test_doc(
                    &format!("new{i:02}"),
                    &format!("p{}", i % 7),
                    json!({"n": i % 30}),
                );
                assert_eq!(r.status, 201);
            }
        })
    };
    let mut results = Vec::new();
    for query in [
        "SELECT * FROM c",
        "SELECT * FROM c ORDER BY c.n",
        "SELECT * FROM c ORDER BY c.n DESC",
    ] {
        let (ids, _) = s.query_all(query, json!([]), None, 4);
        results.push((query, ids));
    }
    writer.join().unwrap();
    for (query, ids) in results {
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{query}: a document was returned twice"
        );
        for i in 0..30 {
            assert!(
                unique.contains(&format!("base{i:02}")),
                "{query}: base{i:02} was skipped"
            );
        }
    }
}

#[test]
fn wal_mode_is_enabled_once_and_persists() {
    let s = store();
    s.send(
        "GET",
        &format!("{TESTS}/x"),
        vec![pk_header(json!("p"))],
        vec![],
    );
    let sql = RusqliteSql::open(&s.path).unwrap();
    let mode = sql.execute("PRAGMA journal_mode", &[]).unwrap();
    assert_eq!(mode, vec![vec![SqlValue::Text("wal".into())]]);
}

// ---------------------------------------------------------------- SQL failures

/// A connection whose every statement fails the same way.
struct Failing(SqlError);

impl Sql for Failing {
    fn execute(&self, _: &str, _: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, SqlError> {
        Err(self.0.clone())
    }
}

fn through(sql: &impl Sql) -> StoreResponse {
    let config = StoreConfig::from_variables(KEY, SPEC).unwrap();
    let mut headers = signed_headers(KEY, "POST", TESTS, &http_date(NOW));
    headers.push(pk_header(json!("p")));
    let body = json!({"id": "a", "patientId": "p"})
        .to_string()
        .into_bytes();
    handle(
        sql,
        &config,
        &StoreRequest {
            method: "POST".into(),
            path: TESTS.into(),
            headers,
            body,
            base_url: BASE.into(),
        },
        NOW,
        &mut ThreadLockWait::new(),
    )
}

#[test]
fn a_locked_database_is_429_with_retry_after() {
    let r = through(&Failing(SqlError::from_message("database is locked")));
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (429, "TooManyRequests")
    );
    assert_eq!(r.header("x-ms-retry-after-ms"), Some("100"));
}

#[test]
fn internal_sql_errors_are_500_without_their_text() {
    let r = through(&Failing(SqlError::from_message(
        "no such table: secret_internal_detail",
    )));
    assert_eq!(r.status, 500);
    assert!(!String::from_utf8_lossy(&r.body).contains("secret_internal_detail"));
}

#[test]
fn a_held_write_lock_times_out_into_429() {
    let s = store();
    s.test_doc("x", "p", json!({}));
    let holder = RusqliteSql::open(&s.path).unwrap();
    holder.execute("BEGIN IMMEDIATE", &[]).unwrap();
    let started = std::time::Instant::now();
    let r = s.test_doc("y", "p", json!({}));
    assert_eq!(r.status, 429);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(4500),
        "the lock was not waited for"
    );
    holder.execute("ROLLBACK", &[]).unwrap();
    // Reads proceed during a write in WAL mode.
    holder.execute("BEGIN IMMEDIATE", &[]).unwrap();
    assert_eq!(
        s.send(
            "GET",
            &format!("{TESTS}/x"),
            vec![pk_header(json!("p"))],
            vec![]
        )
        .status,
        200
    );
    holder.execute("ROLLBACK", &[]).unwrap();
}

#[test]
fn a_briefly_held_write_lock_is_waited_for_in_short_steps() {
    let s = store();
    s.test_doc("x", "p", json!({}));
    let holder = RusqliteSql::open(&s.path).unwrap();
    holder.execute("BEGIN IMMEDIATE", &[]).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(30));
        holder.execute("ROLLBACK", &[]).unwrap();
    });
    assert_eq!(
        s.test_doc("y", "p", json!({})).status,
        201,
        "created once the lock was free"
    );
    release.join().unwrap();
    let step = |retry| crate::lock_backoff(retry).as_millis();
    assert_eq!(
        (0..8).map(step).collect::<Vec<_>>(),
        vec![0; 8],
        "first retries are immediate"
    );
    assert_eq!((8..13).map(step).collect::<Vec<_>>(), vec![1, 2, 4, 8, 8]);
    assert_eq!(step(u32::MAX), 8);
}

#[test]
fn sql_errors_are_classified_from_their_text() {
    assert!(matches!(
        SqlError::from_message("Io(\"database is locked\")"),
        SqlError::Busy(_)
    ));
    assert!(matches!(
        SqlError::from_message("UNIQUE constraint failed: docstore_documents.id"),
        SqlError::Constraint(_)
    ));
    assert!(matches!(
        SqlError::from_message("disk I/O error"),
        SqlError::Other(_)
    ));
}

/// Records SQLite's plan for every query the store runs.
struct Planning {
    sql: RusqliteSql,
    plans: std::cell::RefCell<Vec<String>>,
}

impl Sql for Planning {
    fn execute(
        &self,
        statement: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, crate::SqlError> {
        if statement.starts_with("SELECT pk, id, body") {
            let plan = self
                .sql
                .execute(&format!("EXPLAIN QUERY PLAN {statement}"), params)?;
            let details: Vec<String> = plan
                .iter()
                .filter_map(|row| match row.last() {
                    Some(SqlValue::Text(t)) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            self.plans.borrow_mut().push(details.join("; "));
        }
        self.sql.execute(statement, params)
    }
}

#[test]
fn alternatives_joined_by_or_find_each_document_by_its_key() {
    let s = store();
    for (id, patient, kind) in [
        ("a", "p1", "x"),
        ("a", "p2", "x"),
        ("b", "p2", "y"),
        ("c", "p3", "x"),
        ("d", "p3", "y"),
        ("e", "p4", "x"),
    ] {
        assert_eq!(s.test_doc(id, patient, json!({"kind": kind})).status, 201);
    }
    // ReadMany's shape: one (id, partition key) pair per alternative, the
    // same id in two partitions told apart, plus a looser alternative.
    let query = "SELECT * FROM c WHERE (c.id = @i0 AND c.patientId = @p0) \
        OR (c.patientId = @p1 AND c.id = @i1) OR (c.patientId = @p2 AND c.kind = @k)";
    let params = json!([
        {"name": "@i0", "value": "a"}, {"name": "@p0", "value": "p2"},
        {"name": "@i1", "value": "b"}, {"name": "@p1", "value": "p2"},
        {"name": "@p2", "value": "p3"}, {"name": "@k", "value": "y"},
    ]);
    let found = |pk: Option<Value>, page: i64| {
        let (ids, _) = s.query_all(query, params.clone(), pk, page);
        ids
    };
    assert_eq!(found(None, 100), ["a", "b", "d"]);
    // Paged one at a time, nothing is lost or repeated across alternatives.
    assert_eq!(found(None, 1), ["a", "b", "d"]);
    // The partition key header still scopes every alternative.
    assert_eq!(found(Some(json!("p3")), 100), ["d"]);
    assert!(found(Some(json!("p1")), 100).is_empty());
    // A key hint never changes what matches: a number is not the string.
    let r = s.query(
        "SELECT * FROM c WHERE c.id = @i OR c.patientId = @p",
        json!([{"name": "@i", "value": 5}, {"name": "@p", "value": "p4"}]),
        None,
        None,
        None,
    );
    assert_eq!(r.status, 200);
    let docs = body_json(&r)["Documents"].clone();
    assert_eq!(docs.as_array().map(Vec::len), Some(1), "{docs}");
    assert_eq!(docs[0]["id"], json!("e"));

    // Each (id, partition key) alternative is one primary key lookup.
    let plan = s.plan(TESTS, query, params);
    assert!(plan.contains("MULTI-INDEX OR"), "{plan}");
    assert!(
        plan.contains("(db=? AND coll=? AND pk=? AND id=?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN"), "{plan}");
}

#[test]
fn an_id_lookup_in_a_container_partitioned_by_id_uses_the_key() {
    let s = store();
    let id = "5f0c6a2e-8d2b-4a55-9a51-3b8f0d3b1c11";
    let created = s.send(
        "POST",
        PATIENTS,
        vec![pk_header(json!(id))],
        json!({"id": id}).to_string().into_bytes(),
    );
    assert_eq!(created.status, 201);
    // patient-api's search by id: across partitions, but `/id` is the key.
    let plan = s.plan(
        PATIENTS,
        "SELECT * FROM c WHERE c.id = @id",
        json!([{"name": "@id", "value": id}]),
    );
    assert!(
        plan.contains("(db=? AND coll=? AND pk=? AND id=?)"),
        "{plan}"
    );
}

impl Store {
    /// SQLite's plan for the one page query a cross-partition query runs.
    fn plan(&self, docs_path: &str, query: &str, params: Value) -> String {
        let planning = Planning {
            sql: RusqliteSql::open(&self.path).unwrap(),
            plans: Default::default(),
        };
        let body = json!({"query": query, "parameters": params}).to_string();
        let mut headers = signed_headers(KEY, "POST", docs_path, &http_date(NOW));
        headers.push(("content-type".into(), "application/query+json".into()));
        headers.push(("x-ms-documentdb-isquery".into(), "True".into()));
        let request = StoreRequest {
            method: "POST".into(),
            path: docs_path.into(),
            headers,
            body: body.into_bytes(),
            base_url: BASE.into(),
        };
        let r = handle(
            &planning,
            &self.config,
            &request,
            NOW,
            &mut ThreadLockWait::new(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let mut plans = planning.plans.into_inner();
        assert_eq!(plans.len(), 1);
        plans.pop().unwrap()
    }
}
