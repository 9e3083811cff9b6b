//! The `channel_inbound_message` table: each inbound message an instance has announced, by
//! the provider's own id, so that a delivery of it after JetStream's duplicate window (a
//! provider's late retry, a replayed signed request) is recognised and announced never again.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// What the first receipt of a message recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The envelope id of its `communication.MessageReceived` (and the base of its items'
    /// message ids): the same for every delivery of the message.
    pub event_id: Uuid,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// Whether its event and items were published already.
    pub announced: bool,
}

/// The inbound messages of every instance, by provider message id.
#[derive(Debug, Clone)]
pub struct ReceivedMessages {
    pool: PgPool,
}

impl ReceivedMessages {
    /// The table in `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Records that `instance_id` received the message the provider calls
    /// `provider_message_id`, with `event_id` and `received_at` if it is the first receipt;
    /// answers the first receipt's.
    pub async fn receive(
        &self,
        instance_id: &str,
        provider_message_id: &str,
        event_id: Uuid,
        received_at: DateTime<Utc>,
    ) -> Result<Receipt, sqlx::Error> {
        // The no-op update makes RETURNING answer the existing row as well as a new one.
        let (event_id, received_at, announced): (Uuid, DateTime<Utc>, bool) = sqlx::query_as(
            "INSERT INTO channel_inbound_message (instance_id, provider_message_id, event_id, received_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (instance_id, provider_message_id) \
             DO UPDATE SET instance_id = channel_inbound_message.instance_id \
             RETURNING event_id, received_at, announced_at IS NOT NULL",
        )
        .bind(instance_id)
        .bind(provider_message_id)
        .bind(event_id)
        .bind(received_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(Receipt {
            event_id,
            received_at,
            announced,
        })
    }

    /// Records that the message's event and items were published.
    pub async fn announced(
        &self,
        instance_id: &str,
        provider_message_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE channel_inbound_message SET announced_at = now() \
             WHERE instance_id = $1 AND provider_message_id = $2 AND announced_at IS NULL",
        )
        .bind(instance_id)
        .bind(provider_message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
