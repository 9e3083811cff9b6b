//! Where the tests find their components, and a runtime to load them with.

use serde_json::Value;
use tributary_kit::config::WasmConfig;
use tributary_kit::testing::guests::{compiled_cache_dir, guests_dir};
use tributary_plugin_sdk::{Grants, Permission, PluginContext};
use tributary_proto::requests::plugins::ComponentSource;
use tributary_wasm::WasmRuntime;

/// A built guest plugin: its manifest and where its component is.
pub struct Guest {
    #[allow(dead_code)]
    pub manifest: Value,
    pub source: ComponentSource,
}

/// The built guest plugin `id`.
pub fn guest(id: &str) -> Guest {
    let dir = guests_dir().join(id);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plugin.json")).unwrap()).unwrap();
    let file = manifest["entrypoint"]
        .as_str()
        .unwrap()
        .strip_prefix("wasm:")
        .unwrap();
    Guest {
        source: ComponentSource {
            path: dir.join(file).display().to_string(),
            sha256: manifest["sha256"].as_str().unwrap().to_owned(),
        },
        manifest,
    }
}

/// The `[wasm]` defaults.
pub fn settings() -> WasmConfig {
    tributary_kit::Config::defaults().unwrap().wasm
}

/// A runtime with the default settings, caching compiled components where CI keeps its
/// caches, so the 12 MB JavaScript components are compiled once per machine.
pub fn runtime() -> WasmRuntime {
    runtime_with(&settings())
}

/// A runtime with `settings`.
pub fn runtime_with(settings: &WasmConfig) -> WasmRuntime {
    WasmRuntime::new(settings, Some(compiled_cache_dir())).unwrap()
}

/// A context of instance `instance` granted `permissions`, with `config`. Its client may
/// reach the loopback servers the tests run, as an operator's
/// `plugins.allow_private_network = true` allows: each `${field}` grant names the server's
/// address and port exactly.
pub fn context(instance: &str, permissions: &[&str], config: Value) -> PluginContext {
    let permissions: Vec<Permission> = permissions.iter().map(|p| p.parse().unwrap()).collect();
    PluginContext::builder(
        "com.example.test",
        instance,
        Grants::for_instance(permissions, &config),
    )
    .config(config)
    .http(|http| http.max_attempts(1).allow_private_network(true))
    .build()
    .unwrap()
}
