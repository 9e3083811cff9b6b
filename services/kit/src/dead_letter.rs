//! Sending a JetStream message that can never be processed to the dead-letter stream, with
//! its reason, and stopping its delivery (see `tributary_proto::dead_letter`); and the one
//! rule every consumer applies to a message that failed but might succeed later: dead-letter
//! it after its last allowed delivery, else hand it back to come again after a wait.

use std::fmt::Display;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Message};
use async_nats::HeaderMap;
use tributary_proto::dead_letter;
use tributary_proto::envelope::MSG_ID_HEADER;

/// Where one consumer's dead letters go: its `deadletter.<consumer>` subject.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    jetstream: jetstream::Context,
    subject: String,
}

/// What became of a message that failed and might succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// It had had its last delivery and went to the dead-letter stream (or, when that could
    /// not be published, was left to come again).
    GaveUp {
        /// How many times it had been delivered.
        delivered: i64,
    },
    /// It was handed back to JetStream, to be delivered again after `wait`.
    Later {
        /// How many times it had been delivered.
        delivered: i64,
        /// How long JetStream holds it back.
        wait: Duration,
    },
}

impl DeadLetters {
    /// Dead letters published on `subject` (from `Subjects::dead_letter`) through `jetstream`.
    pub fn new(jetstream: jetstream::Context, subject: String) -> Self {
        Self { jetstream, subject }
    }

    /// Sends `message`, which can never be processed, to the dead-letter stream with
    /// `reason`, and stops its delivery. Returns whether it was dead-lettered.
    pub async fn send(&self, message: &Message, reason: &str) -> bool {
        dead_letter(&self.jetstream, &self.subject, message, reason).await
    }

    /// For a message that failed with `error` and might succeed later: once it has been
    /// delivered `max_deliver` times, dead-letters it with the reason "`failure` after N
    /// deliveries: `error`"; before that, hands it back to come again after
    /// `wait(deliveries so far)`.
    pub async fn retry_or_give_up(
        &self,
        message: &Message,
        max_deliver: i64,
        failure: &str,
        error: impl Display,
        wait: impl FnOnce(i64) -> Duration,
    ) -> Retry {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        if delivered >= max_deliver {
            let reason = format!("{failure} after {delivered} deliveries: {error}");
            self.send(message, &reason).await;
            return Retry::GaveUp { delivered };
        }
        let wait = wait(delivered);
        tracing::warn!(subject = %message.subject, error = %error, delivered, retry_in = ?wait, "{failure}; it will be tried again.");
        if let Err(e) = message.ack_with(AckKind::Nak(Some(wait))).await {
            tracing::warn!(error = %e, "Cannot hand a failed message back; it will come again when its ack wait ends.");
        }
        Retry::Later { delivered, wait }
    }
}

/// Publishes `message` on `subject` (a `deadletter.<consumer>` subject) with `reason`, its
/// original subject, sequence and delivery count in the headers, then terminates its
/// delivery. When the dead letter cannot be published, the message is left to come again.
/// Returns whether it was dead-lettered.
pub async fn dead_letter(
    jetstream: &jetstream::Context,
    subject: &str,
    message: &Message,
    reason: &str,
) -> bool {
    let info = message.info().ok();
    let sequence = info.as_ref().map_or(0, |i| i.stream_sequence);
    let delivered = info.as_ref().map_or(1, |i| i.delivered);
    let stream = info.as_ref().map_or("", |i| i.stream);
    tracing::warn!(subject = %message.subject, sequence, reason, "Dead-lettering a message.");
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, format!("{stream}:{sequence}").as_str());
    headers.insert(
        dead_letter::REASON_HEADER,
        dead_letter::reason_header_value(reason).as_str(),
    );
    headers.insert(
        dead_letter::ORIGINAL_SUBJECT_HEADER,
        message.subject.as_str(),
    );
    headers.insert(
        dead_letter::ORIGINAL_SEQUENCE_HEADER,
        sequence.to_string().as_str(),
    );
    headers.insert(
        dead_letter::DELIVERIES_HEADER,
        delivered.to_string().as_str(),
    );
    let published = match jetstream
        .publish_with_headers(subject.to_owned(), headers, message.payload.clone())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match published {
        Ok(()) => {
            if let Err(e) = message.ack_with(AckKind::Term).await {
                tracing::warn!(error = %e, "Cannot terminate a dead-lettered message.");
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot publish a dead letter; the message will come again.");
            false
        }
    }
}
