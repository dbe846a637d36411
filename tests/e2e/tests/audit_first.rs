//! Audit first, fail closed: every patient and test operation writes exactly
//! one audit record before it touches patient data; requests rejected before
//! that write none; when the audit register cannot be written, nothing is
//! read or written and the client gets 503. The register and the store are
//! read straight from the SQLite file behind the local document store.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Reply, TestApp};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use spin_test_host::Fault;

// --- helpers -----------------------------------------------------------------

fn patient(first: &str) -> Value {
    json!({"firstName": first, "lastName": "Lund", "gender": "female", "dateOfBirth": "1980-02-29", "postCode": "2100"})
}

fn test_body() -> Value {
    json!({"performer": "Lab A", "orderReference": "ORD-7", "observations": [{
        "id": "obs-1", "code": "GLU", "measurement": "5.4 mmol/L",
        "interpretation": "normal", "issued": "2024-03-01T09:30:00Z", "status": "final"}]})
}

fn open(app: &TestApp) -> Connection {
    let host = app.host.as_ref().expect("in-process host");
    let conn =
        Connection::open_with_flags(host.app.sqlite_path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store's SQLite file");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// Rows of the store's one table for a database: (container, pk, id, etag, body).
fn rows(app: &TestApp, db: &str) -> Vec<(String, String, String, String, String)> {
    let conn = open(app);
    let mut stmt = match conn.prepare(
        "SELECT coll, pk, id, etag, body FROM docstore_documents WHERE db = ?1 ORDER BY coll, pk, id",
    ) {
        Ok(stmt) => stmt,
        // No request has reached the store yet: no table, nothing stored.
        Err(_) => return Vec::new(),
    };
    stmt.query_map([db], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every record of the audit register (chain heads left out).
fn audit_records(app: &TestApp) -> Vec<Value> {
    rows(app, "audit")
        .into_iter()
        .filter(|(coll, ..)| coll == "records")
        .map(|(.., body)| serde_json::from_str::<Value>(&body).unwrap())
        .filter(|doc| doc["docType"] == "auditRecord")
        .collect()
}

/// The patients database (patients and tests) as stored, etags included.
fn patient_store(app: &TestApp) -> Vec<(String, String, String, String, String)> {
    rows(app, "patients")
}

/// The audit records of one request, by its correlation id.
fn records_of<'a>(records: &'a [Value], correlation: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["correlationId"] == correlation)
        .collect()
}

fn correlation(reply: &Reply) -> String {
    reply
        .header("x-correlation-id")
        .expect("x-correlation-id")
        .to_string()
}

/// What an audit record must say: type, id (`None`: any GUID), operation, criteria.
#[derive(Debug, Clone)]
struct Expected {
    kind: &'static str,
    id: Option<String>,
    operation: &'static str,
    criteria: Option<Vec<&'static str>>,
}

fn expect(kind: &'static str, id: &str, operation: &'static str) -> Option<Expected> {
    Some(Expected {
        kind,
        id: Some(id.to_string()),
        operation,
        criteria: None,
    })
}

/// Stands for "one of the caller's search chains" (`search-<digest>-<shard>`).
const SEARCH_CHAIN: &str = "search-";

fn expect_search(kind: &'static str, id: &str, criteria: &[&'static str]) -> Option<Expected> {
    Some(Expected {
        kind,
        id: Some(id.to_string()),
        operation: "search",
        criteria: Some(criteria.to_vec()),
    })
}

fn id_of(reply: &Reply) -> String {
    assert!(
        matches!(reply.status, 200 | 201),
        "{} {}",
        reply.status,
        reply.text()
    );
    reply.json()["id"].as_str().unwrap().to_string()
}

// --- completeness ----------------------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn every_operation_writes_exactly_one_audit_record_and_rejections_none() {
    let app = TestApp::start();
    let host = app.host();
    let unknown = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    // (reply, subscription that acted, expected record or None if rejected before audit)
    let mut runs: Vec<(Reply, &str, Option<Expected>)> = Vec::new();

    let created = app.call("clinic", "POST", "/patient", Some(&patient("Ada")));
    let pid = id_of(&created);
    let etag = created.header("etag").unwrap().to_string();
    runs.push((created, "clinic", expect("patient", &pid, "create")));
    let other = app.call("admin", "POST", "/patient", Some(&patient("Bea")));
    let other_id = id_of(&other);
    runs.push((other, "admin", expect("patient", &other_id, "create")));

    runs.push((
        app.call("clinic", "GET", &format!("/patient/{pid}"), None),
        "clinic",
        expect("patient", &pid, "read"),
    ));
    runs.push((
        app.call("reader", "GET", &format!("/patient/{pid}"), None),
        "reader",
        expect("patient", &pid, "read"),
    ));
    // Read and update of an unknown patient: audited (an attempted access), then 404.
    runs.push((
        app.call("clinic", "GET", &format!("/patient/{unknown}"), None),
        "clinic",
        expect("patient", unknown, "read"),
    ));
    let update = {
        let mut b = patient("Ada2");
        b["id"] = json!(pid);
        b
    };
    let key = app.key("clinic").to_string();
    let put = |id: &str, body: &Value, if_match: Option<&str>| {
        let text = body.to_string();
        let mut headers = vec![
            ("ocp-apim-subscription-key", key.as_str()),
            ("content-type", "application/json"),
        ];
        if let Some(m) = if_match {
            headers.push(("if-match", m));
        }
        app.send(
            "PUT",
            &format!("/patient/{id}"),
            &headers,
            Some(text.as_bytes()),
        )
    };
    let updated = put(&pid, &update, Some(&etag));
    assert_eq!(updated.status, 200);
    runs.push((updated, "clinic", expect("patient", &pid, "update")));
    // Stale If-Match: audited, then 412.
    let stale = put(&pid, &update, Some(&etag));
    assert_eq!(stale.status, 412);
    runs.push((stale, "clinic", expect("patient", &pid, "update")));
    let mut unknown_update = update.clone();
    unknown_update["id"] = json!(unknown);
    runs.push((
        put(unknown, &unknown_update, None),
        "clinic",
        expect("patient", unknown, "update"),
    ));
    runs.push((
        app.call("clinic", "POST", "/patient/search", Some(&json!({}))),
        "clinic",
        expect_search("patient", SEARCH_CHAIN, &[]),
    ));
    runs.push((
        app.call(
            "clinic",
            "POST",
            "/patient/search",
            Some(&json!({"lastName": "Lund", "dateOfBirthFrom": "1980", "postCode": "2100"})),
        ),
        "clinic",
        expect_search(
            "patient",
            SEARCH_CHAIN,
            &["lastName", "dateOfBirthFrom", "postCode"],
        ),
    ));
    runs.push((
        app.call(
            "clinic",
            "POST",
            "/patient/search",
            Some(&json!({"firstName": "Nobody"})),
        ),
        "clinic",
        expect_search("patient", SEARCH_CHAIN, &["firstName"]),
    ));
    let test = app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    );
    let tid = id_of(&test);
    runs.push((test, "clinic", expect("test", &tid, "create")));
    runs.push((
        app.call("clinic", "GET", &format!("/patient/{pid}/tests"), None),
        "clinic",
        expect_search("test", &pid, &["patientId"]),
    ));
    runs.push((
        app.call("clinic", "GET", &format!("/patient/{other_id}/tests"), None),
        "clinic",
        expect_search("test", &other_id, &["patientId"]),
    ));
    runs.push((
        app.call(
            "clinic",
            "GET",
            &format!("/patient/{pid}/tests/{tid}"),
            None,
        ),
        "clinic",
        expect("test", &tid, "read"),
    ));
    runs.push((
        app.call(
            "clinic",
            "GET",
            &format!("/patient/{pid}/tests/{unknown}"),
            None,
        ),
        "clinic",
        expect("test", unknown, "read"),
    ));
    // A test for an unknown patient: audited under its would-be id, then 404.
    runs.push((
        app.call(
            "clinic",
            "POST",
            &format!("/patient/{unknown}/tests"),
            Some(&test_body()),
        ),
        "clinic",
        Some(Expected {
            kind: "test",
            id: None,
            operation: "create",
            criteria: None,
        }),
    ));

    // Rejected before the audit: no record.
    let mut with_id = patient("X");
    with_id["id"] = json!(unknown);
    for reply in [
        app.call("clinic", "POST", "/patient", Some(&with_id)),
        app.call(
            "clinic",
            "POST",
            "/patient",
            Some(&json!({"firstName": "X"})),
        ),
        app.call("clinic", "GET", "/patient/not-a-guid", None),
        app.call(
            "clinic",
            "GET",
            &format!("/patient/{pid}/tests/not-a-guid"),
            None,
        ),
        app.call(
            "clinic",
            "POST",
            &format!("/patient/{pid}/tests"),
            Some(&json!({"id": unknown})),
        ),
        app.call(
            "clinic",
            "POST",
            "/patient/search",
            Some(&json!({"shoeSize": "9"})),
        ),
        app.call(
            "clinic",
            "POST",
            "/patient/search?limit=0",
            Some(&json!({})),
        ),
        put(&pid, &patient("NoId"), None),
        // Wrong credentials (gateway) and a missing scope.
        app.send(
            "GET",
            &format!("/patient/{pid}"),
            &[("ocp-apim-subscription-key", "wrong")],
            None,
        ),
        app.call("auditor", "GET", &format!("/patient/{pid}"), None),
        app.call("reader", "POST", "/patient", Some(&patient("Y"))),
    ] {
        assert!(
            matches!(reply.status, 400 | 401 | 403 | 404),
            "{} {}",
            reply.status,
            reply.text()
        );
        runs.push((reply, "-", None));
    }
    // Direct calls with a bad host key or no actor never reach the audit either.
    let direct_key = app.secrets.variables["patientapiprimarykey"].clone();
    let direct = [
        (
            "00000000000000000000000000000001",
            vec![("x-functions-key", "wrong"), ("x-actor", "x")],
        ),
        (
            "00000000000000000000000000000002",
            vec![("x-functions-key", direct_key.as_str())],
        ),
    ];
    for (cid, mut headers) in direct {
        headers.push(("x-correlation-id", cid));
        let reply = host.invoke(
            "patient-api",
            "GET",
            &format!("/patient/{pid}"),
            &headers,
            b"",
        );
        assert!(matches!(reply.status, 400 | 401), "{}", reply.status);
        let mut reply = reply;
        reply.headers.retain(|(k, _)| k != "x-correlation-id");
        reply.headers.push(("x-correlation-id".into(), cid.into()));
        runs.push((reply, "-", None));
    }

    let all_records = audit_records(&app);
    // Disclosure records (a returned patient or test, on its own chain)
    // name the record of the search that returned them; the others are
    // the operations' own records.
    let (disclosures, records): (Vec<Value>, Vec<Value>) = all_records
        .into_iter()
        .partition(|r| r["resource"].get("reference").is_some());
    let audited: Vec<_> = runs.iter().filter(|(_, _, e)| e.is_some()).collect();
    assert_eq!(
        records.len(),
        audited.len(),
        "exactly one record per audited operation"
    );
    let mut disclosed_in_answers = 0;
    for (reply, actor, expected) in &runs {
        let cid = correlation(reply);
        let mine = records_of(&records, &cid);
        let Some(e) = expected else {
            assert!(
                mine.is_empty(),
                "rejected request {} was audited: {mine:?}",
                reply.status
            );
            continue;
        };
        assert_eq!(mine.len(), 1, "{e:?}: {mine:?}");
        let r = mine[0];
        assert_eq!(r["actor"], *actor);
        assert_eq!(r["sourceSystemName"], "patient-api");
        let resource = &r["resource"];
        assert_eq!(resource["type"], e.kind, "{r}");
        assert_eq!(resource["operation"], e.operation, "{r}");
        match &e.id {
            Some(id) if id == SEARCH_CHAIN => {
                assert!(
                    resource["id"].as_str().unwrap().starts_with(SEARCH_CHAIN),
                    "{r}"
                )
            }
            Some(id) => assert_eq!(resource["id"], id.as_str(), "{r}"),
            None => assert_eq!(resource["id"].as_str().unwrap().len(), 36, "{r}"),
        }
        match &e.criteria {
            Some(names) => assert_eq!(resource["criteria"], json!(names), "{r}"),
            None => assert!(resource.get("criteria").is_none(), "{r}"),
        }
        // Every patient or test in a search's or list's answer, and nothing
        // else, is disclosed on its own chain, pointing at this record.
        let mut disclosed: Vec<String> = records_of(&disclosures, &cid)
            .iter()
            .map(|d| {
                assert_eq!(d["resource"]["reference"], r["recordId"], "{d}");
                assert_eq!(d["resource"]["operation"], "search", "{d}");
                assert_eq!(d["actor"], *actor, "{d}");
                d["resource"]["id"].as_str().unwrap().to_string()
            })
            .collect();
        let mut returned: Vec<String> = match (e.operation, reply.status) {
            ("search", 200) => reply
                .json()
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_string())
                .collect(),
            _ => Vec::new(),
        };
        disclosed.sort();
        returned.sort();
        assert_eq!(disclosed, returned, "{e:?}");
        disclosed_in_answers += returned.len();
    }
    assert_eq!(
        disclosures.len(),
        disclosed_in_answers,
        "no disclosure without an answer"
    );
    // Search records name criteria, never their values: no patient data in
    // the register. Only text a person or client wrote is looked at: ids,
    // hashes and timestamps are random or clock digits, and "1980" turns up
    // in one of them every few runs.
    let mut texts = Vec::new();
    collect_written_text(&serde_json::to_value(&records).unwrap(), &mut texts);
    collect_written_text(&serde_json::to_value(&disclosures).unwrap(), &mut texts);
    for value in ["Lund", "Nobody", "Ada", "2100", "1980"] {
        let found = texts.iter().find(|t| t.contains(value));
        assert!(found.is_none(), "{value} in the audit register: {found:?}");
    }
}

/// Every string in `value` that is not an id, a digest or a timestamp.
fn collect_written_text(value: &Value, out: &mut Vec<String>) {
    let generated = |s: &str| {
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        let uuid = s.len() == 36 && hex(&s.replace('-', ""));
        let digest = s.len() >= 32 && hex(s);
        let timestamp = s.len() >= 20 && s.as_bytes()[10] == b'T';
        uuid || digest || timestamp
    };
    match value {
        Value::String(s) if !generated(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_written_text(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_written_text(v, out)),
        _ => {}
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn the_audit_record_is_written_before_the_patient() {
    let app = TestApp::start();
    let reply = app.call("clinic", "POST", "/patient", Some(&patient("Ada")));
    let id = id_of(&reply);
    let records = audit_records(&app);
    let record = records_of(&records, &correlation(&reply))[0].clone();
    assert_eq!(
        record["resource"]["id"],
        id.as_str(),
        "the new id is generated first and audited"
    );
    let stored: Value = serde_json::from_str(&patient_store(&app)[0].4).unwrap();
    // Audit createdDate precedes (or equals, at millisecond precision) the patient's lastUpdated.
    assert!(
        record["createdDate"].as_str().unwrap() <= stored["lastUpdated"].as_str().unwrap(),
        "{record} {stored}"
    );
}

// --- fail closed -----------------------------------------------------------------

/// Runs every patient operation against a broken audit register and checks
/// each is 503 with Retry-After, shows no patient data, and leaves the store
/// exactly as it was.
fn assert_fails_closed(fault: Fault) {
    let app = TestApp::start();
    let host = app.host();
    let created = app.call("clinic", "POST", "/patient", Some(&patient("Ada")));
    let pid = id_of(&created);
    let etag = created.header("etag").unwrap().to_string();
    let tid = id_of(&app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    ));
    let store_before = patient_store(&app);
    let audit_before = audit_records(&app).len();
    assert_eq!(store_before.len(), 2);

    host.set_fault("audit-api", Some(fault.clone()));
    let key = app.key("clinic").to_string();
    let mut update = patient("Changed");
    update["id"] = json!(pid);
    let update = update.to_string();
    let unknown = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let headers = [
        ("ocp-apim-subscription-key", key.as_str()),
        ("content-type", "application/json"),
    ];
    let with_if_match = [headers[0], headers[1], ("if-match", etag.as_str())];
    let replies = [
        app.call("clinic", "POST", "/patient", Some(&patient("New"))),
        app.call("clinic", "GET", &format!("/patient/{pid}"), None),
        app.send(
            "PUT",
            &format!("/patient/{pid}"),
            &headers,
            Some(update.as_bytes()),
        ),
        app.send(
            "PUT",
            &format!("/patient/{pid}"),
            &with_if_match,
            Some(update.as_bytes()),
        ),
        app.call("clinic", "POST", "/patient/search", Some(&json!({}))),
        app.call(
            "clinic",
            "POST",
            "/patient/search",
            Some(&json!({"firstName": "Ada"})),
        ),
        app.call(
            "clinic",
            "POST",
            &format!("/patient/{pid}/tests"),
            Some(&test_body()),
        ),
        app.call("clinic", "GET", &format!("/patient/{pid}/tests"), None),
        app.call(
            "clinic",
            "GET",
            &format!("/patient/{pid}/tests/{tid}"),
            None,
        ),
        app.call("clinic", "GET", &format!("/patient/{unknown}"), None),
    ];
    for reply in &replies {
        assert_eq!(reply.status, 503, "{fault:?}: {}", reply.text());
        assert!(reply.header("retry-after").is_some());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()["correlationId"], correlation(reply).as_str());
        let text = reply.text();
        assert!(
            !text.contains("Ada") && !text.contains(&pid) && !text.contains("Lab A"),
            "{text}"
        );
    }
    assert_eq!(
        patient_store(&app),
        store_before,
        "{fault:?}: the store changed"
    );
    host.set_fault("audit-api", None);
    if !matches!(fault, Fault::Delay(_)) {
        assert_eq!(audit_records(&app).len(), audit_before);
    }
    // And everything works again once the register is back.
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{pid}"), None)
            .status,
        200
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn fails_closed_when_audit_api_is_unreachable() {
    assert_fails_closed(Fault::Refuse);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn fails_closed_when_audit_api_answers_500() {
    assert_fails_closed(Fault::Respond {
        status: 500,
        headers: vec![],
        body: String::new(),
        times: None,
    });
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn fails_closed_when_audit_api_answers_anything_but_201() {
    // A 200 is not the contract's "stored": still no patient data.
    assert_fails_closed(Fault::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: "{}".into(),
        times: None,
    });
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn fails_closed_when_audit_api_is_slower_than_three_seconds() {
    let app = TestApp::start();
    let host = app.host();
    let pid = id_of(&app.call("clinic", "POST", "/patient", Some(&patient("Ada"))));
    let before = patient_store(&app);
    host.set_fault("audit-api", Some(Fault::Delay(Duration::from_secs(5))));
    let started = std::time::Instant::now();
    let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    let created = app.call("clinic", "POST", "/patient", Some(&patient("Late")));
    assert_eq!(
        (read.status, created.status),
        (503, 503),
        "{}",
        created.text()
    );
    assert!(read.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "each waits about 3 s, not the delay"
    );
    host.set_fault("audit-api", None);
    // The delayed audit-api may still record the attempts; patient data stays as it was.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(patient_store(&app), before);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn actor_and_correlation_id_reach_the_register() {
    let app = TestApp::start();
    let host = app.host();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let key = app.key("admin").to_string();
    let body = patient("Ada").to_string();
    let reply = app.send(
        "POST",
        "/patient",
        &[
            ("ocp-apim-subscription-key", &key),
            ("content-type", "application/json"),
            ("traceparent", traceparent),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 201);
    assert_eq!(
        correlation(&reply),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "the trace id is the correlation id"
    );
    let records = audit_records(&app);
    let mine = records_of(&records, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["actor"], "admin");

    // Called directly, patient-api passes on the actor and correlation id it was given.
    let direct_key = app.secrets.variables["patientapiprimarykey"].clone();
    let pid = id_of(&reply);
    let cid = "direct-correlation-0001";
    let reply = host.invoke(
        "patient-api",
        "GET",
        &format!("/patient/{pid}"),
        &[
            ("x-functions-key", &direct_key),
            ("x-actor", "token:service-7"),
            ("x-correlation-id", cid),
        ],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let records = audit_records(&app);
    let by_operation: BTreeMap<_, _> = records_of(&records, cid)
        .into_iter()
        .map(|r| {
            (
                r["resource"]["operation"].as_str().unwrap().to_string(),
                r["actor"].clone(),
            )
        })
        .collect();
    assert_eq!(
        by_operation,
        BTreeMap::from([("read".to_string(), json!("token:service-7"))])
    );
}
