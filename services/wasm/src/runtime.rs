//! The one WebAssembly runtime of a service: the engine, the linker of what a guest may
//! import, and the components loaded, by digest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tributary_proto::manifest::WasmLimits;
use tributary_proto::requests::plugins::ComponentSource;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, Store};

use crate::error::WasmError;
use crate::limits::{self, LimitExceeded, Limits};
use crate::state::{HostState, InstanceShared, TICK};
use std::path::PathBuf;
use tributary_kit::config::WasmConfig;

/// One service's WebAssembly runtime; cheap to clone.
#[derive(Clone)]
pub struct WasmRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    defaults: Limits,
    maxima: Limits,
    /// Components loaded in this process, by SHA-256.
    loaded: Mutex<HashMap<String, Arc<LoadedComponent>>>,
    /// Stops the epoch ticker.
    stop: Arc<AtomicBool>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("defaults", &self.inner.defaults)
            .finish_non_exhaustive()
    }
}

/// A component compiled and linked, ready to be instantiated.
pub struct LoadedComponent {
    /// Its SHA-256.
    pub sha256: String,
    /// What it imports.
    pub imports: Vec<String>,
    /// How long compiling (or reading it back from the cache) took.
    pub compile_time: Duration,
    pub(crate) pre: InstancePre<HostState>,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("sha256", &self.sha256)
            .field("imports", &self.imports)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn engine_config(
    settings: &WasmConfig,
    cache_dir: Option<&Path>,
    maxima: &Limits,
) -> Result<Config, WasmError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if settings.pooling {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(256)
            .total_core_instances(1024)
            .total_memories(256)
            .total_tables(512)
            .max_memories_per_module(2)
            .max_tables_per_module(8)
            .table_elements(1 << 17)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20)
            .max_memory_size(usize::try_from(maxima.memory_bytes).unwrap_or(usize::MAX));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    if let Some(dir) = cache_dir {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        let cache = Cache::new(cache)
            .map_err(|e| WasmError::wasmtime("cannot use the compile cache", &e))?;
        config.cache(Some(cache));
    }
    Ok(config)
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::WasiView;

    let mut linker = Linker::new(engine);
    // io, clocks, random, stdin/stdout/stderr: nothing that reaches outside the sandbox.
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut linker)?;
    let l = &mut linker;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    // An empty environment, no arguments; `exit` traps the guest.
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    // Outgoing requests go through the instance's checked client (`crate::http`).
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::connector::Connector::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}

impl WasmRuntime {
    /// A runtime with `settings` (checked with the rest of the configuration), caching
    /// compiled components in `cache_dir`: its engine, its linker, and a thread advancing
    /// the epoch every 10 ms (the grain of the CPU limits).
    pub fn new(settings: &WasmConfig, cache_dir: Option<PathBuf>) -> Result<Self, WasmError> {
        let (defaults, maxima) = limits::from_config(settings);
        let config = engine_config(settings, cache_dir.as_deref(), &maxima)?;
        let engine =
            Engine::new(&config).map_err(|e| WasmError::wasmtime("cannot start wasmtime", &e))?;
        let linker =
            linker(&engine).map_err(|e| WasmError::wasmtime("cannot link the host", &e))?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".to_owned())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| WasmError::Wasmtime {
                    what: "cannot start the epoch thread",
                    message: e.to_string(),
                })?;
        }
        Ok(WasmRuntime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                defaults,
                maxima,
                loaded: Mutex::new(HashMap::new()),
                stop,
            }),
        })
    }

    /// The limits of a plugin whose manifest asks for `asked`.
    pub fn limits_for(&self, asked: &WasmLimits) -> Limits {
        self.inner.defaults.for_manifest(asked, &self.inner.maxima)
    }

    /// The component `source` names: read, checked against its digest and for what it
    /// imports, compiled (or read back from the cache) and linked. A component loaded before
    /// in this process is handed out again.
    pub async fn load(&self, source: &ComponentSource) -> Result<Arc<LoadedComponent>, WasmError> {
        if let Some(loaded) = self.cached(&source.sha256) {
            return Ok(loaded);
        }
        let runtime = self.clone();
        let source = source.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load_blocking(&source))
            .await
            .map_err(|e| WasmError::Wasmtime {
                what: "compiling the component",
                message: e.to_string(),
            })??;
        if let Ok(mut cache) = self.inner.loaded.lock() {
            cache.insert(loaded.sha256.clone(), loaded.clone());
        }
        Ok(loaded)
    }

    fn cached(&self, sha256: &str) -> Option<Arc<LoadedComponent>> {
        self.inner.loaded.lock().ok()?.get(sha256).cloned()
    }

    fn load_blocking(&self, source: &ComponentSource) -> Result<Arc<LoadedComponent>, WasmError> {
        let bytes = std::fs::read(Path::new(&source.path)).map_err(|e| WasmError::Read {
            path: source.path.clone(),
            source: e,
        })?;
        let actual = sha256_hex(&bytes);
        if actual != source.sha256 {
            return Err(WasmError::Digest {
                path: source.path.clone(),
                expected: source.sha256.clone(),
                actual,
            });
        }
        self.load_bytes(&bytes)
    }

    /// Compiles and links the component `bytes` after checking its imports (for tests and
    /// the benchmark; services load by [`WasmRuntime::load`]).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent>, WasmError> {
        let imports = crate::imports::check(bytes)?;
        let started = Instant::now();
        let component = Component::new(&self.inner.engine, bytes)
            .map_err(|e| WasmError::wasmtime("cannot compile the component", &e))?;
        let compile_time = started.elapsed();
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| WasmError::wasmtime("cannot link the component", &e))?;
        Ok(Arc::new(LoadedComponent {
            sha256: sha256_hex(bytes),
            imports,
            compile_time,
            pre,
        }))
    }

    /// A store for a new guest of `shared`'s instance, with its limits and meters.
    pub(crate) fn store(
        &self,
        shared: Arc<InstanceShared>,
        whole_sync: bool,
        cancel: Arc<AtomicBool>,
    ) -> Store<HostState> {
        let mut store = Store::new(
            &self.inner.engine,
            HostState::new(shared, whole_sync, cancel),
        );
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut store| {
            store
                .data_mut()
                .meter
                .tick()
                .map_err(wasmtime::Error::from)?;
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });
        store
    }
}

/// What a guest's failure was, for the instance's last error: the limit it ran into, or its
/// trap, with the host's last refusal when there was one.
pub(crate) fn describe_failure(store: &Store<HostState>, error: &wasmtime::Error) -> String {
    let state = store.data();
    let mut message = if let Some(exceeded) = error.downcast_ref::<LimitExceeded>() {
        exceeded.to_string()
    } else if let Some(exceeded) = &state.meter.exceeded {
        exceeded.to_string()
    } else if state.memory.exceeded {
        LimitExceeded::Memory {
            limit_bytes: state.shared.limits.memory_bytes,
        }
        .to_string()
    } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        format!("the plugin trapped: {trap}")
    } else {
        format!("the plugin failed: {error:#}")
    };
    if let Some(refusal) = state.shared.take_refusal() {
        message.push_str(&format!(" (after the host refused: {refusal})"));
    }
    message
}

/// A guest instantiated and left idle: what a warm channel instance keeps. For the benchmark
/// (instantiation time, memory of an idle instance) and for tests.
pub struct IdleGuest {
    _store: Store<HostState>,
}

impl WasmRuntime {
    /// A new guest of `component` for the instance of `ctx`, instantiated and idle.
    pub async fn idle_guest(
        &self,
        component: &Arc<LoadedComponent>,
        ctx: tributary_plugin_sdk::PluginContext,
    ) -> Result<IdleGuest, WasmError> {
        let limits = self.limits_for(&WasmLimits::default());
        let plugin = PluginInstance::new(self.clone(), component.clone(), limits, Vec::new());
        let (store, _) = plugin
            .instantiate(plugin.shared(ctx), false, Arc::new(AtomicBool::new(false)))
            .await
            .map_err(|message| WasmError::Wasmtime {
                what: "cannot instantiate the component",
                message,
            })?;
        Ok(IdleGuest { _store: store })
    }
}

/// A loaded component as one plugin instance runs it: the runtime, the limits its manifest
/// got, and the config fields its guests may not read through `config()`. What a
/// [`crate::WasmConnector`] and a [`crate::WasmChannel`] are made of.
#[derive(Clone)]
pub(crate) struct PluginInstance {
    runtime: WasmRuntime,
    component: Arc<LoadedComponent>,
    limits: Limits,
    secret_fields: Vec<String>,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("component", &self.component.sha256)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PluginInstance {
    /// `component` run with `runtime` under `limits`, hiding `secret_fields`.
    pub fn new(
        runtime: WasmRuntime,
        component: Arc<LoadedComponent>,
        limits: Limits,
        secret_fields: Vec<String>,
    ) -> Self {
        PluginInstance {
            runtime,
            component,
            limits,
            secret_fields,
        }
    }

    /// What the guests of the instance of `ctx` share.
    pub fn shared(&self, ctx: tributary_plugin_sdk::PluginContext) -> Arc<InstanceShared> {
        InstanceShared::new(ctx, self.secret_fields.clone(), self.limits)
    }

    /// A new guest in a store of its own, with its limits and meters (`whole_sync` counts
    /// the sync's CPU too); a failure described as the instance's error.
    pub async fn instantiate(
        &self,
        shared: Arc<InstanceShared>,
        whole_sync: bool,
        cancel: Arc<AtomicBool>,
    ) -> Result<(Store<HostState>, wasmtime::component::Instance), String> {
        let mut store = self.runtime.store(shared, whole_sync, cancel);
        match self.component.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(e) => Err(describe_failure(&store, &e)),
        }
    }
}
