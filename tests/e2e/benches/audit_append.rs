//! Audit append throughput on the in-process test host: appends/second for
//! one hot resource (every append contends for the same chain) and for many
//! resources (no contention), at a few levels of concurrency. Calls
//! audit-api directly, as patient-api does. Bounded in count and time;
//! prints figures and asserts nothing about speed.
//!
//! `cargo bench -p e2e --bench audit_append` (set `E2E_WASM_DIR` to use
//! components built elsewhere; `AUDIT_BENCH_APPENDS` to change the count).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::{Host, Start, TestApp};
use serde_json::json;

/// Stop starting new appends after this long, whatever the count.
const TIME_LIMIT: Duration = Duration::from_secs(30);

fn resource_id(n: usize) -> String {
    format!("bench{:08}-0000-4000-8000-{:012}", std::process::id(), n)
}

struct Outcome {
    done: usize,
    failed: usize,
    elapsed: Duration,
}

/// `total` appends from `threads` threads; `pick(i)` chooses the resource
/// of append `i`.
fn run(
    host: &Host,
    key: &str,
    total: usize,
    threads: usize,
    pick: &(dyn Fn(usize) -> String + Sync),
) -> Outcome {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || started.elapsed() > TIME_LIMIT {
                    return;
                }
                let body = json!({"sourceSystemName": "bench",
                    "resource": {"type": "patient", "id": pick(i), "operation": "read"}})
                .to_string();
                let reply = host.invoke(
                    "audit-api",
                    "POST",
                    "/auditrecord",
                    &[
                        ("x-functions-key", key),
                        ("x-actor", "bench"),
                        ("x-correlation-id", "bench"),
                    ],
                    body.as_bytes(),
                );
                if reply.status == 201 {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    // Head advances still running after the last 201 belong to the work.
    host.settle();
    Outcome {
        done: done.into_inner(),
        failed: failed.into_inner(),
        elapsed: started.elapsed(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once
    // as a smoke test with a small count.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("AUDIT_BENCH_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 8 } else { 200 });
    let app = TestApp::in_process(Start::default());
    let host = app.host.as_ref().expect("in-process host");
    let key = app.secrets.variables["auditapiprimarykey"].clone();

    // Warm up: compile caches, the store's file and WAL mode.
    run(host, &key, 4, 1, &|i| resource_id(1_000_000 + i));

    println!(
        "audit append throughput ({total} appends per row, at most {}s each)",
        TIME_LIMIT.as_secs()
    );
    println!(
        "{:<16} {:>7} {:>9} {:>7} {:>12}",
        "scenario", "threads", "appends", "failed", "appends/s"
    );
    let mut round = 0;
    for threads in [1, 4, 16] {
        for scenario in ["one resource", "many resources"] {
            round += 1;
            let base = round * 100_000;
            let hot = resource_id(base);
            let pick = |i: usize| {
                if scenario == "one resource" {
                    hot.clone()
                } else {
                    resource_id(base + 1 + i)
                }
            };
            let o = run(host, &key, total, threads, &pick);
            let rate = o.done as f64 / o.elapsed.as_secs_f64();
            println!(
                "{scenario:<16} {threads:>7} {:>9} {:>7} {rate:>12.1}",
                o.done, o.failed
            );
        }
    }
}
