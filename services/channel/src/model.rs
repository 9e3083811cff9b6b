//! What a channel's messages become outside it: `communication.*` event payloads, and the
//! conversation and message items the ETL writes into the unified model. Ids derived here are
//! stable, so handling the same delivery twice publishes the same events and items, which
//! JetStream and the ETL recognise.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tributary_plugin_sdk::{InboundMessage, OutboundMessage};
use tributary_proto::events::MessageReceived;
use tributary_proto::model::{ConversationFields, MessageFields};
use tributary_proto::{ConnectorItem, EntityType, ItemOperation};
use uuid::Uuid;

/// A UUIDv7 that is the same for the same `parts` and `at`: its time is `at`, its random
/// bits a hash of `parts`. Used as the envelope id (and `Nats-Msg-Id`) of events that a
/// redelivered webhook publishes again.
pub fn stable_event_id(at: DateTime<Utc>, parts: &[&str]) -> Uuid {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    let digest = hash.finalize();
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// The conversation an inbound message belongs to: the provider's, or else one per set of
/// participants (sender and recipients, sorted).
pub fn conversation_of(message: &InboundMessage) -> String {
    if let Some(id) = message
        .conversation_id
        .as_deref()
        .filter(|id| !id.is_empty())
    {
        return id.to_owned();
    }
    participants_key(
        std::iter::once(message.sender.address.as_str())
            .chain(message.recipients.iter().map(|p| p.address.as_str())),
    )
}

/// The conversation id of a set of participants without one of the provider's: their
/// addresses, sorted, without repeats, joined by `,`.
fn participants_key<'a>(addresses: impl Iterator<Item = &'a str>) -> String {
    let mut participants: Vec<&str> = addresses.collect();
    participants.sort_unstable();
    participants.dedup();
    participants.join(",")
}

/// The payload of `communication.MessageReceived` for `message`.
pub fn message_received(
    channel: &str,
    instance_id: &str,
    message: &InboundMessage,
) -> MessageReceived {
    MessageReceived {
        channel: channel.to_owned(),
        instance_id: instance_id.to_owned(),
        provider_message_id: message.provider_message_id.clone(),
        conversation_id: conversation_of(message),
        from: message.sender.address.clone(),
        to: message
            .recipients
            .iter()
            .map(|p| p.address.clone())
            .collect(),
        text: message.text.clone(),
        received_at: message.sent_at,
    }
}

fn item(
    instance_id: &str,
    entity_type: EntityType,
    external_id: String,
    version: DateTime<Utc>,
    data: Value,
    raw: Value,
) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance_id.to_owned(),
        entity_type,
        external_id,
        operation: ItemOperation::Upsert,
        source_modified_at: version,
        data,
        raw,
    }
}

fn conversation_item(
    channel: &str,
    instance_id: &str,
    conversation: String,
    title: Option<String>,
    participants: Vec<String>,
    version: DateTime<Utc>,
) -> ConnectorItem {
    let fields = ConversationFields {
        title,
        channel: channel.to_owned(),
        participants,
        extra: Default::default(),
    };
    item(
        instance_id,
        EntityType::Conversation,
        conversation,
        version,
        serde_json::to_value(fields).unwrap_or(Value::Null),
        Value::Null,
    )
}

/// The conversation and message items of an inbound message, in the order they must be
/// written (the message refers to the conversation).
pub fn inbound_items(
    channel: &str,
    instance_id: &str,
    message: &InboundMessage,
) -> [ConnectorItem; 2] {
    let conversation = conversation_of(message);
    let participants = std::iter::once(message.sender.address.clone())
        .chain(message.recipients.iter().map(|p| p.address.clone()))
        .collect();
    let mut extra = serde_json::Map::new();
    extra.insert("direction".into(), json!("inbound"));
    extra.insert("channel".into(), json!(channel));
    if let Some(name) = &message.sender.display_name {
        extra.insert("sender_name".into(), json!(name));
    }
    let fields = MessageFields {
        conversation_external_id: Some(conversation.clone()),
        sender: message.sender.address.clone(),
        recipients: message
            .recipients
            .iter()
            .map(|p| p.address.clone())
            .collect(),
        body_text: message.text.clone(),
        sent_at: message.sent_at,
        extra: extra.into_iter().collect(),
        ..Default::default()
    };
    [
        conversation_item(
            channel,
            instance_id,
            conversation.clone(),
            message.conversation_title.clone(),
            participants,
            message.sent_at,
        ),
        item(
            instance_id,
            EntityType::Message,
            message.provider_message_id.clone(),
            message.sent_at,
            serde_json::to_value(fields).unwrap_or(Value::Null),
            message.raw.clone(),
        ),
    ]
}

/// A message the channel sent, as the service keeps it.
#[derive(Debug, Clone)]
pub struct SentRecord {
    /// The request.
    pub message: OutboundMessage,
    /// The provider's id.
    pub provider_message_id: String,
    /// Who the provider shows as the sender, if known.
    pub sender: Option<String>,
    /// The provider's status word now.
    pub status: String,
    /// Why delivery failed, if it did.
    pub error: Option<String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// When the status was reported: the item's version, so a later status wins.
    pub status_at: DateTime<Utc>,
}

/// The conversation and message items of a sent message, its delivery status in `extra`.
pub fn outbound_items(channel: &str, instance_id: &str, sent: &SentRecord) -> [ConnectorItem; 2] {
    let sender = sent
        .sender
        .clone()
        .unwrap_or_else(|| instance_id.to_owned());
    let recipients: Vec<String> = sent
        .message
        .recipients
        .iter()
        .map(|p| p.address.clone())
        .collect();
    let conversation = sent.message.conversation_id.clone().unwrap_or_else(|| {
        participants_key(
            std::iter::once(sender.as_str()).chain(recipients.iter().map(String::as_str)),
        )
    });
    let participants = std::iter::once(sender.clone())
        .chain(recipients.iter().cloned())
        .collect();
    let mut extra = serde_json::Map::new();
    extra.insert("direction".into(), json!("outbound"));
    extra.insert("channel".into(), json!(channel));
    extra.insert("tributary_message_id".into(), json!(sent.message.id));
    extra.insert("delivery_status".into(), json!(sent.status));
    if let Some(error) = &sent.error {
        extra.insert("delivery_error".into(), json!(error));
    }
    if let Some(reply_to) = &sent.message.in_reply_to {
        extra.insert("in_reply_to".into(), json!(reply_to));
    }
    let fields = MessageFields {
        conversation_external_id: Some(conversation.clone()),
        sender,
        recipients,
        subject: sent.message.subject.clone(),
        body_text: sent.message.text.clone(),
        sent_at: sent.sent_at,
        extra: extra.into_iter().collect(),
        ..Default::default()
    };
    [
        conversation_item(
            channel,
            instance_id,
            conversation,
            None,
            participants,
            sent.sent_at,
        ),
        item(
            instance_id,
            EntityType::Message,
            sent.provider_message_id.clone(),
            sent.status_at,
            serde_json::to_value(fields).unwrap_or(Value::Null),
            Value::Null,
        ),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tributary_plugin_sdk::Participant;

    use super::*;

    fn message(conversation: Option<&str>) -> InboundMessage {
        InboundMessage {
            provider_message_id: "SM1".into(),
            conversation_id: conversation.map(str::to_owned),
            conversation_title: None,
            sender: Participant::new("+15550002"),
            recipients: vec![Participant::new("+15550001")],
            text: "hi".into(),
            sent_at: Utc::now(),
            raw: Value::Null,
        }
    }

    #[test]
    fn stable_ids_repeat_for_the_same_parts_and_differ_otherwise() {
        let at = Utc::now();
        let a = stable_event_id(at, &["i1", "SM1"]);
        assert_eq!(a, stable_event_id(at, &["i1", "SM1"]));
        assert_ne!(a, stable_event_id(at, &["i1", "SM2"]));
        assert_ne!(a, stable_event_id(at, &["i1S", "M1"]));
        assert_eq!(a.get_version_num(), 7);
    }

    #[test]
    fn a_message_without_a_conversation_is_filed_under_its_participants() {
        assert_eq!(conversation_of(&message(Some("C9"))), "C9");
        assert_eq!(conversation_of(&message(None)), "+15550001,+15550002");
    }

    #[test]
    fn inbound_items_carry_model_fields_the_etl_accepts() {
        let [conversation, msg] = inbound_items("twilio-sms", "i1", &message(None));
        let c: ConversationFields = serde_json::from_value(conversation.data).unwrap();
        assert_eq!(c.channel, "twilio-sms");
        let m: MessageFields = serde_json::from_value(msg.data).unwrap();
        assert_eq!(
            m.conversation_external_id.as_deref(),
            Some(conversation.external_id.as_str())
        );
        assert_eq!(m.body_text, "hi");
        assert_eq!(msg.external_id, "SM1");
    }
}
