//! Durability: the real test host process is killed (SIGKILL) in the middle of
//! a write load and started again on the same state directory; every write
//! the app acknowledged (201/200) is still there, with the acknowledged
//! etag and content, its audit record is in the register, every chain
//! verifies, and the app goes on accepting writes.
//!
//! Only a write that was in flight when the process died may or may not
//! have happened; the checks allow exactly that and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use e2e::{repo_root, Reply, Secrets, TestApp};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

/// Client threads writing at once.
const WRITERS: usize = 4;
/// Acknowledged writes after which the host is killed.
const KILL_AFTER_ACKS: usize = 240;
/// The load never runs longer than this, acknowledged or not.
const MAX_LOAD: Duration = Duration::from_secs(40);

// --- the host process ------------------------------------------------------------

/// The test host binary: `E2E_HOST_BIN`, else built (or found up to date) by cargo.
fn host_binary() -> PathBuf {
    if let Ok(path) = std::env::var("E2E_HOST_BIN") {
        if !path.is_empty() {
            return PathBuf::from(path);
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "-p",
            "spin-test-host",
            "--bin",
            "spin-test-host",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo build -p spin-test-host");
    assert!(output.status.success(), "building spin-test-host failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "spin-test-host")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the spin-test-host executable")
}

struct HostProcess {
    child: Child,
    base_url: String,
}

impl HostProcess {
    /// Starts the host on a free loopback port and waits until it serves.
    fn start(binary: &Path, manifest: &Path, state: &Path, secrets: &Secrets, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(binary)
            .args(["--manifest".as_ref(), manifest.as_os_str()])
            .args(["--listen", &listen, "--quiet"])
            .args(["--state-dir".as_ref(), state.as_os_str()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(secrets.environment())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .spawn()
            .expect("start spin-test-host");
        let stdout = child.stdout.take().unwrap();
        let (serving, wait) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Serving ") {
                    let _ = serving.send(());
                }
            }
        });
        if wait.recv_timeout(Duration::from_secs(180)).is_err() {
            let _ = child.kill();
            panic!(
                "the host did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        HostProcess {
            child,
            base_url: format!("http://{listen}"),
        }
    }

    /// SIGKILL: no shutdown, no flushing, as a crash or an OOM kill.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the load --------------------------------------------------------------------------

/// A patient as the client last saw it acknowledged, and any write whose
/// outcome it never learnt (in flight at the kill).
#[derive(Debug, Clone)]
struct Tracked {
    id: String,
    etag: String,
    fields: Value,
    maybe: Vec<Value>,
}

#[derive(Debug, Clone)]
struct Ack {
    kind: &'static str,
    id: String,
    operation: &'static str,
    correlation: String,
}

#[derive(Default)]
struct Ledger {
    patients: Vec<Tracked>,
    tests: Vec<(String, String, Value)>,
    acks: Vec<Ack>,
    /// Non-2xx answers before the kill (there should be none).
    unexpected: Vec<String>,
}

fn patient_fields(writer: usize, n: usize) -> Value {
    json!({"firstName": format!("W{writer}N{n}"), "lastName": "Durable", "gender": "unknown",
           "dateOfBirth": format!("19{:02}-0{}-1{}", n % 100, 1 + n % 9, n % 10), "postCode": format!("{:04}", n % 10000)})
}

fn test_fields(n: usize) -> Value {
    json!({"performer": format!("Lab {n}"), "orderReference": format!("ORD-{n}"), "observations": [{
        "id": "o1", "code": "K", "measurement": format!("{}.{} mmol/L", 3 + n % 3, n % 10),
        "interpretation": "normal", "issued": "2024-06-01T10:00:00.000Z", "status": "final"}]})
}

fn correlation(reply: &Reply) -> String {
    reply
        .header("x-correlation-id")
        .unwrap_or_default()
        .to_string()
}

/// One writer: creates patients, adds tests, updates its own patients with
/// If-Match, until the host dies or `stop` is set. Returns its ledger.
fn writer(
    app: &TestApp,
    me: usize,
    stop: &AtomicBool,
    killing: &AtomicBool,
    acked: &AtomicUsize,
) -> Ledger {
    let mut ledger = Ledger::default();
    let sub = ["clinic", "admin"][me % 2];
    let key = app.key(sub).to_string();
    let headers = |if_match: Option<&str>| {
        let mut h = vec![
            ("ocp-apim-subscription-key", key.clone()),
            ("content-type", "application/json".to_string()),
        ];
        if let Some(etag) = if_match {
            h.push(("if-match", etag.to_string()));
        }
        h
    };
    let send = |method: &str, path: &str, h: &[(&str, String)], body: &Value| {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.try_send(method, path, &h, Some(body.to_string().as_bytes()))
    };
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let acks_before = ledger.acks.len();
        let choice = if ledger.patients.is_empty() { 0 } else { n % 3 };
        match choice {
            0 => {
                let fields = patient_fields(me, n);
                match send("POST", "/patient", &headers(None), &fields) {
                    Ok(r) if r.status == 201 => {
                        let body = r.json();
                        let id = body["id"].as_str().unwrap().to_string();
                        ledger.acks.push(Ack {
                            kind: "patient",
                            id: id.clone(),
                            operation: "create",
                            correlation: correlation(&r),
                        });
                        ledger.patients.push(Tracked {
                            id,
                            etag: r.header("etag").unwrap().to_string(),
                            fields,
                            maybe: vec![],
                        });
                    }
                    Ok(r) => {
                        ledger
                            .unexpected
                            .push(format!("create patient: {} {}", r.status, r.text()))
                    }
                    // In flight at the kill: its id was never learnt.
                    Err(e) => {
                        lost_before_kill(&mut ledger, killing, "create patient", &e);
                        break;
                    }
                }
            }
            1 => {
                let pid = ledger.patients[n % ledger.patients.len()].id.clone();
                let fields = test_fields(n);
                match send(
                    "POST",
                    &format!("/patient/{pid}/tests"),
                    &headers(None),
                    &fields,
                ) {
                    Ok(r) if r.status == 201 => {
                        let tid = r.json()["id"].as_str().unwrap().to_string();
                        ledger.acks.push(Ack {
                            kind: "test",
                            id: tid.clone(),
                            operation: "create",
                            correlation: correlation(&r),
                        });
                        ledger.tests.push((pid, tid, fields));
                    }
                    Ok(r) => {
                        ledger
                            .unexpected
                            .push(format!("create test: {} {}", r.status, r.text()))
                    }
                    Err(e) => {
                        lost_before_kill(&mut ledger, killing, "create test", &e);
                        break;
                    }
                }
            }
            _ => {
                let i = (n / 3) % ledger.patients.len();
                let tracked = ledger.patients[i].clone();
                let mut fields = tracked.fields.clone();
                fields["firstName"] = json!(format!("W{me}U{n}"));
                fields["postCode"] = json!(format!("{:04}", (n * 7) % 10000));
                let mut body = fields.clone();
                body["id"] = json!(tracked.id);
                match send(
                    "PUT",
                    &format!("/patient/{}", tracked.id),
                    &headers(Some(&tracked.etag)),
                    &body,
                ) {
                    Ok(r) if r.status == 200 => {
                        ledger.acks.push(Ack {
                            kind: "patient",
                            id: tracked.id.clone(),
                            operation: "update",
                            correlation: correlation(&r),
                        });
                        let t = &mut ledger.patients[i];
                        t.etag = r.header("etag").unwrap().to_string();
                        t.fields = fields;
                    }
                    Ok(r) => {
                        ledger
                            .unexpected
                            .push(format!("update patient: {} {}", r.status, r.text()))
                    }
                    Err(e) => {
                        lost_before_kill(&mut ledger, killing, "update patient", &e);
                        ledger.patients[i].maybe.push(fields);
                        break;
                    }
                }
            }
        }
        acked.fetch_add(ledger.acks.len() - acks_before, Ordering::Relaxed);
    }
    ledger
}

/// A request that got no answer is expected only once the kill began.
fn lost_before_kill(ledger: &mut Ledger, killing: &AtomicBool, what: &str, error: &str) {
    if !killing.load(Ordering::SeqCst) {
        ledger
            .unexpected
            .push(format!("{what}: no answer before the kill: {error}"));
    }
}

// --- checks after the restart ------------------------------------------------------------

fn sqlite(state: &Path) -> Connection {
    let conn =
        Connection::open_with_flags(state.join("sqlite_db.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// (db, coll, id) -> body, straight from the store's file.
fn documents(state: &Path) -> BTreeMap<(String, String, String), Value> {
    let conn = sqlite(state);
    let mut stmt = conn
        .prepare("SELECT db, coll, id, body FROM docstore_documents")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, String>(3)?))
    })
    .unwrap()
    .map(|row| {
        let (key, body) = row.unwrap();
        (key, serde_json::from_str(&body).unwrap())
    })
    .collect()
}

fn subset_matches(stored: &Value, sent: &Value) -> bool {
    sent.as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| &stored[k] == v)
}

/// Runs `f` over `items` on a few threads; panics propagate.
fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..WRITERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                f(item);
            });
        }
    });
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts and kills its own host process")]
fn acknowledged_writes_survive_a_sigkill_mid_load() {
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("durability: {what} at {:.1} s", t0.elapsed().as_secs_f64());
    let binary = host_binary();
    phase("host binary ready");
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("spin.toml");
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    std::fs::write(&manifest, e2e::standalone_manifest(&text)).unwrap();
    let state = work.path().join("state");
    let log = work.path().join("host.log");
    let mut secrets = Secrets::generate();
    // The load must measure durability, not the rate limit.
    let subscriptions = secrets.subscriptions_json(1_000_000, 10_000_000);
    secrets
        .variables
        .insert("subscriptions".into(), subscriptions);

    // --- load, then SIGKILL while the writers are still writing
    let host = HostProcess::start(&binary, &manifest, &state, &secrets, &log);
    phase("host serving");
    let stop = AtomicBool::new(false);
    let killing = AtomicBool::new(false);
    let acked = AtomicUsize::new(0);
    let shared: Mutex<Vec<Ledger>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let killed_at = std::thread::scope(|s| {
        for me in 0..WRITERS {
            let (stop, killing, acked, shared, secrets, base) = (
                &stop,
                &killing,
                &acked,
                &shared,
                &secrets,
                host.base_url.clone(),
            );
            s.spawn(move || {
                let app = TestApp::connect(&base, secrets.clone());
                let ledger = writer(&app, me, stop, killing, acked);
                shared.lock().unwrap().push(ledger);
            });
        }
        loop {
            std::thread::sleep(Duration::from_millis(20));
            if acked.load(Ordering::Relaxed) >= KILL_AFTER_ACKS || started.elapsed() > MAX_LOAD {
                break;
            }
        }
        let at = started.elapsed();
        killing.store(true, Ordering::SeqCst);
        host.kill();
        // Writers stop at their first failed request; this stops any that
        // was between requests.
        stop.store(true, Ordering::Relaxed);
        at
    });
    let ledgers = shared.into_inner().unwrap();
    let unexpected: Vec<&String> = ledgers.iter().flat_map(|l| &l.unexpected).collect();
    assert!(
        unexpected.is_empty(),
        "under load, before the kill: {unexpected:?}"
    );
    let acks: Vec<&Ack> = ledgers.iter().flat_map(|l| &l.acks).collect();
    let patients: Vec<&Tracked> = ledgers.iter().flat_map(|l| &l.patients).collect();
    let tests: Vec<&(String, String, Value)> = ledgers.iter().flat_map(|l| &l.tests).collect();
    assert!(
        acks.len() >= 40,
        "too little load before the kill ({} acks in {killed_at:?})",
        acks.len()
    );

    // --- restart on the same state and read everything back
    phase("killed; restarting");
    let host = HostProcess::start(&binary, &manifest, &state, &secrets, &log);
    phase("host serving again");
    let app = TestApp::connect(&host.base_url, secrets.clone());

    // Latest acknowledged state of every patient, through the API.
    parallel(&patients, |t| {
        let reply = app.call("admin", "GET", &format!("/patient/{}", t.id), None);
        assert_eq!(
            reply.status,
            200,
            "acknowledged patient {} lost: {}",
            t.id,
            reply.text()
        );
        let body = reply.json();
        let etag = reply.header("etag").unwrap();
        if etag == t.etag {
            assert!(
                subset_matches(&body, &t.fields),
                "patient {}: content differs from its acknowledged etag",
                t.id
            );
        } else {
            // Only a write in flight at the kill may have replaced it.
            assert!(
                t.maybe.iter().any(|m| subset_matches(&body, m)),
                "patient {}: neither the acknowledged version nor an in-flight one: {body}",
                t.id
            );
        }
    });
    parallel(&tests, |(pid, tid, fields)| {
        let reply = app.call("admin", "GET", &format!("/patient/{pid}/tests/{tid}"), None);
        assert_eq!(
            reply.status,
            200,
            "acknowledged test {tid} lost: {}",
            reply.text()
        );
        let body = reply.json();
        assert!(
            subset_matches(&body, fields),
            "test {tid} content differs: sent {fields}, stored {body}"
        );
    });

    phase("read back");
    // Every acknowledged write's audit record, and no stored document without one.
    let docs = documents(&state);
    let records: Vec<&Value> = docs
        .iter()
        .filter(|((db, coll, _), doc)| {
            db == "audit" && coll == "records" && doc["docType"] == "auditRecord"
        })
        .map(|(_, doc)| doc)
        .collect();
    let by_correlation: BTreeMap<&str, Vec<&Value>> =
        records.iter().fold(BTreeMap::new(), |mut m, r| {
            m.entry(r["correlationId"].as_str().unwrap_or(""))
                .or_default()
                .push(*r);
            m
        });
    for ack in &acks {
        let mine = by_correlation
            .get(ack.correlation.as_str())
            .cloned()
            .unwrap_or_default();
        assert!(
            mine.iter().any(|r| r["resource"]["type"] == ack.kind
                && r["resource"]["id"] == ack.id.as_str()
                && r["resource"]["operation"] == ack.operation),
            "the audit record of an acknowledged {} {} of {} is missing",
            ack.operation,
            ack.kind,
            ack.id
        );
    }
    let created: BTreeSet<(&str, &str)> = records
        .iter()
        .filter(|r| r["resource"]["operation"] == "create")
        .map(|r| {
            (
                r["resource"]["type"].as_str().unwrap(),
                r["resource"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    for (db, coll, id) in docs.keys() {
        if db == "patients" {
            let kind = if coll == "patients" {
                "patient"
            } else {
                "test"
            };
            assert!(
                created.contains(&(kind, id.as_str())),
                "{kind} {id} is stored without its audit record"
            );
        }
    }

    // Every chain the acknowledged writes touched verifies.
    let chains: BTreeSet<(&str, &str)> = acks.iter().map(|a| (a.kind, a.id.as_str())).collect();
    let chains: Vec<_> = chains.into_iter().collect();
    parallel(&chains, |(kind, id)| {
        let reply = app.call(
            "auditor",
            "GET",
            &format!("/audit/verify?resourceType={kind}&resourceId={id}"),
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.json()["intact"],
            true,
            "chain {kind} {id}: {}",
            reply.text()
        );
    });

    phase("chains verified");
    // And the app goes on: a new patient, and an update on top of the last acknowledged etag.
    let fresh = app.call("clinic", "POST", "/patient", Some(&patient_fields(99, 1)));
    assert_eq!(fresh.status, 201, "{}", fresh.text());
    if let Some(t) = patients.iter().find(|t| t.maybe.is_empty()) {
        let mut body = t.fields.clone();
        body["id"] = json!(t.id);
        body["firstName"] = json!("AfterRestart");
        let key = app.key("clinic").to_string();
        let text = body.to_string();
        let reply = app.send(
            "PUT",
            &format!("/patient/{}", t.id),
            &[
                ("ocp-apim-subscription-key", &key),
                ("content-type", "application/json"),
                ("if-match", &t.etag),
            ],
            Some(text.as_bytes()),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let verify = app.call(
            "auditor",
            "GET",
            &format!("/audit/verify?resourceType=patient&resourceId={}", t.id),
            None,
        );
        assert_eq!(verify.json()["intact"], true, "{}", verify.text());
    }
    host.kill();

    let in_flight = patients.iter().filter(|t| !t.maybe.is_empty()).count();
    e2e::write_hardening_counts(
        "durability",
        &[format!(
            "acknowledged writes checked after restart: {} ({} patients, {} tests, {} updates; killed after {:.1} s; {} updates in flight)",
            acks.len(),
            patients.len(),
            tests.len(),
            acks.iter().filter(|a| a.operation == "update").count(),
            killed_at.as_secs_f64(),
            in_flight
        )],
    );
}
