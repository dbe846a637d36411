//! Sets `cfg(e2e_external)` when the suite is built to run against an
//! external app (`E2E_BASE_URL`), so that tests needing the in-process test
//! host are compiled as `#[ignore]` and the runner reports them as ignored
//! instead of running them (or passing them without checking anything).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(e2e_external)");
    println!("cargo::rerun-if-env-changed=E2E_BASE_URL");
    if std::env::var("E2E_BASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=e2e_external");
    }
}
