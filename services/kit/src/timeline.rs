//! Recording lines of an instance's timeline ([`tributary_proto::timeline`]).
//!
//! [`TimelineRecorder::record`] publishes a line on `timeline.<service>.<instance>` as core
//! NATS, which the `TIMELINE` stream keeps: it never waits for JetStream, so a webhook's answer
//! or a plugin's log call costs one buffered write. Each instance and kind has a bucket of
//! [`BURST`] lines refilled at [`PER_SECOND`] a second; a line over it is counted, not sent, and
//! the count travels with the next line that is (`suppressed`), so a flood of refused webhooks
//! or a chatty plugin cannot fill the stream or the plugin manager's table.
//!
//! A line that must not be lost (a sync's end) goes through the outbox instead, in the same
//! transaction as what it reports: [`outbox_event`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::Client;
use tributary_proto::timeline::{TimelineEntry, TimelineKind, MAX_ENTRY_BYTES};
use tributary_proto::{ServiceName, Subjects};

use crate::outbox::OutboxEvent;

/// Lines one instance may record of one kind at once, before the rate limit applies.
pub const BURST: f64 = 20.0;

/// Lines a second one instance may record of one kind, once its burst is spent.
pub const PER_SECOND: f64 = 2.0;

/// Buckets kept at most; past it the idle ones are forgotten (each then starts full again).
const MAX_BUCKETS: usize = 10_000;

/// Publishes timeline lines for one service, rate-limited per instance and kind.
#[derive(Debug)]
pub struct TimelineRecorder {
    client: Client,
    subjects: Subjects,
    service: ServiceName,
    buckets: Mutex<HashMap<(String, TimelineKind), Bucket>>,
}

/// Tokens left, when they were counted, and lines held back since the last one sent.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
}

impl TimelineRecorder {
    /// A recorder publishing as `service` through `client`, under `subjects`' prefix.
    pub fn new(client: Client, subjects: Subjects, service: ServiceName) -> Self {
        Self {
            client,
            subjects,
            service,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes `entry` unless its instance and kind are over the rate limit; answers
    /// whether it was sent. A NATS failure is logged, never returned: a timeline line is
    /// never worth failing the work it describes.
    pub async fn record(&self, entry: TimelineEntry) -> bool {
        match self.admitted(entry) {
            Some(entry) => self.publish(entry).await,
            None => false,
        }
    }

    /// [`Self::record`] from synchronous code (a log call): the rate limit is applied at
    /// once, so a line held back costs no task; the publish of one let through runs on its
    /// own task. Without a Tokio runtime, nothing is recorded.
    pub fn record_detached(self: &Arc<Self>, entry: TimelineEntry) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(entry) = self.admitted(entry) else {
            return;
        };
        let recorder = self.clone();
        runtime.spawn(async move {
            recorder.publish(entry).await;
        });
    }

    /// `entry` with the count of lines held back before it, when the rate limit lets it
    /// through; `None` (and one more held back) when it does not.
    fn admitted(&self, mut entry: TimelineEntry) -> Option<TimelineEntry> {
        entry.suppressed = self.admit(&entry.instance_id, entry.kind, Instant::now())?;
        Some(entry)
    }

    /// Publishes `entry`, already admitted; answers whether it was sent.
    async fn publish(&self, entry: TimelineEntry) -> bool {
        let payload = match serde_json::to_vec(&entry) {
            Ok(p) if p.len() <= MAX_ENTRY_BYTES => p,
            Ok(p) => {
                tracing::warn!(instance = %entry.instance_id, bytes = p.len(), "A timeline line over {MAX_ENTRY_BYTES} bytes is left out.");
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "A timeline line does not serialise.");
                return false;
            }
        };
        let subject = self.subjects.timeline(self.service, &entry.instance_id);
        if let Err(e) = self.client.publish(subject, payload.into()).await {
            tracing::warn!(error = %e, instance = %entry.instance_id, "Cannot publish a timeline line.");
            return false;
        }
        true
    }

    /// Takes a token for `instance_id`'s `kind` at `now`: the lines held back before it when
    /// there is one, `None` (and one more held back) when there is not.
    fn admit(&self, instance_id: &str, kind: TimelineKind, now: Instant) -> Option<u64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&(instance_id.to_owned(), kind)) {
            let full = Duration::from_secs_f64(BURST / PER_SECOND);
            buckets.retain(|_, b| now.duration_since(b.at) < full);
        }
        let bucket = buckets
            .entry((instance_id.to_owned(), kind))
            .or_insert(Bucket {
                tokens: BURST,
                at: now,
                suppressed: 0,
            });
        let refill = now.duration_since(bucket.at).as_secs_f64() * PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(BURST);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            bucket.suppressed += 1;
            return None;
        }
        bucket.tokens -= 1.0;
        Some(std::mem::take(&mut bucket.suppressed))
    }
}

/// `entry` as an outbox event of `service`, published on its timeline subject once the
/// caller's transaction commits ([`crate::outbox::enqueue_all`]); its id is the entry's, so a
/// repeat is dropped by JetStream and by the plugin manager.
pub fn outbox_event(
    subjects: &Subjects,
    service: ServiceName,
    entry: &TimelineEntry,
) -> Result<OutboxEvent, serde_json::Error> {
    Ok(OutboxEvent {
        event_id: entry.id,
        subject: subjects.timeline(service, &entry.instance_id),
        payload: serde_json::value::to_raw_value(entry)?,
        traceparent: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_proto::timeline::TimelineStatus;

    async fn recorder() -> Option<TimelineRecorder> {
        // `admit` needs no server; a client that never connected is enough to build one.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("127.0.0.1:1")
            .await
            .ok()?;
        Some(TimelineRecorder::new(
            client,
            Subjects::default(),
            ServiceName::Channel,
        ))
    }

    #[tokio::test]
    async fn a_flood_is_held_back_and_counted_on_the_next_line_sent() {
        let Some(recorder) = recorder().await else {
            panic!("a client that retries its first connection is always made");
        };
        let start = Instant::now();
        let sent = (0..BURST as usize + 30)
            .filter(|_| {
                recorder
                    .admit("crm", TimelineKind::Webhook, start)
                    .is_some()
            })
            .count();
        assert_eq!(sent, BURST as usize, "the burst, then nothing");
        // Another instance, or another kind of the same, has its own bucket.
        assert_eq!(
            recorder.admit("other", TimelineKind::Webhook, start),
            Some(0)
        );
        assert_eq!(recorder.admit("crm", TimelineKind::Log, start), Some(0));
        // Half a second later one token is back: the next line carries the 30 held back.
        let later = start + Duration::from_millis(500);
        assert_eq!(
            recorder.admit("crm", TimelineKind::Webhook, later),
            Some(30)
        );
        assert_eq!(recorder.admit("crm", TimelineKind::Webhook, later), None);
        let entry = TimelineEntry::now("crm", TimelineKind::Sync, TimelineStatus::Ok, "done");
        let event = outbox_event(&Subjects::new("t1"), ServiceName::Connector, &entry).unwrap();
        assert_eq!(event.subject, "t1.timeline.connector.crm");
        assert_eq!(event.event_id, entry.id);
    }
}
