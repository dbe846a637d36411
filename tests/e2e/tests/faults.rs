//! Faults injected through the test host into the calls the components make
//! to each other: the document store down, slow, throttling (429 with
//! `x-ms-retry-after-ms`), failing (500), acknowledgements lost after the
//! store committed, and audit-api down or losing its answer.
//!
//! Each case checks the client's status (503 with Retry-After, or success
//! after the retries), that the faults were really injected (the host logs
//! one line per injected fault, counted here), and what was left behind,
//! read straight from the store's SQLite file: no patient or test without
//! its audit record, no patient a failed request created, no duplicate after
//! a retried create, and every audit chain still verifies (GET /audit/verify
//! through the gateway).
//!
//! A fault on `docstore` hits audit-api's store calls (database `audit`) and
//! patient-api's (database `patients`) alike, in that order, so most cases
//! aim it at one database with `Fault::Only`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use e2e::{Host, Reply, TestApp};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use spin_test_host::Fault;

// --- helpers -----------------------------------------------------------------

fn patient(first: &str) -> Value {
    json!({"firstName": first, "lastName": "Faulty", "gender": "other", "dateOfBirth": "1975-05", "postCode": "8000"})
}

fn test_body() -> Value {
    json!({"performer": "Lab F", "orderReference": "ORD-F", "observations": [{
        "id": "obs-1", "code": "HB", "measurement": "140 g/L",
        "interpretation": "normal", "issued": "2024-05-01T08:00:00Z", "status": "final"}]})
}

fn host(app: &TestApp) -> &Host {
    app.host.as_ref().expect("in-process host")
}

/// Faults the host injected into requests to `target` so far.
fn injected(app: &TestApp, target: &str) -> usize {
    let prefix = format!("fault injected into a request to {target}:");
    host(app)
        .app
        .logs()
        .iter()
        .filter(|l| l.stream == "host" && l.line.starts_with(&prefix))
        .count()
}

/// Faults injected by all cases of this file, written to target/hardening.
static TOTAL: Mutex<(usize, usize)> = Mutex::new((0, 0));

fn count_case(faults: usize) {
    let mut total = TOTAL.lock().unwrap_or_else(|e| e.into_inner());
    total.0 += faults;
    total.1 += 1;
    e2e::write_hardening_counts(
        "faults",
        &[format!("faults injected: {} ({} cases)", total.0, total.1)],
    );
}

/// Starts the in-process app (these tests inject faults into it).
fn start() -> TestApp {
    let app = TestApp::start();
    app.host();
    app
}

/// Every document of one database as stored: (container, id) -> body.
fn stored(app: &TestApp, db: &str) -> BTreeMap<(String, String), Value> {
    let conn = Connection::open_with_flags(
        host(app).app.sqlite_path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store's SQLite file");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let Ok(mut stmt) = conn.prepare("SELECT coll, id, body FROM docstore_documents WHERE db = ?1")
    else {
        return BTreeMap::new();
    };
    stmt.query_map([db], |r| {
        Ok(((r.get(0)?, r.get(1)?), r.get::<_, String>(2)?))
    })
    .unwrap()
    .map(|row| {
        let (key, body) = row.unwrap();
        (key, serde_json::from_str(&body).unwrap())
    })
    .collect()
}

fn audit_records(app: &TestApp) -> Vec<Value> {
    stored(app, "audit")
        .into_iter()
        .filter(|((coll, _), doc)| coll == "records" && doc["docType"] == "auditRecord")
        .map(|(_, doc)| doc)
        .collect()
}

fn ids_in(app: &TestApp, coll: &str) -> BTreeSet<String> {
    stored(app, "patients")
        .into_keys()
        .filter(|(c, _)| c == coll)
        .map(|(_, id)| id)
        .collect()
}

fn records_of(app: &TestApp, reply: &Reply) -> Vec<Value> {
    let cid = reply.header("x-correlation-id").expect("x-correlation-id");
    audit_records(app)
        .into_iter()
        .filter(|r| r["correlationId"] == cid)
        .collect()
}

fn created_id(reply: &Reply) -> String {
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["id"].as_str().unwrap().to_string()
}

fn assert_unavailable(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {}", reply.text());
    let retry_after = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"));
    assert!(
        retry_after
            .parse::<u64>()
            .is_ok_and(|s| (1..=60).contains(&s)),
        "{what}: Retry-After {retry_after}"
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
}

fn put_patient(app: &TestApp, id: &str, body: &Value, if_match: Option<&str>) -> Reply {
    let key = app.key("clinic").to_string();
    let text = body.to_string();
    let mut headers = vec![
        ("ocp-apim-subscription-key", key.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(etag) = if_match {
        headers.push(("if-match", etag));
    }
    app.send(
        "PUT",
        &format!("/patient/{id}"),
        &headers,
        Some(text.as_bytes()),
    )
}

/// What must hold after any fault: every patient and test has the audit
/// record of its creation; every chain in the register verifies through the
/// gateway (auditor subscription).
fn assert_consistent(app: &TestApp) {
    let records = audit_records(app);
    let audited: BTreeSet<(String, String, String)> = records
        .iter()
        .map(|r| {
            let res = &r["resource"];
            (
                res["type"].as_str().unwrap().into(),
                res["id"].as_str().unwrap().into(),
                res["operation"].as_str().unwrap().into(),
            )
        })
        .collect();
    for ((coll, id), _) in stored(app, "patients") {
        let kind = if coll == "patients" {
            "patient"
        } else {
            "test"
        };
        assert!(
            audited.contains(&(kind.to_string(), id.clone(), "create".to_string())),
            "{kind} {id} is stored without the audit record of its creation"
        );
    }
    let chains: BTreeSet<(String, String)> = audited
        .into_iter()
        .map(|(kind, id, _)| (kind, id))
        .collect();
    for (kind, id) in chains {
        let id = if id == "*" { "%2A".to_string() } else { id };
        let reply = app.call(
            "auditor",
            "GET",
            &format!("/audit/verify?resourceType={kind}&resourceId={id}"),
            None,
        );
        assert_eq!(reply.status, 200, "verify {kind} {id}: {}", reply.text());
        let report = reply.json();
        assert_eq!(report["intact"], true, "chain {kind} {id}: {report}");
    }
}

fn only(method: Option<&str>, path_prefix: &str, fault: Fault) -> Fault {
    Fault::Only {
        method: method.map(str::to_string),
        path_prefix: path_prefix.to_string(),
        fault: Box::new(fault),
    }
}

fn respond(status: u16, headers: &[(&str, &str)], times: Option<u32>) -> Fault {
    Fault::Respond {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: String::new(),
        times,
    }
}

const PATIENTS_DB: &str = "/dbs/patients/";
const AUDIT_DB: &str = "/dbs/audit/";
const PATIENT_DOCS: &str = "/dbs/patients/colls/patients/docs";
const TEST_DOCS: &str = "/dbs/patients/colls/tests/docs";

// --- the document store down ----------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn store_down_is_503_with_retry_after_and_changes_nothing() {
    let app = start();
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Dana"))));
    let created = app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    );
    let tid = created_id(&created);
    // audit-api advances a chain head after it has answered: let that
    // finish, or it lands between the two snapshots.
    host(&app).settle();
    let patients_before = stored(&app, "patients");
    let audit_before = stored(&app, "audit");

    host(&app).set_fault("docstore", Some(Fault::Refuse));
    let mut update = patient("Dana2");
    update["id"] = json!(pid);
    let replies = [
        (
            "create",
            app.call("clinic", "POST", "/patient", Some(&patient("Never"))),
        ),
        (
            "read",
            app.call("clinic", "GET", &format!("/patient/{pid}"), None),
        ),
        ("update", put_patient(&app, &pid, &update, None)),
        (
            "search",
            app.call(
                "clinic",
                "POST",
                "/patient/search",
                Some(&json!({"lastName": "Faulty"})),
            ),
        ),
        (
            "create test",
            app.call(
                "clinic",
                "POST",
                &format!("/patient/{pid}/tests"),
                Some(&test_body()),
            ),
        ),
        (
            "read test",
            app.call(
                "clinic",
                "GET",
                &format!("/patient/{pid}/tests/{tid}"),
                None,
            ),
        ),
        (
            "list tests",
            app.call("clinic", "GET", &format!("/patient/{pid}/tests"), None),
        ),
    ];
    let faults = injected(&app, "docstore");
    host(&app).set_fault("docstore", None);
    for (what, reply) in &replies {
        assert_unavailable(reply, what);
    }
    // Each request's first store call is audit-api's, and its client retries
    // a refused connection before giving up.
    assert!(
        faults >= 2 * replies.len(),
        "{faults} faults for {} requests: no retries?",
        replies.len()
    );
    assert_eq!(
        stored(&app, "patients"),
        patients_before,
        "patient data changed while the store was down"
    );
    assert_eq!(
        stored(&app, "audit"),
        audit_before,
        "the register changed while the store was down"
    );
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{pid}"), None)
            .status,
        200,
        "recovers"
    );
    assert_consistent(&app);
    count_case(faults);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn patient_store_down_after_the_audit_write_is_503_and_writes_no_patient() {
    let app = start();
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Erin"))));
    let patients_before = stored(&app, "patients");

    // Only patient-api's calls fail: the audit record is written, the patient is not.
    host(&app).set_fault("docstore", Some(only(None, PATIENTS_DB, Fault::Refuse)));
    let create = app.call("clinic", "POST", "/patient", Some(&patient("Ghost")));
    let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    let test = app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    );
    let faults = injected(&app, "docstore");
    host(&app).set_fault("docstore", None);

    for (what, reply) in [("create", &create), ("read", &read), ("create test", &test)] {
        assert_unavailable(reply, what);
        assert_eq!(
            records_of(&app, reply).len(),
            1,
            "{what}: audited before the store was tried"
        );
        assert!(
            !reply.text().contains(&pid),
            "{what}: the problem names no patient"
        );
    }
    assert!(
        faults >= 6,
        "{faults}: patient-api's client retries a refused store"
    );
    assert_eq!(stored(&app, "patients"), patients_before);
    assert_consistent(&app);
    count_case(faults);
}

// --- slow ----------------------------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_store_slower_than_the_client_budget_is_503_and_no_late_write() {
    let app = start();
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Fay"))));
    let before = ids_in(&app, "patients");

    // Beyond patient-api's 5 s per attempt and 5 s retry budget.
    let delay = Duration::from_secs(8);
    host(&app).set_fault(
        "docstore",
        Some(only(None, PATIENTS_DB, Fault::Delay(delay))),
    );
    let started = Instant::now();
    let (read, create) = std::thread::scope(|s| {
        let read = s.spawn(|| app.call("clinic", "GET", &format!("/patient/{pid}"), None));
        let create = s.spawn(|| app.call("clinic", "POST", "/patient", Some(&patient("Late"))));
        (read.join().unwrap(), create.join().unwrap())
    });
    let elapsed = started.elapsed();
    let faults = injected(&app, "docstore");
    host(&app).set_fault("docstore", None);
    assert_unavailable(&read, "read");
    assert_unavailable(&create, "create");
    assert!(
        elapsed < delay - Duration::from_millis(500),
        "answered within the budget, not after the delay: {elapsed:?}"
    );
    assert!(faults >= 2, "{faults}");
    // The abandoned store calls must not land after the client was told 503.
    std::thread::sleep(delay.saturating_sub(started.elapsed()) + Duration::from_millis(500));
    assert_eq!(
        ids_in(&app, "patients"),
        before,
        "a patient was written after its create answered 503"
    );
    assert_consistent(&app);
    count_case(faults);
}

// --- throttled -----------------------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn throttling_then_success_is_retried_to_one_write() {
    let app = start();
    let throttled = |times| respond(429, &[("x-ms-retry-after-ms", "40")], Some(times));
    let mut faults = 0;
    let mut acked = BTreeSet::new();

    // The patient create throttled three times, then stored once.
    host(&app).set_fault(
        "docstore",
        Some(only(Some("POST"), PATIENT_DOCS, throttled(3))),
    );
    let reply = app.call("clinic", "POST", "/patient", Some(&patient("Gus")));
    let pid = created_id(&reply);
    acked.insert(pid.clone());
    assert_eq!(injected(&app, "docstore") - faults, 3);
    faults = injected(&app, "docstore");
    assert_eq!(records_of(&app, &reply).len(), 1);

    // audit-api's store calls throttled: the record is still appended once.
    host(&app).set_fault("docstore", Some(only(None, AUDIT_DB, throttled(4))));
    let reply = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(injected(&app, "docstore") - faults, 4);
    faults = injected(&app, "docstore");
    assert_eq!(
        records_of(&app, &reply).len(),
        1,
        "one audit record despite the retries"
    );

    // Both: every store call of the request is a candidate.
    host(&app).set_fault("docstore", Some(throttled(4)));
    let reply = app.call("clinic", "POST", "/patient", Some(&patient("Hal")));
    acked.insert(created_id(&reply));
    assert_eq!(injected(&app, "docstore") - faults, 4);
    faults = injected(&app, "docstore");
    let test = app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    );
    host(&app).set_fault(
        "docstore",
        Some(only(Some("POST"), TEST_DOCS, throttled(2))),
    );
    let test2 = app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    );
    host(&app).set_fault("docstore", None);
    let tests: BTreeSet<String> = [created_id(&test), created_id(&test2)].into();
    assert_eq!(injected(&app, "docstore") - faults, 2);
    faults = injected(&app, "docstore");

    assert_eq!(
        ids_in(&app, "patients"),
        acked,
        "exactly the acknowledged patients, no duplicate"
    );
    assert_eq!(ids_in(&app, "tests"), tests);
    assert_consistent(&app);
    count_case(faults);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn throttling_beyond_the_budget_is_503_with_the_store_s_retry_after() {
    let app = start();
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Ivy"))));
    let before = ids_in(&app, "patients");
    host(&app).set_fault(
        "docstore",
        Some(only(
            None,
            PATIENTS_DB,
            respond(429, &[("x-ms-retry-after-ms", "1500")], None),
        )),
    );
    let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    let faults = injected(&app, "docstore");
    let create = app.call("clinic", "POST", "/patient", Some(&patient("Jon")));
    let faults_total = injected(&app, "docstore");
    host(&app).set_fault("docstore", None);
    assert_unavailable(&read, "read");
    assert_unavailable(&create, "create");
    // 1.5 s asked for, rounded up to whole seconds.
    assert_eq!(
        read.header("retry-after"),
        Some("2"),
        "Retry-After follows x-ms-retry-after-ms"
    );
    assert_eq!(create.header("retry-after"), Some("2"));
    assert!(
        faults >= 3,
        "the client retried the throttled read: {faults}"
    );
    assert_eq!(ids_in(&app, "patients"), before);
    assert_eq!(
        records_of(&app, &create).len(),
        1,
        "the create attempt is audited"
    );
    assert_consistent(&app);
    count_case(faults_total);
}

// --- 500 -------------------------------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn store_500s_are_retried_and_then_503() {
    let app = start();
    let mut faults = 0;
    // Two 500s on the patient create: retried, one patient.
    host(&app).set_fault(
        "docstore",
        Some(only(Some("POST"), PATIENT_DOCS, respond(500, &[], Some(2)))),
    );
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Kai"))));
    assert_eq!(injected(&app, "docstore"), 2);
    faults += 2;

    // 500s on the audit store: audit-api retries too.
    host(&app).set_fault(
        "docstore",
        Some(only(None, AUDIT_DB, respond(500, &[], Some(2)))),
    );
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{pid}"), None)
            .status,
        200
    );
    assert_eq!(injected(&app, "docstore") - faults, 2);
    faults += 2;

    // Always 500: 503, and nothing written.
    host(&app).set_fault(
        "docstore",
        Some(only(None, PATIENTS_DB, respond(500, &[], None))),
    );
    let mut update = patient("Kai2");
    update["id"] = json!(pid);
    let replies = [
        (
            "create",
            app.call("clinic", "POST", "/patient", Some(&patient("Lou"))),
        ),
        ("update", put_patient(&app, &pid, &update, None)),
        (
            "search",
            app.call("clinic", "POST", "/patient/search", Some(&json!({}))),
        ),
    ];
    host(&app).set_fault(
        "docstore",
        Some(only(None, AUDIT_DB, respond(500, &[], None))),
    );
    let audit_down = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    let verify_down = app.call(
        "auditor",
        "GET",
        &format!("/audit/verify?resourceType=patient&resourceId={pid}"),
        None,
    );
    host(&app).set_fault("docstore", None);
    for (what, reply) in &replies {
        assert_unavailable(reply, what);
    }
    assert_unavailable(&audit_down, "read with the audit store failing");
    assert_unavailable(&verify_down, "verify with the audit store failing");
    let always = injected(&app, "docstore") - faults;
    assert!(always >= 2 * 5, "each request retried its 500s: {always}");
    faults += always;
    assert_eq!(ids_in(&app, "patients"), BTreeSet::from([pid.clone()]));
    let stored_patient = &stored(&app, "patients")[&("patients".to_string(), pid.clone())];
    assert_eq!(
        stored_patient["firstName"], "Kai",
        "the failed update changed nothing"
    );
    assert_consistent(&app);
    count_case(faults);
}

// --- answers outside the protocol ----------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_store_answering_garbage_is_never_a_500_and_writes_nothing() {
    let app = start();
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Pia"))));
    let before = stored(&app, "patients");
    let garbage = |status| Fault::Respond {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: "<html>proxy error</html>".into(),
        times: None,
    };
    // 200 without a document, then a status Cosmos never sends, on each database.
    let mut statuses = Vec::new();
    for fault in [garbage(200), garbage(418)] {
        for db in [PATIENTS_DB, AUDIT_DB] {
            host(&app).set_fault("docstore", Some(only(None, db, fault.clone())));
            let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
            let create = app.call("clinic", "POST", "/patient", Some(&patient("Quinn")));
            for reply in [&read, &create] {
                assert!(
                    matches!(reply.status, 502 | 503),
                    "{db} {fault:?}: {} {}",
                    reply.status,
                    reply.text()
                );
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/problem+json")
                );
                assert!(
                    !reply.text().contains("proxy error"),
                    "the store's text travels on"
                );
            }
            statuses.push((db, read.status, create.status));
        }
    }
    let faults = injected(&app, "docstore");
    host(&app).set_fault("docstore", None);
    assert!(faults >= 8, "{faults}");
    // A garbage answer to a create may still hide a stored document; here the
    // store never ran, so nothing may have changed.
    assert_eq!(stored(&app, "patients"), before, "{statuses:?}");
    assert_consistent(&app);
    count_case(faults);
}

// --- lost acknowledgements: executed, but the caller saw a failure ------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_retried_write_whose_first_answer_was_lost_is_stored_once() {
    let app = start();
    let lost = |status| Fault::LoseResponse {
        status,
        times: Some(1),
    };
    let mut faults = 0;
    let mut step = |app: &TestApp, what: &str| {
        host(app).settle();
        let now = injected(app, "docstore");
        assert_eq!(now - faults, 1, "{what}: one lost answer");
        faults = now;
    };

    // The patient create executes, its answer is lost, the client retries:
    // the retry meets its own document (409) and reads it back.
    host(&app).set_fault(
        "docstore",
        Some(only(Some("POST"), PATIENT_DOCS, lost(500))),
    );
    let reply = app.call("clinic", "POST", "/patient", Some(&patient("Max")));
    step(&app, "patient create");
    let pid = created_id(&reply);
    let etag = reply.header("etag").unwrap().to_string();
    assert_eq!(records_of(&app, &reply).len(), 1);
    assert_eq!(
        ids_in(&app, "patients"),
        BTreeSet::from([pid.clone()]),
        "stored once, under the acknowledged id"
    );
    let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    assert_eq!(
        read.header("etag"),
        Some(etag.as_str()),
        "the acknowledged etag is the stored one"
    );

    // A conditional update whose answer is lost: the retry's 412 is our own write.
    host(&app).set_fault("docstore", Some(only(Some("PUT"), PATIENT_DOCS, lost(503))));
    let mut update = patient("Max2");
    update["id"] = json!(pid);
    let put = put_patient(&app, &pid, &update, Some(&etag));
    step(&app, "patient update");
    assert_eq!(put.status, 200, "{}", put.text());
    let stored_now = &stored(&app, "patients")[&("patients".to_string(), pid.clone())];
    assert_eq!(stored_now["firstName"], "Max2");
    assert_eq!(
        put.header("etag"),
        stored_now["_etag"].as_str(),
        "the acknowledged etag is the stored one"
    );

    // A test create.
    host(&app).set_fault("docstore", Some(only(Some("POST"), TEST_DOCS, lost(500))));
    let test = app.call(
        "clinic",
        "POST",
        &format!("/patient/{pid}/tests"),
        Some(&test_body()),
    );
    step(&app, "test create");
    let tid = created_id(&test);
    assert_eq!(ids_in(&app, "tests"), BTreeSet::from([tid]));

    // audit-api's first record of a chain: the record and the new chain
    // head in one transactional batch. Its retry is refused (the record's
    // id is taken by our own lost attempt), read back, and acknowledged.
    host(&app).set_fault(
        "docstore",
        Some(only(
            Some("POST"),
            "/dbs/audit/colls/records/docs",
            lost(500),
        )),
    );
    let other = app.call("clinic", "POST", "/patient", Some(&patient("Nia")));
    step(&app, "first record and chain head");
    let other_id = created_id(&other);
    assert_eq!(records_of(&app, &other).len(), 1);

    // A record and its chain head's conditional replace, in one batch.
    host(&app).set_fault(
        "docstore",
        Some(only(
            Some("POST"),
            "/dbs/audit/colls/records/docs",
            lost(500),
        )),
    );
    let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    step(&app, "record and chain head advance");
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(
        records_of(&app, &read).len(),
        1,
        "one audit record, not two"
    );
    host(&app).set_fault("docstore", None);

    assert_eq!(
        ids_in(&app, "patients"),
        BTreeSet::from([pid.clone(), other_id])
    );
    let mine = audit_records(&app)
        .into_iter()
        .filter(|r| r["resource"]["id"] == pid.as_str())
        .count();
    assert_eq!(
        mine, 4,
        "create, update, and two reads of the patient: one record each"
    );
    assert_consistent(&app);
    count_case(faults);
}

// --- audit-api down ------------------------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn audit_api_down_or_losing_its_answer_writes_no_patient() {
    let app = start();
    let pid = created_id(&app.call("clinic", "POST", "/patient", Some(&patient("Ned"))));
    let patients_before = stored(&app, "patients");
    let audit_before = audit_records(&app).len();

    host(&app).set_fault("audit-api", Some(Fault::Refuse));
    let create = app.call("clinic", "POST", "/patient", Some(&patient("Orphan")));
    let read = app.call("clinic", "GET", &format!("/patient/{pid}"), None);
    let verify = app.call(
        "admin",
        "GET",
        &format!("/audit/verify?resourceType=patient&resourceId={pid}"),
        None,
    );
    let refused = injected(&app, "audit-api");
    assert_unavailable(&create, "create");
    assert_unavailable(&read, "read");
    assert_unavailable(&verify, "verify through the gateway");
    // patient-api does not retry the audit call; the gateway does not retry either.
    assert_eq!(refused, 3);
    assert_eq!(audit_records(&app).len(), audit_before);

    // audit-api stores the record, but its 201 never arrives: patient-api
    // must treat that as a failed audit and write nothing.
    host(&app).set_fault(
        "audit-api",
        Some(only(
            Some("POST"),
            "/auditrecord",
            Fault::LoseResponse {
                status: 502,
                times: Some(2),
            },
        )),
    );
    let create = app.call("clinic", "POST", "/patient", Some(&patient("Lost")));
    let mut update = patient("Ned2");
    update["id"] = json!(pid);
    let update = put_patient(&app, &pid, &update, None);
    let faults = injected(&app, "audit-api");
    host(&app).set_fault("audit-api", None);
    assert_unavailable(&create, "create with the audit answer lost");
    assert_unavailable(&update, "update with the audit answer lost");
    assert_eq!(faults - refused, 2);
    assert_eq!(
        records_of(&app, &create).len(),
        1,
        "the register holds the attempt"
    );
    assert_eq!(
        stored(&app, "patients"),
        patients_before,
        "but no patient data changed"
    );

    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{pid}"), None)
            .status,
        200,
        "recovers"
    );
    assert_consistent(&app);
    count_case(faults);
}

// --- a backend that crashes ------------------------------------------------------------

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_crashed_backend_is_a_502_problem_without_its_text() {
    let app = start();
    // What the runtime answers for a component that trapped: a bare 500.
    host(&app).set_fault(
        "patient-api",
        Some(Fault::Respond {
            status: 500,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: "panicked at components/patient-api/src/lib.rs:1:1".into(),
            times: Some(1),
        }),
    );
    let crashed = app.call(
        "clinic",
        "GET",
        &format!("/patient/{}", "6b1d2e3f-4a5b-4c6d-8e7f-901234567890"),
        None,
    );
    // A write the backend did, whose answer was lost on the way back.
    host(&app).set_fault(
        "patient-api",
        Some(Fault::LoseResponse {
            status: 500,
            times: Some(1),
        }),
    );
    let lost = app.call("clinic", "POST", "/patient", Some(&patient("Rui")));
    let faults = injected(&app, "patient-api");
    for (what, reply) in [("crash", &crashed), ("lost answer", &lost)] {
        assert_eq!(reply.status, 502, "{what}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert!(
            !reply.text().contains("panicked"),
            "{what}: the backend's text travels on"
        );
    }
    assert_eq!(faults, 2);
    // The lost answer's patient exists and has its audit record.
    assert_eq!(ids_in(&app, "patients").len(), 1);
    assert_consistent(&app);
    count_case(faults);
}
