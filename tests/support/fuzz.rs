//! Shared by the crates' `tests/properties.rs` (included with `#[path]`, so
//! `env!` names the including crate): runs a property with a case budget
//! (`PROPTEST_CASES`, default 256) and records how many cases ran in
//! `target/hardening/fuzz-<crate>.txt` for the CI summary.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Runs `test` on `cases()` values of `strategy` (a panic is a failure),
/// records the count, then fails with the shrunk input if any case failed.
pub fn run<S: Strategy>(
    target: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let count = AtomicU64::new(0);
    let result = TestRunner::new(config).run(&strategy, |value| {
        count.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    record(target, count.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("fuzz {target}: {e}");
    }
}

/// `target/hardening/` at the workspace root (or `HARDENING_DIR`).
fn dir() -> PathBuf {
    match std::env::var_os("HARDENING_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/hardening"
        )),
    }
}

/// Replaces this target's line in the crate's count file; tests run on
/// several threads, hence the lock.
fn record(target: &str, n: u64) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir();
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join(concat!("fuzz-", env!("CARGO_PKG_NAME"), ".txt"));
    let prefix = format!("fuzz {target}:");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{prefix} {n} cases"));
    lines.sort();
    let _ = std::fs::write(&path, lines.join("\n") + "\n");
}
