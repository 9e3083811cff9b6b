//! Consuming a durable JetStream pull consumer in batches: pull, cut the stream into batches,
//! hand each to the service, and pull again after an error, with backoff, until the service
//! stops. The ETL writes its item batches this way and the search service its index batches.
//!
//! A batch is cut at `batch_size` messages, or `batch_wait` after its first message, or, when
//! [`Batching::cut_when_idle`] is set, as soon as nothing more is waiting for the consumer (the
//! server says so in each message: its `pending` count), whichever comes first. So under load
//! batches fill, while a lone message (a webhook on a quiet afternoon) is handed over at once
//! instead of waiting for a batch that no other message will join.

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
    /// How long a batch waits to fill, while more messages are on their way, before it is
    /// handed over anyway.
    pub batch_wait: Duration,
    /// Batches handled at the same time.
    pub concurrent_batches: usize,
    /// Whether a batch is handed over as soon as nothing more is pending for the consumer,
    /// rather than after `batch_wait`. Small batches then come often, several at once when
    /// `concurrent_batches` allows it: only for a consumer whose concurrent batches cannot
    /// miss each other's work (the ETL's wait for each other on advisory locks where they
    /// could: a message and its conversation, two people who share an address).
    pub cut_when_idle: bool,
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
        let batches = batched(messages, batching);
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

/// Cuts `messages` into batches: at `batch_size`, `batch_wait` after the batch's first
/// message, or (with `cut_when_idle`) when the last message says nothing more is pending.
fn batched<S, E>(
    messages: S,
    batching: Batching,
) -> impl futures::Stream<Item = Vec<Result<Message, E>>>
where
    S: futures::Stream<Item = Result<Message, E>>,
{
    let messages = Box::pin(messages.fuse());
    futures::stream::unfold(messages, move |mut messages| async move {
        let first = messages.next().await?;
        let deadline = tokio::time::Instant::now() + batching.batch_wait;
        let mut batch = vec![first];
        while batch.len() < batching.batch_size.max(1)
            && !(batching.cut_when_idle && nothing_pending_after(batch.last()))
        {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(message)) => batch.push(message),
                Ok(None) | Err(_) => break,
            }
        }
        Some((batch, messages))
    })
}

/// Whether `message` is the last one the server had for its consumer when it sent it.
fn nothing_pending_after<E>(message: Option<&Result<Message, E>>) -> bool {
    matches!(message, Some(Ok(m)) if m.info().is_ok_and(|info| info.pending == 0))
}
