//! Least privilege, shown entry by entry: every `allowed_outbound_hosts`,
//! `key_value_stores` and `sqlite_databases` entry of spin.toml is removed
//! in turn (a copy of the manifest in a temp dir), the app is started from
//! that copy, and a fixed scenario must then behave differently: the
//! removed capability was in use. For an outbound host the test host also
//! reports the denied request, from that component to that host and no
//! other. The unmodified copy runs the scenario with no denial at all.

use std::collections::BTreeMap;

use e2e::{repo_root, Start, TestApp};
use serde_json::json;
use spin_test_host::{ComponentDecl, Manifest};

const UNKNOWN: &str = "6b1d2e3f-4a5b-4c6d-8e7f-901234567890";

/// One capability entry of one component.
#[derive(Debug, Clone)]
struct Entry {
    component: String,
    field: &'static str,
    value: String,
}

fn entries(manifest: &Manifest) -> Vec<Entry> {
    let mut all = Vec::new();
    for (id, c) in &manifest.components {
        for (field, values) in [
            ("allowed_outbound_hosts", &c.allowed_outbound_hosts),
            ("key_value_stores", &c.key_value_stores),
            ("sqlite_databases", &c.sqlite_databases),
        ] {
            for value in values {
                all.push(Entry {
                    component: id.clone(),
                    field,
                    value: value.clone(),
                });
            }
        }
    }
    all
}

fn field<'a>(decl: &'a ComponentDecl, name: &str) -> &'a Vec<String> {
    match name {
        "allowed_outbound_hosts" => &decl.allowed_outbound_hosts,
        "key_value_stores" => &decl.key_value_stores,
        "sqlite_databases" => &decl.sqlite_databases,
        other => panic!("no field {other}"),
    }
}

/// `text` without `entry`: the one-line array in the component's section is
/// rewritten; everything else stays byte for byte.
fn without(text: &str, entry: &Entry) -> String {
    let header = format!("[component.{}]", entry.component);
    let mut section = String::new();
    let mut out = String::new();
    let mut removed = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.to_string();
        }
        let assignment = trimmed
            .strip_prefix(entry.field)
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='));
        if let (true, Some(value)) = (section == header, assignment) {
            // This manifest's arrays are one line of plain strings: JSON.
            let mut list: Vec<String> =
                serde_json::from_str(value.trim()).expect("a one-line array of strings");
            let before = list.len();
            list.retain(|v| *v != entry.value);
            assert_eq!(list.len() + 1, before, "{entry:?}");
            out.push_str(&format!(
                "{} = {}\n",
                entry.field,
                serde_json::to_string(&list).unwrap()
            ));
            removed = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(removed, "{entry:?} not found in spin.toml");
    out
}

/// Statuses of a scenario that exercises every capability once.
fn scenario(app: &TestApp) -> BTreeMap<&'static str, u16> {
    let health = app.secrets.variables["healthkey"].clone();
    let patient =
        json!({"firstName": "Iso", "gender": "male", "dateOfBirth": "1990", "postCode": "1000"});
    BTreeMap::from([
        (
            "create patient",
            app.call("clinic", "POST", "/patient", Some(&patient))
                .status,
        ),
        (
            "read unknown patient",
            app.call("clinic", "GET", &format!("/patient/{UNKNOWN}"), None)
                .status,
        ),
        (
            "verify audit chain",
            app.call(
                "auditor",
                "GET",
                &format!("/audit/verify?resourceType=patient&resourceId={UNKNOWN}"),
                None,
            )
            .status,
        ),
        (
            "readiness",
            app.get("/health/ready", &[("x-health-key", health.as_str())])
                .status,
        ),
    ])
}

/// What the test host expands an outbound entry to (templates resolved).
fn expanded(value: &str) -> String {
    value
        .replace("{{ cosmosendpoint }}", "http://docstore.spin.internal")
        .replace("{{ patientapiurl }}", "http://patient-api.spin.internal")
        .replace("{{ auditapiurl }}", "http://audit-api.spin.internal")
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn every_capability_entry_is_needed() {
    let original_text = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    let original = Manifest::load(&repo_root().join("spin.toml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |name: &str, text: &str| {
        let path = work.path().join(format!("{name}.toml"));
        std::fs::write(&path, e2e::standalone_manifest(text)).unwrap();
        let app = TestApp::in_process(Start {
            manifest: Some(path),
            ..Start::default()
        });
        let statuses = scenario(&app);
        (app, statuses)
    };

    // The unmodified copy: everything works, nothing is denied.
    let (app, baseline) = run("baseline", &original_text);
    let expected = BTreeMap::from([
        ("create patient", 201),
        ("read unknown patient", 404),
        ("verify audit chain", 200),
        ("readiness", 200),
    ]);
    assert_eq!(baseline, expected);
    assert!(app.host.as_ref().unwrap().app.denials().is_empty());
    drop(app);

    let all = entries(&original);
    let mut report = Vec::new();
    for (i, entry) in all.iter().enumerate() {
        let text = without(&original_text, entry);
        // The copy differs from spin.toml in exactly this entry.
        let modified = Manifest::parse(&text, work.path()).unwrap();
        for (id, decl) in &original.components {
            let changed = &modified.components[id];
            for name in [
                "allowed_outbound_hosts",
                "key_value_stores",
                "sqlite_databases",
            ] {
                let mut want = field(decl, name).clone();
                if *id == entry.component && name == entry.field {
                    want.retain(|v| *v != entry.value);
                }
                assert_eq!(field(changed, name), &want, "{entry:?}: {id}.{name}");
            }
            assert_eq!(changed.variables, decl.variables);
        }

        let (app, statuses) = run(&format!("without-{i}"), &text);
        let host = app.host.as_ref().unwrap();
        let changed: Vec<_> = statuses
            .iter()
            .filter(|(step, status)| baseline[*step] != **status)
            .collect();
        assert!(
            !changed.is_empty(),
            "{entry:?} removed and nothing changed: the entry is unused ({statuses:?})"
        );
        assert!(
            statuses.values().all(|s| *s != 500),
            "{entry:?}: a 500 ({statuses:?})"
        );
        let denials = host.app.denials();
        match entry.field {
            "allowed_outbound_hosts" => {
                let host_url = expanded(&entry.value);
                assert!(!denials.is_empty(), "{entry:?}: no request was denied");
                for d in &denials {
                    assert_eq!(d.component, entry.component, "{entry:?}: {d:?}");
                    assert!(
                        d.url.starts_with(&format!("{host_url}/")),
                        "{entry:?}: {d:?}"
                    );
                }
            }
            "key_value_stores" => {
                // The gateway fails closed when it cannot count.
                assert!(denials.is_empty(), "{denials:?}");
                let said = host.app.logs().iter().any(|l| {
                    l.component == entry.component && l.line.contains("limit_store_unavailable")
                });
                assert!(said, "{entry:?}: the gateway's log does not say why");
            }
            "sqlite_databases" => {
                assert!(denials.is_empty(), "{denials:?}");
                let conn = rusqlite::Connection::open(host.app.sqlite_path()).unwrap();
                let tables: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(tables, 0, "{entry:?}: the database was opened anyway");
            }
            other => panic!("{other}"),
        }
        report.push(format!(
            "{}.{} {:?}: {:?}",
            entry.component, entry.field, entry.value, changed
        ));
        eprintln!("{}", report.last().unwrap());
    }
    // Every component's entries were covered, and there are some.
    // gateway: patient-api and its store; patient-api: audit-api and the
    // store; audit-api: the store; docstore: its database.
    assert!(all.len() >= 6, "{all:?}");
    e2e::write_hardening_counts(
        "isolation",
        &[format!(
            "capability entries removed: {} (each changed the scenario)",
            all.len()
        )],
    );
}
