//! The gateway's own added latency: the same no-op backend (the probe
//! fixture) called through the gateway and called alone, on the wasmtime
//! test host over loopback HTTP.
//!
//! - `noop`: the probe as the public component, answering itself;
//! - `noop + hop`: the probe as the public component chaining once to the
//!   probe as patient-api (what service chaining alone costs);
//! - `gateway`: the real gateway (subscription key, scope, rate limit and
//!   quota increments in the key-value store, trace, access log) chaining to
//!   the probe as patient-api.
//!
//! gateway − (noop + hop) is the gateway's own work; gateway − noop is
//! everything a client pays for the managed entry point. The gateway is
//! measured twice: with the key-value store (an SQLite file, as in Spin
//! without runtime config) in the usual temporary directory, and on tmpfs
//! (`/dev/shm`). Each request commits two counter increments, so on a disk
//! where fsync is slow the store dominates (about 2 × 2 fsyncs per request);
//! the tmpfs figure is the gateway's own CPU time. Kept-alive and
//! fresh-connection figures are reported separately (docs/architecture.md: Spin
//! does not set TCP_NODELAY, so the two differ).
//!
//! Build the components first, then:
//! `E2E_WASM_DIR=... cargo bench -p e2e --bench gateway_overhead --profile bench-host`
//! (`GATEWAY_BENCH_ITERATIONS`, default 400, sets the sample size).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::{built_wasm, random_key, sha256_hex, Start, TestApp};

const PATIENT: &str = "5d0e7c9a-3f1b-4c2e-9a8d-1b2c3d4e5f60";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Latencies of `iterations` GETs of `url` (after a warm-up), on one
/// kept-alive connection or a fresh connection each.
fn sample(url: &str, headers: &[(&str, &str)], iterations: usize, fresh: bool) -> Vec<Duration> {
    let mut kept = agent();
    let mut out = Vec::with_capacity(iterations);
    for i in 0..iterations + 20 {
        if fresh {
            kept = agent();
        }
        let mut request = http::Request::builder().uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(()).unwrap();
        let started = Instant::now();
        let mut response = kept.run(request).expect("request");
        let _ = response.body_mut().read_to_vec();
        let elapsed = started.elapsed();
        assert_eq!(response.status().as_u16(), 200, "{url}");
        if i >= 20 {
            out.push(elapsed);
        }
    }
    out.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

struct Row {
    name: &'static str,
    p50: f64,
    p90: f64,
    p99: f64,
}

fn row(name: &'static str, sorted: &[Duration]) -> Row {
    Row {
        name,
        p50: percentile(sorted, 0.5),
        p90: percentile(sorted, 0.9),
        p99: percentile(sorted, 0.99),
    }
}

fn main() {
    let iterations: usize = std::env::var("GATEWAY_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);

    let probe = built_wasm("probe");
    let alone = TestApp::in_process(Start {
        source_overrides: HashMap::from([
            ("gateway".to_string(), probe.clone()),
            ("patient-api".to_string(), probe.clone()),
        ]),
        ..Start::default()
    });
    let key = random_key();
    let subscriptions = serde_json::json!([{
        "name": "bench",
        "primaryKeySha256": sha256_hex(&key),
        "secondaryKeySha256": sha256_hex(&random_key()),
        "scopes": ["patients.read"],
        "rateLimit": {"calls": u32::MAX, "periodSeconds": 60},
        "quota": {"calls": u32::MAX, "periodSeconds": 86400}
    }]);
    let gateway_app = || {
        TestApp::in_process(Start {
            environment: HashMap::from([(
                "SPIN_VARIABLE_SUBSCRIPTIONS".to_string(),
                subscriptions.to_string(),
            )]),
            source_overrides: HashMap::from([("patient-api".to_string(), probe.clone())]),
            ..Start::default()
        })
    };
    let gateway = gateway_app();
    // The same app with its state directory (and so the key-value file) on
    // tmpfs: the harness puts state in a fresh temporary directory.
    let tmpfs = std::path::Path::new("/dev/shm").is_dir().then(|| {
        let previous = std::env::var_os("TMPDIR");
        std::env::set_var("TMPDIR", "/dev/shm");
        let app = gateway_app();
        match previous {
            Some(value) => std::env::set_var("TMPDIR", value),
            None => std::env::remove_var("TMPDIR"),
        }
        app
    });

    let noop = alone.url("/");
    let hop = alone.url("/?forward=http://patient-api.spin.internal/");
    let path = format!("/patient/{PATIENT}");
    let through = gateway.url(&path);
    let through_tmpfs = tmpfs.as_ref().map(|app| app.url(&path));
    let auth = [("ocp-apim-subscription-key", key.as_str())];

    println!("gateway overhead, {iterations} requests each, milliseconds (p50 / p90 / p99)");
    for fresh in [false, true] {
        let mut rows = vec![
            row("noop", &sample(&noop, &[], iterations, fresh)),
            row("noop + hop", &sample(&hop, &[], iterations, fresh)),
            row("gateway", &sample(&through, &auth, iterations, fresh)),
        ];
        if let Some(url) = &through_tmpfs {
            rows.push(row(
                "gateway, store on tmpfs",
                &sample(url, &auth, iterations, fresh),
            ));
        }
        println!(
            "\n{}",
            if fresh {
                "fresh connection per request"
            } else {
                "kept-alive connection"
            }
        );
        for r in &rows {
            println!(
                "  {:<26} {:>7.3} / {:>7.3} / {:>7.3}",
                r.name, r.p50, r.p90, r.p99
            );
        }
        for r in &rows[2..] {
            println!(
                "  {}: own work (minus noop + hop) p50 {:.3} ms; added over the bare backend (minus noop) p50 {:.3} ms",
                r.name,
                r.p50 - rows[1].p50,
                r.p50 - rows[0].p50
            );
        }
    }
}
