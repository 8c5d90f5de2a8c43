//! The wasmtime engine: pooling allocator sized for the instance cap, epoch
//! interruption driven by a ticker thread, and per-store limits.

use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a call's CPU time is checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Instances the pool holds beyond `--max-instances`.
pub const POOL_MARGIN: u32 = 64;

/// Sizes the engine is built for.
#[derive(Clone, Debug)]
pub struct EngineLimits {
    /// Live instances at most, over all components.
    pub max_instances: u32,
    /// Linear memory one instance may grow to.
    pub max_instance_memory: usize,
}

pub fn build_engine(limits: &EngineLimits) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // One compile thread: a swap while serving must leave the other cores to the server
    // (the compile runs at low priority, `watcher::install`). Start-up compiles once per
    // component version; the result is cached on disk.
    config.parallel_compilation(false);
    // `REALTIME_PERF_MAP=1` writes /tmp/perf-<pid>.map so `perf report` names wasm functions
    // (for profiling; build the components with `strip = false` to keep their names).
    if std::env::var_os("REALTIME_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // A store keeps its fiber stack until it is dropped; give the pages back then, or
    // every stack an evicted instance ever used stays resident (tens of KiB each).
    config.async_stack_zeroing(true);

    // Room beyond the cap: the least recently used instance is evicted between its calls,
    // so a new one may briefly exist before the old one is gone.
    let instances = limits.max_instances.max(16).saturating_add(POOL_MARGIN);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .max_core_instances_per_component(32)
        .total_memories(instances.saturating_mul(2))
        .max_memories_per_component(2)
        .total_tables(instances.saturating_mul(4))
        .max_tables_per_component(8)
        .table_elements(100_000)
        .total_stacks(instances)
        .async_stack_keep_resident(0)
        .max_memory_size(limits.max_instance_memory)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// Advance the engine's epoch forever, on a thread of its own.
pub fn start_epoch_ticker(engine: Engine) {
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        })
        .expect("spawning the epoch ticker");
}
