//! Consuming a durable JetStream pull consumer in batches: pull, cut the stream into batches
//! of at most `batch_size` (or whatever came within `batch_wait`), hand each to the service,
//! and pull again after an error, with backoff, until the service stops. The ETL writes its
//! item batches this way and the search service its index batches.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::Message;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

/// How a consumer's messages are batched.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// The most messages in one batch (and pulled at once).
    pub batch_size: usize,
    /// How long a batch waits to fill before it is handed over anyway.
    pub batch_wait: Duration,
    /// Batches handled at the same time.
    pub concurrent_batches: usize,
}

/// Hands `consumer`'s messages to `handle` in batches until `shutdown`; the batches in hand
/// are finished first. `what` names the messages in logs ("items", "data events"); `backoff`
/// paces pulls again after a failed one.
pub async fn consume_in_batches<F, Fut>(
    consumer: Consumer<pull::Config>,
    what: &'static str,
    batching: Batching,
    mut backoff: Backoff,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Vec<Message>) -> Fut,
    Fut: Future<Output = ()>,
{
    while !shutdown.is_cancelled() {
        let messages = consumer
            .stream()
            .max_messages_per_batch(batching.batch_size)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!(error = %e, retry_in = ?wait, "Cannot pull {what}; retrying.");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        backoff.reset();
        let batches = tokio_stream::StreamExt::chunks_timeout(
            messages,
            batching.batch_size,
            batching.batch_wait,
        );
        futures::StreamExt::take_until(batches, shutdown.clone().cancelled_owned())
            .for_each_concurrent(batching.concurrent_batches.max(1), |batch| {
                let handle = &handle;
                async move {
                    let received: Vec<Message> = batch
                        .into_iter()
                        .filter_map(|m| {
                            m.map_err(|e| tracing::debug!(error = %e, "Pull consumer hiccup."))
                                .ok()
                        })
                        .collect();
                    if !received.is_empty() {
                        handle(received).await;
                    }
                }
            })
            .await;
    }
}
