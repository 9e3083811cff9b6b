//! The `channel.*` requests the channel service answers: `channel.send.<instance>` sends a
//! message, `channel.routes` lists the webhook routes served, `channel.webhook` gives one
//! instance's webhook URL.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ErrorCode::{BadRequest, Internal, NotFound};
use crate::subjects::ServiceName;

/// A message to send through a channel instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteList {
    /// By instance id.
    pub routes: Vec<RouteView>,
}

/// What `channel.webhook` is asked: one channel instance, enabled or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookRequest {
    /// The channel instance.
    pub instance_id: String,
}

/// The webhook route of one channel instance, from `channel.webhook`: the URL to give the
/// provider, as this channel service serves it once the instance is enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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

/// `channel.send.<instance>`: send a message through one channel instance. The instance is
/// the subject's last token; the body is the [`SendRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendMessage {
    /// The channel instance (the subject's last token, not in the body).
    #[serde(skip)]
    pub instance_id: String,
    /// The message.
    #[serde(flatten)]
    pub message: SendRequest,
}

/// `channel.routes`: every webhook route this channel service serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RoutesQuery {}

impl super::Request for SendMessage {
    const SERVICE: ServiceName = ServiceName::Channel;
    const VERB: &'static str = "send";
    const WILDCARD: bool = true;
    const ERRORS: &'static [super::ErrorCode] = &[BadRequest, NotFound, Internal];
    type Reply = SendOutcome;

    fn subject_token(&self) -> Option<&str> {
        Some(&self.instance_id)
    }

    fn set_subject_token(&mut self, token: &str) {
        token.clone_into(&mut self.instance_id);
    }
}

mod listed {
    use super::*;
    super::super::requests! {
        ServiceName::Channel;
        RoutesQuery => "routes", RouteList, &[BadRequest, Internal];
        WebhookRequest => "webhook", WebhookView, &[BadRequest, NotFound, Internal];
    }
}

/// Every `channel.*` request, for the catalog.
pub(crate) fn catalog() -> Vec<super::CatalogEntry> {
    let mut all = vec![super::CatalogEntry::of::<SendMessage>()];
    all.extend(listed::catalog());
    all
}
