//! From an instance's entrypoint to the plugin that runs it: [`PluginRegistry::resolve`] is
//! the one place where each way of running a plugin plugs in ([`Entrypoint`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_declarative::DeclarativeConnector;
use tributary_kit::Config;
use tributary_plugin_sdk::{ChannelPlugin, ConnectorPlugin};
use tributary_proto::manifest::PluginType;
use tributary_proto::requests::plugins::RuntimeInstance;
use tributary_wasm::{Limits, LoadedComponent, WasmChannel, WasmConnector, WasmRuntime};

use crate::builtin::{BuiltinKind, BUILTINS, BUILTIN_PREFIX};

/// What a manifest's `entrypoint` names, by its scheme.
///
/// This is the seam the other runtimes plug into: a `wasm:` component (WebAssembly, run by
/// wasmtime against the WIT world) and a `declarative:` connector spec (run by
/// [`DeclarativeConnector`]) each get their arm in [`PluginRegistry::resolve_instance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entrypoint<'a> {
    /// `builtin:<name>`: Rust compiled into this binary ([`BUILTINS`], or registered with
    /// [`PluginRegistry::with`]).
    Builtin(&'a str),
    /// `wasm:<path>.wasm`: a WebAssembly component inside the plugin's directory.
    Wasm(&'a str),
    /// `declarative:<spec>`: a REST API described by a spec, run with no code.
    Declarative(&'a str),
    /// Any other form.
    Unknown(&'a str),
}

impl<'a> Entrypoint<'a> {
    /// Reads `entrypoint` by its scheme.
    pub fn parse(entrypoint: &'a str) -> Self {
        if let Some(name) = entrypoint.strip_prefix(BUILTIN_PREFIX) {
            Entrypoint::Builtin(name)
        } else if let Some(path) = entrypoint.strip_prefix("wasm:") {
            Entrypoint::Wasm(path)
        } else if let Some(spec) = entrypoint.strip_prefix("declarative:") {
            Entrypoint::Declarative(spec)
        } else {
            Entrypoint::Unknown(entrypoint)
        }
    }
}

/// Why an entrypoint resolves to no plugin; reported to the plugin manager as the instance's
/// failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No plugin of this type is registered under the entrypoint.
    #[error("no {plugin_type} runs entrypoint `{entrypoint}` in this {plugin_type} service")]
    NotFound {
        /// `connector` or `channel`.
        plugin_type: &'static str,
        /// The entrypoint asked for.
        entrypoint: String,
    },
    /// The entrypoint's runtime is not part of Tributary yet.
    #[error("no {plugin_type} runs entrypoint `{entrypoint}` in this {plugin_type} service: {runtime} plugins are not supported yet")]
    NotSupported {
        /// `connector` or `channel`.
        plugin_type: &'static str,
        /// The entrypoint asked for.
        entrypoint: String,
        /// What kind of plugin it names (`WebAssembly`, `declarative`).
        runtime: &'static str,
    },
    /// The instance is of another plugin type than the service runs.
    #[error("instance of a {actual} plugin sent to the {plugin_type} service")]
    WrongType {
        /// The type the service runs.
        plugin_type: &'static str,
        /// The instance's plugin type.
        actual: &'static str,
    },
    /// Its WebAssembly component cannot be run: unreadable, not what its manifest's digest
    /// says, importing what no permission grants, or failing to compile.
    #[error("cannot run the plugin's WebAssembly component: {0}")]
    Wasm(String),
    /// Its connector spec cannot be run: unreadable, changed since the plugin manager checked
    /// it, or not a spec; or it was asked for without its instance.
    #[error("cannot run the plugin's connector spec: {0}")]
    Declarative(String),
}

/// A plugin trait the host runs instances of: [`ConnectorPlugin`] or [`ChannelPlugin`].
pub trait HostedPlugin: Send + Sync + 'static {
    /// The manifest `type` of its plugins.
    const TYPE: PluginType;

    /// The plugin a built-in constructor makes, when it is of this trait.
    fn from_builtin(kind: BuiltinKind) -> Option<Arc<Self>>;

    /// One instance of a loaded WebAssembly component of this type.
    fn from_wasm(
        runtime: WasmRuntime,
        component: Arc<LoadedComponent>,
        limits: Limits,
        secret_fields: Vec<String>,
    ) -> Arc<Self>;

    /// A declarative connector as a plugin of this type; `None` for a type that is no
    /// connector.
    fn from_declarative(connector: DeclarativeConnector) -> Option<Arc<Self>>;
}

impl HostedPlugin for dyn ConnectorPlugin {
    const TYPE: PluginType = PluginType::Connector;

    fn from_builtin(kind: BuiltinKind) -> Option<Arc<Self>> {
        match kind {
            BuiltinKind::Connector(make) => Some(make()),
            BuiltinKind::Channel(_) => None,
        }
    }

    fn from_wasm(
        runtime: WasmRuntime,
        component: Arc<LoadedComponent>,
        limits: Limits,
        secret_fields: Vec<String>,
    ) -> Arc<Self> {
        Arc::new(WasmConnector::new(
            runtime,
            component,
            limits,
            secret_fields,
        ))
    }

    fn from_declarative(connector: DeclarativeConnector) -> Option<Arc<Self>> {
        Some(Arc::new(connector))
    }
}

impl HostedPlugin for dyn ChannelPlugin {
    const TYPE: PluginType = PluginType::Channel;

    fn from_builtin(kind: BuiltinKind) -> Option<Arc<Self>> {
        match kind {
            BuiltinKind::Channel(make) => Some(make()),
            BuiltinKind::Connector(_) => None,
        }
    }

    fn from_wasm(
        runtime: WasmRuntime,
        component: Arc<LoadedComponent>,
        limits: Limits,
        secret_fields: Vec<String>,
    ) -> Arc<Self> {
        Arc::new(WasmChannel::new(runtime, component, limits, secret_fields))
    }

    fn from_declarative(_connector: DeclarativeConnector) -> Option<Arc<Self>> {
        None
    }
}

/// The connectors a connector service runs, by entrypoint.
pub type ConnectorRegistry = PluginRegistry<dyn ConnectorPlugin>;

/// The channels a channel service runs, by entrypoint.
pub type ChannelRegistry = PluginRegistry<dyn ChannelPlugin>;

/// The plugins of one type a service can run, by entrypoint: the built-ins of that type from
/// [`BUILTINS`], any a test registers with [`PluginRegistry::with`], and WebAssembly
/// components when it has a [`WasmRuntime`].
pub struct PluginRegistry<P: ?Sized + HostedPlugin> {
    /// Compiled-in plugins by their full entrypoint (`builtin:dav`).
    compiled: BTreeMap<String, Arc<P>>,
    /// What runs `wasm:` components; none: they are reported not supported.
    wasm: Option<WasmRuntime>,
}

impl<P: ?Sized + HostedPlugin> Clone for PluginRegistry<P> {
    fn clone(&self) -> Self {
        Self {
            compiled: self.compiled.clone(),
            wasm: self.wasm.clone(),
        }
    }
}

impl<P: ?Sized + HostedPlugin> Default for PluginRegistry<P> {
    fn default() -> Self {
        Self {
            compiled: BTreeMap::new(),
            wasm: None,
        }
    }
}

impl<P: ?Sized + HostedPlugin> std::fmt::Debug for PluginRegistry<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.compiled.keys()).finish()
    }
}

impl<P: ?Sized + HostedPlugin> PluginRegistry<P> {
    /// No plugins.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every built-in plugin of this type, from [`BUILTINS`]. A built-in whose manifest does
    /// not parse is logged and left out (a test keeps that from shipping).
    pub fn builtin() -> Self {
        let mut registry = Self::empty();
        for builtin in BUILTINS {
            let Some(plugin) = P::from_builtin(builtin.kind) else {
                continue;
            };
            match builtin.parse() {
                Ok(manifest) => {
                    registry.compiled.insert(manifest.entrypoint, plugin);
                }
                Err(e) => {
                    tracing::error!(error = %e, "A built-in plugin's manifest does not parse; it is not run.");
                }
            }
        }
        registry
    }

    /// The same registry, with `plugin` run for instances whose manifest says `entrypoint`.
    /// Replaces one registered there before.
    pub fn with(mut self, entrypoint: &str, plugin: Arc<P>) -> Self {
        self.compiled.insert(entrypoint.to_owned(), plugin);
        self
    }

    /// The same registry, running `wasm:` components with `runtime`.
    pub fn with_wasm(mut self, runtime: WasmRuntime) -> Self {
        self.wasm = Some(runtime);
        self
    }

    /// The same registry, running `wasm:` components with a runtime made from `config`'s
    /// `[wasm]` (kept when it has one already). Fails when wasmtime cannot start.
    pub fn with_wasm_from(self, config: &Config) -> Result<Self, ResolveError> {
        if self.wasm.is_some() {
            return Ok(self);
        }
        // wasmtime's cache wants an absolute path; `data_dir` is relative by default.
        let cache_dir = config.wasm.cache_dir_in(&config.data_dir);
        let cache_dir = std::path::absolute(&cache_dir).unwrap_or(cache_dir);
        let runtime = WasmRuntime::new(&config.wasm, Some(cache_dir))
            .map_err(|e| ResolveError::Wasm(e.to_string()))?;
        Ok(self.with_wasm(runtime))
    }

    /// The plugin that runs `instance`: a built-in by its entrypoint, or its WebAssembly
    /// component, loaded (checked against its digest and for its imports, compiled once per
    /// process and cached on disk) and made one instance of, under the limits its manifest
    /// asks for within the service's.
    pub async fn resolve_instance(
        &self,
        instance: &RuntimeInstance,
    ) -> Result<Arc<P>, ResolveError> {
        let plugin_type = P::TYPE.as_str();
        if instance.plugin_type != P::TYPE {
            return Err(ResolveError::WrongType {
                plugin_type,
                actual: instance.plugin_type.as_str(),
            });
        }
        match Entrypoint::parse(&instance.entrypoint) {
            Entrypoint::Wasm(_) => {}
            Entrypoint::Declarative(_) => return Self::resolve_declarative(instance),
            Entrypoint::Builtin(_) | Entrypoint::Unknown(_) => {
                return self.resolve(&instance.entrypoint)
            }
        }
        let Some(runtime) = &self.wasm else {
            return self.resolve(&instance.entrypoint);
        };
        let source = instance.component.as_ref().ok_or_else(|| {
            ResolveError::Wasm(
                "the plugin manager named no component file for it (is the plugin's directory still there?)".to_owned(),
            )
        })?;
        let component = runtime
            .load(source)
            .await
            .map_err(|e| ResolveError::Wasm(e.to_string()))?;
        Ok(P::from_wasm(
            runtime.clone(),
            component,
            runtime.limits_for(&instance.limits),
            instance.secret_fields.clone(),
        ))
    }

    /// The declarative connector of `instance`: a built-in one's compiled-in spec, or the spec
    /// file the plugin manager named, whose content must be what it checked (its SHA-256).
    fn resolve_declarative(instance: &RuntimeInstance) -> Result<Arc<P>, ResolveError> {
        let connector = match tributary_declarative::builtin_connector(&instance.plugin_id) {
            Some(connector) => connector,
            None => {
                let source = instance.component.as_ref().ok_or_else(|| {
                    ResolveError::Declarative(
                        "the plugin manager named no spec file for it (is the plugin's directory still there?)".to_owned(),
                    )
                })?;
                let spec = tributary_declarative::load_spec(
                    std::path::Path::new(&source.path),
                    &source.sha256,
                )
                .map_err(ResolveError::Declarative)?;
                DeclarativeConnector::new(spec)
            }
        };
        P::from_declarative(connector).ok_or(ResolveError::WrongType {
            plugin_type: P::TYPE.as_str(),
            actual: PluginType::Connector.as_str(),
        })
    }

    /// Every entrypoint it runs, sorted.
    pub fn entrypoints(&self) -> impl Iterator<Item = &str> {
        self.compiled.keys().map(String::as_str)
    }

    /// The built-in plugin that runs an instance whose manifest says `entrypoint`.
    ///
    /// The seam for the other runtimes: a `wasm:` entrypoint is run by
    /// [`PluginRegistry::resolve_instance`] (here, or without a runtime, it is reported
    /// [`ResolveError::NotSupported`]); so is a `declarative:` one, whose spec belongs to its
    /// plugin, not to the entrypoint alone (here it is [`ResolveError::Declarative`]).
    pub fn resolve(&self, entrypoint: &str) -> Result<Arc<P>, ResolveError> {
        let plugin_type = P::TYPE.as_str();
        let not_supported = |runtime| ResolveError::NotSupported {
            plugin_type,
            entrypoint: entrypoint.to_owned(),
            runtime,
        };
        match Entrypoint::parse(entrypoint) {
            Entrypoint::Builtin(_) => {
                self.compiled
                    .get(entrypoint)
                    .cloned()
                    .ok_or_else(|| ResolveError::NotFound {
                        plugin_type,
                        entrypoint: entrypoint.to_owned(),
                    })
            }
            Entrypoint::Wasm(_) => Err(not_supported("WebAssembly")),
            Entrypoint::Declarative(_) => Err(ResolveError::Declarative(format!(
                "`{entrypoint}` names a spec of its plugin's; it is run from the instance"
            ))),
            Entrypoint::Unknown(_) => Err(ResolveError::NotFound {
                plugin_type,
                entrypoint: entrypoint.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn each_service_registry_runs_exactly_the_builtins_of_its_type() {
        let connectors: Vec<String> = ConnectorRegistry::builtin()
            .entrypoints()
            .map(str::to_owned)
            .collect();
        let channels: Vec<String> = ChannelRegistry::builtin()
            .entrypoints()
            .map(str::to_owned)
            .collect();
        let expected = |plugin_type| {
            let mut entrypoints: Vec<String> = BUILTINS
                .iter()
                .map(|b| b.parse().unwrap())
                .filter(|m| m.plugin_type == plugin_type)
                .map(|m| m.entrypoint)
                .collect();
            entrypoints.sort();
            entrypoints
        };
        assert_eq!(connectors, expected(PluginType::Connector));
        assert_eq!(channels, expected(PluginType::Channel));
        assert_eq!(
            connectors,
            ["builtin:dav", "builtin:demo", "builtin:folder"]
        );
        assert_eq!(channels.len(), 6);
    }

    #[test]
    fn a_builtin_entrypoint_resolves_to_its_plugin_and_an_unknown_one_is_named() {
        let registry = ConnectorRegistry::builtin();
        assert!(registry.resolve("builtin:dav").is_ok());
        let err = registry.resolve("builtin:nothing").err().unwrap();
        assert_eq!(
            err.to_string(),
            "no connector runs entrypoint `builtin:nothing` in this connector service"
        );
        let channels = ChannelRegistry::builtin();
        assert!(channels.resolve("builtin:slack").is_ok());
        assert!(
            channels.resolve("builtin:dav").is_err(),
            "a connector is no channel"
        );
    }

    #[test]
    fn a_builtin_declarative_instance_resolves_to_its_spec_and_a_channel_service_refuses_it() {
        let instance: RuntimeInstance = serde_json::from_value(serde_json::json!({
            "instance_id": "m365",
            "plugin_id": "tributary.microsoft-365",
            "plugin_type": "connector",
            "version": "0.1.0",
            "entrypoint": "declarative:contacts.toml",
            "permissions": [],
            "config": {},
            "state": "enabled"
        }))
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(ConnectorRegistry::builtin().resolve_instance(&instance))
            .unwrap();
        let mut channel = instance.clone();
        channel.plugin_type = PluginType::Channel;
        let err = runtime
            .block_on(ChannelRegistry::builtin().resolve_instance(&channel))
            .err()
            .unwrap();
        assert!(matches!(err, ResolveError::WrongType { .. }), "{err:?}");
        let mut elsewhere = instance;
        elsewhere.plugin_id = "com.example.gone".to_owned();
        let err = runtime
            .block_on(ConnectorRegistry::builtin().resolve_instance(&elsewhere))
            .err()
            .unwrap();
        assert!(err.to_string().contains("no spec file"), "{err}");
    }

    #[test]
    fn wasm_entrypoints_are_reported_not_supported_without_a_runtime() {
        let registry = ChannelRegistry::builtin();
        let err = registry.resolve("wasm:acme/chat.wasm").err().unwrap();
        assert!(
            matches!(
                err,
                ResolveError::NotSupported {
                    runtime: "WebAssembly",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no channel runs entrypoint `wasm:acme/chat.wasm` in this channel service: WebAssembly plugins are not supported yet"
        );
        let err = ConnectorRegistry::builtin()
            .resolve("declarative:github.toml")
            .err()
            .unwrap();
        assert!(matches!(err, ResolveError::Declarative(_)), "{err:?}");
    }

    #[test]
    fn entrypoints_are_read_by_their_scheme() {
        assert_eq!(Entrypoint::parse("builtin:dav"), Entrypoint::Builtin("dav"));
        assert_eq!(
            Entrypoint::parse("wasm:a/b.wasm"),
            Entrypoint::Wasm("a/b.wasm")
        );
        assert_eq!(
            Entrypoint::parse("declarative:x"),
            Entrypoint::Declarative("x")
        );
        assert_eq!(
            Entrypoint::parse("exe:/bin/sh"),
            Entrypoint::Unknown("exe:/bin/sh")
        );
    }
}
