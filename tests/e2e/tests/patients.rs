//! Patients and their tests, end to end through the gateway: every row of
//! docs/contract.md "Patients" and "Tests", each field rule on both sides, paging,
//! conditional updates under concurrency, and the errors' shape. A few checks
//! call patient-api directly (defense in depth behind the gateway).

use std::collections::BTreeSet;
use std::sync::Barrier;

use e2e::{Reply, TestApp};
use serde_json::{json, Value};
use spin_test_host::Fault;

// --- helpers -----------------------------------------------------------------

fn full() -> Value {
    json!({
        "firstName": "Ana",
        "lastName": "Søren",
        "fullName": "Ana Søren",
        "gender": "female",
        "dateOfBirth": "1980-02-29",
        "postCode": "2100",
        "insuranceNumber": "INS-1",
        "preferredContactNumber": "+45 1234 5678"
    })
}

fn minimal(first: &str, post_code: &str, date_of_birth: &str) -> Value {
    json!({"firstName": first, "gender": "other", "dateOfBirth": date_of_birth, "postCode": post_code})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().unwrap().remove(key);
    body
}

fn test_body() -> Value {
    json!({
        "performer": "Lab A",
        "orderReference": "ORD-7",
        "observations": [{
            "id": "obs-1", "code": "GLU", "measurement": "5.4 mmol/L",
            "interpretation": "normal", "issued": "2024-03-01T09:30:00+01:00", "status": "final"
        }]
    })
}

/// A request through the gateway as subscription "clinic", with extra headers.
fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let key = app.key("clinic").to_string();
    let mut all = vec![
        ("ocp-apim-subscription-key", key.as_str()),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    app.send(method, path, &all, body)
}

fn create(app: &TestApp, body: &Value) -> Reply {
    app.call("clinic", "POST", "/patient", Some(body))
}

/// Creates a patient and returns its id.
fn created(app: &TestApp, body: &Value) -> String {
    let reply = create(app, body);
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["id"].as_str().unwrap().to_string()
}

fn put(app: &TestApp, id: &str, body: &Value, if_match: Option<&str>) -> Reply {
    let text = body.to_string();
    let headers: Vec<(&str, &str)> = if_match.map(|m| vec![("if-match", m)]).unwrap_or_default();
    send(
        app,
        "PUT",
        &format!("/patient/{id}"),
        &headers,
        Some(text.as_bytes()),
    )
}

fn search(app: &TestApp, criteria: &Value) -> Reply {
    app.call("clinic", "POST", "/patient/search", Some(criteria))
}

/// The ids of a successful search; none for a 404.
fn found(app: &TestApp, criteria: &Value) -> BTreeSet<String> {
    let reply = search(app, criteria);
    match reply.status {
        404 => BTreeSet::new(),
        200 => ids(&reply),
        other => panic!("search {criteria}: {other} {}", reply.text()),
    }
}

/// The ids a search finds among `made`, the patients this test created.
/// The in-process store holds only those, so there this is [`found`]; a
/// shared store (external mode) holds other tests' and runs' patients too,
/// so every page is read and only this test's patients are judged.
fn found_among(app: &TestApp, criteria: &Value, made: &BTreeSet<String>) -> BTreeSet<String> {
    if app.is_in_process() {
        return found(app, criteria);
    }
    let text = criteria.to_string();
    let mut all = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| vec![("x-continuation-token", t)])
            .unwrap_or_default();
        let reply = send(
            app,
            "POST",
            "/patient/search?limit=1000",
            &headers,
            Some(text.as_bytes()),
        );
        match reply.status {
            404 => break,
            200 => all.extend(ids(&reply)),
            other => panic!("search {criteria}: {other} {}", reply.text()),
        }
        match reply.header("x-continuation-token") {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    all.intersection(made).cloned().collect()
}

fn ids(reply: &Reply) -> BTreeSet<String> {
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// A problem+json answer with this status, the response's correlation id,
/// and (when given) the field and exact detail.
fn assert_problem(reply: &Reply, status: u16, field: Option<&str>, detail: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    let correlation = reply.header("x-correlation-id").expect("x-correlation-id");
    assert_eq!(body["correlationId"], correlation);
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    if let Some(detail) = detail {
        assert_eq!(body["detail"], detail, "{body}");
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

// --- Patients ----------------------------------------------------------------

#[test]
fn create_read_update_round_trip() {
    let app = TestApp::start();
    let reply = create(&app, &full());
    assert_eq!(reply.status, 201, "{}", reply.text());
    let patient = reply.json();
    let id = patient["id"].as_str().unwrap().to_string();
    assert!(is_guid(&id), "{id}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/patient/{id}").as_str())
    );
    let etag = reply.header("etag").expect("ETag on create").to_string();
    for (k, v) in full().as_object().unwrap() {
        assert_eq!(&patient[k], v, "{k}");
    }
    assert!(patient["lastUpdated"].as_str().unwrap().ends_with('Z'));
    let keys: BTreeSet<&str> = patient
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.iter()
            .all(|k| !k.starts_with('_') && *k != "dateOfBirthKey"),
        "{keys:?}"
    );

    let read = app.call("clinic", "GET", &format!("/patient/{id}"), None);
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), patient);
    assert_eq!(read.header("etag"), Some(etag.as_str()));

    // A read-only subscription reads too (the gateway's scopes).
    assert_eq!(
        app.call("reader", "GET", &format!("/patient/{id}"), None)
            .status,
        200
    );

    let mut update = with(full(), "id", json!(id));
    update["postCode"] = json!("8000");
    update["lastName"] = Value::Null;
    // lastUpdated may be sent back as read; the server sets its own.
    update["lastUpdated"] = patient["lastUpdated"].clone();
    let updated = put(&app, &id, &update, Some(&etag));
    assert_eq!(updated.status, 200, "{}", updated.text());
    let new_etag = updated.header("etag").expect("ETag on update").to_string();
    assert_ne!(new_etag, etag);
    let body = updated.json();
    assert_eq!(body["postCode"], "8000");
    assert!(
        body.get("lastName").is_none(),
        "null clears an optional member"
    );
    assert!(body["lastUpdated"].as_str().unwrap() >= patient["lastUpdated"].as_str().unwrap());

    let reread = app.call("clinic", "GET", &format!("/patient/{id}"), None);
    assert_eq!(reread.json(), body);
    assert_eq!(reread.header("etag"), Some(new_etag.as_str()));

    // A stale If-Match is 412 and changes nothing.
    let stale = put(
        &app,
        &id,
        &with(update.clone(), "postCode", json!("9999")),
        Some(&etag),
    );
    assert_problem(&stale, 412, None, None);
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{id}"), None)
            .json()["postCode"],
        "8000"
    );
    // Without If-Match the last writer wins.
    assert_eq!(
        put(&app, &id, &with(update, "postCode", json!("9999")), None).status,
        200
    );
}

#[test]
fn create_rejects_server_fields_unknown_fields_and_bad_json() {
    let app = TestApp::start();
    // Tagged, so that "nothing was stored" can be asked of a shared store.
    let tagged = || with(full(), "lastName", json!(app.tag()));
    let guid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    assert_problem(
        &create(&app, &with(tagged(), "id", json!(guid))),
        400,
        Some("id"),
        Some("Id unexpected."),
    );
    assert_problem(
        &create(
            &app,
            &with(tagged(), "lastUpdated", json!("2024-01-01T00:00:00Z")),
        ),
        400,
        Some("lastUpdated"),
        Some("lastUpdated unexpected."),
    );
    for unknown in ["middleName", "dateOfBirthKey", "_etag", "patientId"] {
        let reply = create(&app, &with(tagged(), unknown, json!("x")));
        assert_problem(
            &reply,
            400,
            Some(unknown),
            Some(&format!("{unknown} is not a known field")),
        );
    }
    let duplicate = format!(
        "{{\"firstName\":\"A\",\"firstName\":\"B\",\"lastName\":\"{}\",\"gender\":\"other\",\"dateOfBirth\":\"1990\",\"postCode\":\"1234\"}}",
        app.tag()
    );
    for bad in [
        &b"{"[..],
        b"[]",
        b"\"text\"",
        b"null",
        b"",
        duplicate.as_bytes(),
    ] {
        let reply = send(&app, "POST", "/patient", &[], Some(bad));
        assert_problem(&reply, 400, None, None);
    }
    // Nothing was stored by any of them.
    assert_eq!(search(&app, &json!({"lastName": app.tag()})).status, 404);
    if app.is_in_process() {
        // The store is this test's own: it holds nothing at all.
        assert_eq!(search(&app, &json!({})).status, 404);
    }
}

#[test]
fn every_patient_field_rule_on_both_sides() {
    let app = TestApp::start();
    let s = |c: &str, n: usize| json!(c.repeat(n));
    // (what, body, Some(field) if it must fail)
    let mut cases: Vec<(String, Value, Option<&str>)> = vec![
        ("full".into(), full(), None),
        ("minimal".into(), minimal("Bo", "8000", "1975"), None),
    ];
    for (field, max) in [
        ("firstName", 64),
        ("lastName", 64),
        ("fullName", 128),
        ("insuranceNumber", 128),
        ("preferredContactNumber", 128),
    ] {
        cases.push((
            format!("{field} {max}"),
            with(full(), field, s("a", max)),
            None,
        ));
        cases.push((
            format!("{field} {max} multibyte"),
            with(full(), field, s("é", max)),
            None,
        ));
        cases.push((
            format!("{field} {}", max + 1),
            with(full(), field, s("a", max + 1)),
            Some(field),
        ));
        cases.push((
            format!("{field} empty"),
            with(full(), field, json!("")),
            Some(field),
        ));
        cases.push((
            format!("{field} number"),
            with(full(), field, json!(7)),
            Some(field),
        ));
    }
    for (post_code, ok) in [
        ("123", false),
        ("1234", true),
        ("12345", false),
        ("ÆØÅ1", true),
        ("", false),
    ] {
        cases.push((
            format!("postCode {post_code:?}"),
            with(full(), "postCode", json!(post_code)),
            (!ok).then_some("postCode"),
        ));
    }
    for gender in ["male", "female", "other", "unknown"] {
        cases.push((
            format!("gender {gender}"),
            with(full(), "gender", json!(gender)),
            None,
        ));
    }
    for gender in ["Male", "FEMALE", "m", "none", ""] {
        cases.push((
            format!("gender {gender:?}"),
            with(full(), "gender", json!(gender)),
            Some("gender"),
        ));
    }
    for date in [
        "1980",
        "1980-06",
        "1980-06-15",
        "0001",
        "9999-12-31",
        "1980-02-29",
        "2000-02-29",
        "1980-01-31",
        "1980-12",
    ] {
        cases.push((
            format!("dateOfBirth {date}"),
            with(full(), "dateOfBirth", json!(date)),
            None,
        ));
    }
    for date in [
        "0000",
        "1980-00",
        "1980-13",
        "1980-06-00",
        "1980-06-32",
        "1981-02-29",
        "1900-02-29",
        "1980-04-31",
        "80",
        "1980-6",
        "1980-06-5",
        "1980/06/15",
        "1980-06-15T00:00:00Z",
        "",
        " 1980",
    ] {
        cases.push((
            format!("dateOfBirth {date:?}"),
            with(full(), "dateOfBirth", json!(date)),
            Some("dateOfBirth"),
        ));
    }
    for required in ["firstName", "gender", "dateOfBirth", "postCode"] {
        cases.push((
            format!("{required} missing"),
            without(full(), required),
            Some(required),
        ));
        cases.push((
            format!("{required} null"),
            with(full(), required, Value::Null),
            Some(required),
        ));
    }
    for optional in [
        "lastName",
        "fullName",
        "insuranceNumber",
        "preferredContactNumber",
    ] {
        cases.push((
            format!("{optional} absent"),
            without(full(), optional),
            None,
        ));
        cases.push((
            format!("{optional} null"),
            with(full(), optional, Value::Null),
            None,
        ));
    }
    cases.push((
        "surrounding whitespace".into(),
        with(full(), "firstName", json!(" Ana")),
        Some("firstName"),
    ));
    cases.push((
        "control character".into(),
        with(full(), "lastName", json!("S\u{1}øren")),
        Some("lastName"),
    ));

    for (what, body, failing) in &cases {
        let reply = create(&app, body);
        match failing {
            None => {
                assert_eq!(reply.status, 201, "{what}: {}", reply.text());
                let stored = reply.json();
                for (k, v) in body.as_object().unwrap() {
                    if !v.is_null() {
                        assert_eq!(&stored[k], v, "{what}: {k}");
                    }
                }
            }
            Some(field) => assert_problem(&reply, 400, Some(field), None),
        }
    }

    // The same rules apply to an update.
    let id = created(&app, &full());
    let update = with(full(), "id", json!(id));
    for (what, body, failing) in cases {
        let body = with(body, "id", json!(id));
        let reply = put(&app, &id, &body, None);
        match failing {
            None => assert_eq!(reply.status, 200, "PUT {what}: {}", reply.text()),
            Some(field) => assert_problem(&reply, 400, Some(field), None),
        }
    }
    assert_eq!(put(&app, &id, &update, None).status, 200);
}

#[test]
fn read_and_update_answer_404_for_unknown_and_malformed_ids() {
    let app = TestApp::start();
    let unknown = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    assert_problem(
        &app.call("clinic", "GET", &format!("/patient/{unknown}"), None),
        404,
        None,
        None,
    );
    // PUT of an unknown patient is 404, not an insert.
    let reply = put(&app, unknown, &with(full(), "id", json!(unknown)), None);
    assert_problem(&reply, 404, None, None);
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{unknown}"), None)
            .status,
        404
    );
    assert_eq!(search(&app, &json!({"id": unknown})).status, 404);

    // Route ids that are not GUIDs are 404 (and reach neither the audit
    // nor the store: malformed_ids_are_404_even_with_the_store_down).
    assert_malformed_ids_are_404(&app);
    // Upper-case GUIDs name the same patient.
    let id = created(&app, &full());
    assert_eq!(
        app.call(
            "clinic",
            "GET",
            &format!("/patient/{}", id.to_uppercase()),
            None
        )
        .json()["id"],
        id
    );
}

/// Route ids that are not GUIDs are 404 on every patient and test route.
fn assert_malformed_ids_are_404(app: &TestApp) {
    let unknown = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    for bad in [
        "not-a-guid",
        "3f2504e04f8911d39a0c0305e82c3301",
        "3f2504e0-4f89-11d3-9a0c-0305e82c330",
        "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
        "search1",
    ] {
        assert_problem(
            &app.call("clinic", "GET", &format!("/patient/{bad}"), None),
            404,
            None,
            None,
        );
        let reply = put(app, bad, &with(full(), "id", json!(bad)), None);
        assert_problem(&reply, 404, None, None);
        assert_problem(
            &app.call("clinic", "GET", &format!("/patient/{bad}/tests"), None),
            404,
            None,
            None,
        );
        assert_problem(
            &app.call(
                "clinic",
                "POST",
                &format!("/patient/{bad}/tests"),
                Some(&test_body()),
            ),
            404,
            None,
            None,
        );
        assert_problem(
            &app.call(
                "clinic",
                "GET",
                &format!("/patient/{unknown}/tests/{bad}"),
                None,
            ),
            404,
            None,
            None,
        );
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn malformed_ids_are_404_even_with_the_store_down() {
    // Route ids that are not GUIDs are 404 without reaching the audit or
    // the store: with the store down, they are still 404 (not 503).
    let app = TestApp::start();
    let host = app.host();
    host.set_fault("docstore", Some(Fault::Refuse));
    assert_malformed_ids_are_404(&app);
    host.set_fault("docstore", None);
}

#[test]
fn update_demands_the_route_id_in_the_body() {
    let app = TestApp::start();
    let id = created(&app, &full());
    let other = created(&app, &minimal("Other", "1111", "1990"));
    for body in [
        full(),
        with(full(), "id", json!(other)),
        with(full(), "id", Value::Null),
    ] {
        assert_problem(
            &put(&app, &id, &body, None),
            400,
            Some("id"),
            Some("Inconsistent registration IDs"),
        );
    }
    assert_problem(
        &put(&app, &id, &with(full(), "id", json!("nope")), None),
        400,
        Some("id"),
        None,
    );
    assert_problem(
        &put(
            &app,
            &id,
            &with(with(full(), "id", json!(id)), "nickname", json!("x")),
            None,
        ),
        400,
        Some("nickname"),
        None,
    );
    assert_problem(
        &put(
            &app,
            &id,
            &with(
                with(full(), "id", json!(id)),
                "lastUpdated",
                json!("yesterday"),
            ),
            None,
        ),
        400,
        Some("lastUpdated"),
        None,
    );
    // Neither patient changed.
    let read = app
        .call("clinic", "GET", &format!("/patient/{other}"), None)
        .json();
    assert_eq!(read["firstName"], "Other");
}

#[test]
fn concurrent_updates_with_the_same_if_match_lose_nothing() {
    let app = TestApp::start();
    let id = created(&app, &full());
    for round in 0..4 {
        let read = app.call("clinic", "GET", &format!("/patient/{id}"), None);
        let etag = read.header("etag").unwrap().to_string();
        let barrier = Barrier::new(2);
        let names = [format!("Left{round}"), format!("Right{round}")];
        let replies: Vec<Reply> = std::thread::scope(|scope| {
            let handles: Vec<_> = names
                .iter()
                .map(|name| {
                    let body = with(with(full(), "id", json!(id)), "firstName", json!(name));
                    let (app, barrier, etag, id) = (&app, &barrier, &etag, &id);
                    scope.spawn(move || {
                        barrier.wait();
                        put(app, id, &body, Some(etag))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        statuses.sort();
        assert_eq!(
            statuses,
            vec![200, 412],
            "round {round}: {:?}",
            replies.iter().map(Reply::text).collect::<Vec<_>>()
        );
        let winner = replies.iter().find(|r| r.status == 200).unwrap();
        let now = app.call("clinic", "GET", &format!("/patient/{id}"), None);
        assert_eq!(
            now.json()["firstName"],
            winner.json()["firstName"],
            "the winner's write is the one kept"
        );
        assert_eq!(now.header("etag"), winner.header("etag"));
    }
}

/// A key no earlier run used (the suite also runs against a long-lived app).
fn fresh_key(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{label}-{nanos:x}")
}

#[test]
fn a_create_retried_with_its_idempotency_key_returns_the_first_result() {
    let app = TestApp::start();
    let body = full().to_string();
    let key = fresh_key("patient");
    let quoted = format!("\"{key}\"");
    // Two retries at once with one key: one patient.
    let barrier = Barrier::new(2);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = [key.as_str(), quoted.as_str()]
            .into_iter()
            .map(|value| {
                let (app, barrier, body) = (&app, &barrier, &body);
                scope.spawn(move || {
                    barrier.wait();
                    send(
                        app,
                        "POST",
                        "/patient",
                        &[("idempotency-key", value)],
                        Some(body.as_bytes()),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let id = replies[0].json()["id"].as_str().unwrap().to_string();
    assert_eq!(replies[1].json()["id"], id.as_str(), "one patient");
    assert_eq!(replies[0].header("etag"), replies[1].header("etag"));
    assert_eq!(
        replies[1].header("location"),
        Some(format!("/patient/{id}").as_str())
    );
    // A later retry: the same answer again.
    let again = send(
        &app,
        "POST",
        "/patient",
        &[("idempotency-key", &key)],
        Some(body.as_bytes()),
    );
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), replies[0].json());
    // The same key for another body: 422, and nothing is stored.
    let other = with(full(), "firstName", json!("Other")).to_string();
    let reused = send(
        &app,
        "POST",
        "/patient",
        &[("idempotency-key", &key)],
        Some(other.as_bytes()),
    );
    assert_problem(&reused, 422, Some("Idempotency-Key"), None);
    let now = app.call("clinic", "GET", &format!("/patient/{id}"), None);
    assert_eq!(now.json()["firstName"], full()["firstName"]);
    // Another caller's identical key is another patient.
    let admin_key = app.key("admin").to_string();
    let theirs = app.send(
        "POST",
        "/patient",
        &[
            ("ocp-apim-subscription-key", admin_key.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", key.as_str()),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.json()["id"], id.as_str());
    // Malformed keys are 400 and create nothing.
    for bad in ["two words", "\"open", "caf\u{e9}"] {
        let reply = send(
            &app,
            "POST",
            "/patient",
            &[("idempotency-key", bad)],
            Some(body.as_bytes()),
        );
        assert_problem(&reply, 400, Some("Idempotency-Key"), None);
    }

    // A test under the same rules, per patient.
    let test = test_body().to_string();
    let test_key = fresh_key("test");
    let path = format!("/patient/{id}/tests");
    let first = send(
        &app,
        "POST",
        &path,
        &[("idempotency-key", &test_key)],
        Some(test.as_bytes()),
    );
    assert_eq!(first.status, 201, "{}", first.text());
    let retry = send(
        &app,
        "POST",
        &path,
        &[("idempotency-key", &test_key)],
        Some(test.as_bytes()),
    );
    assert_eq!(retry.status, 201);
    assert_eq!(retry.json()["id"], first.json()["id"]);
    let listed = app.call("clinic", "GET", &path, None);
    assert_eq!(listed.json().as_array().unwrap().len(), 1, "one test");
}

// --- Search --------------------------------------------------------------------

#[test]
fn search_matches_every_criterion_and_date_ranges_inclusively() {
    let app = TestApp::start();
    let a = created(&app, &full());
    let b = created(
        &app,
        &json!({"firstName": "Bo", "lastName": "Berg", "fullName": "Bo Berg", "gender": "male",
        "dateOfBirth": "1975", "postCode": "8000", "insuranceNumber": "INS-2", "preferredContactNumber": "555"}),
    );
    let set = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // Judged among the patients made so far (see found_among).
    let mut made = set(&[&a, &b]);
    let found = |app: &TestApp, criteria: &Value| found_among(app, criteria, &made);
    assert_eq!(found(&app, &json!({})), set(&[&a, &b]));
    assert_eq!(found(&app, &json!({"id": a})), set(&[&a]));
    assert_eq!(found(&app, &json!({"id": a.to_uppercase()})), set(&[&a]));
    assert_eq!(found(&app, &json!({"firstName": "Bo"})), set(&[&b]));
    assert_eq!(found(&app, &json!({"lastName": "Søren"})), set(&[&a]));
    assert_eq!(found(&app, &json!({"fullName": "Bo Berg"})), set(&[&b]));
    assert_eq!(found(&app, &json!({"gender": "female"})), set(&[&a]));
    assert_eq!(found(&app, &json!({"postCode": "8000"})), set(&[&b]));
    assert_eq!(
        found(&app, &json!({"insuranceNumber": "INS-1"})),
        set(&[&a])
    );
    assert_eq!(
        found(&app, &json!({"preferredContactNumber": "555"})),
        set(&[&b])
    );
    // Every given criterion must match; exact and case-sensitive.
    assert_eq!(
        found(&app, &json!({"firstName": "Bo", "postCode": "2100"})),
        set(&[])
    );
    assert_eq!(found(&app, &json!({"firstName": "bo"})), set(&[]));

    // Dates: ranges on the normalised date (a partial date counts as its first day).
    let zone = "7777";
    let born = |d: &str| created(&app, &minimal("Dee", zone, d));
    let (d1979, d1980, d1980_06, d1980_06_15, d1981) = (
        born("1979-12-31"),
        born("1980"),
        born("1980-06"),
        born("1980-06-15"),
        born("1981-01-01"),
    );
    made.extend(
        [&d1979, &d1980, &d1980_06, &d1980_06_15, &d1981]
            .into_iter()
            .cloned(),
    );
    let found = |app: &TestApp, criteria: &Value| found_among(app, criteria, &made);
    let range = |from: Option<&str>, to: Option<&str>| {
        let mut c = json!({"postCode": zone});
        if let Some(f) = from {
            c["dateOfBirthFrom"] = json!(f);
        }
        if let Some(t) = to {
            c["dateOfBirthTo"] = json!(t);
        }
        found(&app, &c)
    };
    assert_eq!(
        range(Some("1980"), Some("1980")),
        set(&[&d1980, &d1980_06, &d1980_06_15])
    );
    assert_eq!(
        range(Some("1980-06"), None),
        set(&[&d1980_06, &d1980_06_15, &d1981])
    );
    assert_eq!(range(None, Some("1980-05")), set(&[&d1979, &d1980]));
    assert_eq!(
        range(Some("1980-06-15"), Some("1980-06-15")),
        set(&[&d1980_06_15])
    );
    assert_eq!(
        range(Some("1979-12-31"), Some("1979-12-31")),
        set(&[&d1979])
    );
    assert_eq!(
        range(Some("1980-06-02"), Some("1980-12-31")),
        set(&[&d1980_06_15])
    );
    assert_eq!(range(Some("1982"), None), set(&[]));

    let none = search(&app, &json!({"firstName": "Nobody"}));
    assert_problem(
        &none,
        404,
        None,
        Some("No patients found with provided criteria"),
    );
}

#[test]
fn every_search_criterion_rule_on_both_sides() {
    let app = TestApp::start();
    created(&app, &full());
    let s = |c: &str, n: usize| json!(c.repeat(n));
    let guid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let mut cases: Vec<(Value, Option<&str>)> = vec![
        (json!({"id": guid}), None),
        (json!({"id": "x"}), Some("id")),
        (json!({"id": 5}), Some("id")),
        (json!({"firstName": s("a", 64)}), None),
        (json!({"firstName": s("a", 65)}), Some("firstName")),
        (json!({"lastName": s("a", 64)}), None),
        (json!({"lastName": s("a", 65)}), Some("lastName")),
        (json!({"fullName": s("a", 128)}), None),
        (json!({"fullName": s("a", 129)}), Some("fullName")),
        (json!({"postCode": "123"}), Some("postCode")),
        (json!({"postCode": "1234"}), None),
        (json!({"postCode": "12345"}), Some("postCode")),
        (json!({"gender": "Male"}), Some("gender")),
        (json!({"insuranceNumber": s("1", 128)}), None),
        (
            json!({"insuranceNumber": s("1", 129)}),
            Some("insuranceNumber"),
        ),
        (
            json!({"preferredContactNumber": ""}),
            Some("preferredContactNumber"),
        ),
        (json!({"shoeSize": "42"}), Some("shoeSize")),
        (json!({"dateOfBirth": "1980"}), Some("dateOfBirth")),
        (
            json!({"dateOfBirthFrom": "1981", "dateOfBirthTo": "1980-12-31"}),
            Some("dateOfBirthFrom"),
        ),
        (
            json!({"dateOfBirthFrom": "1980-12-31", "dateOfBirthTo": "1980"}),
            None,
        ),
        (json!({"firstName": null}), None),
        (json!([]), Some("body")),
    ];
    for gender in ["male", "female", "other", "unknown"] {
        cases.push((json!({"gender": gender}), None));
    }
    for key in ["dateOfBirthFrom", "dateOfBirthTo"] {
        for date in ["1980", "1980-06", "1980-06-15", "2000-02-29"] {
            cases.push((json!({key: date}), None));
        }
        for date in [
            "0000",
            "1980-00",
            "1980-13",
            "1980-06-00",
            "1980-06-32",
            "1981-02-29",
            "80",
            "1980-6-1",
        ] {
            cases.push((json!({key: date}), Some(key)));
        }
    }
    for (criteria, failing) in cases {
        let reply = search(&app, &criteria);
        match failing {
            None => assert!(
                matches!(reply.status, 200 | 404),
                "{criteria}: {} {}",
                reply.status,
                reply.text()
            ),
            Some(field) => assert_problem(&reply, 400, Some(field), None),
        }
    }
    // An empty body searches everything, as the original API allowed.
    assert_eq!(
        send(&app, "POST", "/patient/search", &[], Some(b"")).status,
        200
    );
    assert_problem(
        &send(&app, "POST", "/patient/search", &[], Some(b"{")),
        400,
        Some("body"),
        None,
    );
}

#[test]
fn search_pages_with_limit_and_continuation_tokens() {
    let app = TestApp::start();
    // Tagged, so that the pages hold this test's patients only.
    let tagged = |first: &str, post_code: &str| {
        with(
            minimal(first, post_code, "1990"),
            "lastName",
            json!(app.tag()),
        )
    };
    let mut all = BTreeSet::new();
    for i in 0..5 {
        all.insert(created(&app, &tagged(&format!("Page{i}"), "5555")));
    }
    created(&app, &tagged("Elsewhere", "6666"));
    let criteria = json!({"postCode": "5555", "lastName": app.tag()}).to_string();
    let page = |limit: &str, token: Option<&str>| {
        let headers: Vec<(&str, &str)> = token
            .map(|t| vec![("x-continuation-token", t)])
            .unwrap_or_default();
        send(
            &app,
            "POST",
            &format!("/patient/search?limit={limit}"),
            &headers,
            Some(criteria.as_bytes()),
        )
    };
    let mut seen = BTreeSet::new();
    let mut sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let reply = page("2", token.as_deref());
        assert_eq!(reply.status, 200, "{}", reply.text());
        let ids = ids(&reply);
        sizes.push(ids.len());
        for id in ids {
            assert!(seen.insert(id), "no patient on two pages");
        }
        token = reply.header("x-continuation-token").map(str::to_string);
        if token.is_none() {
            break;
        }
        assert!(sizes.len() < 10, "paging terminates");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, all);

    // Default 100 and the maximum 1000 return everything at once.
    for limit in ["1000", "100"] {
        let reply = page(limit, None);
        assert_eq!(ids(&reply), all);
        assert!(reply.header("x-continuation-token").is_none());
    }
    let reply = send(
        &app,
        "POST",
        "/patient/search",
        &[],
        Some(criteria.as_bytes()),
    );
    assert_eq!(ids(&reply), all);

    for bad in ["0", "1001", "-1", "abc", "", "1.5", "2&limit=3"] {
        assert_problem(&page(bad, None), 400, Some("limit"), None);
    }

    // A token the store did not issue for this query is 400, never 500.
    let first = page("2", None);
    let good = first.header("x-continuation-token").unwrap().to_string();
    // Flip a character near the start, where it breaks the token's structure.
    let mut tampered: Vec<char> = good.chars().collect();
    tampered[1] = if tampered[1] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    for token in [
        tampered.as_str(),
        "garbage",
        "{\"token\":\"x\"}",
        &format!("{good}x"),
    ] {
        assert_problem(
            &page("2", Some(token)),
            400,
            Some("x-continuation-token"),
            None,
        );
    }
    // Another query's token is refused too.
    let other = json!({"postCode": "6666"}).to_string();
    let reply = send(
        &app,
        "POST",
        "/patient/search?limit=2",
        &[("x-continuation-token", &good)],
        Some(other.as_bytes()),
    );
    assert_problem(&reply, 400, Some("x-continuation-token"), None);
    // The genuine token still works.
    assert_eq!(page("2", Some(&good)).status, 200);
}

#[test]
fn patient_and_audit_answers_and_errors_are_never_cached() {
    let app = TestApp::start();
    let patient = created(&app, &with(full(), "lastName", json!(app.tag())));
    let tests_path = format!("/patient/{patient}/tests");
    let created_test = app.call("clinic", "POST", &tests_path, Some(&test_body()));
    assert_eq!(created_test.status, 201, "{}", created_test.text());
    let test_id = created_test.json()["id"].as_str().unwrap().to_string();
    let unknown = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let answers = [
        ("create a test", created_test),
        (
            "read a patient",
            app.call("clinic", "GET", &format!("/patient/{patient}"), None),
        ),
        ("search", search(&app, &json!({"lastName": app.tag()}))),
        ("list tests", app.call("clinic", "GET", &tests_path, None)),
        (
            "read a test",
            app.call("clinic", "GET", &format!("{tests_path}/{test_id}"), None),
        ),
        (
            "read audit records",
            app.call(
                "auditor",
                "GET",
                &format!("/audit/records?resourceType=patient&resourceId={patient}"),
                None,
            ),
        ),
        (
            "verify a chain",
            app.call(
                "auditor",
                "GET",
                &format!("/audit/verify?resourceType=patient&resourceId={patient}"),
                None,
            ),
        ),
        (
            "a backend's 404",
            app.call("clinic", "GET", &format!("/patient/{unknown}"), None),
        ),
        (
            "the gateway's 401",
            app.get(
                &format!("/patient/{patient}"),
                &[("ocp-apim-subscription-key", "wrong")],
            ),
        ),
    ];
    for (what, reply) in &answers {
        assert!(reply.status < 500, "{what}: {}", reply.text());
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    }
    assert_eq!(answers[1].1.status, 200);
    assert_eq!(answers[2].1.status, 200);
    assert_eq!(answers[3].1.status, 200);
    assert_eq!(answers[5].1.status, 200);
}

// --- Tests (laboratory results) --------------------------------------------

#[test]
fn tests_are_created_listed_and_read() {
    let app = TestApp::start();
    let patient = created(&app, &full());
    let tests_path = format!("/patient/{patient}/tests");
    assert_problem(
        &app.call("clinic", "GET", &tests_path, None),
        404,
        None,
        None,
    );

    let reply = app.call("clinic", "POST", &tests_path, Some(&test_body()));
    assert_eq!(reply.status, 201, "{}", reply.text());
    let test = reply.json();
    let test_id = test["id"].as_str().unwrap().to_string();
    assert!(is_guid(&test_id));
    assert_eq!(test["patientId"], patient);
    assert_eq!(test["performer"], "Lab A");
    assert_eq!(
        test["observations"][0]["issued"],
        "2024-03-01T08:30:00.000Z"
    );
    assert!(test["lastUpdated"].is_string());
    assert_eq!(
        reply.header("location"),
        Some(format!("{tests_path}/{test_id}").as_str())
    );
    assert!(reply.header("etag").is_some());

    // patientId may be sent if it is the route's.
    let second = app.call(
        "clinic",
        "POST",
        &tests_path,
        Some(&with(test_body(), "patientId", json!(patient))),
    );
    assert_eq!(second.status, 201, "{}", second.text());
    let second_id = second.json()["id"].as_str().unwrap().to_string();

    let list = app.call("clinic", "GET", &tests_path, None);
    assert_eq!(list.status, 200);
    let listed: BTreeSet<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, BTreeSet::from([test_id.clone(), second_id]));

    let read = app.call("clinic", "GET", &format!("{tests_path}/{test_id}"), None);
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), test);
    assert!(read.header("etag").is_some());

    // Another patient's route does not reach this test, and has no tests.
    let other = created(&app, &minimal("Other", "1111", "1990"));
    assert_problem(
        &app.call(
            "clinic",
            "GET",
            &format!("/patient/{other}/tests/{test_id}"),
            None,
        ),
        404,
        None,
        None,
    );
    assert_problem(
        &app.call("clinic", "GET", &format!("/patient/{other}/tests"), None),
        404,
        None,
        None,
    );
    let unknown = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    assert_problem(
        &app.call("clinic", "GET", &format!("{tests_path}/{unknown}"), None),
        404,
        None,
        None,
    );

    // A test for an unknown patient is 404, and nothing is stored.
    let reply = app.call(
        "clinic",
        "POST",
        &format!("/patient/{unknown}/tests"),
        Some(&test_body()),
    );
    assert_problem(&reply, 404, None, None);
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{unknown}/tests"), None)
            .status,
        404
    );
}

#[test]
fn a_patient_with_200_tests_lists_page_by_page_without_duplicates_or_gaps() {
    let app = TestApp::start();
    let patient = created(&app, &minimal("Many", "4242", "1970"));
    let tests_path = format!("/patient/{patient}/tests");
    let made: BTreeSet<String> = (0..200)
        .map(|_| {
            let reply = app.call("clinic", "POST", &tests_path, Some(&test_body()));
            assert_eq!(reply.status, 201, "{}", reply.text());
            reply.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(made.len(), 200);
    let page = |query: &str, token: Option<&str>| {
        let headers: Vec<(&str, &str)> = token
            .map(|t| vec![("x-continuation-token", t)])
            .unwrap_or_default();
        send(&app, "GET", &format!("{tests_path}{query}"), &headers, None)
    };
    let mut lists = 0;
    let mut seen = BTreeSet::new();
    let mut sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let reply = page("?limit=30", token.as_deref());
        lists += 1;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let ids = ids(&reply);
        assert!(ids.len() <= 30);
        sizes.push(ids.len());
        for id in ids {
            assert!(seen.insert(id), "no test on two pages");
        }
        token = reply.header("x-continuation-token").map(str::to_string);
        if token.is_none() {
            break;
        }
        assert!(sizes.len() < 20, "paging terminates");
    }
    assert_eq!(seen, made, "every test, on some page");
    assert_eq!(sizes.iter().sum::<usize>(), 200, "{sizes:?}");

    // Without ?limit= a page is 100, and the rest follows.
    let first = page("", None);
    lists += 1;
    assert_eq!(ids(&first).len(), 100);
    let next = first.header("x-continuation-token").expect("more remain");
    let second = page("", Some(next));
    lists += 1;
    assert_eq!(second.status, 200, "{}", second.text());
    let both: BTreeSet<String> = ids(&first).union(&ids(&second)).cloned().collect();
    assert_eq!(both, made);
    // At most 1000 at once.
    let all = page("?limit=1000", None);
    lists += 1;
    assert_eq!(ids(&all), made);
    assert!(all.header("x-continuation-token").is_none());

    // Bad paging is 400 problem+json, and is not audited.
    for bad in ["0", "1001", "-1", "abc", "", "1.5", "2&limit=3"] {
        assert_problem(
            &page(&format!("?limit={bad}"), None),
            400,
            Some("limit"),
            None,
        );
    }
    for token in ["garbage", "{\"token\":\"x\"}"] {
        let reply = page("?limit=30", Some(token));
        lists += 1;
        assert_problem(&reply, 400, Some("x-continuation-token"), None);
    }
    // Audit first: every listing that got past validation wrote its record
    // on the patient's tests, before the store was read.
    let records = app.call(
        "auditor",
        "GET",
        &format!("/audit/records?resourceType=test&resourceId={patient}&limit=1000"),
        None,
    );
    assert_eq!(records.status, 200, "{}", records.text());
    let records = records.json();
    let listings = records.as_array().unwrap();
    assert_eq!(listings.len(), lists, "one record per listing");
    assert!(listings
        .iter()
        .all(|r| r["resource"]["operation"] == "search"
            && r["resource"]["criteria"] == json!(["patientId"])));
}

#[test]
fn every_test_field_rule_on_both_sides() {
    let app = TestApp::start();
    let patient = created(&app, &full());
    let path = format!("/patient/{patient}/tests");
    let obs = test_body()["observations"][0].clone();
    let with_obs = |key: &str, value: Option<Value>| {
        let mut o = obs.clone();
        match value {
            Some(v) => o[key] = v,
            None => {
                o.as_object_mut().unwrap().remove(key);
            }
        }
        with(test_body(), "observations", json!([o]))
    };
    let mut cases: Vec<(Value, Option<String>, Option<&str>)> = vec![
        (test_body(), None, None),
        (with(test_body(), "observations", json!([])), None, None),
        (
            with(
                test_body(),
                "id",
                json!("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
            ),
            Some("id".into()),
            Some("Id unexpected."),
        ),
        (
            with(test_body(), "lastUpdated", json!("2024-01-01T00:00:00Z")),
            Some("lastUpdated".into()),
            Some("lastUpdated unexpected."),
        ),
        (
            with(
                test_body(),
                "patientId",
                json!("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
            ),
            Some("patientId".into()),
            None,
        ),
        (
            with(test_body(), "result", json!("x")),
            Some("result".into()),
            None,
        ),
        (
            with(test_body(), "observations", json!({})),
            Some("observations".into()),
            None,
        ),
        (
            with(test_body(), "performer", json!("")),
            Some("performer".into()),
            None,
        ),
        (
            with(test_body(), "performer", json!("a".repeat(1024))),
            None,
            None,
        ),
        (
            with(test_body(), "performer", json!("a".repeat(1025))),
            Some("performer".into()),
            None,
        ),
        (
            with_obs("issued", Some(json!("2024-03-01"))),
            Some("observations[0].issued".into()),
            None,
        ),
        (
            with_obs("issued", Some(json!("2024-03-01T09:30:00Z"))),
            None,
            None,
        ),
        (
            with_obs("extra", Some(json!("x"))),
            Some("observations[0].extra".into()),
            None,
        ),
    ];
    for required in ["performer", "orderReference", "observations"] {
        cases.push((without(test_body(), required), Some(required.into()), None));
    }
    for field in [
        "id",
        "code",
        "measurement",
        "interpretation",
        "issued",
        "status",
    ] {
        cases.push((
            with_obs(field, None),
            Some(format!("observations[0].{field}")),
            None,
        ));
        cases.push((
            with_obs(field, Some(json!(1))),
            Some(format!("observations[0].{field}")),
            None,
        ));
    }
    for (body, failing, detail) in cases {
        let reply = app.call("clinic", "POST", &path, Some(&body));
        match failing {
            None => assert_eq!(reply.status, 201, "{body}: {}", reply.text()),
            Some(field) => assert_problem(&reply, 400, Some(&field), detail),
        }
    }
}

// --- Errors, limits, logs -------------------------------------------------------

#[test]
fn bodies_over_64_kib_are_413_and_errors_carry_the_correlation_id() {
    let app = TestApp::start();
    let mut big = full();
    big["firstName"] = json!("a".repeat(70 * 1024));
    let reply = create(&app, &big);
    assert_problem(&reply, 413, None, None);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn patient_api_behind_the_gateway_limits_bodies_and_demands_key_and_actor() {
    // Behind the gateway too (defense in depth).
    let app = TestApp::start();
    let host = app.host();
    let key = app.secrets.variables["patientapiprimarykey"].clone();
    let correlation = "0af7651916cd43dd8448eb211c80319c";
    let headers = [
        ("x-functions-key", key.as_str()),
        ("x-actor", "direct"),
        ("x-correlation-id", correlation),
    ];
    let body = vec![b' '; 64 * 1024 + 1];
    let reply = host.invoke("patient-api", "POST", "/patient/search", &headers, &body);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["correlationId"], correlation);
    let body = vec![b' '; 64 * 1024];
    assert_eq!(
        host.invoke("patient-api", "POST", "/patient/search", &headers, &body)
            .status,
        404
    );

    // Without its host key patient-api answers nothing else.
    let reply = host.invoke(
        "patient-api",
        "GET",
        "/patient/search",
        &[("x-correlation-id", correlation)],
        b"",
    );
    assert_eq!(reply.status, 401);
    // Without an actor there is no one to attribute the access to.
    let reply = host.invoke(
        "patient-api",
        "POST",
        "/patient/search",
        &[("x-functions-key", key.as_str())],
        b"{}",
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["field"], "x-actor");
    // Wrong methods are 405 with Allow.
    let reply = host.invoke(
        "patient-api",
        "DELETE",
        "/patient/3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        &headers,
        b"",
    );
    assert_eq!(
        (reply.status, reply.header("allow")),
        (405, Some("GET, PUT"))
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn store_outages_are_503_with_retry_after_never_500() {
    let app = TestApp::start();
    let host = app.host();
    let id = created(&app, &full());
    let faults = [
        Fault::Refuse,
        Fault::Respond {
            status: 503,
            headers: vec![],
            body: String::new(),
            times: None,
        },
        Fault::Respond {
            status: 429,
            headers: vec![("x-ms-retry-after-ms".into(), "10".into())],
            body: "{\"code\":\"TooManyRequests\",\"message\":\"busy\"}".into(),
            times: None,
        },
    ];
    for fault in faults {
        host.set_fault("docstore", Some(fault.clone()));
        for reply in [
            app.call("clinic", "GET", &format!("/patient/{id}"), None),
            create(&app, &full()),
            search(&app, &json!({})),
        ] {
            assert_problem(&reply, 503, None, None);
            assert!(reply.header("retry-after").is_some(), "{fault:?}");
        }
    }
    host.set_fault("docstore", None);
    assert_eq!(
        app.call("clinic", "GET", &format!("/patient/{id}"), None)
            .status,
        200
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn logs_hold_no_patient_data() {
    let app = TestApp::start();
    let host = app.host();
    let body = json!({"firstName": "Quintessa", "lastName": "Vandersloot", "gender": "female",
        "dateOfBirth": "1961-07-19", "postCode": "9QZ7", "insuranceNumber": "INS-778899"});
    let id = created(&app, &body);
    app.call("clinic", "GET", &format!("/patient/{id}"), None);
    search(&app, &json!({"lastName": "Vandersloot"}));
    create(&app, &with(body.clone(), "postCode", json!("Vandersloot")));
    // A component's log line may land just after its response.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let logs = loop {
        let logs = host.app.logs();
        let count = logs.iter().filter(|l| l.component == "patient-api").count();
        if count >= 4 || std::time::Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let patient_logs: Vec<_> = logs
        .iter()
        .filter(|l| l.component == "patient-api")
        .collect();
    assert_eq!(
        patient_logs.len(),
        4,
        "one line per request: {patient_logs:?}"
    );
    for line in &logs {
        for secret in [
            "Quintessa",
            "Vandersloot",
            "1961-07-19",
            "9QZ7",
            "INS-778899",
        ] {
            assert!(
                !line.line.contains(secret),
                "{}: {}",
                line.component,
                line.line
            );
        }
    }
    // patient-api logs route templates, not even ids.
    assert!(patient_logs.iter().all(|l| !l.line.contains(&id)));
}
