//! Moving an instance between states: enabling, disabling and upgrading it.

use serde_json::json;
use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::grants::Grants;
use tributary_proto::manifest::Permission;
use tributary_proto::requests::plugins::{AuthStatus, InstanceView};

use crate::actor::Actor;
use crate::error::RegistryError;
use crate::store::{self, InstanceRow};

use super::configure::problems_with;
use super::{parse_permissions, PluginManager};

impl PluginManager {
    /// Enables an instance: its service starts it. Its configuration must be complete.
    pub async fn enable(
        &self,
        instance_id: &str,
        actor: &Actor,
    ) -> Result<InstanceView, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        if matches!(
            row.state,
            InstanceState::Enabled | InstanceState::NeedsReconnect
        ) {
            return self.instance(instance_id).await;
        }
        let secrets = self.secrets_of(&mut tx, instance_id).await?;
        let problems = problems_with(&row.manifest.config_schema, &row.config, &secrets);
        if !problems.is_empty() {
            return Err(RegistryError::ConfigIncomplete {
                instance_id: instance_id.to_owned(),
                problems,
            });
        }
        row.state = match self.connection_status(&mut tx, &row).await? {
            Some(AuthStatus::NotConnected) => {
                return Err(RegistryError::NotConnected {
                    instance_id: instance_id.to_owned(),
                    provider: row
                        .manifest
                        .auth
                        .as_ref()
                        .map(|a| a.provider.clone())
                        .unwrap_or_default(),
                })
            }
            Some(AuthStatus::NeedsReconnect) => InstanceState::NeedsReconnect,
            _ => InstanceState::Enabled,
        };
        row.last_error = None;
        self.transition(&mut tx, &row, "enable", PluginEvent::Enabled, actor)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }

    /// Disables an instance: its service stops it.
    pub async fn disable(
        &self,
        instance_id: &str,
        actor: &Actor,
    ) -> Result<InstanceView, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        if row.state != InstanceState::Disabled {
            row.state = InstanceState::Disabled;
            self.transition(&mut tx, &row, "disable", PluginEvent::Disabled, actor)
                .await?;
            self.commit(tx).await?;
        }
        self.instance(instance_id).await
    }

    /// Saves a change of state, audits it as `action` and announces `event`.
    pub(super) async fn transition(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &InstanceRow,
        action: &str,
        event: PluginEvent,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        store::save_instance(tx, row).await?;
        store::audit(
            tx,
            actor,
            action,
            Some(&row.plugin_id),
            Some(&row.id),
            json!({ "state": store::state_name(row.state) }),
        )
        .await?;
        self.announce(tx, event, row, actor, row.last_error.clone())
            .await
    }

    /// Moves an instance to the newest discovered version. When that version asks for
    /// permissions not yet accepted, and `accept` does not accept them, the upgrade is held:
    /// the instance stays on its version and the refusal lists what to accept.
    pub async fn upgrade(
        &self,
        instance_id: &str,
        accept: &[String],
        actor: &Actor,
    ) -> Result<InstanceView, RegistryError> {
        let accept = parse_permissions(accept)?;
        let mut tx = self.pool.begin().await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        let newest = self
            .newest(&row.plugin_id)
            .map(|p| p.manifest)
            .filter(|m| m.version > row.manifest.version)
            .ok_or_else(|| RegistryError::UpToDate {
                instance_id: instance_id.to_owned(),
                plugin_id: row.plugin_id.clone(),
                version: row.manifest.version.to_string(),
            })?;
        let mut granted = row.accepted.clone();
        granted.extend(accept.iter().cloned());
        let missing: Vec<Permission> = Grants::new(granted)
            .not_covered(&newest.permissions)
            .into_iter()
            .cloned()
            .collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
            let newly_held =
                row.held.as_ref().map(|(v, _)| v.as_str()) != Some(&newest.version.to_string());
            row.held = Some((newest.version.to_string(), names.clone()));
            store::save_instance(&mut tx, &row).await?;
            if newly_held {
                store::audit(
                    &mut tx,
                    actor,
                    "upgrade_held",
                    Some(&row.plugin_id),
                    Some(instance_id),
                    json!({ "from": row.manifest.version.to_string(), "to": newest.version.to_string(), "new_permissions": names }),
                )
                .await?;
            }
            self.commit(tx).await?;
            return Err(RegistryError::UpgradeHeld {
                instance_id: instance_id.to_owned(),
                plugin_id: row.plugin_id,
                from: row.manifest.version.to_string(),
                to: newest.version.to_string(),
                missing,
            });
        }
        let secrets = self.secrets_of(&mut tx, instance_id).await?;
        let problems = problems_with(&newest.config_schema, &row.config, &secrets);
        if !problems.is_empty() && row.state == InstanceState::Enabled {
            return Err(RegistryError::ConfigUnfitForVersion {
                instance_id: instance_id.to_owned(),
                version: newest.version.to_string(),
                problems,
            });
        }
        let from = row.manifest.version.to_string();
        let newly_accepted: Vec<String> = Grants::new(row.accepted.clone())
            .not_covered(&newest.permissions)
            .into_iter()
            .map(ToString::to_string)
            .collect();
        row.accepted = newest.permissions.clone();
        row.manifest = newest;
        row.held = None;
        store::save_instance(&mut tx, &row).await?;
        if !newly_accepted.is_empty() {
            store::audit(
                &mut tx,
                actor,
                "accept_permissions",
                Some(&row.plugin_id),
                Some(instance_id),
                json!({ "permissions": newly_accepted }),
            )
            .await?;
        }
        store::audit(
            &mut tx,
            actor,
            "upgrade",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "from": from, "to": row.manifest.version.to_string() }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Upgraded, &row, actor, None)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }
}
