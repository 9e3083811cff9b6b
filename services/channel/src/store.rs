//! The `channel_outbound` table: each send, what the provider said, and the delivery
//! statuses it reported since; the `communication.*` events of a change are written to the
//! outbox in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tributary_kit::outbox::OutboxEvent;
use tributary_plugin_sdk::OutboundMessage;
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{CommunicationEvent, EventKind, MessageDelivery};
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use tributary_proto::{ServiceName, Subjects};
use uuid::Uuid;

use crate::api::{SendOutcome, FAILED, SENDING};
use crate::model::{stable_event_id, SentRecord};

/// One row of `channel_outbound`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboundRow {
    /// Tributary's id.
    pub id: Uuid,
    /// The instance that sent it.
    pub instance_id: String,
    /// The channel's route name.
    pub channel: String,
    /// The [`OutboundMessage`], as JSON.
    pub request: serde_json::Value,
    /// `sending`, `failed` or the provider's status word.
    pub status: String,
    /// The provider's id.
    pub provider_message_id: Option<String>,
    /// The sender the provider showed.
    pub sender: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When the provider took it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When its status was last reported.
    pub status_at: Option<DateTime<Utc>>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl OutboundRow {
    /// The answer `channel.send` gives for this row.
    pub fn outcome(&self, repeated: bool) -> SendOutcome {
        SendOutcome {
            message_id: self.id,
            instance_id: self.instance_id.clone(),
            status: self.status.clone(),
            provider_message_id: self.provider_message_id.clone(),
            error: self.error.clone(),
            repeated,
        }
    }

    /// The sent message as the model keeps it, when the provider took it.
    pub fn sent_record(&self) -> Option<SentRecord> {
        let message: OutboundMessage = serde_json::from_value(self.request.clone()).ok()?;
        let sent_at = self.sent_at?;
        Some(SentRecord {
            message,
            provider_message_id: self.provider_message_id.clone()?,
            sender: self.sender.clone(),
            status: self.status.clone(),
            error: self.error.clone(),
            sent_at,
            status_at: self.status_at.unwrap_or(sent_at),
        })
    }
}

/// What claiming a send found.
#[derive(Debug)]
pub enum Claim {
    /// The send is new (or an earlier attempt failed or was cut off): go ahead.
    Send,
    /// The message was sent already, or is being sent now: this is its row.
    Done(Box<OutboundRow>),
}

/// What a reported delivery status changed.
#[derive(Debug)]
pub enum StatusChange {
    /// The message's status is now the reported one: its row after the change.
    Applied(Box<OutboundRow>),
    /// The message has that status already, or a newer one.
    Unchanged,
    /// No message of the instance has that provider id (yet: the report may have overtaken
    /// the record of the send).
    UnknownMessage,
}

const COLUMNS: &str = "id, instance_id, channel, request, status, provider_message_id, sender, error, sent_at, status_at, updated_at";

/// The outbound table and the events of its changes.
#[derive(Debug, Clone)]
pub struct OutboundStore {
    pool: PgPool,
    subjects: Subjects,
    wake_outbox: std::sync::Arc<tokio::sync::Notify>,
}

impl OutboundStore {
    /// A store over `pool`, waking the outbox publisher after each commit with events.
    pub fn new(
        pool: PgPool,
        subjects: Subjects,
        wake_outbox: std::sync::Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            pool,
            subjects,
            wake_outbox,
        }
    }

    /// The pool it writes to, for the inbound side's table ([`crate::received`]).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records that `message` is about to be sent through `instance_id`. A message with the
    /// same id that was sent, or is being sent and was touched within `in_progress_for`, is
    /// [`Claim::Done`]; one that failed or was cut off longer ago is sent again.
    pub async fn claim(
        &self,
        instance_id: &str,
        channel: &str,
        message: &OutboundMessage,
        in_progress_for: std::time::Duration,
    ) -> Result<Claim, sqlx::Error> {
        let request =
            serde_json::to_value(message).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO channel_outbound (id, instance_id, channel, request, attempts) VALUES ($1, $2, $3, $4, 1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(message.id)
        .bind(instance_id)
        .bind(channel)
        .bind(&request)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            tx.commit().await?;
            return Ok(Claim::Send);
        }
        let row: OutboundRow = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM channel_outbound WHERE id = $1 FOR UPDATE"
        ))
        .bind(message.id)
        .fetch_one(&mut *tx)
        .await?;
        let stale = chrono::Duration::from_std(in_progress_for).unwrap_or_default();
        let retry = row.instance_id == instance_id
            && (row.status == FAILED
                || (row.status == SENDING && row.updated_at < Utc::now() - stale));
        if !retry {
            return Ok(Claim::Done(Box::new(row)));
        }
        sqlx::query(
            "UPDATE channel_outbound SET status = 'sending', request = $2, error = NULL, attempts = attempts + 1, updated_at = now() WHERE id = $1",
        )
        .bind(message.id)
        .bind(&request)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Claim::Send)
    }

    /// Records that the provider took the message, and announces `communication.MessageSent`.
    pub async fn sent(&self, record: &SentRecord) -> Result<OutboundRow, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: OutboundRow = sqlx::query_as(&format!(
            "UPDATE channel_outbound SET status = $2, provider_message_id = $3, sender = $4, sent_at = $5, status_at = $5, error = NULL, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(record.message.id)
        .bind(&record.status)
        .bind(&record.provider_message_id)
        .bind(&record.sender)
        .bind(record.sent_at)
        .fetch_one(&mut *tx)
        .await?;
        self.announce(
            tx,
            CommunicationEvent::MessageSent,
            &row,
            &record.message,
            None,
        )
        .await?;
        Ok(row)
    }

    /// Records that sending failed with `error`, and announces `communication.DeliveryFailed`.
    pub async fn failed(
        &self,
        message: &OutboundMessage,
        error: &str,
    ) -> Result<OutboundRow, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: OutboundRow = sqlx::query_as(&format!(
            "UPDATE channel_outbound SET status = 'failed', error = $2, status_at = now(), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(message.id)
        .bind(error)
        .fetch_one(&mut *tx)
        .await?;
        self.announce(tx, CommunicationEvent::DeliveryFailed, &row, message, None)
            .await?;
        Ok(row)
    }

    /// Records a delivery status the provider reported for the message it knows as
    /// `provider_message_id`, and announces `communication.DeliveryStatusChanged`. Handling
    /// the same report twice changes nothing the second time.
    pub async fn status_reported(
        &self,
        instance_id: &str,
        provider_message_id: &str,
        status: &str,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<StatusChange, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<OutboundRow> = sqlx::query_as(&format!(
            "UPDATE channel_outbound SET status = $3, error = $4, status_at = $5, updated_at = now() \
             WHERE instance_id = $1 AND provider_message_id = $2 \
               AND (status_at IS NULL OR status_at <= $5) \
               AND (status IS DISTINCT FROM $3 OR error IS DISTINCT FROM $4) \
             RETURNING {COLUMNS}"
        ))
        .bind(instance_id)
        .bind(provider_message_id)
        .bind(status)
        .bind(error)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let known: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM channel_outbound WHERE instance_id = $1 AND provider_message_id = $2",
            )
            .bind(instance_id)
            .bind(provider_message_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(match known {
                Some(_) => StatusChange::Unchanged,
                None => StatusChange::UnknownMessage,
            });
        };
        let message: OutboundMessage = serde_json::from_value(row.request.clone())
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let id = stable_event_id(at, &[instance_id, provider_message_id, status]);
        self.announce(
            tx,
            CommunicationEvent::DeliveryStatusChanged,
            &row,
            &message,
            Some(id),
        )
        .await?;
        Ok(StatusChange::Applied(Box::new(row)))
    }

    /// Writes the `communication.<event>` of `row` (of `message`) to the outbox, commits `tx`
    /// and wakes the outbox publisher; `id` fixes the event's id where a repeat must be
    /// recognised.
    async fn announce(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        event: CommunicationEvent,
        row: &OutboundRow,
        message: &OutboundMessage,
        id: Option<Uuid>,
    ) -> Result<(), sqlx::Error> {
        let delivery = MessageDelivery {
            channel: row.channel.clone(),
            instance_id: row.instance_id.clone(),
            message_id: row.id,
            provider_message_id: row.provider_message_id.clone(),
            to: message
                .recipients
                .iter()
                .map(|p| p.address.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            status: row.status.clone(),
            error: row.error.clone(),
        };
        let kind = EventKind::Communication(event);
        let mut envelope = Envelope::new(
            kind,
            EventSource::new("channel", Some(row.instance_id.clone())),
            Some(row.id),
            delivery,
        );
        if let Some(id) = id {
            envelope.id = id;
        }
        let line = send_line(event, &envelope.data);
        let line =
            tributary_kit::timeline::outbox_event(&self.subjects, ServiceName::Channel, &line)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let event = OutboxEvent::new(self.subjects.event(kind), &envelope, None)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        tributary_kit::outbox::enqueue_all(&mut tx, ServiceName::Channel, &[event, line]).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(())
    }
}

/// The timeline line of a send's `event`: to whom, with which status or error.
fn send_line(event: CommunicationEvent, delivery: &MessageDelivery) -> TimelineEntry {
    let error = delivery.error.as_deref().unwrap_or("no reason given");
    let (status, summary) = match event {
        CommunicationEvent::DeliveryFailed => (
            TimelineStatus::Error,
            format!("not sent to {}: {error}", delivery.to),
        ),
        _ if delivery.error.is_some() || delivery.status == "failed" => (
            TimelineStatus::Error,
            format!("{} for {}: {error}", delivery.status, delivery.to),
        ),
        CommunicationEvent::MessageSent => (
            TimelineStatus::Ok,
            format!("sent to {}: {}", delivery.to, delivery.status),
        ),
        _ => (
            TimelineStatus::Ok,
            format!("{} for {}", delivery.status, delivery.to),
        ),
    };
    let mut line = TimelineEntry::now(&delivery.instance_id, TimelineKind::Send, status, summary)
        .with("message_id", delivery.message_id.to_string())
        .with("delivery_status", delivery.status.as_str())
        .with("event", EventKind::Communication(event).subject());
    if let Some(id) = &delivery.provider_message_id {
        line = line.with("provider_message_id", id.as_str());
    }
    if let Some(e) = &delivery.error {
        line = line.with("error", e.as_str());
    }
    line
}
