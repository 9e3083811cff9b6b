//! The outbox publisher: drains events committed with their rows to JetStream, in order, and
//! deletes each once JetStream has acknowledged it.
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
use sqlx::{PgPool, Row};
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

/// Writes one event to the outbox inside the caller's transaction, so it is published if and
/// only if the transaction commits. `subject` is the full (prefixed) subject.
pub async fn enqueue<T: serde::Serialize>(
    tx: &mut sqlx::PgConnection,
    subject: &str,
    envelope: &tributary_proto::envelope::Envelope<T>,
    traceparent: Option<&str>,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload, traceparent) VALUES ($1, $2, $3, $4)",
    )
    .bind(envelope.id)
    .bind(subject)
    .bind(payload)
    .bind(traceparent)
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
    /// The full subjects of the events this publisher's service emits: the rows it drains.
    own_subjects: Vec<String>,
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
        let own_subjects = EventKind::all()
            .into_iter()
            .filter(|kind| kind.emitter() == service)
            .map(|kind| subjects.event(kind))
            .collect();
        Self {
            pool,
            jetstream,
            subjects,
            own_subjects,
            batch_size,
            wake,
        }
    }

    /// Publishes until `shutdown`, retrying with `backoff` while PostgreSQL or NATS is down;
    /// on shutdown, publishes what is left if it can.
    pub async fn run(self, mut backoff: Backoff, shutdown: CancellationToken) {
        loop {
            match self.publish_round().await {
                Ok(n) if n == self.batch_size => {
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

    /// Publishes the oldest events of the outbox its service emits (up to the batch size),
    /// waits for JetStream to acknowledge every one, then deletes them. Returns how many were
    /// published.
    ///
    /// The rows stay locked while they are published, so a second publisher of the same
    /// service (another process) waits and then takes the next ones: a service's events leave
    /// in commit order.
    pub async fn publish_round(&self) -> Result<usize, PublishError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT seq, event_id, subject, payload::text AS payload, traceparent \
             FROM outbox WHERE subject = ANY($2) ORDER BY seq LIMIT $1 FOR UPDATE",
        )
        .bind(self.batch_size as i64)
        .bind(&self.own_subjects)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut acks = Vec::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.try_get("event_id")?;
            let subject: String = row.try_get("subject")?;
            let payload: String = row.try_get("payload")?;
            let traceparent: Option<String> = row.try_get("traceparent")?;
            let mut headers = HeaderMap::new();
            headers.insert(MSG_ID_HEADER, event_id.to_string().as_str());
            headers.insert(EVENT_TYPE_HEADER, self.subjects.unqualify(&subject));
            if let Some(tp) = &traceparent {
                headers.insert(TRACEPARENT_HEADER, tp.as_str());
            }
            let fail = |reason: String| PublishError::Nats {
                event_id,
                subject: subject.clone(),
                reason,
            };
            let ack = self
                .jetstream
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .map_err(|e| fail(e.to_string()))?;
            acks.push((event_id, subject.clone(), ack));
            seqs.push(row.try_get::<i64, _>("seq")?);
        }
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
        metrics::counter!("tributary_outbox_events_published_total").increment(seqs.len() as u64);
        Ok(seqs.len())
    }
}
