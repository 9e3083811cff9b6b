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
    /// `POST`, usually.
    pub method: String,
    /// The path below the instance's webhook route.
    pub path: String,
    /// The query string, without `?`.
    #[serde(default)]
    pub query: Option<String>,
    /// Headers in the order received, names lower-case; a signature header is among them.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body, exactly as received (a signature covers these bytes).
    #[serde(default)]
    pub body: Vec<u8>,
    /// When the service received it.
    pub received_at: DateTime<Utc>,
}

impl IncomingWebhook {
    /// The first header named `name`, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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

/// A message a channel received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id of the message; makes a redelivered webhook idempotent.
    pub provider_message_id: String,
    /// The provider's id of the conversation or thread, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
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

/// A message the service asks a channel to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Tributary's id of the message; the same id sent twice is the same message.
    pub id: Uuid,
    /// The provider's conversation or thread to send in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Who to send it to.
    pub recipients: Vec<Participant>,
    /// Its text.
    pub text: String,
    /// The provider's id of the message this replies to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

/// What the provider said about a message it accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Tributary's id of the message ([`OutboundMessage::id`]).
    pub id: Uuid,
    /// The provider's id for it.
    pub provider_message_id: String,
    /// When the provider accepted it.
    pub sent_at: DateTime<Utc>,
}

/// A plugin that receives and sends messages (SMS, chat).
#[async_trait]
pub trait ChannelPlugin: Send + Sync {
    /// Turns a webhook the provider sent into the messages it carries (none, for a delivery
    /// receipt); checks the provider's signature first.
    async fn handle_incoming(
        &self,
        ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<InboundMessage>, PluginError>;

    /// Sends `msg` through the provider.
    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError>;
}
