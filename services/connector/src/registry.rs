//! The connector plugins this service can run, by manifest entrypoint (`builtin:dav`).
//! Built-in connectors are compiled in; WebAssembly plugins (`wasm:…`) are not run yet.

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_plugin_sdk::ConnectorPlugin;

/// Entrypoint → connector.
#[derive(Clone, Default)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<String, Arc<dyn ConnectorPlugin>>,
}

impl std::fmt::Debug for ConnectorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.connectors.keys()).finish()
    }
}

impl ConnectorRegistry {
    /// No connectors.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in connectors: CardDAV/CalDAV (`builtin:dav`) and local folder
    /// (`builtin:folder`).
    pub fn builtin() -> Self {
        Self::empty()
    }

    /// The same registry, with `connector` run for instances whose manifest says
    /// `entrypoint`. Replaces one registered there before.
    pub fn with(mut self, entrypoint: &str, connector: Arc<dyn ConnectorPlugin>) -> Self {
        self.connectors.insert(entrypoint.to_owned(), connector);
        self
    }

    /// The connector for `entrypoint`.
    pub fn get(&self, entrypoint: &str) -> Option<Arc<dyn ConnectorPlugin>> {
        self.connectors.get(entrypoint).cloned()
    }

    /// Every entrypoint it runs.
    pub fn entrypoints(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }
}
