//! The end-to-end harness: a running app and an HTTP client for it.
//!
//! With `E2E_BASE_URL` set (external mode), tests talk to that app (say,
//! `spin up` after `scripts/setup-keys`) with the subscriptions and health
//! key that `scripts/setup-keys` wrote to `.env` (`E2E_ENV_FILE`, else the
//! repository's `.env`); each line may instead be set in the environment.
//! Without it, the harness starts the wasmtime test host in process on a
//! loopback port with fresh random keys and its own state directory.
//!
//! Tests that need the in-process host (faults, denials, logs, variables
//! changed at run time, the store's files) or start their own carry
//! `#[cfg_attr(e2e_external, ignore = "...")]`: build.rs sets `e2e_external`
//! when `E2E_BASE_URL` is set, so the runner reports them as ignored rather
//! than as passed. In external mode the store is shared with earlier runs
//! and other tests, so tests tag what they create ([`TestApp::tag`]) and
//! scope their searches to it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use spin_test_host::{App, Fault, HostOptions, RunningServer};

pub use spin_test_host;

pub mod native;

/// The repository root (where spin.toml is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("OS randomness");
    bytes
}

/// A random key as the setup script makes them: 32 bytes, base64url.
pub fn random_key() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32))
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The subscriptions every mode provides, by the name tests use, with their
/// scopes. scripts/setup-keys writes the same five (keep the two in step).
pub const SUBSCRIPTIONS: [(&str, &[&str]); 5] = [
    ("clinic", &["patients.read", "patients.write"]),
    ("reader", &["patients.read"]),
    // A second reading system: concurrent callers of the same scope.
    ("registry", &["patients.read"]),
    ("auditor", &["audit.read"]),
    ("admin", &["patients.read", "patients.write", "audit.read"]),
];

/// One client subscription: its name and both keys.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    pub primary: String,
    pub secondary: String,
    pub scopes: Vec<&'static str>,
}

/// The secrets an in-process app was started with. Tests use them to act as
/// clients and as (forbidden) impostors.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub subscriptions: BTreeMap<String, Subscription>,
    /// Spin variable name → value, for every secret variable.
    pub variables: HashMap<String, String>,
}

impl Secrets {
    pub fn generate() -> Self {
        let mut subscriptions = BTreeMap::new();
        for (name, scopes) in SUBSCRIPTIONS {
            subscriptions.insert(
                name.to_string(),
                Subscription {
                    name: name.to_string(),
                    primary: random_key(),
                    secondary: random_key(),
                    scopes: scopes.to_vec(),
                },
            );
        }
        let mut variables = HashMap::new();
        for name in [
            "healthkey",
            "patientapiprimarykey",
            "patientapisecondarykey",
            "auditapiprimarykey",
            "auditapisecondarykey",
        ] {
            variables.insert(name.to_string(), random_key());
        }
        variables.insert(
            "patientapikey".into(),
            variables["patientapiprimarykey"].clone(),
        );
        variables.insert(
            "auditapikey".into(),
            variables["auditapiprimarykey"].clone(),
        );
        variables.insert(
            "cosmoskey".into(),
            base64::engine::general_purpose::STANDARD.encode(random_bytes(64)),
        );
        let mut secrets = Self {
            subscriptions,
            variables,
        };
        secrets.variables.insert(
            "subscriptions".into(),
            secrets.subscriptions_json(1000, 100_000),
        );
        secrets
    }

    /// The `subscriptions` variable: digests only, never raw keys.
    pub fn subscriptions_json(&self, calls_per_minute: u64, calls_per_day: u64) -> String {
        let list: Vec<serde_json::Value> = self
            .subscriptions
            .values()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "primaryKeySha256": sha256_hex(&s.primary),
                    "secondaryKeySha256": sha256_hex(&s.secondary),
                    "scopes": s.scopes,
                    "rateLimit": {"calls": calls_per_minute, "periodSeconds": 60},
                    "quota": {"calls": calls_per_day, "periodSeconds": 86400},
                })
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    /// `SPIN_VARIABLE_*` entries for the environment provider.
    pub fn environment(&self) -> HashMap<String, String> {
        self.variables
            .iter()
            .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.clone()))
            .collect()
    }
}

/// How to start an in-process app.
#[derive(Default)]
pub struct Start {
    /// Extra `SPIN_VARIABLE_*`-style environment entries (override secrets).
    pub environment: HashMap<String, String>,
    /// Component id → another .wasm to run in its place.
    pub source_overrides: HashMap<String, PathBuf>,
    /// Another manifest than the app's spin.toml (a test fixture).
    pub manifest: Option<PathBuf>,
    /// Calls per minute each subscription may make (default 1000).
    pub calls_per_minute: Option<u64>,
    /// Where to make the state directory (default: the system temp dir).
    /// Benchmarks use /dev/shm to separate the app's cost from the disk's.
    pub state_parent: Option<PathBuf>,
    /// A runtime config, as `spin up --runtime-config-file` (for example
    /// runtime-config.local.toml, which `scripts/up` passes).
    pub runtime_config: Option<PathBuf>,
}

/// The in-process host, when the harness started one.
pub struct Host {
    pub app: App,
    pub runtime: tokio::runtime::Runtime,
    _server: RunningServer,
    _state: tempfile::TempDir,
}

impl Host {
    /// Sets (or clears) a fault for the requests that follow, once work
    /// still running from earlier requests has finished.
    pub fn set_fault(&self, component: &str, fault: Option<Fault>) {
        self.settle();
        self.app
            .set_fault(component, fault)
            .expect("known component");
    }

    /// Waits until no component instance is running, so that any work done
    /// after a response has finished and counts are complete.
    pub fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.app.running_instances() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "component instances still running after 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A request straight to one component (private ones too), as chained.
    pub fn invoke(
        &self,
        component: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut builder = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(bytes::Bytes::copy_from_slice(body))
            .expect("request");
        let response = self
            .runtime
            .block_on(self.app.invoke_chained(component, request))
            .expect("invoke");
        Reply {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: response.into_body().to_vec(),
        }
    }
}

/// A running app and what a client needs to call it.
pub struct TestApp {
    pub base_url: String,
    pub secrets: Secrets,
    pub host: Option<Host>,
    agent: ureq::Agent,
    tag: String,
}

/// A tag no other test (of this run or an earlier one) uses: 12 random
/// lowercase hex digits.
fn new_tag() -> String {
    hex::encode(random_bytes(6))
}

/// Whether `E2E_BASE_URL` names an app to test.
fn external_base_url() -> Option<String> {
    std::env::var("E2E_BASE_URL").ok().filter(|u| !u.is_empty())
}

/// Where external mode reads the keys: `E2E_ENV_FILE`, else the repo's `.env`.
pub fn env_file() -> PathBuf {
    match std::env::var("E2E_ENV_FILE") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_root().join(".env"),
    }
}

/// The `.env` line (`LOCAL_SUBSCRIPTION_CLINIC_KEY`, ...) names for a
/// subscription, as scripts/setup-keys writes them.
fn subscription_line(name: &str, what: &str) -> String {
    format!("LOCAL_SUBSCRIPTION_{}_{what}", name.to_uppercase())
}

/// Reads the secrets of an external app: each line from the environment,
/// else from the env file. Panics naming the first missing line.
fn external_secrets() -> Secrets {
    let path = env_file();
    let dotenv = std::fs::read_to_string(&path)
        .map(|t| spin_test_host::parse_dotenv(&t))
        .unwrap_or_default();
    let pick = |line: &str| -> String {
        std::env::var(line)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| dotenv.get(line).filter(|v| !v.is_empty()).cloned())
            .unwrap_or_else(|| {
                panic!(
                    "external mode (E2E_BASE_URL) needs {line}: neither the environment nor {} \
                     has it. Run scripts/setup-keys (and start the app with that .env), or set \
                     E2E_ENV_FILE to the .env the app was started with.",
                    path.display()
                )
            })
    };
    let mut subscriptions = BTreeMap::new();
    for (name, scopes) in SUBSCRIPTIONS {
        // The tests rely on these scopes (a reader that could write would
        // make the 403 checks fail for the wrong reason), so say so plainly.
        let listed = pick(&subscription_line(name, "SCOPES"));
        let mut have: Vec<&str> = listed.split(',').map(str::trim).collect();
        let mut want = scopes.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            have,
            want,
            "{} lists other scopes than the tests expect of subscription {name}",
            subscription_line(name, "SCOPES")
        );
        subscriptions.insert(
            name.to_string(),
            Subscription {
                name: pick(&subscription_line(name, "NAME")),
                primary: pick(&subscription_line(name, "KEY")),
                secondary: pick(&subscription_line(name, "SECONDARY_KEY")),
                scopes: scopes.to_vec(),
            },
        );
    }
    let mut variables = HashMap::new();
    variables.insert("healthkey".into(), pick("SPIN_VARIABLE_HEALTHKEY"));
    Secrets {
        subscriptions,
        variables,
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// CPU time this process has used so far, all its threads and those that
/// ended (user + system), from `/proc/self/stat`; `None` where there is no
/// procfs. Counted in ticks of Linux's USER_HZ, which is 100 for userspace
/// on every architecture, so measure a series of requests, not one. Time
/// spent waiting is not in it, so against the series' wall time it tells
/// whether the cores bound a concurrent run. (It is no steadier than wall
/// time here: a neighbour's load slows both alike.)
pub fn process_cpu_time() -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // after it come state (field 3) ... utime (14), stime (15).
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 1000 / USER_HZ))
}

/// A benchmark's `--clients N[,N...]` value: the concurrency levels to run.
pub fn client_counts(value: Option<String>) -> Vec<usize> {
    value
        .expect("--clients N[,N...]")
        .split(',')
        .map(|n| n.trim().parse().expect("--clients N[,N...]"))
        .collect()
}

/// Where the built components are: `E2E_WASM_DIR`, else
/// `target/wasm32-wasip2/release` (where spin.toml expects them).
pub fn wasm_dir() -> PathBuf {
    match std::env::var("E2E_WASM_DIR") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join("target/wasm32-wasip2/release"),
    }
}

/// The path of a built component, e.g. `built_wasm("patient_api")`.
pub fn built_wasm(name: &str) -> PathBuf {
    let path = wasm_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the components first (scripts/test does)",
        path.display()
    );
    path
}

impl TestApp {
    /// The app under test: `E2E_BASE_URL` if set, else a fresh in-process host.
    pub fn start() -> Self {
        let base_url = external_base_url();
        // build.rs decides which tests are ignored from the same variable at
        // build time; a binary run with another setting would skip the
        // wrong tests or run host-only tests against an external app.
        assert_eq!(
            base_url.is_some(),
            cfg!(e2e_external),
            "E2E_BASE_URL is {} now but was {} when this test binary was built: \
             run the tests through cargo test",
            if base_url.is_some() { "set" } else { "unset" },
            if cfg!(e2e_external) { "set" } else { "unset" },
        );
        match base_url {
            Some(base_url) => Self::connect(&base_url, external_secrets()),
            None => Self::in_process(Start::default()),
        }
    }

    /// Whether tests run against the in-process host (and may look inside,
    /// and may take its store to hold only what the test made).
    pub fn is_in_process(&self) -> bool {
        self.host.is_some()
    }

    /// A tag unique to this app value (so to the test that made it): tests
    /// put it in what they create and search for, so that records of other
    /// tests and earlier runs in a shared store never match.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Starts the test host in process with fresh secrets.
    pub fn in_process(start: Start) -> Self {
        let mut secrets = Secrets::generate();
        if let Some(calls) = start.calls_per_minute {
            let json = secrets.subscriptions_json(calls, calls.saturating_mul(1440));
            secrets.variables.insert("subscriptions".into(), json);
        }
        let mut environment = secrets.environment();
        environment.extend(start.environment);
        let state = match &start.state_parent {
            Some(parent) => tempfile::tempdir_in(parent),
            None => tempfile::tempdir(),
        }
        .expect("temp dir");
        // Run each component from wasm_dir(), by its file name, so that a
        // build in another target dir (E2E_WASM_DIR) is what gets tested.
        let manifest = start
            .manifest
            .clone()
            .unwrap_or_else(|| repo_root().join("spin.toml"));
        let declared = spin_test_host::Manifest::load(&manifest).expect("manifest parses");
        let mut source_overrides: HashMap<String, PathBuf> = declared
            .components
            .iter()
            .map(|(id, c)| {
                let file = c
                    .source
                    .file_stem()
                    .and_then(|f| f.to_str())
                    .expect("wasm file name");
                (id.clone(), built_wasm(file))
            })
            .collect();
        source_overrides.extend(start.source_overrides);
        let options = HostOptions {
            environment,
            state_dir: Some(state.path().to_path_buf()),
            echo_component_output: std::env::var("E2E_ECHO").is_ok(),
            on_demand_allocator: false,
            source_overrides,
        };
        let app =
            App::load_with_runtime_config(&manifest, options, start.runtime_config.as_deref())
                .expect("app loads");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = runtime
            .block_on(app.serve("127.0.0.1:0".parse().unwrap()))
            .expect("serve");
        TestApp {
            base_url: server.base_url(),
            secrets,
            host: Some(Host {
                app,
                runtime,
                _server: server,
                _state: state,
            }),
            agent: agent(),
            tag: new_tag(),
        }
    }

    /// A client of an app that runs elsewhere (say, a host process the
    /// test started and stops) and was started with `secrets`.
    pub fn connect(base_url: &str, secrets: Secrets) -> Self {
        TestApp {
            base_url: base_url.trim_end_matches('/').to_string(),
            secrets,
            host: None,
            agent: agent(),
            tag: new_tag(),
        }
    }

    /// The in-process host. A test that calls this needs it, and carries
    /// `#[cfg_attr(e2e_external, ignore = "...")]` so that it is reported
    /// as ignored, never run, against an external app.
    pub fn host(&self) -> &Host {
        self.host.as_ref().expect(
            "this test needs the in-process test host: mark it \
             #[cfg_attr(e2e_external, ignore = \"needs the in-process test host\")]",
        )
    }

    /// The primary key of a subscription ("clinic", "reader", "auditor", "admin").
    pub fn key(&self, subscription: &str) -> &str {
        &self.secrets.subscriptions[subscription].primary
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Any request. `headers` are sent as given.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Like [`TestApp::send`], but a failure to get a whole response
    /// (refused, reset, timed out) is an `Err` instead of a panic: for tests
    /// that stop the app under load.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        let mut request = http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let result = match body {
            Some(bytes) => self
                .agent
                .run(request.body(bytes.to_vec()).expect("request")),
            None => self.agent.run(request.body(()).expect("request")),
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, None)
    }

    /// A request with a subscription's primary key and a JSON body.
    pub fn call(
        &self,
        subscription: &str,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Reply {
        let key = self.key(subscription).to_string();
        let text = body.map(|b| b.to_string());
        let mut headers = vec![("ocp-apim-subscription-key", key.as_str())];
        if text.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.send(method, path, &headers, text.as_deref().map(str::as_bytes))
    }
}

/// `manifest_text` (a spin.toml) with every component `source` replaced by
/// the absolute path of the same file in [`wasm_dir()`], so the copy can be
/// loaded from any directory (a temp dir, the test host binary).
pub fn standalone_manifest(manifest_text: &str) -> String {
    let mut out = String::new();
    for line in manifest_text.lines() {
        let trimmed = line.trim_start();
        let source = trimmed
            .strip_prefix("source")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='))
            .map(|rest| rest.trim().trim_matches('"'));
        match source {
            Some(path) if path.ends_with(".wasm") => {
                let stem = Path::new(path)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("wasm file name");
                let absolute = built_wasm(stem).display().to_string();
                let escaped = absolute.replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&format!("source = \"{escaped}\"\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Writes the counts of a hardening test to `target/hardening/<name>.txt`
/// (one line each, e.g. `faults injected: 12`) for the CI summary.
pub fn write_hardening_counts(name: &str, lines: &[String]) {
    let dir = repo_root().join("target/hardening");
    std::fs::create_dir_all(&dir).expect("target/hardening");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(format!("{name}.txt")), text).expect("hardening counts");
}
