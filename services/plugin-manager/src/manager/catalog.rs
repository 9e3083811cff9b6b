//! The catalog: the plugins discovered, one plugin, and scanning for them again.

use tributary_proto::requests::plugins::{FieldProblem, InvalidPluginView, PluginList, PluginView};

use crate::discovery::{self, DiscoveredPlugin};
use crate::error::RegistryError;
use crate::store;

use super::PluginManager;

impl PluginManager {
    /// Scans the built-in manifests and the plugin directories again, records what it found,
    /// and answers with the list.
    pub async fn rescan(&self) -> Result<PluginList, RegistryError> {
        let dirs = self.plugin_dirs.clone();
        let catalog = tokio::task::spawn_blocking(move || {
            discovery::discover(discovery::BUILTIN_MANIFESTS, &dirs)
        })
        .await
        .map_err(RegistryError::ScanFailed)?;
        store::upsert_plugins(&self.pool, &catalog.newest_of_each()).await?;
        match self.catalog.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
        Ok(self.plugins())
    }

    /// Every plugin discovered, valid (each version found, by id and version) and invalid.
    pub fn plugins(&self) -> PluginList {
        self.with_catalog(|catalog| PluginList {
            plugins: catalog.plugins.iter().map(plugin_view).collect(),
            invalid: catalog
                .invalid
                .iter()
                .map(|i| InvalidPluginView {
                    location: i.location.clone(),
                    id: i.id.clone(),
                    problems: i
                        .problems
                        .iter()
                        .map(|p| FieldProblem {
                            field: p.field.clone(),
                            message: p.message.clone(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// One plugin: its newest version found.
    pub fn plugin(&self, plugin_id: &str) -> Result<PluginView, RegistryError> {
        self.newest(plugin_id)
            .map(|p| plugin_view(&p))
            .ok_or_else(|| RegistryError::UnknownPlugin(plugin_id.to_owned()))
    }
}

fn plugin_view(p: &DiscoveredPlugin) -> PluginView {
    PluginView {
        id: p.manifest.id.clone(),
        name: p.manifest.name.clone(),
        version: p.manifest.version.to_string(),
        plugin_type: p.manifest.plugin_type.as_str().to_owned(),
        description: p.manifest.description.clone(),
        permissions: p
            .manifest
            .permissions
            .iter()
            .map(ToString::to_string)
            .collect(),
        location: p.location.clone(),
        config_schema: p.manifest.config_schema.clone(),
    }
}
