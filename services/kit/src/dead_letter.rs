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
use tributary_proto::streams::ConsumerKey;
use tributary_proto::Subjects;

/// Where one consumer's dead letters go: its `deadletter.<consumer>` subject. It also knows
/// which subjects its consumer is for ([`ConsumerKey::accepts`]), so a message on any other is
/// refused without its payload ever being read or kept ([`DeadLetters::screen`]).
#[derive(Debug, Clone)]
pub struct DeadLetters {
    jetstream: jetstream::Context,
    subject: String,
    consumer: ConsumerKey,
    subjects: Subjects,
}

/// What became of a message that failed and might succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// It had had its last delivery and went to the dead-letter stream (or, when that could
    /// not be published, was left to come again).
    GaveUp,
    /// It was handed back to JetStream, to be delivered again after a wait.
    Later,
}

impl DeadLetters {
    /// The dead letters of `consumer`, published on its `deadletter.<consumer>` subject
    /// through `jetstream`.
    pub fn for_consumer(
        jetstream: jetstream::Context,
        subjects: &Subjects,
        consumer: ConsumerKey,
    ) -> Self {
        Self {
            jetstream,
            subject: subjects.dead_letter(consumer.durable_name()),
            consumer,
            subjects: subjects.clone(),
        }
    }

    /// Whether `message` is on a subject its consumer is for. Its filter makes the server
    /// deliver only those; a stream redefined to capture more (another user's inbox, where
    /// secrets are answered) must still not get anything else read, stored or dead-lettered.
    pub fn accepts(&self, message: &Message) -> bool {
        self.consumer.accepts(&self.subjects, &message.subject)
    }

    /// Refuses every message of `messages` that its consumer is not for ([`Self::refuse`])
    /// and returns the others.
    pub async fn screen(&self, messages: Vec<Message>) -> Vec<Message> {
        let mut kept = Vec::with_capacity(messages.len());
        for message in messages {
            if self.accepts(&message) {
                kept.push(message);
            } else {
                self.refuse(&message).await;
            }
        }
        kept
    }

    /// Refuses a message on a subject its consumer is not for: its delivery is terminated and
    /// a dead letter with the subject and the reason, but none of the payload, says so.
    pub async fn refuse(&self, message: &Message) {
        tracing::error!(
            subject = %message.subject,
            consumer = self.consumer.durable_name(),
            "Refusing a message on a subject this consumer is not for; its stream captures more than it should (run `tributary nats provision`)."
        );
        self.send(
            message,
            "a subject this consumer is not for; the payload was dropped unread",
        )
        .await;
    }

    /// Sends `message`, which can never be processed, to the dead-letter stream with
    /// `reason`, its original subject, sequence and delivery count in the headers, then
    /// terminates its delivery. When the dead letter cannot be published, the message is
    /// left to come again. The payload of a message its consumer is not for
    /// ([`Self::accepts`]) is never kept: the dead letter is sent empty.
    pub async fn send(&self, message: &Message, reason: &str) {
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
        let payload = match self.accepts(message) {
            true => message.payload.clone(),
            false => Default::default(),
        };
        let published = match self
            .jetstream
            .publish_with_headers(self.subject.clone(), headers, payload)
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
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot publish a dead letter; the message will come again.");
            }
        }
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
            return Retry::GaveUp;
        }
        let wait = wait(delivered);
        tracing::warn!(subject = %message.subject, error = %error, delivered, retry_in = ?wait, "{failure}; it will be tried again.");
        if let Err(e) = message.ack_with(AckKind::Nak(Some(wait))).await {
            tracing::warn!(error = %e, "Cannot hand a failed message back; it will come again when its ack wait ends.");
        }
        Retry::Later
    }
}
