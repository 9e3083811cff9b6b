//! Outbound messages: a signed Standard Webhooks `POST` of a `message.send` event to the
//! configured `outboundUrl`.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_plugin_sdk::{OutboundMessage, Participant, PluginContext, PluginError, SentMessage};

use crate::config::Config;

/// The event type of a message Tributary asks the receiver to deliver.
pub const MESSAGE_SEND: &str = "message.send";

/// The body of an outbound delivery.
#[derive(Debug, Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// When Tributary sent it, RFC 3339 in UTC.
    timestamp: String,
    data: SendData<'a>,
}

/// `data` of `message.send`.
#[derive(Debug, Serialize)]
struct SendData<'a> {
    /// Tributary's message id; the same message retried keeps it.
    id: String,
    to: Vec<Recipient<'a>>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_reply_to: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Recipient<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl<'a> From<&'a Participant> for Recipient<'a> {
    fn from(p: &'a Participant) -> Self {
        Recipient {
            address: &p.address,
            name: p.display_name.as_deref(),
        }
    }
}

/// The `webhook-id` of the delivery of message `msg`: the same for every retry of it, so
/// the receiver can drop a duplicate.
pub fn delivery_id(msg: &OutboundMessage) -> String {
    format!("msg_{}", msg.id)
}

/// POSTs `msg` to `outboundUrl`, signed.
pub(crate) async fn send(
    ctx: &PluginContext,
    msg: &OutboundMessage,
) -> Result<SentMessage, PluginError> {
    let config = Config::of(ctx)?;
    let url = config.outbound_url()?;
    let key = config.key()?;
    if msg.recipients.is_empty() && msg.conversation_id.is_none() {
        return Err(PluginError::Other(
            "the message has neither recipients nor a conversation to go to".to_owned(),
        ));
    }
    let now = Utc::now();
    let body = serde_json::to_vec(&Envelope {
        kind: MESSAGE_SEND,
        timestamp: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        data: SendData {
            id: msg.id.to_string(),
            to: msg.recipients.iter().map(Recipient::from).collect(),
            text: &msg.text,
            subject: msg.subject.as_deref(),
            conversation_id: msg.conversation_id.as_deref(),
            in_reply_to: msg.in_reply_to.as_deref(),
        },
    })
    .map_err(|e| PluginError::Other(format!("cannot serialize the message: {e}")))?;
    let id = delivery_id(msg);
    let timestamp = now.timestamp();
    // PluginHttp retries this very request, so every attempt carries this timestamp and
    // signature; its retries last far less than the receiver's five-minute window.
    let signature = standard_webhooks::sign(&key, &id, timestamp, &body);
    let response = ctx
        .http()
        .post(url.as_str())
        .header("content-type", "application/json")
        .header(standard_webhooks::ID_HEADER, &id)
        .header(standard_webhooks::TIMESTAMP_HEADER, &timestamp.to_string())
        .header(standard_webhooks::SIGNATURE_HEADER, &signature)
        .body(body)
        .send()
        .await?;
    // Any 2xx is acceptance; the receiver may name its own id for the message.
    let answer = response.bytes().await.unwrap_or_default();
    let provider_message_id = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|v| match v.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| msg.id.to_string());
    Ok(SentMessage {
        id: msg.id,
        provider_message_id,
        status: "sent".to_owned(),
        sender: None,
        sent_at: Utc::now(),
    })
}
