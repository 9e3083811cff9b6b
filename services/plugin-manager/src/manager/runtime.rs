//! What the services running instances report and read: heartbeats and runtime config.

use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::manifest::{PluginManifest, PluginType};
use tributary_proto::requests::plugins::{ComponentSource, InstanceView, RuntimeInstance};

use crate::actor::Actor;
use crate::config_schema;
use crate::error::RegistryError;
use crate::store;

use super::{findable, not_found, of_plugin_type, PluginManager};

impl PluginManager {
    /// Records a report of the service running `reporter` plugins on an instance it runs:
    /// alive, or failed with an error (which moves it to `failed` and announces `PluginFailed`
    /// once). The actor is that service's NATS user (`nats:connector`), the only one that may
    /// publish `plugins.heartbeat.<reporter>`.
    ///
    /// A report about an instance of another plugin type is refused
    /// ([`RegistryError::OtherPluginType`]) and changes nothing: the connector service may not
    /// mark a channel instance failed, recover it or keep it looking alive, nor the reverse.
    /// The refusal is logged and audited (`heartbeat_refused`), as it means a service reports
    /// what it does not run.
    pub async fn heartbeat(
        &self,
        reporter: PluginType,
        instance_id: &str,
        error: Option<String>,
    ) -> Result<InstanceView, RegistryError> {
        let actor = Actor::nats_service(reporter);
        let actor = &actor;
        let mut tx = self.pool.begin().await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        if let Err(refused) = of_plugin_type(&row, reporter, "heartbeat") {
            drop(tx);
            self.refuse_heartbeat(actor, &row, reporter, error.is_some())
                .await?;
            return Err(refused);
        }
        row.last_heartbeat = Some(chrono::Utc::now());
        // A service's report is kept even when its error holds a NUL (from a provider's
        // answer, say), which PostgreSQL cannot store.
        let error = error.map(|e| e.replace('\0', "\u{FFFD}"));
        match error {
            // Waiting for a person to connect it again: neither a failure nor a recovery
            // changes that; only a connect does.
            error if row.state == InstanceState::NeedsReconnect => {
                if error.is_some() {
                    row.last_error = error;
                }
                store::save_instance(&mut tx, &row).await?;
            }
            Some(error) if row.state != InstanceState::Failed => {
                row.state = InstanceState::Failed;
                row.last_error = Some(error);
                self.transition(&mut tx, &row, "fail", PluginEvent::Failed, actor)
                    .await?;
            }
            Some(error) => {
                row.last_error = Some(error);
                store::save_instance(&mut tx, &row).await?;
            }
            // A failed instance that works again (its next sync succeeded) recovers.
            None if row.state == InstanceState::Failed => {
                row.state = InstanceState::Enabled;
                row.last_error = None;
                self.transition(&mut tx, &row, "recover", PluginEvent::Enabled, actor)
                    .await?;
            }
            None => store::save_instance(&mut tx, &row).await?,
        }
        self.commit(tx).await?;
        self.instance(instance_id).await
    }

    /// Audits and logs a report of the service running `reporter` plugins about `row`, an
    /// instance of another type.
    async fn refuse_heartbeat(
        &self,
        actor: &Actor,
        row: &store::InstanceRow,
        reporter: PluginType,
        failed: bool,
    ) -> Result<(), RegistryError> {
        let plugin_type = row.manifest.plugin_type.as_str();
        tracing::warn!(
            instance = %row.id,
            plugin_type,
            reporter = reporter.as_str(),
            failed,
            "Refused a heartbeat about an instance of another plugin type; its state is unchanged."
        );
        let mut conn = self.pool.acquire().await?;
        store::audit(
            &mut conn,
            actor,
            "heartbeat_refused",
            Some(&row.plugin_id),
            Some(&row.id),
            serde_json::json!({
                "reporter": reporter.as_str(),
                "plugin_type": plugin_type,
                "reported": if failed { "failed" } else { "alive" },
            }),
        )
        .await?;
        Ok(())
    }

    /// What the service running an instance needs, secrets included, for the service running
    /// plugins of type `asked`: an instance of another type is refused before its secrets are
    /// read ([`RegistryError::OtherPluginType`]).
    pub async fn runtime(
        &self,
        asked: PluginType,
        instance_id: &str,
    ) -> Result<RuntimeInstance, RegistryError> {
        findable(instance_id)?;
        let row = store::instance(&self.pool, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        of_plugin_type(&row, asked, "runtime")?;
        let mut conn = self.pool.acquire().await?;
        let secrets = self.secrets_of(&mut conn, instance_id).await?;
        let mut config = row.config.clone();
        config_schema::put_secrets(&mut config, &secrets);
        let component = self.component_of(&row.manifest);
        Ok(RuntimeInstance {
            secret_fields: config_schema::top_level_secret_fields(&row.manifest.config_schema),
            component,
            limits: row.manifest.limits,
            oauth: row.manifest.auth.is_some(),
            instance_id: row.id,
            plugin_id: row.plugin_id,
            plugin_type: row.manifest.plugin_type,
            version: row.manifest.version.to_string(),
            entrypoint: row.manifest.entrypoint,
            permissions: row.accepted,
            config,
            state: row.state,
        })
    }
}

impl PluginManager {
    /// Where the component of a `wasm:` plugin, or the spec of a `declarative:` one, is: inside
    /// the directory the catalog found the
    /// instance's version in, so an instance keeps running the version it was installed or
    /// upgraded to while newer ones sit beside it (the newest when its own is gone). The
    /// service checks its content against the manifest's SHA-256 before running it.
    fn component_of(&self, manifest: &PluginManifest) -> Option<ComponentSource> {
        let relative = manifest
            .entrypoint
            .strip_prefix("wasm:")
            .or_else(|| tributary_declarative::spec_file(&manifest.entrypoint))?;
        let sha256 = manifest.sha256.clone()?;
        let location = self.with_catalog(|catalog| {
            catalog
                .version(&manifest.id, &manifest.version)
                .or_else(|| catalog.newest(&manifest.id))
                .map(|p| p.location.clone())
        })?;
        // Absolute, as the contract says: the services reading it may run elsewhere in the
        // tree than this process (`data_dir` and plugin directories are relative by default).
        let path = std::path::Path::new(&location).join(relative);
        let path = std::path::absolute(&path).unwrap_or(path);
        Some(ComponentSource {
            path: path.display().to_string(),
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config_schema;

    #[test]
    fn secret_fields_are_named_by_their_top_level_field() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "signingSecret": {"type": "string", "writeOnly": true},
                "apiBase": {"type": "string"},
                "auth": {"type": "object", "properties": {
                    "user": {"type": "string"},
                    "password": {"type": "string", "writeOnly": true},
                    "token": {"type": "string", "writeOnly": true}
                }}
            }
        });
        assert_eq!(
            config_schema::top_level_secret_fields(&schema),
            ["auth", "signingSecret"]
        );
    }
}
