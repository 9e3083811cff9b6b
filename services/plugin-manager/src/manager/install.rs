//! Installing an instance, or installing again one uninstalled with what it kept.

use serde_json::{json, Value};
use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::grants::Grants;
use tributary_proto::manifest::PluginManifest;
use tributary_proto::requests::plugins::{InstallRequest, InstanceView};

use crate::actor::Actor;
use crate::error::RegistryError;
use crate::store::{self, InstanceRow};

use super::configure::prepare_config;
use super::{not_found, parse_permissions, PluginManager};

impl PluginManager {
    /// Installs an instance. Every permission the plugin asks for must be accepted.
    pub async fn install(
        &self,
        request: InstallRequest,
        actor: &Actor,
    ) -> Result<InstanceView, RegistryError> {
        let plugin = self
            .newest(&request.plugin_id)
            .ok_or_else(|| RegistryError::UnknownPlugin(request.plugin_id.clone()))?;
        let manifest = plugin.manifest;
        let instance_id = match request.instance_id {
            Some(id) => check_instance_id(&id)?,
            None => new_instance_id(&manifest.id),
        };
        let accepted = parse_permissions(&request.accept_permissions)?;
        let missing = Grants::new(accepted).not_covered(&manifest.permissions);
        if !missing.is_empty() {
            return Err(RegistryError::PermissionsNotAccepted {
                plugin_id: manifest.id.clone(),
                missing: missing.into_iter().cloned().collect(),
                asked: manifest.permissions.clone(),
            });
        }
        if let Some(kept) = store::instance(&self.pool, &instance_id).await? {
            return self.reinstall(kept, manifest, request.config, actor).await;
        }
        // A purge of an earlier instance under this id must be applied first, or what it
        // left could hide this one's items.
        self.wait_for_purge(&instance_id).await?;
        let (config, changes) = match request.config {
            Some(config) => prepare_config(&manifest, config, Vec::new())?,
            None => (json!({}), Vec::new()),
        };
        let row = InstanceRow {
            id: instance_id.clone(),
            plugin_id: manifest.id.clone(),
            accepted: manifest.permissions.clone(),
            manifest,
            config,
            state: InstanceState::Installed,
            held: None,
            last_heartbeat: None,
            last_error: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let mut tx = self.pool.begin().await?;
        if !store::insert_instance(&mut tx, &row).await? {
            return Err(RegistryError::AlreadyExists(instance_id));
        }
        self.apply_secret_changes(&mut tx, &instance_id, &changes)
            .await?;
        let detail = json!({ "version": row.manifest.version.to_string() });
        self.record_install(tx, &row, "install", detail, actor)
            .await?;
        tracing::info!(instance = %instance_id, plugin = %row.plugin_id, actor = %actor, "Instance installed.");
        self.instance(&instance_id).await
    }

    /// Installs again an instance that was uninstalled with what it had kept: its
    /// configuration (replaced by `config` when given; secrets left out keep their value),
    /// credentials, sync state and data, on the plugin's newest version, with its permissions
    /// accepted again (checked by the caller). It comes back installed, not enabled.
    async fn reinstall(
        &self,
        kept: InstanceRow,
        manifest: PluginManifest,
        config: Option<Value>,
        actor: &Actor,
    ) -> Result<InstanceView, RegistryError> {
        let instance_id = kept.id.clone();
        if kept.state != InstanceState::Uninstalled {
            return Err(RegistryError::AlreadyExists(instance_id));
        }
        if kept.plugin_id != manifest.id {
            return Err(RegistryError::KeptForAnotherPlugin {
                instance_id,
                plugin_id: kept.plugin_id,
            });
        }
        let mut tx = self.pool.begin().await?;
        let mut row = store::lock_instance(&mut tx, &instance_id)
            .await?
            .ok_or_else(|| not_found(&instance_id))?;
        if row.state != InstanceState::Uninstalled {
            return Err(RegistryError::AlreadyExists(instance_id));
        }
        let stored = self.secrets_of(&mut tx, &instance_id).await?;
        let (public, changes) = prepare_config(
            &manifest,
            config.unwrap_or_else(|| row.config.clone()),
            stored,
        )?;
        let from_version = row.manifest.version.to_string();
        row.config = public;
        row.accepted = manifest.permissions.clone();
        row.manifest = manifest;
        row.state = InstanceState::Installed;
        row.held = None;
        row.last_error = None;
        store::save_instance(&mut tx, &row).await?;
        self.apply_secret_changes(&mut tx, &instance_id, &changes)
            .await?;
        let detail =
            json!({ "from_version": from_version, "version": row.manifest.version.to_string() });
        self.record_install(tx, &row, "reinstall", detail, actor)
            .await?;
        tracing::info!(instance = %instance_id, plugin = %row.plugin_id, actor = %actor, "Instance reinstalled with what it had kept.");
        self.instance(&instance_id).await
    }

    /// Audits an install (`action`, with `detail`) and the permissions it accepted, announces
    /// `plugins.PluginInstalled`, and commits `tx`.
    async fn record_install(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        action: &str,
        detail: Value,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let permissions: Vec<String> = row.accepted.iter().map(ToString::to_string).collect();
        store::audit(
            &mut tx,
            actor,
            action,
            Some(&row.plugin_id),
            Some(&row.id),
            detail,
        )
        .await?;
        store::audit(
            &mut tx,
            actor,
            "accept_permissions",
            Some(&row.plugin_id),
            Some(&row.id),
            json!({ "permissions": permissions }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Installed, row, actor, None)
            .await?;
        self.commit(tx).await
    }
}

/// An instance id is one NATS token: 1 to 64 letters, digits, `-` or `_`.
fn check_instance_id(id: &str) -> Result<String, RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id.to_owned())
    } else {
        Err(RegistryError::InvalidInstanceId(id.to_owned()))
    }
}

/// `<last label of the plugin id>-<8 hex digits>`.
fn new_instance_id(plugin_id: &str) -> String {
    let label = plugin_id.rsplit('.').next().unwrap_or("instance");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{label}-{}", &suffix[..8])
}
