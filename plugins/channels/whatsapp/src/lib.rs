//! Built-in channel: WhatsApp through Meta's Cloud API.
//!
//! - **Handshake.** Meta checks the callback URL with `GET ?hub.mode=subscribe&
//!   hub.verify_token=…&hub.challenge=…`; the channel echoes the challenge as plain text when
//!   the token is `verifyToken`.
//! - **Inbound.** Meta posts `messages` changes signed with `X-Hub-Signature-256` (the app
//!   secret over the body): messages users send, and the statuses (`sent`, `delivered`,
//!   `read`, `failed`) of messages the number sent.
//! - **Outbound.** Text messages through `POST /{phoneNumberId}/messages`.
//!
//! The conversation of a message is the pair of the business phone number and the user,
//! [`conversation_id`]`(phoneNumberId, wa_id)`, on both sides.

use async_trait::async_trait;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext, PluginError,
    SentMessage, WebhookRejection, WebhookVerdict,
};

mod address;
mod config;
mod inbound;
mod outbound;

pub use address::{conversation_id, normalize_wa_id};

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The WhatsApp Cloud API channel (`builtin:whatsapp`); stateless, every call reads the
/// instance's config from its context.
#[derive(Debug, Default, Clone)]
pub struct WhatsApp;

#[async_trait]
impl ChannelPlugin for WhatsApp {
    /// A `GET` is the subscription handshake: answered with the challenge, or refused with
    /// 403 for another verify token (400 when it is no handshake). A `POST` must carry a valid
    /// `X-Hub-Signature-256` (401 otherwise) and a JSON body (400 otherwise).
    fn verify_webhook(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        inbound::verify(ctx, request)
    }

    /// The messages and delivery statuses of the webhook's `messages` changes for the
    /// configured phone number.
    async fn handle_incoming(
        &self,
        ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        let config = config::WhatsAppConfig::load(ctx)?;
        inbound::handle(ctx, &config, &payload)
    }

    /// Sends the message as a text message to its one recipient.
    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        outbound::send(ctx, &msg).await
    }
}
