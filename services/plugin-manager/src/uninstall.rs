//! Uninstalling an instance, keeping or purging what it brought in.

use std::time::Duration;

use serde_json::json;
use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::item::{ConnectorItem, ItemOperation};
use tributary_proto::model::EntityType;
use tributary_proto::requests::plugins::UninstallOutcome;

use crate::actor::Actor;
use crate::error::RegistryError;
use crate::manager::{findable, PluginManager};
use crate::store;

/// Publish acknowledgements awaited at once while sending purge items.
const ACK_WINDOW: usize = 1000;

/// How long an install under the id of a purged instance waits for the ETL to finish
/// forgetting what the purge sent, before it is refused: well within a client's request
/// timeout ([`tributary_kit::client::REQUEST_TIMEOUT`]), so the refusal reaches it.
const PURGE_APPLIED_WITHIN: Duration = Duration::from_secs(5);

impl PluginManager {
    /// Uninstalls an instance. Kept: it stays in the registry as `uninstalled`, with its
    /// configuration, credentials and data, and installing its plugin under its id again
    /// brings it back. Purged: a purge item for every source record it brought in goes to
    /// its item stream (the ETL deletes each entity the usual way, announcing `Deleted`, then
    /// forgets the record), then its registry row, configuration, credentials, sync state and
    /// outbound messages are deleted. The audit log keeps the record either way.
    ///
    /// Purging an id that has no instance but still has source records (a purge the ETL has
    /// not applied, or one made by an earlier version that kept them) sends the purge again.
    pub async fn uninstall(
        &self,
        instance_id: &str,
        purge: bool,
        actor: &Actor,
    ) -> Result<UninstallOutcome, RegistryError> {
        findable(instance_id)?;
        let mut tx = self.pool().begin().await?;
        let Some(mut row) = store::lock_instance(&mut tx, instance_id).await? else {
            drop(tx);
            return self.purge_leftovers(instance_id, purge, actor).await;
        };
        if row.state == InstanceState::Uninstalled && !purge {
            return Ok(UninstallOutcome {
                instance_id: instance_id.to_owned(),
                purged: false,
                items_deleted: 0,
            });
        }
        let items_deleted = if purge {
            self.send_purge(instance_id).await?
        } else {
            0
        };
        row.state = InstanceState::Uninstalled;
        if purge {
            store::delete_instance(&mut tx, instance_id).await?;
            store::delete_service_state(&mut tx, instance_id).await?;
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
        tracing::info!(instance = %instance_id, purge, items_deleted, actor = %actor, "Instance uninstalled.");
        Ok(UninstallOutcome {
            instance_id: instance_id.to_owned(),
            purged: purge,
            items_deleted,
        })
    }

    /// The purge of an id with no instance: sends the purge again for the source records
    /// still stored under it; `NotFound` when there are none (or `purge` is not asked).
    async fn purge_leftovers(
        &self,
        instance_id: &str,
        purge: bool,
        actor: &Actor,
    ) -> Result<UninstallOutcome, RegistryError> {
        if !purge || store::source_record_count(self.pool(), instance_id).await? == 0 {
            return Err(RegistryError::NothingToUninstall(instance_id.to_owned()));
        }
        let items_deleted = self.send_purge(instance_id).await?;
        let mut tx = self.pool().begin().await?;
        store::delete_service_state(&mut tx, instance_id).await?;
        store::audit(
            &mut tx,
            actor,
            "purge_leftovers",
            None,
            Some(instance_id),
            json!({ "items_deleted": items_deleted }),
        )
        .await?;
        self.commit(tx).await?;
        tracing::info!(instance = %instance_id, items_deleted, actor = %actor, "Purge sent again for what a purged instance left.");
        Ok(UninstallOutcome {
            instance_id: instance_id.to_owned(),
            purged: true,
            items_deleted,
        })
    }

    /// Publishes a purge item for every source record the instance brought in, tombstones
    /// too, awaiting JetStream's acknowledgement of each. Returns how many were live.
    async fn send_purge(&self, instance_id: &str) -> Result<u64, RegistryError> {
        let records = store::source_records_of(self.pool(), instance_id).await?;
        let subject = self.subjects().connector_items(instance_id);
        let now = chrono::Utc::now();
        // One purge is one run: a later purge of the same id sends its items again.
        let run = format!("purge-{}", uuid::Uuid::now_v7());
        let mut pending = Vec::with_capacity(ACK_WINDOW);
        let failed = |reason: String| RegistryError::PurgeNotPublished {
            instance_id: instance_id.to_owned(),
            subject: subject.clone(),
            reason,
        };
        let mut live = 0;
        for record in &records {
            let Ok(entity_type) = record.entity_type.parse::<EntityType>() else {
                continue;
            };
            if !record.deleted {
                live += 1;
            }
            let item = ConnectorItem {
                instance_id: instance_id.to_owned(),
                entity_type,
                external_id: record.external_id.clone(),
                operation: ItemOperation::Purge,
                source_modified_at: now,
                data: serde_json::Value::Null,
                raw: serde_json::Value::Null,
            };
            let body = serde_json::to_vec(&item).map_err(|e| failed(e.to_string()))?;
            let ack = self
                .jetstream()
                .publish_with_headers(subject.clone(), item.headers(&run), body.into())
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
        Ok(live)
    }

    /// Waits until the ETL has forgotten every source record stored under `instance_id`
    /// (what a purge of an earlier instance with this id sent), so that nothing of that
    /// instance can hide what a new one brings in; refuses when it has not within
    /// [`PURGE_APPLIED_WITHIN`].
    pub(crate) async fn wait_for_purge(&self, instance_id: &str) -> Result<(), RegistryError> {
        let deadline = tokio::time::Instant::now() + PURGE_APPLIED_WITHIN;
        loop {
            let left = store::source_record_count(self.pool(), instance_id).await?;
            if left == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RegistryError::PurgePending {
                    instance_id: instance_id.to_owned(),
                    left,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
