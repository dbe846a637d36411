//! The API's speed through the whole chain, side by side with the floor the
//! runtime sets: the same four components making the same calls to each
//! other and doing nothing else (tests/fixtures/noop-chain): six instances
//! for create patient, load patient and search (gateway, patient-api,
//! audit-api, and docstore for the chain head read, the batch of the audit
//! record and its head, and the patient), seven for create test, and the
//! plain line of four for reference. One client, sequential requests, the
//! series taking turns (one request of each, round after round) so that a
//! ratio compares requests made under the same machine conditions; on the
//! wasmtime test host (pooling allocator, pre-instantiated components).
//! Kept-alive and fresh-connection figures are reported separately (Spin does
//! not set TCP_NODELAY; see docs/architecture.md).
//!
//! Beside the timings it prints what one request of each operation costs in
//! counts that transfer to Spin and to Azure (the host counts them): component
//! instances, chained hops, key-value operations and commits, SQLite
//! connections, statements and commits, variable reads, and the durable
//! commits the client waits for. With `--clients 8,16` it also drives each
//! operation and the no-op floor from that many concurrent clients and prints
//! req/s side by side, with the process's CPU time per request (against the
//! floor's, it tells whether the cores bound the throughput). Prints figures
//! and writes them as JSON for docs/performance.md; asserts nothing about
//! speed.
//!
//!     cargo bench -p e2e --bench api [-- --requests 300 --storage tmpfs --kv memory --clients 8,16]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use e2e::{repo_root, wasm_dir, Start, TestApp};
use serde_json::{json, Value};
use spin_test_host::Costs;

struct Client {
    agent: ureq::Agent,
}

impl Client {
    fn new(keep_alive: bool) -> Self {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)));
        if !keep_alive {
            config = config
                .max_idle_connections(0)
                .max_idle_connections_per_host(0);
        }
        Self {
            agent: config.build().into(),
        }
    }

    fn call(
        &self,
        method: &str,
        url: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value, Option<String>) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("ocp-apim-subscription-key", key);
        let result = match body {
            Some(b) => self.agent.run(
                request
                    .header("content-type", "application/json")
                    .body(b.to_string().into_bytes())
                    .unwrap(),
            ),
            None => {
                request = request.header("accept", "application/json");
                self.agent.run(request.body(()).unwrap())
            }
        };
        let mut response = result.expect("request");
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            etag,
        )
    }
}

#[derive(serde::Serialize, Clone)]
struct Figures {
    operation: String,
    connection: String,
    requests: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    throughput_per_s: f64,
    /// Requests that took 35 ms or more: the mark of a delayed-ACK stall
    /// (a response leaving in two writes on a connection without
    /// TCP_NODELAY), far above anything else a request here costs. Counted
    /// for one client only: with many, waiting for a core takes as long.
    stalls: Option<usize>,
    /// CPU time of the whole process (hosts and clients, every thread) per
    /// request, measured for concurrent series: against the no-op's, it
    /// says whether throughput is bound by the cores. (For one client it is
    /// about the wall time: the path is compute, not waiting.)
    cpu_ms_per_request: Option<f64>,
}

/// CPU milliseconds per request over a series that started at `before`.
fn cpu_per_request(before: Option<Duration>, requests: usize) -> Option<f64> {
    let used = e2e::process_cpu_time()?.checked_sub(before?)?;
    Some(used.as_secs_f64() * 1000.0 / requests.max(1) as f64)
}

/// One client's `n` requests to each of several series, taken in turns (one
/// request of each, then the next round), so that every series sees the
/// same machine. On a shared machine speed drifts by tens of percent within
/// a minute; series measured one after another carried that drift into
/// their ratios (2.0x to 4.0x for the same build within four runs).
fn measure_interleaved(connection: &str, n: usize, series: &[Series<'_>]) -> Vec<Figures> {
    for i in 0..(n / 10).max(3) {
        for (_, one) in series {
            one(usize::MAX - i); // warm-up
        }
    }
    let mut samples = vec![Vec::with_capacity(n); series.len()];
    let mut busy_seconds = vec![0.0; series.len()];
    for i in 0..n {
        for (k, (_, one)) in series.iter().enumerate() {
            let t = Instant::now();
            one(i);
            let took = t.elapsed().as_secs_f64();
            samples[k].push(took * 1000.0);
            busy_seconds[k] += took;
        }
    }
    series
        .iter()
        .zip(samples)
        .zip(busy_seconds)
        .map(|(((name, _), samples), busy)| {
            summarise(name, connection, samples, busy, Clients::One)
        })
        .collect()
}

/// `n` requests from `clients` concurrent clients, each on its own kept-alive
/// connection; latency per request and requests per second overall.
fn measure_concurrent(
    operation: &str,
    clients: usize,
    n: usize,
    one: &(dyn Fn(&Client, usize) + Sync),
) -> Figures {
    let samples = Mutex::new(Vec::with_capacity(n));
    let cpu_before = e2e::process_cpu_time();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            let samples = &samples;
            scope.spawn(move || {
                let client = Client::new(true);
                one(&client, usize::MAX - c); // connect and warm up
                let mut mine = Vec::new();
                for i in (c..n).step_by(clients) {
                    let t = Instant::now();
                    one(&client, i);
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                samples.lock().unwrap().extend(mine);
            });
        }
    });
    let total = started.elapsed().as_secs_f64();
    let samples = samples.into_inner().unwrap();
    // Includes each client's connect and warm-up request.
    let cpu = cpu_per_request(cpu_before, samples.len());
    let connection = format!("{clients} clients");
    summarise(
        operation,
        &connection,
        samples,
        total,
        Clients::Many {
            cpu_ms_per_request: cpu,
        },
    )
}

/// How a series was driven, and what is measured only that way.
enum Clients {
    One,
    Many { cpu_ms_per_request: Option<f64> },
}

/// Percentiles, throughput (and stalls or CPU per request) of one series of
/// request times (ms) that took `total_seconds` in all; printed and
/// returned.
fn summarise(
    operation: &str,
    connection: &str,
    mut samples: Vec<f64>,
    total_seconds: f64,
    clients: Clients,
) -> Figures {
    let (stalls, cpu_ms_per_request) = match clients {
        Clients::One => (Some(samples.iter().filter(|ms| **ms >= 35.0).count()), None),
        Clients::Many { cpu_ms_per_request } => (None, cpu_ms_per_request),
    };
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let figures = Figures {
        operation: operation.into(),
        connection: connection.into(),
        requests: samples.len(),
        p50_ms: pick(0.50),
        p95_ms: pick(0.95),
        p99_ms: pick(0.99),
        throughput_per_s: samples.len() as f64 / total_seconds,
        stalls,
        cpu_ms_per_request,
    };
    println!(
        "{:<24} {:<11} n={:<5} p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  {:>7.0} req/s{}{}",
        figures.operation,
        figures.connection,
        figures.requests,
        figures.p50_ms,
        figures.p95_ms,
        figures.p99_ms,
        figures.throughput_per_s,
        figures
            .stalls
            .map_or(String::new(), |n| format!("  stalls {n}")),
        figures
            .cpu_ms_per_request
            .map_or(String::new(), |ms| format!("  cpu {ms:.2} ms/req"))
    );
    figures
}

fn costs_json(operation: &str, c: &Costs) -> Value {
    json!({
        "operation": operation,
        "instances": c.instances,
        "chained_hops": c.chained_hops,
        "kv_operations": c.kv_operations,
        "kv_commits": c.kv_commits,
        "kv_commits_on_path": c.kv_commits_on_path,
        "sqlite_opens": c.sqlite_opens,
        "sqlite_statements": c.sqlite_statements,
        "sqlite_commits": c.sqlite_commits,
        "commits_on_path": c.commits_on_path(),
        "variable_reads": c.variable_reads,
    })
}

/// A measured operation: its name, the no-op floor with the same hops, and
/// one request of it (client, request number).
type Operation<'a> = (
    &'static str,
    &'static str,
    Box<dyn Fn(&Client, usize) + Sync + 'a>,
);

/// A series measured by one client: its name and one request of it.
type Series<'a> = (&'static str, Box<dyn Fn(usize) + 'a>);

/// No-op floors (see tests/fixtures/noop-chain/spin.toml).
const NOOP_LINE: &str = "no-op, 4 in a line";
const NOOP_AUDITED: &str = "no-op, audited (6)";
const NOOP_AUDITED_TWO_READS: &str = "no-op, audited+1 (7)";

fn patient(i: usize) -> Value {
    json!({
        "firstName": format!("Bench{}", i % 100000),
        "lastName": "Mark",
        "gender": "female",
        "dateOfBirth": "1980-02-29",
        "postCode": "3000",
    })
}

fn lab_test() -> Value {
    json!({
        "performer": "Pathology Lab",
        "orderReference": "ORD-1",
        "observations": [{"id": "obs-1", "code": "2345-7", "measurement": "5.1 mmol/L",
                          "interpretation": "normal", "issued": "2026-11-20T09:30:00.000Z", "status": "final"}],
    })
}

fn main() {
    let mut requests = 300usize;
    let mut storage = "disk".to_string();
    let mut kv = "file".to_string();
    let mut concurrency: Vec<usize> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => {
                requests = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--requests N")
            }
            // "tmpfs" keeps the SQLite files in /dev/shm: what the app and the
            // runtime cost, without this machine's fsync (each store commit is
            // fsynced: writes are durable when acknowledged).
            "--storage" => storage = args.next().expect("--storage disk|tmpfs"),
            // "file" is Spin's default key-value store (a SQLite file in the
            // state dir, every write fsynced); "memory" is what scripts/up
            // runs: runtime-config.local.toml, the same store in memory.
            "--kv" => kv = args.next().expect("--kv file|memory"),
            "--clients" => concurrency = e2e::client_counts(args.next()),
            _ => {}
        }
    }
    let state_parent = match storage.as_str() {
        "disk" => None,
        "tmpfs" => Some(PathBuf::from("/dev/shm")),
        other => panic!("--storage disk|tmpfs, not {other}"),
    };
    let runtime_config = match kv.as_str() {
        "file" => None,
        "memory" => Some(repo_root().join("runtime-config.local.toml")),
        other => panic!("--kv file|memory, not {other}"),
    };
    println!(
        "storage: {storage} (SQLite files {}); key-value store: {}",
        if state_parent.is_some() {
            "in /dev/shm"
        } else {
            "on disk"
        },
        if runtime_config.is_some() {
            "in memory (runtime-config.local.toml, as scripts/up)"
        } else {
            "Spin's default, a file beside the SQLite database"
        }
    );
    let mut all = Vec::new();

    // Cold start: load (compile + pre-instantiate), then the first request.
    let loaded = Instant::now();
    let app = TestApp::in_process(Start {
        state_parent: state_parent.clone(),
        calls_per_minute: Some(1_000_000),
        runtime_config: runtime_config.clone(),
        ..Start::default()
    });
    let load_ms = loaded.elapsed().as_secs_f64() * 1000.0;
    let key = app.key("admin").to_string();
    let first = Instant::now();
    let (status, _, _) =
        Client::new(false).call("POST", &app.url("/patient"), &key, Some(&patient(0)));
    let first_ms = first.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 201, "the app must work before it is measured");
    println!("cold start: app load (compile + pre-instantiate, compile cache cold) {load_ms:.0} ms; first request (create patient) {first_ms:.2} ms");

    // Patients to read and to add tests to.
    let setup = Client::new(true);
    let ids: Vec<String> = (0..50)
        .map(|i| {
            let (s, body, _) = setup.call("POST", &app.url("/patient"), &key, Some(&patient(i)));
            assert_eq!(s, 201);
            body["id"].as_str().unwrap().to_string()
        })
        .collect();
    let url = |p: &str| app.url(p);
    let operations: Vec<Operation<'_>> = vec![
        (
            "create patient",
            NOOP_AUDITED,
            Box::new(|client, i| {
                let (s, _, _) = client.call("POST", &url("/patient"), &key, Some(&patient(i)));
                assert_eq!(s, 201);
            }),
        ),
        (
            "load patient",
            NOOP_AUDITED,
            Box::new(|client, i| {
                let path = format!("/patient/{}", ids[i % ids.len()]);
                let (s, _, _) = client.call("GET", &url(&path), &key, None);
                assert_eq!(s, 200);
            }),
        ),
        (
            "search by id",
            NOOP_AUDITED,
            Box::new(|client, i| {
                let criteria = json!({"id": ids[i % ids.len()]});
                let (s, _, _) = client.call("POST", &url("/patient/search"), &key, Some(&criteria));
                assert_eq!(s, 200);
            }),
        ),
        (
            // One more store call than the others: the patient must exist.
            "create test",
            NOOP_AUDITED_TWO_READS,
            Box::new(|client, i| {
                let path = format!("/patient/{}/tests", ids[i % ids.len()]);
                let (s, _, _) = client.call("POST", &url(&path), &key, Some(&lab_test()));
                assert_eq!(s, 201);
            }),
        ),
    ];

    // What one request costs, counted on a quiet host: every instance it
    // started has finished, including work done after the response.
    let host = app.host.as_ref().expect("in-process host");
    let mut counted = Vec::new();
    for (name, _, one) in &operations {
        host.settle();
        let before = host.app.costs();
        one(&setup, 7);
        host.settle();
        counted.push((name.to_string(), host.app.costs() - before));
    }

    // The floor: the same calls between the same four components, each a
    // probe that only passes the request on (tests/fixtures/noop-chain).
    const AUDIT: &str = "http://audit-api.spin.internal";
    const STORE: &str = "http://docstore.spin.internal";
    let floors = [
        (NOOP_LINE, AUDIT.to_string(), STORE.to_string()),
        (
            NOOP_AUDITED,
            format!("{AUDIT},{STORE}"),
            format!("{STORE},{STORE}"),
        ),
        (
            NOOP_AUDITED_TWO_READS,
            format!("{AUDIT},{STORE},{STORE}"),
            format!("{STORE},{STORE}"),
        ),
    ];
    // All three run beside the app, so the one-client series can take turns.
    let noops: Vec<(&'static str, TestApp)> = floors
        .into_iter()
        .map(|(name, patient_next, audit_next)| {
            let noop = TestApp::in_process(Start {
                manifest: Some(repo_root().join("tests/fixtures/noop-chain/spin.toml")),
                environment: [
                    ("SPIN_VARIABLE_PATIENTAPINEXT".to_string(), patient_next),
                    ("SPIN_VARIABLE_AUDITAPINEXT".to_string(), audit_next),
                ]
                .into(),
                ..Start::default()
            });
            (name, noop)
        })
        .collect();
    let noop_call = |noop: &TestApp, client: &Client| {
        let (s, body, _) = client.call("GET", &noop.url("/noop"), "none", None);
        assert_eq!(s, 200, "{body}");
    };
    for (name, noop) in &noops {
        let noop_host = noop.host.as_ref().expect("in-process host");
        noop_host.settle();
        let before = noop_host.app.costs();
        noop_call(noop, &setup);
        noop_host.settle();
        counted.push((name.to_string(), noop_host.app.costs() - before));
    }

    for (connection, keep_alive) in [("kept-alive", true), ("fresh", false)] {
        let client = Client::new(keep_alive);
        let client = &client;
        let mut series: Vec<Series<'_>> = Vec::new();
        for (name, _, one) in &operations {
            series.push((name, Box::new(move |i| one(client, i))));
        }
        for (name, noop) in &noops {
            series.push((name, Box::new(move |_| noop_call(noop, client))));
        }
        all.extend(measure_interleaved(connection, requests, &series));
    }

    let mut concurrent = Vec::new();
    for (name, noop) in &noops {
        let one = |client: &Client, _: usize| noop_call(noop, client);
        for &clients in &concurrency {
            concurrent.push(measure_concurrent(name, clients, requests, &one));
        }
    }
    for &clients in &concurrency {
        for (name, _, one) in &operations {
            concurrent.push(measure_concurrent(name, clients, requests, one));
        }
    }

    println!("\nwhat one request costs (counted by the host; the same under Spin):");
    println!(
        "  {:<22} {:>9} {:>5} {:>6} {:>10} {:>7} {:>6} {:>8} {:>10} {:>6}",
        "operation",
        "instances",
        "hops",
        "kv ops",
        "kv commits",
        "sqlite",
        "stmts",
        "commits",
        "waited for",
        "vars"
    );
    let mut cost_rows = Vec::new();
    for (name, c) in &counted {
        println!(
            "  {:<22} {:>9} {:>5} {:>6} {:>4} ({} wt) {:>7} {:>6} {:>8} {:>10} {:>6}",
            name,
            c.instances,
            c.chained_hops,
            c.kv_operations,
            c.kv_commits,
            c.kv_commits_on_path,
            c.sqlite_opens,
            c.sqlite_statements,
            c.sqlite_commits,
            c.commits_on_path(),
            c.variable_reads
        );
        cost_rows.push(costs_json(name, c));
    }
    println!("  (commits: SQLite transactions committed, each fsynced on a disk; \"waited for\": commits");
    println!("   made before the client had its answer; \"wt\": key-value commits waited for)");

    let floor_of = |name: &str| {
        operations
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, f, _)| *f)
    };
    println!("\nfull chain p50 / no-op p50 with the same hops (measured in turns):");
    for connection in ["kept-alive", "fresh"] {
        let floor = |name: &str| {
            all.iter()
                .find(|f| f.operation == name && f.connection == connection)
                .unwrap()
                .p50_ms
        };
        for f in all
            .iter()
            .filter(|f| !f.operation.starts_with("no-op") && f.connection == connection)
        {
            let same_hops = floor_of(&f.operation).unwrap();
            println!(
                "  {:<16} {:<11} {:>5.2}x   ({:.2}x the four-component line)",
                f.operation,
                connection,
                f.p50_ms / floor(same_hops),
                f.p50_ms / floor(NOOP_LINE)
            );
        }
    }
    if !concurrency.is_empty() {
        println!("\nthroughput, full chain req/s / no-op req/s with the same hops and clients:");
        for &clients in &concurrency {
            let series = |name: &str| {
                concurrent
                    .iter()
                    .find(|f: &&Figures| {
                        f.operation == name && f.connection == format!("{clients} clients")
                    })
                    .unwrap()
            };
            let rate = |name: &str| series(name).throughput_per_s;
            for (name, floor, _) in &operations {
                let cpu = series(name)
                    .cpu_ms_per_request
                    .zip(series(floor).cpu_ms_per_request)
                    .map_or("-".to_string(), |(ours, floor)| {
                        format!("{ours:.2} vs {floor:.2} ms/req")
                    });
                println!(
                    "  {:<16} {:>2} clients {:>7.0} req/s vs {:>7.0}   {:.2}x   cpu {}",
                    name,
                    clients,
                    rate(name),
                    rate(floor),
                    rate(name) / rate(floor),
                    cpu
                );
            }
        }
    }
    all.extend(concurrent);

    println!("\ncomponent sizes:");
    let mut sizes = Vec::new();
    for name in ["gateway", "patient_api", "audit_api", "docstore"] {
        let bytes = std::fs::metadata(wasm_dir().join(format!("{name}.wasm")))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "  {name:<12} {:>8} bytes ({:.2} MiB)",
            bytes,
            bytes as f64 / 1048576.0
        );
        sizes.push(json!({"component": name, "bytes": bytes}));
    }

    let out: PathBuf = repo_root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let report = json!({
        "storage": storage,
        "keyValue": kv,
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "cold_start": {"load_ms": load_ms, "first_request_ms": first_ms},
        "figures": all,
        "costs": cost_rows,
        "sizes": sizes,
    });
    let file = match kv.as_str() {
        "file" => out.join(format!("api-{storage}.json")),
        _ => out.join(format!("api-{storage}-kv-{kv}.json")),
    };
    std::fs::write(&file, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\nwrote {}", file.display());
}
