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

    /// The built-in connectors: CardDAV/CalDAV (`builtin:dav`), local folder
    /// (`builtin:folder`) and the demo sample set (`builtin:demo`).
    pub fn builtin() -> Self {
        Self::empty()
            .with(
                tributary_connector_dav::ENTRYPOINT,
                Arc::new(tributary_connector_dav::DavConnector::new()),
            )
            .with(
                tributary_connector_folder::ENTRYPOINT,
                Arc::new(tributary_connector_folder::FolderConnector::default()),
            )
            .with(
                tributary_connector_demo::ENTRYPOINT,
                Arc::new(tributary_connector_demo::DemoConnector),
            )
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tributary_plugin_manager::discovery::builtin_entrypoints;
    use tributary_proto::manifest::PluginType;

    use super::*;

    #[test]
    fn every_builtin_connector_manifest_has_its_connector_and_the_reverse() {
        let manifests = builtin_entrypoints(PluginType::Connector).unwrap();
        let registry = ConnectorRegistry::builtin();
        let mut registered: Vec<&str> = registry.entrypoints().collect();
        registered.sort_unstable();
        assert_eq!(registered, manifests, "registry against built-in manifests");
        assert_eq!(manifests.len(), 3);
    }
}
