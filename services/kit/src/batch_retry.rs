//! The one policy by which a consumer applies a batch of JetStream messages to what it keeps
//! (the ETL its rows, the search service its index):
//!
//! - while a batch is being applied, however long that takes, its messages are kept from
//!   redelivery (an in-progress ack every `keep_alive`, a fraction of the consumer's ack wait),
//!   so a slow batch is not delivered a second time while the first is still being written;
//! - applied: every message of the batch is acked;
//! - a transient failure (PostgreSQL or the index unreachable, a conflict with a concurrent
//!   batch): the same batch is tried again with backoff, its messages kept from redelivery
//!   meanwhile, until it is applied or the service stops (then nothing is acked and it comes
//!   again);
//! - refused: the batch is split in halves and each half applied on its own, so one message
//!   at fault costs about `2 log2(n)` tries instead of `n`, and the others go through;
//! - one message refused on its own: handed back to come again after a wait, and sent to the
//!   dead-letter stream with the reason after its `max_deliver`th delivery, so it never
//!   blocks the messages behind it.

use std::fmt::Display;
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::dead_letter::{DeadLetters, Retry};

/// What a batch of decoded messages is applied to.
#[async_trait]
pub trait BatchTarget<T: Sync>: Send + Sync {
    /// What an applied batch reports (counts for metrics).
    type Report: Send;
    /// Why a batch was not applied.
    type Error: Display + Send;

    /// Applies `items` all at once, or none of them.
    async fn apply(&self, items: &[T]) -> Result<Self::Report, Self::Error>;

    /// Whether applying the same items again can succeed without changing them.
    fn is_transient(error: &Self::Error) -> bool;
}

/// How one consumer retries, splits and dead-letters its batches.
#[derive(Debug, Clone)]
pub struct BatchRetry {
    /// Where messages refused on their own go after their last delivery.
    pub dead_letters: DeadLetters,
    /// The delivery after which a refused message is dead-lettered.
    pub max_deliver: i64,
    /// The start of a dead letter's reason: `"An item could not be stored"` becomes
    /// "An item could not be stored after 5 deliveries: …".
    pub failure: &'static str,
    /// What the messages are, in log lines ("items", "data events").
    pub what: &'static str,
    /// The first wait before trying again.
    pub retry_initial: Duration,
    /// The longest wait between tries.
    pub retry_max: Duration,
    /// How often a batch being applied tells JetStream it is still being worked on: well
    /// under the consumer's ack wait ([`BatchRetry::keep_alive_for`]).
    pub keep_alive: Duration,
}

/// What became of a batch.
#[derive(Debug)]
pub struct Applied<R> {
    /// The report of every part that was applied (one for a batch applied whole).
    pub reports: Vec<R>,
    /// Messages sent to the dead-letter stream after their last delivery.
    pub gave_up: usize,
}

impl BatchRetry {
    /// The keep-alive interval for a consumer whose ack wait is `ack_wait`: a third of it, so
    /// that one late in-progress ack still arrives in time, and at least 100 ms.
    pub fn keep_alive_for(ack_wait: Duration) -> Duration {
        (ack_wait / 3).max(Duration::from_millis(100))
    }

    /// Applies `items` (decoded from `messages`, one each, in the same order) to `target`
    /// under this policy; stops early, leaving what is not applied unacked, when `shutdown`
    /// is given.
    pub async fn apply<T, B>(
        &self,
        target: &B,
        items: Vec<T>,
        messages: Vec<Message>,
        shutdown: &CancellationToken,
    ) -> Applied<B::Report>
    where
        T: Send + Sync,
        B: BatchTarget<T>,
    {
        let mut applied = Applied {
            reports: Vec::new(),
            gave_up: 0,
        };
        self.apply_part(target, items, messages, shutdown, &mut applied)
            .await;
        applied
    }

    async fn apply_part<T, B>(
        &self,
        target: &B,
        mut items: Vec<T>,
        mut messages: Vec<Message>,
        shutdown: &CancellationToken,
        applied: &mut Applied<B::Report>,
    ) where
        T: Send + Sync,
        B: BatchTarget<T>,
    {
        let mut backoff = Backoff::new(self.retry_initial, self.retry_max);
        let outcome = loop {
            match self.apply_keeping_alive(target, &items, &messages).await {
                Err(e) if B::is_transient(&e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %e, count = messages.len(), retry_in = ?wait, "Cannot apply a batch of {}; retrying.", self.what);
                    // Keeps JetStream from delivering the batch to someone else meanwhile.
                    still_working_on(&messages).await;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                outcome => break outcome,
            }
        };
        match outcome {
            Ok(report) => {
                for message in &messages {
                    if let Err(e) = message.ack().await {
                        tracing::warn!(error = %e, "Cannot ack what was applied; it will come again and change nothing.");
                    }
                }
                applied.reports.push(report);
            }
            Err(e) if messages.len() > 1 => {
                tracing::warn!(error = %e, count = messages.len(), "A batch of {} was refused; applying each half on its own.", self.what);
                let half = messages.len() / 2;
                let (second_items, second_messages) =
                    (items.split_off(half), messages.split_off(half));
                Box::pin(self.apply_part(target, items, messages, shutdown, applied)).await;
                Box::pin(self.apply_part(target, second_items, second_messages, shutdown, applied))
                    .await;
            }
            Err(e) => {
                let Some(message) = messages.first() else {
                    return;
                };
                let retry = self
                    .dead_letters
                    .retry_or_give_up(message, self.max_deliver, self.failure, &e, |delivered| {
                        redelivery_wait(self.retry_initial, self.retry_max, delivered)
                    })
                    .await;
                if retry == Retry::GaveUp {
                    applied.gave_up += 1;
                }
            }
        }
    }
}

impl BatchRetry {
    /// `target.apply(items)`, with an in-progress ack of each of `messages` every
    /// `keep_alive` until it returns.
    async fn apply_keeping_alive<T, B>(
        &self,
        target: &B,
        items: &[T],
        messages: &[Message],
    ) -> Result<B::Report, B::Error>
    where
        T: Send + Sync,
        B: BatchTarget<T>,
    {
        let applying = target.apply(items);
        tokio::pin!(applying);
        let start = tokio::time::Instant::now() + self.keep_alive;
        let mut keep_alive = tokio::time::interval_at(start, self.keep_alive);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                outcome = &mut applying => return outcome,
                _ = keep_alive.tick() => still_working_on(messages).await,
            }
        }
    }
}

/// Tells JetStream each of `messages` is still being worked on (an in-progress ack), so it
/// restarts their ack wait instead of delivering them again.
async fn still_working_on(messages: &[Message]) {
    for message in messages {
        let _ = message.ack_with(AckKind::Progress).await;
    }
}

/// How long a message refused on its own waits before it comes again, after `delivered`
/// deliveries: doubling from `initial`, at most `max`.
fn redelivery_wait(initial: Duration, max: Duration, delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.clamp(1, 6)).unwrap_or(1);
    initial.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_message_waits_longer_each_delivery_up_to_the_longest_wait() {
        let (initial, max) = (Duration::from_millis(50), Duration::from_millis(500));
        let waits: Vec<u128> = (1..=7)
            .map(|d| redelivery_wait(initial, max, d).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 500, 500, 500, 500]);
    }
}
