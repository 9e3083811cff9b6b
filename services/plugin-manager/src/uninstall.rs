//! Uninstalling an instance, keeping or purging what it brought in.

use serde_json::json;
use tributary_proto::envelope::MSG_ID_HEADER;
use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::item::{ConnectorItem, ItemOperation};
use tributary_proto::model::EntityType;

use crate::api::{ApiError, ErrorCode, UninstallOutcome};
use crate::manager::PluginManager;
use crate::store;

/// Publish acknowledgements awaited at once while sending tombstones.
const ACK_WINDOW: usize = 1000;

impl PluginManager {
    /// Uninstalls an instance. Kept: it stays in the registry as `uninstalled`, with its
    /// configuration, credentials and data. Purged: a tombstone for every item it brought in
    /// goes to its item stream (the ETL deletes each entity the usual way, announcing
    /// `Deleted`), then its registry row, configuration and credentials are deleted. The audit
    /// log keeps the record either way.
    pub async fn uninstall(
        &self,
        instance_id: &str,
        purge: bool,
        actor: &str,
    ) -> Result<UninstallOutcome, ApiError> {
        let mut tx = self.pool().begin().await?;
        let mut row = store::lock_instance(&mut tx, instance_id)
            .await?
            .ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("no instance `{instance_id}`"))
            })?;
        if row.state == InstanceState::Uninstalled && !purge {
            return Ok(UninstallOutcome {
                instance_id: instance_id.to_owned(),
                purged: false,
                items_deleted: 0,
            });
        }
        let items_deleted = if purge {
            self.send_tombstones(instance_id).await?
        } else {
            0
        };
        row.state = InstanceState::Uninstalled;
        if purge {
            store::delete_instance(&mut tx, instance_id).await?;
        } else {
            store::save_instance(&mut tx, &row).await?;
        }
        store::audit(
            &mut tx,
            actor,
            if purge {
                "uninstall_purge"
            } else {
                "uninstall"
            },
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "items_deleted": items_deleted }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Uninstalled, &row, actor, None)
            .await?;
        self.commit(tx).await?;
        tracing::info!(instance = %instance_id, purge, items_deleted, actor, "Instance uninstalled.");
        Ok(UninstallOutcome {
            instance_id: instance_id.to_owned(),
            purged: purge,
            items_deleted,
        })
    }

    /// Publishes a tombstone for every live item the instance brought in, awaiting JetStream's
    /// acknowledgement of each. Returns how many.
    async fn send_tombstones(&self, instance_id: &str) -> Result<u64, ApiError> {
        let records = store::source_records_of(self.pool(), instance_id).await?;
        let subject = self.subjects().connector_items(instance_id);
        let now = chrono::Utc::now();
        let mut pending = Vec::with_capacity(ACK_WINDOW);
        let failed = |e: String| {
            ApiError::new(
                ErrorCode::Internal,
                format!("cannot publish the purge of `{instance_id}` to `{subject}`: {e}; nothing was uninstalled"),
            )
        };
        for (entity_type, external_id) in &records {
            let Ok(entity_type) = entity_type.parse::<EntityType>() else {
                continue;
            };
            let item = ConnectorItem {
                instance_id: instance_id.to_owned(),
                entity_type,
                external_id: external_id.clone(),
                operation: ItemOperation::Delete,
                source_modified_at: now,
                data: serde_json::Value::Null,
                raw: serde_json::Value::Null,
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(MSG_ID_HEADER, item.message_id().as_str());
            let body = serde_json::to_vec(&item).map_err(|e| failed(e.to_string()))?;
            let ack = self
                .jetstream()
                .publish_with_headers(subject.clone(), headers, body.into())
                .await
                .map_err(|e| failed(e.to_string()))?;
            pending.push(ack);
            if pending.len() == ACK_WINDOW {
                for ack in pending.drain(..) {
                    ack.await.map_err(|e| failed(e.to_string()))?;
                }
            }
        }
        for ack in pending {
            ack.await.map_err(|e| failed(e.to_string()))?;
        }
        Ok(records.len() as u64)
    }
}
