//! The engine, the per-request instances, and outbound HTTP (service
//! chaining, `allowed_outbound_hosts`, fault injection).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
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

/// A failure the test host injects into chained requests to a component.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The component is down: callers get `connection-refused`.
    Refuse,
    /// Answer with this status (and headers) instead of running the
    /// component, for the next `times` requests (all, if `None`).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        times: Option<u32>,
    },
    /// Wait this long before running the component.
    Delay(Duration),
    /// Run the component (its effects happen), then discard its answer and
    /// respond with `status` instead, for the next `times` requests (all, if
    /// `None`): an acknowledgement lost after the work was done, as when a
    /// connection breaks or a proxy answers 5xx after the server committed.
    /// The caller cannot tell this from a request that was never executed.
    LoseResponse { status: u16, times: Option<u32> },
    /// `fault` applies only to requests with this method (any, if `None`)
    /// whose path starts with `path_prefix`; other requests pass untouched
    /// and do not count towards the inner fault's `times`. For faults in
    /// one operation of a component that several callers share.
    Only {
        method: Option<String>,
        path_prefix: String,
        fault: Box<Fault>,
    },
}

impl Fault {
    /// The fault that applies to one request, if any.
    fn applies_to(&self, method: &str, path: &str) -> Option<&Fault> {
        match self {
            Fault::Only {
                method: only,
                path_prefix,
                fault,
            } => {
                let method_matches = only
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method));
                (method_matches && path.starts_with(path_prefix.as_str()))
                    .then_some(&**fault)
                    .and_then(|inner| inner.applies_to(method, path))
            }
            other => Some(other),
        }
    }

    /// Counts one use against `times`; true when the fault is used up.
    fn use_once(&mut self, method: &str, path: &str) -> bool {
        match self {
            Fault::Only {
                method: only,
                path_prefix,
                fault,
            } => {
                let method_matches = only
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method));
                method_matches
                    && path.starts_with(path_prefix.as_str())
                    && fault.use_once(method, path)
            }
            Fault::Respond { times: Some(n), .. } | Fault::LoseResponse { times: Some(n), .. } => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            _ => false,
        }
    }

    /// A short name for the host's log line.
    fn describe(&self) -> String {
        match self {
            Fault::Refuse => "refuse".into(),
            Fault::Respond { status, .. } => format!("respond {status}"),
            Fault::Delay(d) => format!("delay {} ms", d.as_millis()),
            Fault::LoseResponse { status, .. } => format!("lose response, respond {status}"),
            Fault::Only { fault, .. } => fault.describe(),
        }
    }
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

struct OutboundHooks {
    app: Arc<AppInner>,
    component: Arc<LoadedComponent>,
    lineage: Lineage,
    /// Spin resolves every application variable once per instance, the
    /// first time the instance's outbound requests are checked
    /// (factor-outbound-networking `prepare`); a failure there denies every
    /// outbound request of the instance.
    prepared: Option<Result<(), String>>,
}

type IoFuture = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<
        dyn std::future::Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>>
            + Send,
    > {
        let app = self.app.clone();
        let component = self.component.clone();
        let prepared = self
            .prepared
            .get_or_insert_with(|| app.variables.prepare_all())
            .clone();
        let lineage = self.lineage.clone();
        Box::new(async move {
            if let Err(e) = prepared {
                app.log(
                    &component.decl.id,
                    "host",
                    format!(
                        "Error resolving variables when checking request against allowed \
                         outbound hosts: {e}"
                    ),
                );
                return Err(HttpError::HttpRequestDenied);
            }
            let response = app
                .send_outbound(&component, &lineage, request, options)
                .await?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

/// One engine per allocator kind for the whole process, and compiled
/// components cached by file identity: tests start many apps, and compiling
/// the same `.wasm` again for each would dominate their run time.
fn shared_engine(on_demand: bool) -> Result<Engine> {
    static ENGINES: OnceLock<Mutex<HashMap<bool, Engine>>> = OnceLock::new();
    let mut engines = ENGINES.get_or_init(Default::default).lock().unwrap();
    if let Some(engine) = engines.get(&on_demand) {
        return Ok(engine.clone());
    }
    let engine = engine(on_demand)?;
    engines.insert(on_demand, engine.clone());
    Ok(engine)
}

/// A compiled component's identity: its file, modification time, size, and
/// the allocator kind it was compiled for.
type CompiledKey = (PathBuf, SystemTime, u64, bool);

fn compile_cached(engine: &Engine, on_demand: bool, path: &Path) -> Result<Component> {
    static COMPILED: OnceLock<Mutex<HashMap<CompiledKey, Component>>> = OnceLock::new();
    let meta = std::fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?;
    let key = (path.to_path_buf(), meta.modified()?, meta.len(), on_demand);
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(component) = cache.lock().unwrap().get(&key) {
        return Ok(component.clone());
    }
    let component = Component::from_file(engine, path)?;
    cache.lock().unwrap().insert(key, component.clone());
    Ok(component)
}

fn engine(on_demand: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    if !on_demand {
        // As Spin does: a pool of preallocated instance slots makes per-request
        // instantiation cheap.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(1000)
            .total_core_instances(4000)
            .total_memories(1000)
            .total_tables(2000)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_core_instances_per_component(32)
            .max_memory_size(256 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.memory_reservation(1 << 30);
    }
    Ok(Engine::new(&config)?)
}

fn error_body(status: u16, text: &str) -> http::Response<WasiBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(
            Full::new(Bytes::from(text.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static response")
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
                // Templates resolve against the component's own variables,
                // at startup, as Spin does.
                let expanded = expand_component_template(&variables, decl, entry)
                    .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?;
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
        let key_value = KeyValueBackend::open(&state_dir.join("sqlite_key_value.db"))?;
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
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let full_url = format!("http://localhost{path_and_query}");
        let route = chained_match(component, request.uri().path());
        let (mut parts, body) = request.into_parts();
        parts.uri = full_url.parse()?;
        let request = Self::prepare(
            http::Request::from_parts(parts, body),
            &full_url,
            &route,
            "0.0.0.0:0",
            false,
        );
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

    async fn send_outbound(
        self: &Arc<Self>,
        caller: &LoadedComponent,
        lineage: &Lineage,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or("").to_string();
        if !caller.outbound.allows(&scheme, &host, uri.port_u16()) {
            let url = format!(
                "{scheme}://{}{}",
                uri.authority().map(|a| a.as_str()).unwrap_or(""),
                uri.path()
            );
            self.log(
                &caller.decl.id,
                "host",
                format!("outbound request to {url} denied by allowed_outbound_hosts"),
            );
            self.denials.lock().unwrap().push(Denial {
                component: caller.decl.id.clone(),
                url,
            });
            return Err(HttpError::HttpRequestDenied);
        }
        if let Some(target) = host.strip_suffix(".spin.internal") {
            return self
                .send_chained(&caller.decl.id, lineage, target, request, options)
                .await;
        }
        if !is_loopback(&host) {
            // The test host only ever talks to this machine; any other name is
            // treated as unresolvable, which is what Spin reports for a name
            // it cannot resolve.
            return Err(HttpError::DnsError {
                rcode: Some("address not available to the test host".into()),
                info_code: None,
            });
        }
        let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
        tokio::spawn(async move {
            let _ = io.await;
        });
        Ok(response.map(|b| b.boxed_unsync()))
    }

    async fn send_chained(
        self: &Arc<Self>,
        caller: &str,
        lineage: &Lineage,
        target: &str,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        if !self.components.contains_key(target) {
            return Err(HttpError::DnsError {
                rcode: Some(format!("no component {target:?} in this app")),
                info_code: None,
            });
        }
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            let fault = faults
                .get(target)
                .and_then(|f| f.applies_to(&method, &path))
                .cloned();
            if fault.is_some()
                && faults
                    .get_mut(target)
                    .is_some_and(|f| f.use_once(&method, &path))
            {
                faults.remove(target);
            }
            fault
        };
        if let Some(fault) = &fault {
            // One line per injected fault, so a test can count what it exercised.
            self.log(
                caller,
                "host",
                format!(
                    "fault injected into a request to {target}: {}",
                    fault.describe()
                ),
            );
        }
        let mut lose_response = None;
        match fault {
            Some(Fault::Refuse) => return Err(HttpError::ConnectionRefused),
            Some(Fault::Respond {
                status,
                headers,
                body,
                ..
            }) => {
                let mut response = error_body(status, &body);
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (
                        http::HeaderName::from_bytes(k.as_bytes()),
                        http::HeaderValue::from_str(&v),
                    ) {
                        response.headers_mut().insert(k, v);
                    }
                }
                return Ok(response);
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::LoseResponse { status, .. }) => lose_response = Some(status),
            Some(Fault::Only { .. }) | None => {}
        }
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
        let request = Self::prepare(
            http::Request::from_parts(parts, body),
            &full_url,
            &route,
            "0.0.0.0:0",
            false,
        );
        self.costs.chained_hop();
        let app = self.clone();
        let target_id = target.to_string();
        let lineage = lineage.clone();
        let call = async move {
            let response = app.invoke(&target_id, &lineage, request).await;
            match lose_response {
                None => response,
                Some(status) => {
                    // Let the component finish its answer, then drop it.
                    let _ = response.into_body().collect().await;
                    error_body(status, "")
                }
            }
        };
        match options.and_then(|o| o.first_byte_timeout) {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout),
            None => Ok(call.await),
        }
    }
}

fn expand_component_template(
    variables: &Variables,
    decl: &ComponentDecl,
    entry: &str,
) -> Result<String> {
    // `{{ name }}` in a component's manifest entries refers to that
    // component's variables, which in turn expand app variables.
    let mut out = String::new();
    let mut rest = entry;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("unterminated template {entry:?}"))?;
        let name = after[..end].trim();
        let value =
            crate::variables::component_get(variables, &decl.variables, name).map_err(|e| {
                anyhow!(
                    "{entry:?}: {e:?} (map the variable in [component.{}.variables])",
                    decl.id
                )
            })?;
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
