//! A test host that runs this app's `spin.toml` under wasmtime the way Spin
//! runs it, for CI machines where Spin itself cannot be installed.
//!
//! It models exactly what the app uses: public and private routes, service
//! chaining to `*.spin.internal` in process, `allowed_outbound_hosts` (with
//! templates), variables with Spin's providers and per-component mapping, the
//! `spin-*` request headers, key-value and SQLite backed by real files, and a
//! fresh instance per request from pre-instantiated components on a pooling
//! allocator. Where it and Spin differ, Spin is right (docs/architecture.md).
//!
//! It must never send traffic anywhere but loopback, and never print a
//! variable's value.

mod client_tls;
mod costs;
mod keyvault;
mod manifest;
mod outbound;
mod outbound_http;
mod routes;
mod runtime;
mod runtime_config;
mod server;
mod spin_imports;
mod telemetry;
mod variables;

use std::path::Path;
use std::sync::Arc;

pub use client_tls::ClientTlsEntry;
pub use costs::Costs;
pub use manifest::{ComponentDecl, Manifest, Route, VariableDecl};
pub use outbound::AllowedHost;
pub use runtime::{Denial, Fault, HostOptions, LogLine};
pub use runtime_config::{KeyVaultAuth, KeyVaultConfig, ProviderConfig, RuntimeConfig};
pub use server::RunningServer;
pub use variables::{parse_dotenv, validate_name, Provider};

/// A loaded app: compiled components, resolved variables, open stores.
#[derive(Clone)]
pub struct App {
    inner: Arc<runtime::AppInner>,
}

impl App {
    /// Loads and compiles the app. Fails as `spin up` would: on a required
    /// variable no provider resolves, a malformed manifest, or a component
    /// importing something Spin does not provide.
    pub fn load(manifest_path: &Path, options: HostOptions) -> anyhow::Result<Self> {
        Self::load_with_runtime_config(manifest_path, options, None)
    }

    /// [`App::load`] with a runtime config, as `spin up
    /// --runtime-config-file`: its variable providers are asked first, in
    /// order, then the environment. A malformed config, or one naming a
    /// provider the host does not model, refuses to start.
    pub fn load_with_runtime_config(
        manifest_path: &Path,
        options: HostOptions,
        runtime_config: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let manifest = Manifest::load(manifest_path)?;
        let config = match runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        Ok(Self {
            inner: runtime::AppInner::load(manifest, &options, &config)?,
        })
    }

    /// How many times each application variable was resolved through the
    /// provider chain since load (or the last reset): every component
    /// `variables::get` and every variable Spin resolves when an instance
    /// first checks an outbound request. With Key Vault answering, each is
    /// a Key Vault GET.
    pub fn variable_reads(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.variables.reads()
    }

    /// `variables::get` calls per component since load (or the last reset).
    pub fn variable_gets(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.variables.gets()
    }

    /// The most `variables::get` calls one instance of each component made
    /// since load (or the last reset): a component's reads per request.
    pub fn most_variable_gets_per_instance(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.variables.most_gets_per_instance()
    }

    /// The trace ids Spin would have exported spans for, one per request
    /// from outside, in order (telemetry on: `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// in the host's environment); empty with telemetry off.
    pub fn exported_trace_ids(&self) -> Vec<String> {
        self.inner
            .telemetry
            .as_ref()
            .map(|t| t.exported_trace_ids())
            .unwrap_or_default()
    }

    /// Zeroes [`App::variable_reads`], [`App::variable_gets`] and
    /// [`App::most_variable_gets_per_instance`].
    pub fn reset_variable_reads(&self) {
        self.inner.variables.reset_counts()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// Component instances running now. A component may go on working after
    /// its response has been handed over, as in Spin; tests wait for 0
    /// before they look at stored state or counts.
    pub fn running_instances(&self) -> usize {
        self.inner.running_instances()
    }

    /// What every request so far has cost, in counts that transfer to
    /// Spin and Azure (instances, hops, key-value and SQLite work, variable
    /// reads). Subtract two snapshots for one request's costs.
    pub fn costs(&self) -> Costs {
        self.inner.costs.snapshot()
    }

    pub fn denials(&self) -> Vec<Denial> {
        self.inner.denials()
    }

    /// Lines the components wrote to stdout and stderr so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.inner.logs()
    }

    /// Injects (or with `None`, clears) a fault into chained calls to a component.
    pub fn set_fault(&self, component: &str, fault: Option<Fault>) -> anyhow::Result<()> {
        self.inner.set_fault(component, fault)
    }

    /// Changes a variable as a provider update (say, a Key Vault secret
    /// rotation) would.
    pub fn set_variable(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.inner.variables.set(name, value)
    }

    /// Which provider answers for a variable now.
    pub fn variable_provider(&self, name: &str) -> Option<Provider> {
        self.inner.variables.provider_of(name)
    }

    /// Sends a request straight to a component, private ones included, as
    /// a chained request would arrive (`spin-client-addr` 0.0.0.0:0). Tests use
    /// it to check one component in isolation; clients cannot do this.
    pub async fn invoke_chained(
        &self,
        component: &str,
        request: http::Request<bytes::Bytes>,
    ) -> anyhow::Result<http::Response<bytes::Bytes>> {
        use http_body_util::{BodyExt, Full};
        let request = request.map(|b| Full::new(b).map_err(|never| match never {}).boxed_unsync());
        let response = self.inner.invoke_chained(component, request).await?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, bytes))
    }

    /// Whether a component's expanded `allowed_outbound_hosts` permit a URL.
    pub fn outbound_allowed(&self, component: &str, url: &str) -> anyhow::Result<bool> {
        self.inner.outbound_allowed(component, url)
    }

    /// Whether any of a component's allowed hosts is a wildcard.
    pub fn has_wildcard_outbound(&self, component: &str) -> bool {
        self.inner.has_wildcard_outbound(component)
    }

    /// The public routes and the component each goes to.
    pub fn public_routes(&self) -> Vec<(String, String)> {
        self.inner.router.public_routes()
    }

    /// Where the key-value and SQLite files live.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The SQLite file behind database `default`.
    pub fn sqlite_path(&self) -> &Path {
        &self.inner.sqlite.default_path
    }
}
