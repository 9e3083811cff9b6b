//! What a connector and a channel plugin implement, and the types that cross those traits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_proto::events::SyncMode;
use tributary_proto::ConnectorItem;
use uuid::Uuid;

use crate::{PluginContext, PluginError};

/// Where a sync got to, in the connector's own terms (a delta link, a page token, a
/// timestamp). The service stores it and hands it back; only the connector reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub Value);

impl Cursor {
    /// A cursor holding `value`.
    pub fn new(value: impl Serialize) -> Result<Self, PluginError> {
        serde_json::to_value(value)
            .map(Cursor)
            .map_err(|e| PluginError::Other(format!("cannot serialize the cursor: {e}")))
    }

    /// The cursor read back as `T`; a cursor of another shape (say, from an older version of
    /// the connector) is [`PluginError::Other`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        T::deserialize(&self.0).map_err(|e| PluginError::Other(format!("unreadable cursor: {e}")))
    }
}

/// How a sync was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Incremental from the cursor, full, or backfill.
    pub mode: SyncMode,
    /// For a backfill: how far back to go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl SyncRequest {
    /// Continue from the cursor.
    pub fn incremental() -> Self {
        SyncRequest {
            mode: SyncMode::Incremental,
            since: None,
        }
    }

    /// Everything, ignoring the cursor.
    pub fn full() -> Self {
        SyncRequest {
            mode: SyncMode::Full,
            since: None,
        }
    }

    /// Everything since `since`.
    pub fn backfill(since: DateTime<Utc>) -> Self {
        SyncRequest {
            mode: SyncMode::Backfill,
            since: Some(since),
        }
    }
}

/// One thing a sync yields.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncStep {
    /// An item found.
    Item(ConnectorItem),
    /// Every item before this was yielded: the service may store the cursor and resume from
    /// it after a crash.
    Checkpoint(Cursor),
}

/// A plugin that pulls data from a source.
pub trait ConnectorPlugin: Send + Sync {
    /// Yields the items of the source one by one, with checkpoints between them; never
    /// buffers the whole dataset. `cursor` is the last checkpoint stored for the instance.
    /// The stream ends when the sync is complete; an error ends it too.
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>>;
}

/// An HTTP request the service received on the instance's webhook route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingWebhook {
    /// `POST`, usually; `GET` for a verification handshake.
    pub method: String,
    /// The URL the provider called, as it saw it: the service's configured public base URL,
    /// the route's path and the query string. Twilio's signature covers it.
    pub url: String,
    /// The query string, without `?`.
    #[serde(default)]
    pub query: Option<String>,
    /// Headers in the order received, names lower-case; a signature header is among them.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body, exactly as received (a signature covers these bytes); Base64 in JSON.
    #[serde(default, with = "base64_bytes")]
    pub body: Vec<u8>,
    /// When the service received it.
    pub received_at: DateTime<Utc>,
}

/// Bytes as one Base64 string in JSON, not an array of numbers.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

impl IncomingWebhook {
    /// The first header named `name`, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query string's parameters, decoded.
    pub fn query_params(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first query parameter named `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_params()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The body read as `application/x-www-form-urlencoded` parameters, in order.
    pub fn form_params(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// The body read as JSON.
    pub fn json_body(&self) -> Result<Value, PluginError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| PluginError::Other(format!("the webhook body is not JSON: {e}")))
    }
}

/// What the service does with a webhook whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookVerdict {
    /// Store it durably, answer 2xx, and hand it to
    /// [`ChannelPlugin::handle_incoming`] from the stream. `delivery_id` is the provider's id
    /// of this delivery (a message id, an event id, `webhook-id`): a second delivery with
    /// the same id is answered 2xx and not processed again.
    Accept {
        /// The provider's id of the delivery; stable across its retries.
        delivery_id: String,
    },
    /// Answer at once with this response and store nothing: a verification handshake
    /// (Meta's `hub.challenge`, Slack's `url_verification`).
    Respond(WebhookResponse),
}

/// An answer a channel gives to a webhook itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

impl WebhookResponse {
    /// `200 OK` with a plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        WebhookResponse {
            status: 200,
            content_type: "text/plain; charset=utf-8".to_owned(),
            body: body.into().into_bytes(),
        }
    }

    /// `200 OK` with a JSON body.
    pub fn json(body: &Value) -> Self {
        WebhookResponse {
            status: 200,
            content_type: "application/json".to_owned(),
            body: body.to_string().into_bytes(),
        }
    }
}

/// Why a webhook was refused; the service answers `status` with `reason` and stores nothing.
/// The reason names the problem (a missing header, a stale timestamp) and never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WebhookRejection {
    /// The HTTP status: 401 for a signature that does not verify, 400 for a request that
    /// cannot be read, 403 for a handshake with the wrong token, 404 for a channel that takes
    /// no webhooks.
    pub status: u16,
    /// What is wrong.
    pub reason: String,
}

impl WebhookRejection {
    /// 401: the request is not from the provider.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        WebhookRejection {
            status: 401,
            reason: reason.into(),
        }
    }

    /// 400: the request cannot be read.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        WebhookRejection {
            status: 400,
            reason: reason.into(),
        }
    }

    /// 403: a handshake with the wrong token.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        WebhookRejection {
            status: 403,
            reason: reason.into(),
        }
    }

    /// 404: the channel takes no webhooks.
    pub fn not_found(reason: impl Into<String>) -> Self {
        WebhookRejection {
            status: 404,
            reason: reason.into(),
        }
    }

    /// 405: the provider never sends this method.
    pub fn method_not_allowed(reason: impl Into<String>) -> Self {
        WebhookRejection {
            status: 405,
            reason: reason.into(),
        }
    }

    /// 500: the hub, not the caller, is at fault (the provider retries later).
    pub fn internal(reason: impl Into<String>) -> Self {
        WebhookRejection {
            status: 500,
            reason: reason.into(),
        }
    }

    /// 500 for an instance whose config cannot be read: the operator's problem, not the
    /// caller's. The reason names the config field of a [`PluginError::Config`] and nothing
    /// of its value (which may be a secret).
    pub fn misconfigured(error: PluginError) -> Self {
        let reason = match error {
            PluginError::Config { field, .. } => {
                format!("the channel instance is misconfigured (config field `{field}`)")
            }
            _ => "the channel instance is misconfigured".to_owned(),
        };
        WebhookRejection::internal(reason)
    }
}

impl From<crate::signatures::SignatureError> for WebhookRejection {
    fn from(error: crate::signatures::SignatureError) -> Self {
        WebhookRejection::unauthorized(error.to_string())
    }
}

/// A sender or recipient, in the provider's addressing (a phone number, a Slack user id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The provider's address.
    pub address: String,
    /// The name shown for it, if the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl Participant {
    /// A participant known by its address alone.
    pub fn new(address: impl Into<String>) -> Self {
        Participant {
            address: address.into(),
            display_name: None,
        }
    }
}

/// A message a channel received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id of the message; makes a redelivered webhook idempotent.
    pub provider_message_id: String,
    /// The provider's id of the conversation or thread, if it has one. Without one, the
    /// service files the message under a conversation of its sender and recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The conversation's title, if the provider names it (a channel name, a group title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_title: Option<String>,
    /// Who sent it.
    pub sender: Participant,
    /// Who it was sent to.
    #[serde(default)]
    pub recipients: Vec<Participant>,
    /// Its text.
    pub text: String,
    /// When the provider says it was sent.
    pub sent_at: DateTime<Utc>,
    /// The provider's payload for it, kept for re-processing.
    #[serde(default)]
    pub raw: Value,
}

/// A provider's report on a message sent earlier (Twilio's status callback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryStatusUpdate {
    /// The provider's id of the sent message ([`SentMessage::provider_message_id`]).
    pub provider_message_id: String,
    /// The provider's status word (`sent`, `delivered`, `undelivered`, `failed`, `read`).
    pub status: String,
    /// The provider's error, when delivery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the provider reported it.
    pub at: DateTime<Utc>,
}

/// What one webhook carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IncomingEvent {
    /// A message someone sent.
    Message(InboundMessage),
    /// A new delivery status of a message sent through the channel.
    DeliveryStatus(DeliveryStatusUpdate),
}

/// A message the service asks a channel to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Tributary's id of the message; the same id sent twice is the same message.
    pub id: Uuid,
    /// The provider's conversation or thread to send in, if any (a Slack channel id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Who to send it to.
    pub recipients: Vec<Participant>,
    /// A subject line, for channels that have one (e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Its text.
    pub text: String,
    /// The provider's id of the message this replies to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The instance's public webhook URL, for providers that report delivery statuses to a
    /// URL given with each message (Twilio's `StatusCallback`); `None` when the service has
    /// no public URL configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback_url: Option<String>,
}

impl OutboundMessage {
    /// The one address to send to, for providers that take exactly one recipient (SMS,
    /// WhatsApp): the only recipient's address or, when the message names none, the other
    /// side's address that `theirs_in` finds in its conversation id, put through `normalize`.
    ///
    /// `what` names the kind of message in the errors (`an SMS` → "an SMS goes to exactly one
    /// recipient, and the message names 2"). `theirs_in` returns `Ok(None)` for a conversation
    /// id that names no recipient, or an error for one the channel cannot send to. An address
    /// that is empty once normalised is an error too.
    pub fn sole_recipient(
        &self,
        what: &str,
        normalize: impl Fn(&str) -> String,
        theirs_in: impl FnOnce(&str) -> Result<Option<&str>, PluginError>,
    ) -> Result<String, PluginError> {
        let address = match self.recipients.as_slice() {
            [one] => normalize(&one.address),
            [] => {
                let theirs = match self.conversation_id.as_deref() {
                    Some(conversation) => theirs_in(conversation)?,
                    None => None,
                };
                let theirs = theirs.ok_or_else(|| {
                    PluginError::Other(format!(
                        "{what} goes to exactly one recipient, and the message names none"
                    ))
                })?;
                normalize(theirs)
            }
            many => {
                return Err(PluginError::Other(format!(
                    "{what} goes to exactly one recipient, and the message names {}",
                    many.len()
                )))
            }
        };
        if address.is_empty() {
            return Err(PluginError::Other(
                "the recipient's address is empty".to_owned(),
            ));
        }
        Ok(address)
    }
}

/// What the provider said about a message it accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Tributary's id of the message ([`OutboundMessage::id`]).
    pub id: Uuid,
    /// The provider's id for it.
    pub provider_message_id: String,
    /// The provider's status word for it now (`queued`, `sent`, `accepted`).
    pub status: String,
    /// Who the provider shows as its sender (the instance's number, bot or address), if the
    /// channel knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Participant>,
    /// When the provider accepted it.
    pub sent_at: DateTime<Utc>,
}

/// A plugin that receives and sends messages (SMS, chat, e-mail).
///
/// The service calls [`ChannelPlugin::verify_webhook`] on the request path, before anything
/// is stored; it must be quick and must not reach the network. A request it accepts is made
/// durable in JetStream and answered 2xx; [`ChannelPlugin::handle_incoming`] runs later, from
/// the stream, and may run again for the same delivery after a crash.
#[async_trait]
pub trait ChannelPlugin: Send + Sync {
    /// Checks that `request` comes from the provider (its signature, its timestamp window)
    /// and says what to do with it. The default refuses every webhook with 404: for channels
    /// that only send.
    fn verify_webhook(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        let _ = (ctx, request);
        Err(WebhookRejection::not_found(
            "this channel receives no webhooks",
        ))
    }

    /// [`ChannelPlugin::verify_webhook`] as the service calls it, on the request path. The
    /// default calls `verify_webhook`; a plugin whose check must be awaited (a WebAssembly
    /// guest, run so that a busy one never blocks the runtime) overrides this instead.
    async fn verify(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        self.verify_webhook(ctx, request)
    }

    /// The request headers (lower-case names) [`ChannelPlugin::handle_incoming`] reads, kept
    /// with a verified webhook when it is stored; every other header is dropped once
    /// [`ChannelPlugin::verify_webhook`] has accepted it. Signatures and secret tokens are
    /// for verification only: stored, they would let whoever reads the stream forge
    /// deliveries (Telegram's secret token is its only authenticator).
    fn headers_to_keep(&self) -> &'static [&'static str] {
        &["content-type"]
    }

    /// Turns a verified webhook into what it carries: messages, delivery statuses, or
    /// nothing (an event the channel does not keep).
    async fn handle_incoming(
        &self,
        ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError>;

    /// Sends `msg` through the provider.
    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError>;
}
