//! A page of search results, each patient disclosed on its own audit chain:
//! how long `POST /patient/search?limit=50` takes alone and when several
//! clients search the same fifty patients at once (every search appends to
//! the same fifty chains, the worst case for the append protocol), and what
//! one such search costs in counts (instances, hops, SQLite statements and
//! commits) that carry over to Spin and to Azure, alone and per search at
//! each concurrency (what lost races add). In-process test host; prints
//! figures, asserts nothing about speed.
//!
//! `cargo bench -p e2e --bench search_page [-- --searches 24 --clients 4,8]`

use std::sync::Mutex;
use std::time::Instant;

use e2e::{Start, TestApp};
use serde_json::json;

const PAGE: usize = 50;

fn patient(i: usize) -> serde_json::Value {
    json!({"firstName": format!("Page{i}"), "lastName": "Search", "gender": "female",
           "dateOfBirth": "1980-02-29", "postCode": "3000"})
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once
    // as a smoke test with a small count.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut searches: usize = if smoke { 2 } else { 24 };
    let mut clients: Vec<usize> = if smoke { vec![2] } else { vec![4, 8] };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--searches" => {
                searches = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--searches N")
            }
            "--clients" => clients = e2e::client_counts(args.next()),
            _ => {}
        }
    }
    let app = TestApp::in_process(Start {
        calls_per_minute: Some(1_000_000),
        ..Start::default()
    });
    let host = app.host.as_ref().expect("in-process host");
    for i in 0..PAGE {
        assert_eq!(
            app.call("admin", "POST", "/patient", Some(&patient(i)))
                .status,
            201
        );
    }
    let search = || {
        let started = Instant::now();
        let reply = app.call(
            "admin",
            "POST",
            &format!("/patient/search?limit={PAGE}"),
            Some(&json!({})),
        );
        (reply.status, started.elapsed().as_secs_f64() * 1000.0)
    };
    let (status, _) = search();
    assert_eq!(status, 200, "the app must work before it is measured");

    host.settle();
    let before = host.app.costs();
    search();
    host.settle();
    let c = host.app.costs() - before;
    println!(
        "one search returning {PAGE} patients costs (counted by the host; the same under Spin):"
    );
    println!(
        "  {} instances, {} chained hops, {} SQLite connections, {} statements, {} commits ({} waited for)",
        c.instances, c.chained_hops, c.sqlite_opens, c.sqlite_statements, c.sqlite_commits, c.commits_on_path()
    );

    println!(
        "\n{:<12} {:>8} {:>5} {:>5} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "clients",
        "searches",
        "200",
        "503",
        "p50 ms",
        "p99 ms",
        "max ms",
        "searches/s",
        "instances",
        "statements"
    );
    // Instances and statements are per search, over every search at that
    // concurrency: above the one-search count is what lost races cost
    // (each lost append is another batch, each round another heads query).
    for n in std::iter::once(1).chain(clients) {
        let results = Mutex::new(Vec::new());
        host.settle();
        let before = host.app.costs();
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    for _ in 0..searches.div_ceil(n) {
                        let outcome = search();
                        results.lock().unwrap().push(outcome);
                    }
                });
            }
        });
        let elapsed = started.elapsed().as_secs_f64();
        host.settle();
        let spent = host.app.costs() - before;
        let results = results.into_inner().unwrap();
        let per_search = |total: u64| total as f64 / results.len() as f64;
        let mut ms: Vec<f64> = results.iter().map(|(_, d)| *d).collect();
        ms.sort_by(f64::total_cmp);
        let count = |code| results.iter().filter(|(s, _)| *s == code).count();
        println!(
            "{:<12} {:>8} {:>5} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>10.1} {:>10.1} {:>10.1}",
            format!("{n} at once"),
            results.len(),
            count(200),
            count(503),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms[ms.len() - 1],
            results.len() as f64 / elapsed,
            per_search(spent.instances),
            per_search(spent.sqlite_statements)
        );
    }
}
