//! Adding a plugin from the bytes of a `.tar.gz` (the admin API's `POST /api/v1/plugins`, the
//! console's upload): checked and moved into the managed plugin directory as `tributary
//! plugins add` does ([`crate::adding`]), then found by a rescan and recorded in the audit log.

use bytes::Bytes;
use serde_json::json;
use tributary_proto::requests::plugins::PluginView;

use crate::actor::Actor;
use crate::adding::{self, not_loaded, place, same_place, Refusal, Staging};
use crate::error::RegistryError;
use crate::store;

use super::PluginManager;

/// The audit action of an added plugin.
pub const ADD_PLUGIN: &str = "add_plugin";

impl PluginManager {
    /// Adds the plugin in `archive` (a `.tar.gz` of its directory, or of one top-level
    /// directory holding it), unpacked to at most [`adding::DEFAULT_MAX_BYTES`]: unpacked and
    /// checked in a staging directory beside the managed plugin directory, moved to
    /// `<data_dir>/plugins/<id>/<version>/`, and the catalog scanned again. The same id and
    /// version already added is refused ([`Refusal::AlreadyAdded`]) unless `replace`. When the
    /// scan would not load it (the same id and version in a configured plugin directory), it
    /// is taken out again, what it replaced put back, and refused ([`Refusal::NotLoaded`]).
    /// Recorded in the audit log as [`ADD_PLUGIN`] by `actor`; answers with the plugin as the
    /// catalog lists it. Every refusal is [`RegistryError::PluginRefused`].
    pub async fn add_plugin_archive(
        &self,
        archive: Bytes,
        replace: bool,
        actor: &Actor,
    ) -> Result<PluginView, RegistryError> {
        let _one_at_a_time = self.adding.lock().await;
        let managed = self.managed.clone();
        let (staging, manifest, target, replaced) = tokio::task::spawn_blocking(move || {
            let staging = Staging::new(&managed.data_dir)?;
            let checked = adding::stage_and_check_archive(
                archive.as_ref(),
                adding::UPLOADED,
                adding::DEFAULT_MAX_BYTES,
                &staging,
            )?;
            let target = managed.target_of(&checked.manifest);
            let replaced = place(&checked, &target, replace, &staging)?;
            Ok::<_, Refusal>((staging, checked.manifest, target, replaced))
        })
        .await
        .map_err(RegistryError::AddFailed)??;
        let (id, version) = (manifest.id.clone(), manifest.version.to_string());

        let list = match self.rescan().await {
            Ok(list) => list,
            Err(e) => {
                staging.take_back(&target);
                return Err(e);
            }
        };
        let found = list
            .plugins
            .into_iter()
            .find(|p| p.id == id && p.version == version && same_place(&p.location, &target));
        let Some(view) = found else {
            let problems = not_loaded(&self.plugins(), &id, &target)
                .unwrap_or_else(|| "the scan did not list it".to_owned());
            staging.take_back(&target);
            if let Err(e) = self.rescan().await {
                tracing::warn!(error = %e, "The rescan after taking an added plugin back failed.");
            }
            return Err(Refusal::NotLoaded {
                id,
                version,
                problems,
            }
            .into());
        };

        let mut conn = self.pool.acquire().await?;
        let detail = json!({
            "version": version,
            "replaced": replaced,
            "location": view.location,
            "sha256": manifest.sha256,
        });
        store::audit(&mut conn, actor, ADD_PLUGIN, Some(&id), None, detail).await?;
        // What was replaced goes with the staging directory.
        let _ = tokio::task::spawn_blocking(move || drop(staging)).await;
        tracing::info!(plugin = %id, version = %version, replaced, actor = %actor, "Plugin added.");
        Ok(view)
    }
}
