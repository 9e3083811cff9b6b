//! What the service hands a plugin's context: an [`EventSink`] publishing on NATS and a
//! [`DataReader`] over the unified model in PostgreSQL. The context has checked the grants
//! (`event:publish`, `data:read`) before either is called.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgPool;
use tributary_plugin_sdk::{DataReader, EntityType, EventSink, PluginError, PluginEvent};
use tributary_proto::Subjects;
use uuid::Uuid;

/// Publishes a plugin's events on NATS, under the deployment's subject prefix.
#[derive(Debug, Clone)]
pub struct NatsEventSink {
    nats: async_nats::Client,
    subjects: Subjects,
}

impl NatsEventSink {
    /// A sink publishing through `nats`.
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self { nats, subjects }
    }
}

#[async_trait]
impl EventSink for NatsEventSink {
    async fn publish(&self, event: PluginEvent) -> Result<(), PluginError> {
        let payload = serde_json::to_vec(&event.payload)
            .map_err(|e| PluginError::Other(format!("cannot encode the event: {e}")))?;
        self.nats
            .publish(self.subjects.qualify(&event.subject), payload.into())
            .await
            .map_err(|e| {
                PluginError::Transient(format!("cannot publish on {}: {e}", event.subject))
            })
    }
}

/// Reads entities of the unified model, as the JSON of their row.
#[derive(Debug, Clone)]
pub struct PgDataReader {
    pool: PgPool,
}

impl PgDataReader {
    /// A reader over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl DataReader for PgDataReader {
    async fn get(&self, entity: EntityType, id: Uuid) -> Result<Option<Value>, PluginError> {
        // The table is one of six fixed names from the enum, never from input.
        let query = format!(
            "SELECT to_jsonb(t) FROM {} t WHERE id = $1 AND deleted_at IS NULL",
            entity.as_str()
        );
        sqlx::query_scalar::<_, Value>(&query)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| PluginError::Transient(format!("cannot read {entity} {id}: {e}")))
    }
}
