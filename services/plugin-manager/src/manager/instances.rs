//! Reading the registry: installed instances, one instance, its timeline, and the audit log.

use std::collections::BTreeMap;

use tributary_proto::requests::plugins::{
    AuditEntry, HeldUpgrade, InstanceFilter, InstanceView, SecretStatus,
};

use tributary_proto::timeline::{TimelinePage, TimelineQuery};

use crate::config_schema;
use crate::error::RegistryError;
use crate::store::{self, InstanceRow};
use crate::validate;

use super::{findable, not_found, PluginManager};

impl PluginManager {
    /// Installed instances.
    pub async fn instances(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<InstanceView>, RegistryError> {
        validate::instance_filter(filter)?;
        let rows = store::instances(
            &self.pool,
            filter.plugin_type.as_deref(),
            filter.state.as_deref(),
        )
        .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(&row).await?);
        }
        Ok(views)
    }

    /// One instance.
    pub async fn instance(&self, instance_id: &str) -> Result<InstanceView, RegistryError> {
        findable(instance_id)?;
        let row = store::instance(&self.pool, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        self.view(&row).await
    }

    /// A page of one instance's timeline (an uninstalled one's too, while its row is kept):
    /// its syncs, webhooks, sends and log lines with its audit entries, newest first.
    pub async fn timeline(
        &self,
        instance_id: &str,
        query: &TimelineQuery,
    ) -> Result<TimelinePage, RegistryError> {
        findable(instance_id)?;
        store::instance(&self.pool, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        crate::timeline::page(&self.pool, instance_id, query).await
    }

    /// The audit log, of one instance or all, newest `limit` entries (100 when absent; a
    /// limit outside [`validate::AUDIT_LIMITS`] is refused).
    pub async fn audit_log(
        &self,
        instance_id: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<AuditEntry>, RegistryError> {
        if let Some(id) = instance_id {
            validate::text("instance_id", id)?;
        }
        let limit = validate::audit_limit(limit)?;
        Ok(store::audit_log(&self.pool, instance_id, limit).await?)
    }

    async fn view(&self, row: &InstanceRow) -> Result<InstanceView, RegistryError> {
        let mut conn = self.pool.acquire().await?;
        let stored: Vec<String> = store::secrets_of(&mut conn, &row.id)
            .await?
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        let secrets: BTreeMap<String, SecretStatus> =
            config_schema::secret_fields(&row.manifest.config_schema)
                .into_iter()
                .map(|field| {
                    let status = if stored.contains(&field) {
                        SecretStatus::Set
                    } else {
                        SecretStatus::NotSet
                    };
                    (field, status)
                })
                .collect();
        let available_version = self
            .newest(&row.plugin_id)
            .map(|p| p.manifest.version)
            .filter(|v| *v > row.manifest.version)
            .map(|v| v.to_string());
        let auth = self.auth_view(&mut conn, row).await?;
        Ok(InstanceView {
            auth,
            id: row.id.clone(),
            plugin_id: row.plugin_id.clone(),
            plugin_type: row.manifest.plugin_type.as_str().to_owned(),
            version: row.manifest.version.to_string(),
            state: store::state_name(row.state).to_owned(),
            config: row.config.clone(),
            secrets,
            permissions: row.accepted.iter().map(ToString::to_string).collect(),
            available_version,
            held_upgrade: row
                .held
                .as_ref()
                .map(|(version, new_permissions)| HeldUpgrade {
                    version: version.clone(),
                    new_permissions: new_permissions.clone(),
                }),
            last_heartbeat: row.last_heartbeat,
            last_error: row.last_error.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
