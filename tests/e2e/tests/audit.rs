//! audit-api: the append-only, hash-chained audit register. Called directly
//! as patient-api calls it (service chaining with the audit host key), and
//! through the gateway's /audit/* routes where the gateway forwards them.
//! Tampering is done in the docstore's SQLite file, as someone with access
//! to the store would.

use std::collections::BTreeSet;

use e2e::{Host, Reply, TestApp};
use serde_json::{json, Value};
use spin_test_host::Fault;

const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// A fresh resource id per test case, so cases never share a chain.
fn new_id() -> String {
    let b = e2e::random_bytes(16);
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn input(kind: &str, id: &str, operation: &str) -> Value {
    json!({"sourceSystemName": "patient-api", "resource": {"type": kind, "id": id, "operation": operation}})
}

/// audit-api as its callers reach it.
struct Audit<'a> {
    app: &'a TestApp,
    host: &'a Host,
}

impl<'a> Audit<'a> {
    fn of(app: &'a TestApp) -> Self {
        Audit {
            app,
            host: app.host(),
        }
    }

    fn key(&self) -> String {
        self.app.secrets.variables["auditapiprimarykey"].clone()
    }

    /// An append, once no instance is running any more.
    fn post_with(&self, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let reply = self
            .host
            .invoke("audit-api", "POST", "/auditrecord", headers, body);
        self.host.settle();
        reply
    }

    fn post(&self, body: &Value) -> Reply {
        let key = self.key();
        self.post_with(
            &[
                ("x-functions-key", &key),
                ("content-type", "application/json"),
                ("x-correlation-id", TRACE),
                ("x-actor", "clinic"),
            ],
            body.to_string().as_bytes(),
        )
    }

    fn append(&self, kind: &str, id: &str, operation: &str) -> Value {
        let reply = self.post(&input(kind, id, operation));
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()
    }

    fn get(&self, path: &str, extra: &[(&str, &str)]) -> Reply {
        let key = self.key();
        let mut headers = vec![("x-functions-key", key.as_str())];
        headers.extend_from_slice(extra);
        self.host.invoke("audit-api", "GET", path, &headers, b"")
    }

    fn verify(&self, kind: &str, id: &str) -> Value {
        let reply = self.get(
            &format!("/audit/verify?resourceType={kind}&resourceId={id}"),
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    /// Every record of a chain, following continuation tokens.
    fn records(&self, kind: &str, id: &str, limit: u32) -> Vec<Value> {
        let path = format!("/audit/records?resourceType={kind}&resourceId={id}&limit={limit}");
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let headers: Vec<(&str, &str)> = token
                .as_deref()
                .map(|t| vec![("x-continuation-token", t)])
                .unwrap_or_default();
            let reply = self.get(&path, &headers);
            assert_eq!(reply.status, 200, "{}", reply.text());
            let page = reply.json().as_array().unwrap().clone();
            assert!(page.len() <= limit as usize);
            all.extend(page);
            match reply.header("x-continuation-token") {
                Some(t) => token = Some(t.to_string()),
                None => return all,
            }
        }
    }

    fn db(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.host.app.sqlite_path()).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        db
    }

    /// How many documents the audit database holds.
    fn stored(&self) -> i64 {
        let db = self.db();
        // The docstore creates its table on first use.
        let has_table: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'docstore_documents'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if has_table == 0 {
            return 0;
        }
        db.query_row(
            "SELECT COUNT(*) FROM docstore_documents WHERE db = 'audit'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn record_doc_id(kind: &str, id: &str, sequence: u64) -> String {
        format!("{kind}:{id}:{sequence:020}")
    }

    fn stored_body(&self, doc_id: &str) -> Value {
        let body: String = self
            .db()
            .query_row(
                "SELECT body FROM docstore_documents WHERE db = 'audit' AND coll = 'records' AND id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    fn store_body(&self, doc_id: &str, body: &Value) {
        let changed = self
            .db()
            .execute(
                "UPDATE docstore_documents SET body = ?1 WHERE db = 'audit' AND coll = 'records' AND id = ?2",
                [body.to_string(), doc_id.to_string()],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }

    fn delete(&self, doc_id: &str) {
        let changed = self
            .db()
            .execute(
                "DELETE FROM docstore_documents WHERE db = 'audit' AND coll = 'records' AND id = ?1",
                [doc_id],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
}

fn problem_field(reply: &Reply) -> String {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{}",
        reply.text()
    );
    reply.json()["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn an_append_returns_the_sealed_record_and_links_the_next() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let first = audit.append("patient", PID, "create");
    for member in ["id", "createdDate", "hash", "previousHash", "chainKey"] {
        assert!(first[member].is_string(), "{member}: {first}");
    }
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["previousHash"], "0".repeat(64));
    assert_eq!(first["correlationId"], TRACE);
    assert_eq!(first["actor"], "clinic");
    assert_eq!(first["sourceSystemName"], "patient-api");
    assert_eq!(
        first["resource"],
        json!({"type": "patient", "id": PID, "operation": "create"})
    );
    assert_eq!(first["chainKey"], format!("patient:{PID}"));

    let search = json!({"sourceSystemName": "patient-api",
        "resource": {"type": "patient", "id": PID, "operation": "search", "criteria": ["firstName", "postCode"]}});
    let reply = audit.post(&search);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let second = reply.json();
    assert_eq!(second["sequence"], 2);
    assert_eq!(second["previousHash"], first["hash"]);
    assert_eq!(
        second["resource"]["criteria"],
        json!(["firstName", "postCode"])
    );
    assert_ne!(second["id"], first["id"]);

    // Another resource has its own chain.
    let other = audit.append("test", PID, "read");
    assert_eq!(other["sequence"], 1);

    let listed = audit.records("patient", PID, 100);
    assert_eq!(listed, vec![first, second]);
    let report = audit.verify("patient", PID);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["recordsChecked"], 2);
    assert_eq!(report["firstBreak"], Value::Null);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn fifty_concurrent_appends_for_one_resource_form_one_unbroken_chain() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let id = new_id();
    let key = audit.key();
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let (audit, id, key) = (&audit, &id, &key);
                s.spawn(move || {
                    let correlation = format!("{TRACE}-{i}");
                    audit.post_with(
                        &[
                            ("x-functions-key", key),
                            ("x-correlation-id", &correlation),
                            ("x-actor", "clinic"),
                        ],
                        input("patient", id, "read").to_string().as_bytes(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sequences = BTreeSet::new();
    let mut correlations = BTreeSet::new();
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.text());
        let record = reply.json();
        sequences.insert(record["sequence"].as_u64().unwrap());
        correlations.insert(record["correlationId"].as_str().unwrap().to_string());
    }
    assert_eq!(
        sequences,
        (1..=50).collect::<BTreeSet<u64>>(),
        "no fork, no gap"
    );
    assert_eq!(correlations.len(), 50, "no append lost");

    let report = audit.verify("patient", &id);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["recordsChecked"], 50);
    let listed = audit.records("patient", &id, 1000);
    assert_eq!(listed.len(), 50);
    for (i, pair) in listed.windows(2).enumerate() {
        assert_eq!(pair[0]["sequence"], i as u64 + 1);
        assert_eq!(pair[1]["previousHash"], pair[0]["hash"]);
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn appends_for_different_resources_do_not_contend() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let key = audit.key();
    let ids: Vec<String> = (0..20).map(|_| new_id()).collect();
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (audit, key) = (&audit, &key);
                s.spawn(move || {
                    audit.post_with(
                        &[
                            ("x-functions-key", key),
                            ("x-correlation-id", id),
                            ("x-actor", "clinic"),
                        ],
                        input("test", id, "create").to_string().as_bytes(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(reply.json()["sequence"], 1);
    }
    // Each append got its place at the first attempt. (The host collects a
    // component's output when its instance ends, just after the response.)
    let append_lines = || -> Vec<Value> {
        audit
            .host
            .app
            .logs()
            .into_iter()
            .filter(|l| l.component == "audit-api")
            .filter_map(|l| serde_json::from_str(&l.line).ok())
            .filter(|l: &Value| l["route"] == "/auditrecord" && l["status"] == 201)
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut lines = append_lines();
    while lines.len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        lines = append_lines();
    }
    assert_eq!(lines.len(), 20, "one log line per append");
    for line in &lines {
        assert_eq!(line["attempts"], 1, "{line}");
    }
    for id in &ids {
        assert_eq!(audit.verify("test", id)["intact"], true);
    }
}

/// A change made to a stored document behind the audit service's back.
type DocumentEdit = Box<dyn Fn(&mut Value)>;

/// A chain of five records for a fresh resource; returns its id and records.
/// 64 searches at once by four subscriptions: each caller's search records
/// go on its own chains, so none of them queues behind another caller's and
/// none fails closed (all on one `patient:*` chain, 9 to 37 of 64 were 503).
/// Each search returns its own patient and discloses it on that patient's
/// chain. (Searches returning the same patient queue on its chain, as reads
/// of one patient do; that is not what this measures.)
#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn sixty_four_concurrent_searches_by_four_callers_never_fail_closed() {
    let app = TestApp::start();
    let callers = ["clinic", "reader", "registry", "admin"];
    let mut patients = Vec::new();
    for i in 0..64 {
        let body = json!({"firstName": "Search", "lastName": format!("Shard{i}"),
                          "gender": "other", "dateOfBirth": "1990-01-01", "postCode": "3000"});
        let reply = app.call("clinic", "POST", "/patient", Some(&body));
        assert_eq!(reply.status, 201, "{}", reply.text());
        patients.push(reply.json()["id"].as_str().unwrap().to_string());
    }
    let replies: Vec<(Reply, std::time::Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let (app, caller) = (&app, callers[i % callers.len()]);
                s.spawn(move || {
                    let criteria = json!({"lastName": format!("Shard{i}")});
                    let started = std::time::Instant::now();
                    let reply = app.call(caller, "POST", "/patient/search", Some(&criteria));
                    (reply, started.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Printed, never asserted: timings depend on the machine.
    let mut times: Vec<_> = replies.iter().map(|(_, t)| *t).collect();
    times.sort();
    println!(
        "64 concurrent searches by 4 callers: p50 {:?}, p99 {:?}, max {:?}",
        times[31], times[62], times[63]
    );
    let statuses: Vec<u16> = replies.iter().map(|(r, _)| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for (i, (reply, _)) in replies.iter().enumerate() {
        assert_eq!(reply.json()[0]["id"], patients[i].as_str());
    }
    app.host().settle();
    // Each patient's chain: its create, then the disclosure of the search
    // that returned it, naming a search record, unbroken, covered by the head.
    for id in &patients {
        let records = app.call(
            "admin",
            "GET",
            &format!("/audit/records?resourceType=patient&resourceId={id}"),
            None,
        );
        let records = records.json();
        let records = records.as_array().unwrap();
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[1]["resource"]["operation"], "search");
        assert!(records[1]["resource"]["reference"].is_string());
        let report = app.call(
            "admin",
            "GET",
            &format!("/audit/verify?resourceType=patient&resourceId={id}"),
            None,
        );
        let report = report.json();
        assert_eq!(report["intact"], true, "{report}");
        assert_eq!(report["unprotectedRecords"], 0, "{report}");
    }
}

fn chain_of_five(audit: &Audit<'_>) -> (String, Vec<Value>) {
    let id = new_id();
    let records = ["create", "read", "update", "read", "search"]
        .iter()
        .map(|op| audit.append("patient", &id, op))
        .collect();
    (id, records)
}

fn first_break(audit: &Audit<'_>, id: &str, case: &str) -> Value {
    let report = audit.verify("patient", id);
    assert_eq!(report["intact"], false, "{case}: {report}");
    assert!(report["recordsChecked"].as_u64().is_some());
    let b = &report["firstBreak"];
    json!({"sequence": b["sequence"], "recordId": b["recordId"], "reason": b["reason"]})
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn editing_a_stored_record_is_reported_at_that_record() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let edits: Vec<(&str, DocumentEdit)> = vec![
        ("actor", Box::new(|d| d["actor"] = json!("mallory"))),
        (
            "operation",
            Box::new(|d| {
                let other = if d["resource"]["operation"] == "create" {
                    "read"
                } else {
                    "create"
                };
                d["resource"]["operation"] = json!(other);
                d["resource"].as_object_mut().unwrap().remove("criteria");
            }),
        ),
        (
            "createdDate",
            Box::new(|d| d["createdDate"] = json!("2001-01-01T00:00:00.000Z")),
        ),
        ("hash", Box::new(|d| d["hash"] = json!("ab".repeat(32)))),
    ];
    for (what, edit) in &edits {
        for position in [1u64, 3, 5] {
            let (id, records) = chain_of_five(&audit);
            assert_eq!(audit.verify("patient", &id)["intact"], true);
            let doc_id = Audit::record_doc_id("patient", &id, position);
            let mut body = audit.stored_body(&doc_id);
            edit(&mut body);
            audit.store_body(&doc_id, &body);
            assert_eq!(
                first_break(&audit, &id, &format!("{what} at {position}")),
                json!({"sequence": position, "recordId": records[position as usize - 1]["id"], "reason": "contentAltered"}),
                "{what} at {position}"
            );
        }
    }
    // A document edited so that it is no longer a record at all.
    let (id, records) = chain_of_five(&audit);
    let doc_id = Audit::record_doc_id("patient", &id, 2);
    let mut body = audit.stored_body(&doc_id);
    body["patientName"] = json!("Ada");
    audit.store_body(&doc_id, &body);
    assert_eq!(
        first_break(&audit, &id, "case"),
        json!({"sequence": 2, "recordId": records[1]["id"], "reason": "malformed"})
    );
    // The listing does not pass the planted value on.
    let listed = audit.records("patient", &id, 100);
    assert_eq!(listed[1], json!({"malformed": true, "sequence": 2}));
    assert!(!serde_json::to_string(&listed).unwrap().contains("Ada"));
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn deleting_a_stored_record_is_reported_at_its_place() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    for position in [1u64, 3] {
        let (id, _) = chain_of_five(&audit);
        audit.delete(&Audit::record_doc_id("patient", &id, position));
        assert_eq!(
            first_break(&audit, &id, "case"),
            json!({"sequence": position, "recordId": null, "reason": "missingRecord"}),
            "{position}"
        );
    }
    // The last record: the chain head remembers it.
    let (id, records) = chain_of_five(&audit);
    audit.delete(&Audit::record_doc_id("patient", &id, 5));
    assert_eq!(
        first_break(&audit, &id, "case"),
        json!({"sequence": 5, "recordId": records[4]["id"], "reason": "missingRecord"})
    );
    // Appending afterwards does not paper over the gap.
    let next = audit.append("patient", &id, "read");
    assert_eq!(next["sequence"], 6);
    assert_eq!(first_break(&audit, &id, "after append")["sequence"], 5);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn reordering_two_stored_records_is_reported_where_the_swap_starts() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    for (a, b) in [(1u64, 2u64), (2, 4), (3, 5)] {
        let (id, records) = chain_of_five(&audit);
        let (id_a, id_b) = (
            Audit::record_doc_id("patient", &id, a),
            Audit::record_doc_id("patient", &id, b),
        );
        let (body_a, body_b) = (audit.stored_body(&id_a), audit.stored_body(&id_b));
        // Each record moves to the other's place: its position (sequence
        // and document id) changes, everything else travels with it.
        let moved = |mut body: Value, sequence: u64, doc_id: &str| {
            body["sequence"] = json!(sequence);
            body["id"] = json!(doc_id);
            body
        };
        audit.store_body(&id_a, &moved(body_b, a, &id_a));
        audit.store_body(&id_b, &moved(body_a, b, &id_b));
        assert_eq!(
            first_break(&audit, &id, "case"),
            json!({"sequence": a, "recordId": records[b as usize - 1]["id"], "reason": "contentAltered"}),
            "swap {a} {b}"
        );
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn bad_input_is_400_naming_the_field_and_stores_nothing() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let ok = input("patient", PID, "read");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = ok.clone();
        f(&mut v);
        v
    };
    let huge = "a".repeat(100_000);
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("sourceSystemName");
            }),
            "sourceSystemName",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("resource");
            }),
            "resource",
        ),
        (
            with(&|v| {
                v["resource"].as_object_mut().unwrap().remove("type");
            }),
            "resource.type",
        ),
        (
            with(&|v| {
                v["resource"].as_object_mut().unwrap().remove("id");
            }),
            "resource.id",
        ),
        (
            with(&|v| {
                v["resource"].as_object_mut().unwrap().remove("operation");
            }),
            "resource.operation",
        ),
        (
            with(&|v| v["sourceSystemName"] = json!(42)),
            "sourceSystemName",
        ),
        (with(&|v| v["resource"] = json!("patient")), "resource"),
        (with(&|v| v["resource"]["id"] = json!(["x"])), "resource.id"),
        (
            with(&|v| v["resource"]["type"] = json!("lab")),
            "resource.type",
        ),
        (
            with(&|v| v["resource"]["operation"] = json!("delete")),
            "resource.operation",
        ),
        (
            with(&|v| v["sourceSystemName"] = json!(huge)),
            "sourceSystemName",
        ),
        (with(&|v| v["resource"]["id"] = json!(huge)), "resource.id"),
        (
            with(&|v| v["resource"]["id"] = json!("Ada Lovelace")),
            "resource.id",
        ),
        (
            with(&|v| v["resource"]["criteria"] = json!(["firstName"])),
            "resource.criteria",
        ),
        (with(&|v| v["value"] = json!("Ada")), "value"),
        (
            with(&|v| v["resource"]["firstName"] = json!("Ada")),
            "resource.firstName",
        ),
        (with(&|v| v["id"] = json!(PID)), "id"),
        (with(&|v| v["hash"] = json!("0".repeat(64))), "hash"),
        (
            with(&|v| v["createdDate"] = json!("2024-01-01T00:00:00.000Z")),
            "createdDate",
        ),
        (json!([ok.clone()]), "body"),
    ];
    for (body, field) in &cases {
        let reply = audit.post(body);
        assert_eq!(reply.status, 400, "{field}: {}", reply.text());
        assert_eq!(problem_field(&reply), *field, "{}", reply.text());
        assert!(
            !reply.text().contains("Ada"),
            "no value echoed: {}",
            reply.text()
        );
    }
    let key = audit.key();
    let headers = |actor: Option<&'static str>, correlation: Option<&'static str>| {
        let mut h = vec![("x-functions-key", key.clone())];
        if let Some(a) = actor {
            h.push(("x-actor", a.to_string()));
        }
        if let Some(c) = correlation {
            h.push(("x-correlation-id", c.to_string()));
        }
        h
    };
    let body = ok.to_string();
    // One more than the longest actor the gateway can name (crates/actor).
    let long_actor: &'static str = Box::leak("x".repeat(328).into_boxed_str());
    for (h, field) in [
        (headers(None, Some(TRACE)), "x-actor"),
        (headers(Some("clinic"), None), "x-correlation-id"),
        (headers(Some(long_actor), Some(TRACE)), "x-actor"),
        (headers(Some("tab\there"), Some(TRACE)), "x-actor"),
    ] {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = audit.post_with(&h, body.as_bytes());
        assert_eq!(reply.status, 400, "{field}: {}", reply.text());
        assert_eq!(problem_field(&reply), field);
    }
    let h = headers(Some("clinic"), Some(TRACE));
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for raw in [
        &b""[..],
        b"{",
        b"not json",
        b"{\"sourceSystemName\":\"a\",\"sourceSystemName\":\"b\"}",
    ] {
        let reply = audit.post_with(&h, raw);
        assert_eq!(reply.status, 400, "{}", reply.text());
    }
    let reply = audit.post_with(&h, &vec![b' '; 2 << 20]);
    assert_eq!(reply.status, 413);
    assert_eq!(audit.stored(), 0, "nothing stored on bad input");
    // And a good one still works.
    assert_eq!(audit.post_with(&h, body.as_bytes()).status, 201);
    assert_eq!(audit.stored(), 2, "a record and its chain head");
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn the_host_key_is_required_and_the_secondary_works() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let v = &app.secrets.variables;
    let body = input("patient", PID, "create").to_string();
    let post = |key: Option<&str>| {
        let mut h = vec![("x-actor", "clinic"), ("x-correlation-id", TRACE)];
        if let Some(k) = key {
            h.push(("x-functions-key", k));
        }
        audit.post_with(&h, body.as_bytes())
    };
    for (key, why) in [
        (None, "missing"),
        (Some(""), "empty"),
        (Some("wrong"), "wrong"),
        (
            Some(v["patientapiprimarykey"].as_str()),
            "another service's key",
        ),
    ] {
        let reply = post(key);
        assert_eq!(reply.status, 401, "{why}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    let path = format!("/audit/verify?resourceType=patient&resourceId={PID}");
    assert_eq!(
        audit
            .host
            .invoke("audit-api", "GET", &path, &[], b"")
            .status,
        401
    );
    assert_eq!(audit.stored(), 0);
    let reply = post(Some(&v["auditapisecondarykey"]));
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(post(Some(&v["auditapiprimarykey"])).json()["sequence"], 2);
    // No key value reaches the log.
    for line in audit.host.app.logs() {
        for name in ["auditapiprimarykey", "auditapisecondarykey", "cosmoskey"] {
            assert!(
                !line.line.contains(&v[name]),
                "{name} logged: {}",
                line.line
            );
        }
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn there_is_no_update_or_delete_path() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let record = audit.append("patient", PID, "read");
    let key = audit.key();
    for (method, path) in [
        ("PUT", "/auditrecord".to_string()),
        ("DELETE", "/auditrecord".to_string()),
        ("PATCH", "/auditrecord".to_string()),
        ("POST", "/audit/records".to_string()),
        (
            "DELETE",
            format!("/auditrecord/{}", record["id"].as_str().unwrap()),
        ),
        (
            "PUT",
            format!("/audit/records/{}", record["id"].as_str().unwrap()),
        ),
    ] {
        let reply = audit.host.invoke(
            "audit-api",
            method,
            &path,
            &[
                ("x-functions-key", &key),
                ("x-actor", "clinic"),
                ("x-correlation-id", TRACE),
            ],
            input("patient", PID, "update").to_string().as_bytes(),
        );
        assert!(
            matches!(reply.status, 404 | 405),
            "{method} {path}: {}",
            reply.status
        );
    }
    assert_eq!(audit.records("patient", PID, 10), vec![record]);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn records_are_paged_and_filtered_by_time() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let id = new_id();
    let appended: Vec<Value> = (0..7)
        .map(|_| {
            let r = audit.append("test", &id, "read");
            std::thread::sleep(std::time::Duration::from_millis(3));
            r
        })
        .collect();
    // Pages of three: 3, 3, 1, in chain order.
    let path = format!("/audit/records?resourceType=test&resourceId={id}&limit=3");
    let first = audit.get(&path, &[]);
    assert_eq!(first.json().as_array().unwrap().len(), 3);
    assert!(first.header("x-continuation-token").is_some());
    assert_eq!(audit.records("test", &id, 3), appended);
    assert_eq!(audit.records("test", &id, 1000), appended);

    // Inclusive time bounds on createdDate.
    let (from, to) = (
        appended[2]["createdDate"].as_str().unwrap(),
        appended[4]["createdDate"].as_str().unwrap(),
    );
    let reply = audit.get(
        &format!("/audit/records?resourceType=test&resourceId={id}&from={from}&to={to}"),
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sequences: Vec<u64> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, vec![3, 4, 5]);

    // An unknown resource has no records, and an empty chain is intact.
    let other = new_id();
    let reply = audit.get(
        &format!("/audit/records?resourceType=test&resourceId={other}"),
        &[],
    );
    assert_eq!((reply.status, reply.json()), (200, json!([])));
    let report = audit.verify("test", &other);
    assert_eq!(
        (report["intact"].clone(), report["recordsChecked"].clone()),
        (json!(true), json!(0))
    );

    // A continuation token that is not one is the client's error.
    let reply = audit.get(&path, &[("x-continuation-token", "garbage")]);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(problem_field(&reply), "x-continuation-token");
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn read_parameters_are_validated() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let base = format!("resourceType=patient&resourceId={PID}");
    for (query, field) in [
        (String::new(), "resourceType"),
        ("resourceType=patient".to_string(), "resourceId"),
        (format!("resourceType=lab&resourceId={PID}"), "resourceType"),
        (
            "resourceType=patient&resourceId=a%2Fb".to_string(),
            "resourceId",
        ),
        (format!("{base}&from=yesterday"), "from"),
        (format!("{base}&to=2024-13-01T00:00:00Z"), "to"),
        (
            format!("{base}&from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z"),
            "from",
        ),
        (format!("{base}&limit=0"), "limit"),
        (format!("{base}&limit=1001"), "limit"),
        (format!("{base}&limit=x"), "limit"),
    ] {
        let reply = audit.get(&format!("/audit/records?{query}"), &[]);
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        assert_eq!(problem_field(&reply), field, "{query}");
    }
    for (query, field) in [
        (String::new(), "resourceType"),
        ("resourceType=patient".to_string(), "resourceId"),
        (
            format!("resourceType=doctor&resourceId={PID}"),
            "resourceType",
        ),
    ] {
        let reply = audit.get(&format!("/audit/verify?{query}"), &[]);
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        assert_eq!(problem_field(&reply), field, "{query}");
    }
    let ok = audit.get(
        &format!("/audit/records?{base}&from=2024-01-01T00:00:00%2B02:00&limit=1000"),
        &[],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_store_outage_is_503_with_retry_after_and_never_500() {
    let app = TestApp::start();
    let audit = Audit::of(&app);
    audit.host.set_fault("docstore", Some(Fault::Refuse));
    let reply = audit.post(&input("patient", PID, "read"));
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.header("retry-after").is_some());
    let reply = audit.get(
        &format!("/audit/verify?resourceType=patient&resourceId={PID}"),
        &[],
    );
    assert_eq!(reply.status, 503);
    audit.host.set_fault("docstore", None);
    assert_eq!(audit.append("patient", PID, "read")["sequence"], 1);
}

#[test]
fn through_the_gateway_with_audit_read() {
    let app = TestApp::start();
    // The gateway forwards /audit/*: a resource with no records verifies.
    let fresh = format!("/audit/verify?resourceType=patient&resourceId={}", new_id());
    let probe = app.call("auditor", "GET", &fresh, None);
    assert_eq!(probe.status, 200, "{}", probe.text());
    // Three records of one new patient, made through the gateway as any
    // client would (so in any mode): its create and two reads.
    let created = app.call(
        "clinic",
        "POST",
        "/patient",
        Some(
            &json!({"firstName": "Audra", "lastName": app.tag(), "gender": "female",
            "dateOfBirth": "1970", "postCode": "4000"}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let read = app.call("clinic", "GET", &format!("/patient/{id}"), None);
        assert_eq!(read.status, 200, "{}", read.text());
    }
    let path = format!("/audit/verify?resourceType=patient&resourceId={id}");
    let records_path = format!("/audit/records?resourceType=patient&resourceId={id}&limit=2");
    let reply = app.call("auditor", "GET", &path, None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["intact"], true);
    let page = app.call("auditor", "GET", &records_path, None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json().as_array().unwrap().len(), 2);
    let token = page
        .header("x-continuation-token")
        .expect("a second page")
        .to_string();
    let key = app.key("auditor").to_string();
    let rest = app.get(
        &records_path,
        &[
            ("ocp-apim-subscription-key", &key),
            ("x-continuation-token", &token),
        ],
    );
    assert_eq!(rest.status, 200, "{}", rest.text());
    assert_eq!(rest.json()[0]["sequence"], 3);
    // Patient scopes do not open the register.
    assert_eq!(app.call("clinic", "GET", &path, None).status, 403);
    let bad = app.call(
        "auditor",
        "GET",
        "/audit/verify?resourceType=lab&resourceId=x",
        None,
    );
    assert_eq!(bad.status, 400);
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_chain_whose_head_lags_or_is_missing_continues_after_its_last_record() {
    // As an older build left chains: heads advanced after the answer (so
    // they could lag), or kept in a container of their own (so none here).
    let app = TestApp::start();
    let audit = Audit::of(&app);
    let id = new_id();
    let head_id = format!("patient:{id}:head");
    audit.append("patient", &id, "create");
    let head_after_first = audit.stored_body(&head_id);
    for _ in 0..2 {
        audit.append("patient", &id, "read");
    }
    // Its content goes back to the first record; its etag stays the
    // stored one, as the store keeps them.
    let mut lagging = head_after_first;
    lagging["_etag"] = audit.stored_body(&head_id)["_etag"].clone();
    audit.store_body(&head_id, &lagging);
    let fourth = audit.append("patient", &id, "update");
    assert_eq!(fourth["sequence"], 4, "{fourth}");
    assert_eq!(
        audit.stored_body(&head_id)["sequence"],
        4,
        "the head caught up"
    );
    audit.delete(&head_id);
    let fifth = audit.append("patient", &id, "read");
    assert_eq!(fifth["sequence"], 5, "{fifth}");
    assert_eq!(fifth["previousHash"], fourth["hash"]);
    assert_eq!(
        audit.stored_body(&head_id)["sequence"],
        5,
        "the head is back"
    );
    let report = audit.verify("patient", &id);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["recordsChecked"], 5);
}
