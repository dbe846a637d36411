//! A loaded app and its per-request instances: loading and compiling the
//! manifest's components, instantiating one per request, collecting their
//! output. By concern: `engine` (the wasmtime engine and compile cache),
//! `chaining` (outbound HTTP: allowed hosts, `*.spin.internal`, faults),
//! `faults` (what tests inject).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};

use crate::runtime_config::KeyValueLocation;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::costs::{CostMeter, Lineage};
use crate::manifest::{ComponentDecl, Manifest};
use crate::outbound::{AllowedHost, OutboundPolicy};
use crate::routes::{chained_match, spin_headers, RouteMatch, Router};
use crate::spin_imports::{KeyValueBackend, SpinImports, SqliteDatabases};
use crate::variables::Variables;

mod chaining;
mod engine;
mod faults;

use chaining::{error_body, OutboundHooks};
use engine::{compile_cached, shared_engine};
pub use faults::Fault;

/// How the test host is set up. `environment` stands for the process
/// environment (the `SPIN_VARIABLE_*` provider), so tests need not touch the
/// real one.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    pub environment: HashMap<String, String>,
    /// Where `.spin/`-style state goes; defaults to `<manifest dir>/.spin`.
    pub state_dir: Option<PathBuf>,
    /// Copy component stdout/stderr lines to this process's stderr.
    pub echo_component_output: bool,
    /// Use wasmtime's on-demand allocator instead of the pooling allocator.
    pub on_demand_allocator: bool,
    /// Run another `.wasm` in a component's place, keeping the manifest's
    /// capabilities for it (for tests that probe a component's sandbox).
    pub source_overrides: HashMap<String, PathBuf>,
}

/// An outbound request a component was not allowed to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub component: String,
    pub url: String,
}

/// A line a component wrote to stdout or stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub component: String,
    pub stream: &'static str,
    pub line: String,
}

pub(crate) struct LoadedComponent {
    pub decl: ComponentDecl,
    pre: ProxyPre<InstanceState>,
    outbound: OutboundPolicy,
}

pub(crate) struct AppInner {
    pub manifest: Manifest,
    pub variables: Variables,
    pub router: Router,
    pub key_value: KeyValueBackend,
    pub sqlite: SqliteDatabases,
    pub state_dir: PathBuf,
    pub(crate) costs: Arc<CostMeter>,
    components: HashMap<String, Arc<LoadedComponent>>,
    denials: Mutex<Vec<Denial>>,
    logs: Mutex<Vec<LogLine>>,
    faults: Mutex<HashMap<String, Fault>>,
    /// Component instances running now, including work a component does
    /// after its response has been handed over.
    running: Arc<AtomicUsize>,
    echo: bool,
    /// Spin's trace propagation, when its OpenTelemetry export is on.
    pub(crate) telemetry: Option<crate::telemetry::Telemetry>,
    /// `[[client_tls]]`: the roots and client certificate per component and host.
    pub(crate) client_tls: crate::client_tls::ClientTls,
    /// The app's pooled HTTP and HTTPS clients (one per app, as Spin's).
    pub(crate) outbound_clients: crate::outbound_http::OutboundClients,
}

/// Counts one running instance for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Running(counter.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `T` of every `Store<T>`: one per request per component, as in Spin.
pub struct InstanceState {
    pub(crate) app: Arc<AppInner>,
    pub(crate) component: Arc<LoadedComponent>,
    pub(crate) table: ResourceTable,
    /// Whether this instance, or one on the way to it, has answered.
    pub(crate) lineage: Lineage,
    /// `variables::get` calls this instance has made.
    pub(crate) variable_gets: u64,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl AppInner {
    pub(crate) fn load(
        manifest: Manifest,
        options: &HostOptions,
        runtime_config: &crate::runtime_config::RuntimeConfig,
    ) -> Result<Arc<Self>> {
        let variables =
            Variables::with_runtime_config(&manifest, &options.environment, runtime_config)?;
        for section in &runtime_config.unmodelled {
            eprintln!(
                "spin-test-host: runtime config {section} is not modelled; the local default is used"
            );
        }
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(|| manifest.dir.join(".spin"));
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let (engine, on_demand) = match shared_engine(options.on_demand_allocator) {
            Ok(engine) => (engine, options.on_demand_allocator),
            Err(e) => {
                eprintln!("spin-test-host: pooling allocator unavailable ({e}); using on-demand");
                (shared_engine(true)?, true)
            }
        };
        let mut linker = Linker::<InstanceState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        SpinImports::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |s| s)?;

        let mut components = HashMap::new();
        for (id, decl) in &manifest.components {
            let mut entries = Vec::new();
            for entry in &decl.allowed_outbound_hosts {
                // Templates name application variables, as in Spin; they
                // are expanded once here, where Spin does it per instance.
                let expanded = variables.expand(entry).with_context(|| {
                    format!("component {id:?}: allowed_outbound_hosts {entry:?}")
                })?;
                entries.push(
                    AllowedHost::parse(&expanded)
                        .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?,
                );
            }
            let source = options.source_overrides.get(id).unwrap_or(&decl.source);
            let component = compile_cached(&engine, on_demand, source).with_context(|| {
                format!(
                    "loading component {id:?} from {} (build the components first: \
                     cargo build --target wasm32-wasip2 --release)",
                    source.display()
                )
            })?;
            let pre = ProxyPre::new(
                linker
                    .instantiate_pre(&component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("component {id:?} imports something Spin does not provide")
                    })?,
            )?;
            components.insert(
                id.clone(),
                Arc::new(LoadedComponent {
                    decl: decl.clone(),
                    pre,
                    outbound: OutboundPolicy::new(entries),
                }),
            );
        }
        // Reads made while loading (allowed_outbound_hosts templates) are
        // not a request's.
        variables.reset_counts();
        let key_value = match &runtime_config.key_value_default {
            KeyValueLocation::StateDir => {
                KeyValueBackend::open(&state_dir.join("sqlite_key_value.db"))?
            }
            KeyValueLocation::File(path) => KeyValueBackend::open(path)?,
            KeyValueLocation::InMemory => KeyValueBackend::open_in_memory()?,
        };
        let sqlite = SqliteDatabases {
            default_path: state_dir.join("sqlite_db.db"),
        };
        Ok(Arc::new(AppInner {
            router: Router::new(&manifest),
            manifest,
            variables,
            key_value,
            sqlite,
            state_dir,
            costs: Arc::default(),
            components,
            denials: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            faults: Mutex::new(HashMap::new()),
            running: Arc::new(AtomicUsize::new(0)),
            echo: options.echo_component_output,
            telemetry: crate::telemetry::Telemetry::from_environment(&options.environment),
            client_tls: crate::client_tls::ClientTls::new(&runtime_config.client_tls)?,
            outbound_clients: crate::outbound_http::OutboundClients::new(
                runtime_config.connection_pooling,
            ),
        }))
    }

    pub(crate) fn running_instances(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    pub(crate) fn denials(&self) -> Vec<Denial> {
        self.denials.lock().unwrap().clone()
    }

    pub(crate) fn logs(&self) -> Vec<LogLine> {
        self.logs.lock().unwrap().clone()
    }

    pub(crate) fn set_fault(&self, component: &str, fault: Option<Fault>) -> Result<()> {
        if !self.components.contains_key(component) {
            return Err(anyhow!("no component {component:?}"));
        }
        let mut faults = self.faults.lock().unwrap();
        match fault {
            Some(f) => faults.insert(component.to_string(), f),
            None => faults.remove(component),
        };
        Ok(())
    }

    /// A request to a component as if chained from another component
    /// (private components included): for tests of one component alone.
    pub(crate) async fn invoke_chained(
        self: &Arc<Self>,
        component: &str,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>> {
        if !self.components.contains_key(component) {
            return Err(anyhow!("no component {component:?}"));
        }
        let request = Self::as_chained(component, request)
            .map_err(|_| anyhow!("the request's URI cannot be chained"))?;
        Ok(self.invoke(component, &Lineage::default(), request).await)
    }

    pub(crate) fn outbound_allowed(&self, component: &str, url: &str) -> Result<bool> {
        let c = self
            .components
            .get(component)
            .ok_or_else(|| anyhow!("no component {component:?}"))?;
        let uri: http::Uri = url.parse()?;
        Ok(c.outbound.allows(
            uri.scheme_str().unwrap_or("http"),
            uri.host().unwrap_or(""),
            uri.port_u16(),
        ))
    }

    pub(crate) fn has_wildcard_outbound(&self, component: &str) -> bool {
        self.components
            .get(component)
            .is_some_and(|c| c.outbound.has_wildcard())
    }

    /// Runs one request through a component and returns its response.
    /// A component that fails before responding yields a 500, as in Spin.
    pub(crate) async fn invoke(
        self: &Arc<Self>,
        component_id: &str,
        caller: &Lineage,
        request: http::Request<WasiBody>,
    ) -> http::Response<WasiBody> {
        match self.try_invoke(component_id, caller, request).await {
            Ok(response) => response,
            Err(e) => {
                self.log(component_id, "host", format!("request failed: {e:#}"));
                error_body(500, "Internal Server Error")
            }
        }
    }

    async fn try_invoke(
        self: &Arc<Self>,
        component_id: &str,
        caller: &Lineage,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>> {
        let component = self
            .components
            .get(component_id)
            .ok_or_else(|| anyhow!("no component {component_id:?}"))?
            .clone();
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let (lineage, answered) = caller.child();
        self.costs.instance();
        let state = InstanceState {
            app: self.clone(),
            component: component.clone(),
            table: ResourceTable::new(),
            lineage: lineage.clone(),
            variable_gets: 0,
            wasi,
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                app: self.clone(),
                component: component.clone(),
                lineage,
                prepared: None,
            },
        };
        let mut store = Store::new(component.pre.engine(), state);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        let app = self.clone();
        let id = component_id.to_string();
        let running = Running::start(&self.running);
        let task = tokio::task::spawn(async move {
            let _running = running;
            let result = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            }
            .await;
            drop(store);
            app.collect_output(&id, "stdout", &stdout);
            app.collect_output(&id, "stderr", &stderr);
            result
        });
        let outcome = receiver.await;
        // From here on the caller has its answer: what this instance (and
        // whatever it calls) still does is off the critical path.
        answered.store(true, Ordering::SeqCst);
        match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(anyhow!("component answered with error code {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow!("component never set a response")),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("component trapped")),
                Err(e) => Err(e.into()),
            },
        }
    }

    fn collect_output(&self, component: &str, stream: &'static str, pipe: &MemoryOutputPipe) {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines() {
            self.log(component, stream, line.to_string());
        }
    }

    fn log(&self, component: &str, stream: &'static str, line: String) {
        if self.echo {
            eprintln!("[{component}] {line}");
        }
        self.logs.lock().unwrap().push(LogLine {
            component: component.to_string(),
            stream,
            line,
        });
    }

    /// The request a component reached by service chaining receives, as in
    /// Spin: `spin-full-url` is `http://localhost…`, the client address
    /// `0.0.0.0:0`, no `host` header.
    pub(crate) fn as_chained(
        target: &str,
        request: http::Request<WasiBody>,
    ) -> Result<http::Request<WasiBody>, HttpError> {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let full_url = format!("http://localhost{path_and_query}");
        let route = chained_match(target, request.uri().path());
        let (mut parts, body) = request.into_parts();
        parts.uri = full_url
            .parse()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        Ok(Self::prepare(
            http::Request::from_parts(parts, body),
            &full_url,
            &route,
            "0.0.0.0:0",
            false,
        ))
    }

    /// Builds the request a component receives: the caller's headers less any
    /// `spin-*` (a client must not forge them), plus Spin's own.
    pub(crate) fn prepare<B>(
        request: http::Request<B>,
        full_url: &str,
        route: &RouteMatch,
        client_addr: &str,
        keep_host: bool,
    ) -> http::Request<B> {
        let (mut parts, body) = request.into_parts();
        let forged: Vec<_> = parts
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for name in forged {
            parts.headers.remove(name);
        }
        if !keep_host {
            parts.headers.remove(http::header::HOST);
        }
        for (name, value) in spin_headers(full_url, route, client_addr) {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                parts.headers.insert(name, value);
            }
        }
        http::Request::from_parts(parts, body)
    }
}
