//! The connector item: one thing a connector found, on its way to the ETL.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::EntityType;

/// Whether the item carries content or says the thing is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemOperation {
    /// Create or update the entity from `data`.
    #[default]
    Upsert,
    /// The source deleted it: a tombstone. `data` is ignored.
    Delete,
    /// The instance was uninstalled with `--purge`: the entity is deleted as by a tombstone,
    /// then the source record itself (its version, content and raw payload) is forgotten, so
    /// that nothing of it can hide what a later instance under the same id brings in. Sent
    /// only by the plugin manager; a plugin that yields one is refused.
    Purge,
}

/// One item a connector yields, published on `connector.items.<instance>`.
///
/// `(instance_id, entity_type, external_id)` is the source key that makes every upsert
/// idempotent; `source_modified_at` orders versions so a late older one never wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectorItem {
    /// The connector instance that produced it.
    pub instance_id: String,
    /// Which entity of the unified model it becomes.
    pub entity_type: EntityType,
    /// The source's own id for it.
    pub external_id: String,
    /// Upsert or tombstone.
    #[serde(default)]
    pub operation: ItemOperation,
    /// The source's version: its modification time, or the time the connector saw it.
    pub source_modified_at: DateTime<Utc>,
    /// The entity's fields (`PersonFields`, `DocumentFields`, …) as the connector mapped them.
    #[serde(default)]
    pub data: serde_json::Value,
    /// The payload exactly as the source returned it, kept for re-processing.
    #[serde(default)]
    pub raw: serde_json::Value,
}

impl ConnectorItem {
    /// The NATS headers to publish this item with as part of `run`: `Nats-Msg-Id`
    /// ([`Self::message_id`]) and the current span's `traceparent`, so one trace follows the
    /// item into the ETL.
    pub fn headers(&self, run: &str) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            crate::envelope::MSG_ID_HEADER,
            self.message_id(run).as_str(),
        );
        crate::trace_context::inject_current(&mut headers);
        headers
    }

    /// The value of the `Nats-Msg-Id` header for this item, published as part of `run`: the
    /// sync, inbound webhook or purge that sends it.
    ///
    /// The same version of the same source thing published twice within one run (a publish
    /// retried after a lost acknowledgement, a webhook handled again after a crash) is dropped
    /// by JetStream's duplicate window. Another run sending it again is not: after a purge, a
    /// reinstalled instance's first sync sends its unchanged items once more and the ETL must
    /// see them (its own version check makes an unneeded repeat harmless).
    pub fn message_id(&self, run: &str) -> String {
        format!(
            "{run}:{}:{}:{}:{}:{:?}",
            self.instance_id,
            self.entity_type,
            self.external_id,
            self.source_modified_at.timestamp_micros(),
            self.operation
        )
    }
}
