//! The app started as on AKS: with the repository's runtime-config.toml
//! (rendered against a fake Key Vault on loopback), secrets in the vault,
//! the gateway's plain settings in the environment (the ConfigMap's
//! `SPIN_VARIABLE_*`). The test host's provider chain is Spin's: the
//! runtime config's providers first, in order, then the environment; an
//! error stops the lookup; nothing is cached.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;

use e2e::{built_wasm, repo_root, Secrets, TestApp};
use serde_json::json;
use spin_test_host::{App, HostOptions, RunningServer};
use support::fake_vault::{FakeVault, Mode};

/// The gateway's plain settings exactly as env/k8s/configmap.yaml ships
/// them: the `gatewaypolicy` block scalar, with `${POD_CIDR}` filled in as
/// the deploy step's envsubst does (Terraform's default pod CIDR).
fn shipped_gateway_policy() -> String {
    let configmap = std::fs::read_to_string(repo_root().join("env/k8s/configmap.yaml")).unwrap();
    let mut lines = configmap
        .lines()
        .skip_while(|l| l.trim() != "gatewaypolicy: |");
    assert!(
        lines.next().is_some(),
        "configmap.yaml has no gatewaypolicy"
    );
    let block: Vec<&str> = lines
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| l.trim_start())
        .collect();
    block.join("\n").replace("${POD_CIDR}", "192.168.0.0/16")
}

struct AzureApp {
    client: TestApp,
    app: App,
    vault: FakeVault,
    runtime: tokio::runtime::Runtime,
    _server: RunningServer,
    _dir: tempfile::TempDir,
}

impl AzureApp {
    fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.app.running_instances() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "instances still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn reset(&self) {
        self.settle();
        self.app.reset_variable_reads();
        self.vault.reset_reads();
    }

    fn logs(&self) -> String {
        self.app
            .logs()
            .iter()
            .map(|l| format!("[{}] {}\n", l.component, l.line))
            .collect()
    }
}

/// Secrets as Terraform writes them to Key Vault (env/terraform/secrets.tf):
/// every secret variable, and nothing else.
fn vault_contents(secrets: &Secrets) -> HashMap<String, String> {
    secrets.variables.clone()
}

/// The plain values the SpinApp sets (env/k8s/spinapp.yaml, from
/// Terraform's deploy_env), here pointing at the local docstore.
const PLAIN_SETTINGS: [(&str, &str); 4] = [
    (
        "SPIN_VARIABLE_COSMOSENDPOINT",
        "http://docstore.spin.internal",
    ),
    (
        "SPIN_VARIABLE_PATIENTAPIURL",
        "http://patient-api.spin.internal",
    ),
    (
        "SPIN_VARIABLE_AUDITAPIURL",
        "http://audit-api.spin.internal",
    ),
    (
        "SPIN_VARIABLE_DOCSTORECONTAINERS",
        "patients/patients=/id;patients/tests=/patientId;audit/records=/chainKey",
    ),
];

fn render_runtime_config(vault_url: &str) -> String {
    let template = std::fs::read_to_string(repo_root().join("runtime-config.toml"))
        .expect("runtime-config.toml");
    let rendered = template
        .replace("${key_vault_url}", vault_url)
        .replace("${cosmos_account_name}", "unused")
        .replace("${cosmos_region}", "unused");
    assert!(
        !rendered.contains("${"),
        "a placeholder is left: {rendered}"
    );
    rendered
}

fn load(
    vault: &FakeVault,
    extra_env: &[(&str, &str)],
    authority: Option<&str>,
) -> (anyhow::Result<App>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(&config, render_runtime_config(&vault.url)).unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, "a-service-account-token").unwrap();
    let mut environment = HashMap::from([(
        "SPIN_VARIABLE_GATEWAYPOLICY".to_string(),
        shipped_gateway_policy(),
    )]);
    for (k, v) in PLAIN_SETTINGS {
        environment.insert(k.to_string(), v.to_string());
    }
    // What the AKS workload identity webhook injects.
    for (k, v) in [
        ("AZURE_AUTHORITY_HOST", authority.unwrap_or(&vault.url)),
        ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002"),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
    ] {
        environment.insert(k.into(), v.into());
    }
    for (k, v) in extra_env {
        environment.insert(k.to_string(), v.to_string());
    }
    let manifest = repo_root().join("spin.toml");
    let declared = spin_test_host::Manifest::load(&manifest).unwrap();
    let source_overrides: HashMap<String, PathBuf> = declared
        .components
        .iter()
        .map(|(id, c)| {
            let file = c.source.file_stem().unwrap().to_str().unwrap();
            (id.clone(), built_wasm(file))
        })
        .collect();
    let options = HostOptions {
        environment,
        state_dir: Some(dir.path().join("state")),
        echo_component_output: std::env::var("E2E_ECHO").is_ok(),
        source_overrides,
        ..HostOptions::default()
    };
    (
        App::load_with_runtime_config(&manifest, options, Some(&config)),
        dir,
    )
}

fn start_with(
    vault_secrets: impl FnOnce(&mut HashMap<String, String>),
    extra_env: &[(&str, &str)],
) -> AzureApp {
    start_with_authority(vault_secrets, extra_env, None)
}

/// Like [`start_with`], with the Entra token endpoint at `authority`
/// (default: the fake vault, which also issues tokens).
fn start_with_authority(
    vault_secrets: impl FnOnce(&mut HashMap<String, String>),
    extra_env: &[(&str, &str)],
    authority: Option<&str>,
) -> AzureApp {
    let secrets = Secrets::generate();
    let mut contents = vault_contents(&secrets);
    vault_secrets(&mut contents);
    let vault = FakeVault::start(&contents);
    let (app, dir) = load(&vault, extra_env, authority);
    let app = app.expect("app loads with the rendered runtime config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(app.serve("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let client = TestApp::connect(&server.base_url(), secrets);
    AzureApp {
        client,
        app,
        vault,
        runtime,
        _server: server,
        _dir: dir,
    }
}

fn start() -> AzureApp {
    start_with(|_| {}, &[])
}

fn patient() -> serde_json::Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "gender": "female",
           "dateOfBirth": "1815-12-10", "postCode": "1234"})
}

fn lab_test() -> serde_json::Value {
    json!({
        "performer": "Lab A",
        "orderReference": "ORD-7",
        "observations": [{
            "id": "obs-1", "code": "GLU", "measurement": "5.4 mmol/L",
            "interpretation": "normal", "issued": "2024-03-01T09:30:00+01:00", "status": "final"
        }]
    })
}

/// The most `variables::get` calls one instance (one request, under Spin)
/// of each component may make (targets: gateway 4, every other 3). The
/// gateway reads `gatewaypolicy`, `subscriptions` and `patientapi` (the
/// health route reads `healthkey` instead of `subscriptions`). patient-api
/// reads its primary host key, `auditapi` and `cosmos`; audit-api its
/// primary host key and `cosmos`. Each connection string is one get that
/// Spin resolves through two application variables (the URL from the
/// environment, the key from the vault).
const GET_BUDGET: [(&str, u64); 4] = [
    ("gateway", 3),
    ("patient-api", 3),
    ("audit-api", 2),
    ("docstore", 2),
];

/// One operation's variable traffic: `variables::get` per component, all
/// resolutions through the chain, and the GETs the vault served. Fails when
/// an instance of a component read more variables than its budget.
fn measure(
    app: &AzureApp,
    operation: &str,
    call: impl FnOnce() -> u16,
    expected: u16,
) -> (u64, u64) {
    app.reset();
    let status = call();
    app.settle();
    assert_eq!(status, expected, "{operation}\n{}", app.logs());
    let gets = app.app.variable_gets();
    let per_instance = app.app.most_variable_gets_per_instance();
    let reads: u64 = app.app.variable_reads().values().sum();
    let vault = app.vault.total_reads();
    println!(
        "reads per operation: {operation:<28} variables::get {gets:?}, most by one instance {per_instance:?}; chain resolutions {reads}; Key Vault GETs {vault}"
    );
    for (component, budget) in GET_BUDGET {
        let most = per_instance.get(component).copied().unwrap_or(0);
        assert!(
            most <= budget,
            "{operation}: one {component} instance read {most} variables (budget {budget})"
        );
    }
    (reads, vault)
}

#[test]
fn the_contract_works_with_secrets_in_key_vault_and_settings_in_the_environment() {
    let app = start();
    let c = &app.client;
    let key = app.client.secrets.variables["healthkey"].clone();

    let mut created = None;
    measure(
        &app,
        "POST /patient",
        || {
            let r = c.call("clinic", "POST", "/patient", Some(&patient()));
            created = Some(r.json());
            r.status
        },
        201,
    );
    let created = created.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    measure(
        &app,
        "GET /patient/{id}",
        || {
            c.call("clinic", "GET", &format!("/patient/{id}"), None)
                .status
        },
        200,
    );
    let mut updated = created.clone();
    updated["postCode"] = json!("4321");
    updated.as_object_mut().unwrap().remove("lastUpdated");
    measure(
        &app,
        "PUT /patient/{id}",
        || {
            c.call("clinic", "PUT", &format!("/patient/{id}"), Some(&updated))
                .status
        },
        200,
    );
    measure(
        &app,
        "POST /patient/search",
        || {
            c.call(
                "clinic",
                "POST",
                "/patient/search",
                Some(&json!({"lastName": "Lovelace"})),
            )
            .status
        },
        200,
    );
    measure(
        &app,
        "POST /patient/{id}/tests",
        || {
            c.call(
                "clinic",
                "POST",
                &format!("/patient/{id}/tests"),
                Some(&lab_test()),
            )
            .status
        },
        201,
    );
    measure(
        &app,
        "GET /patient/{id}/tests",
        || {
            c.call("clinic", "GET", &format!("/patient/{id}/tests"), None)
                .status
        },
        200,
    );
    measure(
        &app,
        "GET /audit/records",
        || {
            c.call(
                "admin",
                "GET",
                &format!("/audit/records?resourceType=patient&resourceId={id}"),
                None,
            )
            .status
        },
        200,
    );
    let (reads, vault) = measure(
        &app,
        "GET /health/ready",
        || c.get("/health/ready", &[("x-health-key", &key)]).status,
        200,
    );
    // Nothing is cached: every resolution of a vault-held variable is a GET
    // (the plain settings come from the environment entry before it).
    assert!(
        vault > 0 && vault <= reads,
        "{vault} GETs for {reads} resolutions"
    );
    // One token for all of it: the credential reuses it until it expires.
    assert_eq!(app.vault.token_requests(), 1);
    // No log line carries a secret.
    let logs = app.logs();
    for (name, value) in &app.client.secrets.variables {
        assert!(!logs.contains(value.as_str()), "the logs contain {name}");
    }
    drop(app.runtime);
}

#[test]
fn a_plain_setting_given_only_in_the_environment_resolves() {
    // gatewaypolicy is in no vault; the environment entry answers it, so a
    // body over the limit set there is refused.
    let app = start_with(
        |_| {},
        &[("SPIN_VARIABLE_GATEWAYPOLICY", r#"{"maxBodyBytes": 64}"#)],
    );
    assert_eq!(
        app.app.variable_provider("gatewaypolicy"),
        Some(spin_test_host::Provider::Environment)
    );
    let big = json!({"firstName": "x".repeat(100), "gender": "other", "dateOfBirth": "2000", "postCode": "1234"});
    assert_eq!(
        app.client
            .call("clinic", "POST", "/patient", Some(&big))
            .status,
        413
    );
    assert_eq!(app.vault.reads().get("gatewaypolicy"), None);
}

/// A 503 that names the variable and holds no secret.
fn assert_fails_closed(app: &AzureApp, variable: &str) {
    let reply = app.client.call(
        "clinic",
        "GET",
        "/patient/00000000-0000-0000-0000-000000000001",
        None,
    );
    app.settle();
    assert_eq!(reply.status, 503, "{}\n{}", reply.text(), app.logs());
    let everything = format!("{}\n{}", reply.text(), app.logs());
    assert!(
        everything.contains(variable),
        "nothing names {variable}:\n{everything}"
    );
    for (name, value) in &app.client.secrets.variables {
        assert!(
            !everything.contains(value.as_str()),
            "{name}'s value leaked"
        );
    }
}

#[test]
fn a_secret_missing_from_the_vault_fails_closed_naming_it() {
    // Spin's startup check asks Key Vault nothing (it "may resolve"
    // anything), so the app starts; the read fails and stops the lookup,
    // without falling back to the environment or a default.
    let app = start_with(
        |v| {
            v.remove("subscriptions");
        },
        &[],
    );
    assert_fails_closed(&app, "subscriptions");
}

#[test]
fn a_required_variable_with_no_provider_and_no_vault_stops_startup() {
    // Without Key Vault in the chain (an env-only runtime config), Spin's
    // startup check does look, and refuses to start naming the variable.
    let secrets = Secrets::generate();
    let vault = FakeVault::start(&HashMap::new());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("env-only.toml");
    std::fs::write(&config, "[[config_provider]]\ntype = \"env\"\n").unwrap();
    let manifest = repo_root().join("spin.toml");
    let err = App::load_with_runtime_config(&manifest, HostOptions::default(), Some(&config))
        .err()
        .expect("start refused")
        .to_string();
    assert!(
        err.contains("no provider resolved required variable(s)"),
        "{err}"
    );
    assert!(err.contains("Key(\"cosmoskey\")"), "{err}");
    let _ = (secrets, vault);
}

#[test]
fn vault_errors_fail_closed_naming_the_variable_never_its_value() {
    for mode in [Mode::Status(403), Mode::Status(500), Mode::Garbage] {
        let app = start();
        app.vault.set_mode(mode);
        assert_fails_closed(&app, "subscriptions");
    }
}

#[test]
fn a_token_endpoint_that_is_down_fails_closed() {
    // Nothing listens on port 1: the vault is reachable, the token is not.
    // The app starts (what loading resolves, {{ cosmosendpoint }}, is a
    // plain value); a request needing a secret fails closed, naming it.
    let app = start_with_authority(|_| {}, &[], Some("http://127.0.0.1:1"));
    assert_fails_closed(&app, "subscriptions");
    assert_eq!(
        app.vault.total_reads(),
        0,
        "no secret was read without a token"
    );
    drop(app.runtime);
}

#[test]
fn malformed_runtime_configs_refuse_to_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = repo_root().join("spin.toml");
    for (text, expected) in [
        ("[[config_provider]]\ntype = \"consul\"\n", "unknown provider type \"consul\""),
        (
            "[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"https://x.vault.azure.net/\"\n",
            "must be http:// on loopback",
        ),
        ("[[config_provider]\n", "not valid TOML"),
    ] {
        let path = dir.path().join("rc.toml");
        std::fs::write(&path, text).unwrap();
        let err = format!(
            "{:#}",
            App::load_with_runtime_config(&manifest, HostOptions::default(), Some(&path))
                .err()
                .expect("refused")
        );
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}
