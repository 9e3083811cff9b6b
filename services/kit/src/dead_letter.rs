//! Sending a JetStream message that can never be processed to the dead-letter stream, with
//! its reason, and stopping its delivery (see `tributary_proto::dead_letter`).

use async_nats::jetstream::{self, AckKind, Message};
use async_nats::HeaderMap;
use tributary_proto::dead_letter;
use tributary_proto::envelope::MSG_ID_HEADER;

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
