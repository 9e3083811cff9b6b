//! The outbox publisher: drains events committed with their rows to JetStream, in order, and
//! deletes them once JetStream has acknowledged them.
//!
//! A transaction writes its events as one outbox row ([`enqueue_all`]), however many there
//! are: the ETL's batches of a thousand items cost one insert, one read and one delete.
//!
//! The services share one outbox table, and each service's publisher drains only the events
//! that service emits ([`EventKind::emitter`]): in a deployment its NATS user may publish
//! those and no others (deploy/nats-server.conf), and one service stopped never holds up
//! another's events.
//!
//! A crash after publishing and before the delete publishes again on restart; the event id is
//! the `Nats-Msg-Id`, so JetStream drops the repeat.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use serde_json::value::RawValue;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_proto::envelope::{EVENT_TYPE_HEADER, MSG_ID_HEADER};
use tributary_proto::events::EventKind;
use tributary_proto::trace_context::TRACEPARENT_HEADER;
use tributary_proto::{ServiceName, Subjects};
use uuid::Uuid;

use crate::backoff::Backoff;

/// How often the outbox is checked when nothing wakes the publisher (rows written by another
/// ETL process, or left by a crash).
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Why a round of publishing failed. Nothing of the round is deleted from the outbox.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The outbox could not be read or cleared.
    #[error("outbox: {0}")]
    Database(#[from] sqlx::Error),
    /// An outbox row does not hold a JSON array of events. Only a hand-edited row can: it
    /// stays in the outbox, and holds back the events after it, until it is mended.
    #[error("outbox row {seq} is not a batch of events: {reason}")]
    Malformed {
        /// The row.
        seq: i64,
        /// Why it could not be read.
        reason: String,
    },
    /// JetStream did not take an event.
    #[error("cannot publish event {event_id} to `{subject}`: {reason}")]
    Nats {
        /// The event.
        event_id: Uuid,
        /// Its subject.
        subject: String,
        /// Why.
        reason: String,
    },
}

/// One event as the outbox keeps it: what is published, under which subject and id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OutboxEvent {
    /// The event's id, sent as `Nats-Msg-Id` so JetStream drops a repeat.
    pub event_id: Uuid,
    /// The full (prefixed) subject.
    pub subject: String,
    /// The envelope, as the JSON it is published as.
    pub payload: Box<RawValue>,
    /// The W3C `traceparent` of the work that caused it.
    pub traceparent: Option<String>,
}

impl OutboxEvent {
    /// The outbox form of `envelope`, published on `subject` (the full, prefixed subject).
    pub fn new<T: serde::Serialize>(
        subject: String,
        envelope: &tributary_proto::envelope::Envelope<T>,
        traceparent: Option<String>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            event_id: envelope.id,
            subject,
            payload: serde_json::value::to_raw_value(envelope)?,
            traceparent,
        })
    }
}

/// Writes one event of `kind` to the outbox inside the caller's transaction, so it is
/// published if and only if the transaction commits: on `kind`'s subject under `subjects`, by
/// the publisher of the service that emits `kind`.
pub async fn enqueue<T: serde::Serialize>(
    tx: &mut sqlx::PgConnection,
    subjects: &Subjects,
    kind: EventKind,
    envelope: &tributary_proto::envelope::Envelope<T>,
    traceparent: Option<&str>,
) -> Result<(), sqlx::Error> {
    let event = OutboxEvent::new(
        subjects.event(kind),
        envelope,
        traceparent.map(str::to_owned),
    )
    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    enqueue_all(tx, kind.emitter(), &[event]).await
}

/// Writes `events`, all emitted by `emitter`, to the outbox as one row inside the caller's
/// transaction: a batch of any size costs one insert, and its events are published in order.
pub async fn enqueue_all(
    tx: &mut sqlx::PgConnection,
    emitter: ServiceName,
    events: &[OutboxEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let encoded = serde_json::to_vec(events).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("INSERT INTO outbox (emitter, event_count, events) VALUES ($1, $2, $3)")
        .bind(emitter.as_str())
        .bind(events.len() as i32)
        .bind(encoded)
        .execute(tx)
        .await?;
    Ok(())
}

/// Runs an outbox publisher as a worker of `runtime` with the usual backoff (100 ms up to
/// 10 s) and `batch_size` events per round; answers the [`Notify`] a service wakes it with
/// after each commit that enqueued events.
pub fn spawn_publisher(
    runtime: &crate::ServiceRuntime,
    pool: PgPool,
    batch_size: usize,
) -> Arc<Notify> {
    let wake = Arc::new(Notify::new());
    let publisher = OutboxPublisher::new(
        pool,
        runtime.jetstream.clone(),
        runtime.subjects.clone(),
        runtime.spec.name,
        batch_size,
        wake.clone(),
    );
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker("outbox-publisher", async move {
        publisher
            .run(
                Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
                shutdown,
            )
            .await;
        Ok(())
    });
    wake
}

/// Publishes the outbox to JetStream.
#[derive(Debug, Clone)]
pub struct OutboxPublisher {
    pool: PgPool,
    jetstream: jetstream::Context,
    subjects: Subjects,
    /// The service whose events (outbox rows) this publisher drains.
    emitter: ServiceName,
    batch_size: usize,
    wake: Arc<Notify>,
}

impl OutboxPublisher {
    /// A publisher of the events `service` emits, `batch_size` per round, woken early
    /// through `wake`.
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        subjects: Subjects,
        service: ServiceName,
        batch_size: usize,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            jetstream,
            subjects,
            emitter: service,
            batch_size,
            wake,
        }
    }

    /// Publishes until `shutdown`, retrying with `backoff` while PostgreSQL or NATS is down;
    /// on shutdown, publishes what is left if it can.
    pub async fn run(self, mut backoff: Backoff, shutdown: CancellationToken) {
        loop {
            match self.publish_round().await {
                Ok(n) if n >= self.batch_size => {
                    backoff.reset();
                    continue;
                }
                Ok(_) => {
                    backoff.reset();
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    }
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %e, retry_in = ?wait, "Cannot publish the outbox; retrying.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        // What the last batches committed, published now rather than at the next start.
        while let Ok(n) = self.publish_round().await {
            if n < self.batch_size {
                break;
            }
        }
    }

    /// Publishes the oldest events of the outbox its service emits (whole committed batches,
    /// until at least the batch size), waits for JetStream to acknowledge every one, then
    /// deletes them. Returns how many were published.
    ///
    /// The rows stay locked while they are published, so a second publisher of the same
    /// service (another process) waits and then takes the next ones: a service's events leave
    /// in commit order.
    pub async fn publish_round(&self) -> Result<usize, PublishError> {
        let mut tx = self.pool.begin().await?;
        let pending: Vec<(i64, i32)> = sqlx::query_as(
            "SELECT seq, event_count FROM outbox WHERE emitter = $2 \
             ORDER BY seq LIMIT $1 FOR UPDATE",
        )
        .bind(self.batch_size as i64)
        .bind(self.emitter.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut seqs = Vec::new();
        let mut events = 0;
        for (seq, count) in pending {
            if events >= self.batch_size {
                break;
            }
            seqs.push(seq);
            events += count.max(0) as usize;
        }
        if seqs.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, events FROM outbox WHERE seq = ANY($1) ORDER BY seq")
                .bind(&seqs)
                .fetch_all(&mut *tx)
                .await?;
        let mut acks = Vec::with_capacity(events);
        for (seq, encoded) in rows {
            let batch: Vec<OutboxEvent> =
                serde_json::from_slice(&encoded).map_err(|e| PublishError::Malformed {
                    seq,
                    reason: e.to_string(),
                })?;
            for event in batch {
                let mut headers = HeaderMap::new();
                headers.insert(MSG_ID_HEADER, event.event_id.to_string().as_str());
                headers.insert(EVENT_TYPE_HEADER, self.subjects.unqualify(&event.subject));
                if let Some(tp) = &event.traceparent {
                    headers.insert(TRACEPARENT_HEADER, tp.as_str());
                }
                let payload = String::from(Box::<str>::from(event.payload));
                let ack = self
                    .jetstream
                    .publish_with_headers(event.subject.clone(), headers, payload.into())
                    .await
                    .map_err(|e| PublishError::Nats {
                        event_id: event.event_id,
                        subject: event.subject.clone(),
                        reason: e.to_string(),
                    })?;
                acks.push((event.event_id, event.subject, ack));
            }
        }
        let published = acks.len();
        for (event_id, subject, ack) in acks {
            ack.await.map_err(|e| PublishError::Nats {
                event_id,
                subject,
                reason: e.to_string(),
            })?;
        }
        sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("tributary_outbox_events_published_total").increment(published as u64);
        Ok(published)
    }
}
