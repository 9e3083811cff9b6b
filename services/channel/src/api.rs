//! What `channel.send.<instance>` takes and answers, what `channel.routes` lists and what
//! `channel.webhook` tells of one instance: JSON in the mesh's reply envelope, shared by the
//! service, the CLI and any program in the mesh.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message to send through a channel instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Tributary's id of the message; sending the same id again is answered with the first
    /// outcome instead of sending twice. A new one is made when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Who to send it to, in the channel's addressing: phone numbers, chat or user ids,
    /// e-mail addresses.
    pub to: Vec<String>,
    /// The text.
    pub text: String,
    /// A subject line, for e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The provider's conversation or thread to send in (a Slack channel id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The provider's id of the message this replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendOutcome {
    /// Tributary's id of the message.
    pub message_id: Uuid,
    /// The channel instance.
    pub instance_id: String,
    /// `failed`, or the provider's status word (`queued`, `sent`, `delivered`…).
    pub status: String,
    /// The provider's id of the message, once it accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether this answer is of an earlier send with the same id (nothing was sent now).
    #[serde(default)]
    pub repeated: bool,
}

impl SendOutcome {
    /// Whether the provider took the message.
    pub fn is_sent(&self) -> bool {
        self.status != FAILED && self.status != SENDING
    }
}

/// The status of a send that failed.
pub const FAILED: &str = "failed";
/// The status of a send in progress (or cut off by a crash).
pub const SENDING: &str = "sending";

/// A webhook route this channel service serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteView {
    /// The channel instance.
    pub instance_id: String,
    /// Its plugin.
    pub plugin_id: String,
    /// Its route name (`twilio-sms`).
    pub channel: String,
    /// The URL to give the provider; `None` for a channel that takes no webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

/// Every route, from `channel.routes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteList {
    /// By instance id.
    pub routes: Vec<RouteView>,
}

/// What `channel.webhook` is asked: one channel instance, enabled or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// The channel instance.
    pub instance_id: String,
}

/// The webhook route of one channel instance, from `channel.webhook`: the URL to give the
/// provider, as this channel service serves it once the instance is enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    /// The channel instance.
    pub instance_id: String,
    /// Its route name (`twilio-sms`).
    pub channel: String,
    /// The URL to give the provider (`<channel.public_base_url>/webhooks/<channel>/<instance>`);
    /// `None` for a channel that takes no webhooks (no `network:inbound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Whether the route answers now (the instance is enabled and running here); until then
    /// the URL is answered 404.
    pub served: bool,
}
