//! The item pipeline: pulls connector items in batches from the durable consumer, writes each
//! batch in one transaction, acks only after the commit, and sends what can never succeed to
//! the dead-letter stream.

use std::sync::Arc;

use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::{self, Message};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_kit::config::EtlConfig;
use tributary_proto::streams::ConsumerKey;
use tributary_proto::trace_context::TRACEPARENT_HEADER;
use tributary_proto::Subjects;

use crate::normalise::{Normaliser, Rejection};
use crate::store::{BatchReport, BatchWriter, PendingItem, StoreError};
use crate::write_grants::{WriteGrants, WriteRefusal};
use async_nats::jetstream::AckKind;
use tributary_kit::backoff::Backoff;
use tributary_kit::batch_retry::{BatchRetry, BatchTarget};
use tributary_kit::consume::{consume_in_batches, Batching};
use tributary_kit::dead_letter::DeadLetters;
use tributary_proto::ConnectorItem;

#[async_trait::async_trait]
impl BatchTarget<PendingItem> for BatchWriter {
    type Report = BatchReport;
    type Error = StoreError;

    async fn apply(&self, items: &[PendingItem]) -> Result<BatchReport, StoreError> {
        self.write(items).await
    }

    fn is_transient(error: &StoreError) -> bool {
        error.is_transient()
    }
}

/// Moves items from JetStream into PostgreSQL.
#[derive(Debug, Clone)]
pub struct ItemPipeline {
    normaliser: Normaliser,
    writer: BatchWriter,
    dead_letters: DeadLetters,
    retry: BatchRetry,
    settings: EtlConfig,
    wake_publisher: Arc<Notify>,
    /// Each item's instance's `data:write` grants; `None` when `etl.check_data_write` is off.
    write_grants: Option<Arc<WriteGrants>>,
}

impl ItemPipeline {
    /// A pipeline writing through `writer`, waking the outbox publisher after each commit.
    pub fn new(
        normaliser: Normaliser,
        writer: BatchWriter,
        jetstream: jetstream::Context,
        subjects: &Subjects,
        settings: EtlConfig,
        wake_publisher: Arc<Notify>,
    ) -> Self {
        let dead_letters = DeadLetters::for_consumer(jetstream, subjects, ConsumerKey::EtlItems);
        Self {
            normaliser,
            writer,
            retry: BatchRetry {
                dead_letters: dead_letters.clone(),
                max_deliver: settings.max_deliver,
                failure: "An item could not be stored",
                what: "items",
                retry_initial: settings.retry_initial(),
                retry_max: settings.retry_max(),
                keep_alive: BatchRetry::keep_alive_for(settings.ack_wait()),
            },
            dead_letters,
            settings,
            wake_publisher,
            write_grants: None,
        }
    }

    /// The same, storing only items whose entity type their instance is granted
    /// (`data:write`); the others are dead-lettered naming the permission.
    pub fn with_write_grants(mut self, grants: WriteGrants) -> Self {
        self.write_grants = Some(Arc::new(grants));
        self
    }

    /// Decodes an item and lets it through its instance's `data:write` grants; `Ok(None)`
    /// when they cannot be asked now (the item is delivered again later).
    async fn admit(&self, message: &Message) -> Result<Option<ConnectorItem>, Rejection> {
        let item = self.normaliser.decode(&message.subject, &message.payload)?;
        let Some(grants) = &self.write_grants else {
            return Ok(Some(item));
        };
        match grants.check(&item).await {
            Ok(()) => Ok(Some(item)),
            Err(WriteRefusal::Refused(rejection)) => Err(rejection),
            Err(WriteRefusal::Unavailable(reason)) => {
                tracing::warn!(subject = %message.subject, reason, "An item waits: its instance's grants cannot be checked now.");
                let delay = self.settings.retry_max();
                if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "Cannot hand an item back for later delivery.");
                }
                Ok(None)
            }
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.settings.retry_initial(), self.settings.retry_max())
    }

    /// Consumes until `shutdown`. The batch in hand is finished (or left unacked, to be
    /// delivered again) before it returns.
    pub async fn run(self, consumer: Consumer<pull::Config>, shutdown: CancellationToken) {
        // Batches are written concurrently: while one waits on PostgreSQL the next is
        // normalised. Source-record locks keep concurrent batches correct: the newer version
        // of a key wins whichever commits first. And what one batch could miss of another's
        // uncommitted rows (a message's conversation, a person at the same address) it waits
        // for, on the batch locks of `store`; so a lone item need not wait for a batch to
        // fill, however small the batches in flight at once.
        let batching = Batching {
            batch_size: self.settings.batch_size,
            batch_wait: self.settings.batch_wait(),
            concurrent_batches: self.settings.concurrent_batches,
            cut_when_idle: self.settings.cut_when_idle,
        };
        let stopping = shutdown.clone();
        consume_in_batches(
            consumer,
            "items",
            batching,
            self.backoff(),
            shutdown,
            |batch| self.process(batch, &stopping),
        )
        .await;
    }

    /// Decodes, normalises and writes one batch.
    pub async fn process(&self, messages: Vec<Message>, shutdown: &CancellationToken) {
        // Anything but an item subject is refused unread (issue 27, finding 2).
        let messages = self.dead_letters.screen(messages).await;
        let mut items = Vec::with_capacity(messages.len());
        let mut accepted = Vec::with_capacity(messages.len());
        for message in messages {
            let outcome = match self.admit(&message).await {
                Ok(Some(item)) => self.normaliser.normalise(item),
                Ok(None) => continue,
                Err(rejection) => Err(rejection),
            };
            match outcome {
                Ok(item) => {
                    let traceparent = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(TRACEPARENT_HEADER))
                        .map(|v| v.to_string());
                    items.push(PendingItem { item, traceparent });
                    accepted.push(message);
                }
                Err(rejection) => {
                    metrics::counter!("tributary_etl_items_total", "outcome" => "rejected")
                        .increment(1);
                    self.dead_letters.send(&message, &rejection.0).await;
                }
            }
        }
        if !items.is_empty() {
            self.write(items, accepted, shutdown).await;
        }
    }

    /// Writes a batch under the consumer's [`BatchRetry`] policy: retried while PostgreSQL is
    /// down; when PostgreSQL refuses it, written in halves so that only the item at fault is
    /// held back.
    async fn write(
        &self,
        items: Vec<PendingItem>,
        messages: Vec<Message>,
        shutdown: &CancellationToken,
    ) {
        let applied = self
            .retry
            .apply(&self.writer, items, messages, shutdown)
            .await;
        let mut events = 0;
        for report in &applied.reports {
            for outcome in &report.outcomes {
                metrics::counter!("tributary_etl_items_total", "outcome" => outcome.as_str())
                    .increment(1);
            }
            events += report.events;
        }
        if events > 0 {
            self.wake_publisher.notify_one();
        }
        metrics::counter!("tributary_etl_items_total", "outcome" => "failed")
            .increment(applied.gave_up as u64);
    }
}
