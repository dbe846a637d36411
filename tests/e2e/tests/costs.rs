//! What each operation costs in the resources that carry over to Spin and
//! Azure, counted by the test host (never timed): durable commits the client
//! waits for, key-value commits, component instances. Under Spin each durable
//! commit is an fsync and every key-value commit holds the whole process's
//! one key-value lock, so these counts are budgets (docs/performance.md).
//! The benchmark (`cargo bench -p e2e --bench api`) prints the full table.

use e2e::TestApp;
use serde_json::json;
use spin_test_host::Costs;

/// Runs `call` on a quiet host and returns what it cost, including any work
/// a component does after answering (none should).
fn cost_of(app: &TestApp, call: impl FnOnce() -> u16, expected: u16) -> Costs {
    let host = app.host.as_ref().expect("in-process host");
    host.settle();
    let before = host.app.costs();
    assert_eq!(call(), expected);
    host.settle();
    host.app.costs() - before
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn each_operation_stays_within_its_commit_budget() {
    let app = TestApp::start();
    let patient = json!({"firstName": "Cost", "lastName": "Count", "gender": "other",
                         "dateOfBirth": "1990-05-17", "postCode": "3000"});
    // An owner's first request ever also elects the one request that may
    // create its usage entry (one more key-value commit); from then on, one.
    let unknown = "/patient/00000000-0000-4000-8000-000000000000";
    let first = cost_of(&app, || app.call("admin", "GET", unknown, None).status, 404);
    assert_eq!(first.kv_commits, 2, "election + creation: {first:?}");
    let mut id = String::new();
    let create = cost_of(
        &app,
        || {
            let reply = app.call("admin", "POST", "/patient", Some(&patient));
            id = reply.json()["id"].as_str().unwrap_or_default().to_string();
            reply.status
        },
        201,
    );
    let path = format!("/patient/{id}");
    let load = cost_of(&app, || app.call("admin", "GET", &path, None).status, 200);
    let search = cost_of(
        &app,
        || {
            app.call(
                "admin",
                "POST",
                "/patient/search",
                Some(&json!({"lastName": "Count", "postCode": "3000"})),
            )
            .status
        },
        200,
    );
    let test = json!({"performer": "Lab", "orderReference": "ORD-1", "observations": [
        {"id": "o1", "code": "2345-7", "measurement": "5.1 mmol/L", "interpretation": "normal",
         "issued": "2026-11-20T09:30:00.000Z", "status": "final"}]});
    let create_test = cost_of(
        &app,
        || {
            app.call("admin", "POST", &format!("{path}/tests"), Some(&test))
                .status
        },
        201,
    );
    let refused = cost_of(
        &app,
        || {
            app.get(&path, &[("ocp-apim-subscription-key", "wrong")])
                .status
        },
        401,
    );

    for (name, costs, commits_waited_for) in [
        ("create patient", create, 2),
        ("create test", create_test, 2),
        ("load patient", load, 1),
        // The criteria record, and the disclosure record of the one patient
        // it returned (one more per patient returned, issue 15).
        ("search", search, 2),
    ] {
        // The audit record, plus the patient or test for a write.
        assert_eq!(
            costs.sqlite_commits_on_path, commits_waited_for,
            "{name}: {costs:?}"
        );
        // The rate limit and quota together: one conditional write.
        assert_eq!(costs.kv_commits, 1, "{name}: {costs:?}");
        assert_eq!(costs.kv_commits_on_path, 1, "{name}: {costs:?}");
        // The chain head moves in the audit record's own commit: nothing
        // is left for after the answer.
        assert_eq!(
            costs.sqlite_commits, costs.sqlite_commits_on_path,
            "{name}: {costs:?}"
        );
    }
    // A client that fails authentication costs no store work at all.
    assert_eq!(
        (
            refused.kv_operations,
            refused.sqlite_opens,
            refused.instances
        ),
        (0, 0, 1),
        "{refused:?}"
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "needs the in-process test host")]
fn a_page_of_disclosures_reads_its_chain_heads_in_one_store_call() {
    let app = TestApp::start();
    let search_for = |last_name: &str, patients: usize| {
        for i in 0..patients {
            let patient = json!({"firstName": format!("Page{i}"), "lastName": last_name,
                                 "gender": "other", "dateOfBirth": "1990-05-17", "postCode": "3000"});
            assert_eq!(
                app.call("admin", "POST", "/patient", Some(&patient)).status,
                201
            );
        }
        let mut found = 0;
        let costs = cost_of(
            &app,
            || {
                let reply = app.call(
                    "admin",
                    "POST",
                    "/patient/search",
                    Some(&json!({"lastName": last_name})),
                );
                found = reply.json().as_array().map_or(0, Vec::len);
                reply.status
            },
            200,
        );
        assert_eq!(found, patients, "{last_name}");
        costs
    };
    let one = search_for("Single", 1);
    let five = search_for("Fivefold", 5);
    // Each more patient on the page is one more store call (its record and
    // its head, one batch); the heads are read together, by one query
    // across their partitions, not one read each.
    assert_eq!(five.instances - one.instances, 4, "{one:?}\n{five:?}");
    assert_eq!(
        five.sqlite_commits_on_path - one.sqlite_commits_on_path,
        4,
        "{one:?}\n{five:?}"
    );
}
