//! The indexer: pulls data events in batches from the durable consumer `search-indexer`,
//! applies each batch to the backend, and acks only after the backend has it.
//!
//! Batches are applied one at a time, except with a backend that keeps the version rule across
//! batches in flight itself ([`SearchBackend::concurrent_batches`]): Meilisearch, with up to
//! `search.meilisearch_tasks_in_flight` batches whose tasks are enqueued and unfinished. Each
//! batch is still acked only once the index has it, and after every batch enqueued before it.
//!
//! An event that is not a readable data event goes to the dead-letter stream at once, with
//! the reason. While the index cannot be reached (Meilisearch down, the disk failing) the batch
//! is retried with backoff and nothing is acked. When the index refuses a batch, its events
//! are applied one by one; one still refused after `search.max_deliver` deliveries is
//! dead-lettered, so it never blocks the events behind it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::{self, Message};
use tokio_util::sync::CancellationToken;
use tributary_kit::backoff::Backoff;
use tributary_kit::batch_retry::{BatchRetry, BatchTarget};
use tributary_kit::config::SearchConfig;
use tributary_kit::consume::{consume_in_batches, Batching};
use tributary_kit::dead_letter::DeadLetters;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits};
use tributary_proto::Subjects;

use crate::backend::{ApplyReport, SearchBackend, SearchError};
use crate::document::{changes_from_event, IndexChange};

/// The first wait before a refused batch is tried again.
const RETRY_INITIAL: Duration = Duration::from_millis(200);
/// The longest wait between tries.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The delivery limits of the `search-indexer` consumer. JetStream itself never gives up on
/// an event: the indexer dead-letters one after `search.max_deliver` refusals, with the reason.
/// Provisioning sets them ([`tributary_kit::provision::consumer_limits`]).
pub fn delivery_limits(config: &tributary_kit::Config) -> DeliveryLimits {
    tributary_kit::provision::consumer_limits(config, ConsumerKey::SearchIndexer)
}

/// Moves data events from JetStream into the index.
#[derive(Clone)]
pub struct Indexer {
    target: IndexTarget,
    dead_letters: DeadLetters,
    retry: BatchRetry,
    settings: SearchConfig,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("backend", &self.target.0.name())
            .finish_non_exhaustive()
    }
}

impl Indexer {
    /// An indexer writing into `backend`.
    pub fn new(
        backend: Arc<dyn SearchBackend>,
        jetstream: jetstream::Context,
        subjects: &Subjects,
        settings: SearchConfig,
    ) -> Self {
        let dead_letters =
            DeadLetters::for_consumer(jetstream, subjects, ConsumerKey::SearchIndexer);
        Self {
            target: IndexTarget(backend),
            retry: BatchRetry {
                dead_letters: dead_letters.clone(),
                max_deliver: settings.max_deliver,
                failure: "The index refused an event",
                what: "data events",
                retry_initial: RETRY_INITIAL,
                retry_max: RETRY_MAX,
                keep_alive: BatchRetry::keep_alive_for(settings.ack_wait()),
            },
            dead_letters,
            settings,
        }
    }

    /// Consumes until `shutdown`; the batch in hand is finished (or left unacked, to come
    /// again) first.
    pub async fn run(self, consumer: Consumer<pull::Config>, shutdown: CancellationToken) {
        let batching = Batching {
            batch_size: self.settings.batch_size,
            batch_wait: self.settings.batch_wait(),
            concurrent_batches: self.target.0.concurrent_batches().max(1),
            // A lone event is applied at once. Batches handled at the same time cannot miss
            // each other's writes: one at a time, or planned in turn by the backend.
            cut_when_idle: self.settings.cut_when_idle,
        };
        let backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        let stopping = shutdown.clone();
        consume_in_batches(
            consumer,
            "data events",
            batching,
            backoff,
            shutdown,
            |batch| self.process(batch, &stopping),
        )
        .await;
    }

    /// Reads and applies one batch.
    pub async fn process(&self, messages: Vec<Message>, shutdown: &CancellationToken) {
        // Anything but a data event subject is refused unread (issue 27, finding 2).
        let messages = self.dead_letters.screen(messages).await;
        let mut changes = Vec::with_capacity(messages.len());
        let mut accepted = Vec::with_capacity(messages.len());
        for message in messages {
            match changes_from_event(&message.payload) {
                Ok(c) => {
                    changes.push(c);
                    accepted.push(message);
                }
                Err(e) => {
                    metrics::counter!("tributary_search_events_total", "outcome" => "rejected")
                        .increment(1);
                    self.dead_letters.send(&message, &e.to_string()).await;
                }
            }
        }
        if !accepted.is_empty() {
            self.apply(changes, accepted, shutdown).await;
        }
    }

    /// Applies a batch under the consumer's [`BatchRetry`] policy: retried while the index
    /// cannot be reached; when the index refuses it, applied in halves, so only the event at
    /// fault is held back.
    async fn apply(
        &self,
        changes: Vec<Vec<IndexChange>>,
        messages: Vec<Message>,
        shutdown: &CancellationToken,
    ) {
        let applied = self
            .retry
            .apply(&self.target, changes, messages, shutdown)
            .await;
        for report in &applied.reports {
            metrics::counter!("tributary_search_events_total", "outcome" => "applied")
                .increment(report.applied as u64);
            metrics::counter!("tributary_search_events_total", "outcome" => "stale")
                .increment(report.stale as u64);
        }
        metrics::counter!("tributary_search_events_total", "outcome" => "failed")
            .increment(applied.gave_up as u64);
    }
}

/// The index as a [`BatchTarget`]: each event's changes, applied together.
#[derive(Clone)]
struct IndexTarget(Arc<dyn SearchBackend>);

#[async_trait::async_trait]
impl BatchTarget<Vec<IndexChange>> for IndexTarget {
    type Report = ApplyReport;
    type Error = SearchError;

    async fn apply(&self, changes: &[Vec<IndexChange>]) -> Result<ApplyReport, SearchError> {
        self.0
            .apply(changes.iter().flatten().cloned().collect())
            .await
    }

    fn is_transient(error: &SearchError) -> bool {
        error.is_transient()
    }
}
