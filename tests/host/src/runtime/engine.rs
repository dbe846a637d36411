//! The wasmtime engine (pooling allocator, as Spin) and the process-wide
//! cache of compiled components.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One engine per allocator kind for the whole process, and compiled
/// components cached by file identity: tests start many apps, and compiling
/// the same `.wasm` again for each would dominate their run time.
pub(super) fn shared_engine(on_demand: bool) -> Result<Engine> {
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

pub(super) fn compile_cached(engine: &Engine, on_demand: bool, path: &Path) -> Result<Component> {
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
    // A developer's profiling aid, off by default: with it the host writes
    // /tmp/perf-<pid>.map, so `perf report` names the components' functions.
    if std::env::var_os("SPIN_TEST_HOST_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
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
