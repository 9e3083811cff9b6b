//! Built-in channel: Standard Webhooks in and out.
//!
//! Any program that can sign a JSON POST the Standard Webhooks way (standardwebhooks.com)
//! becomes a messaging channel: it POSTs `message.received` and `message.status` events to
//! the instance's webhook route, and, when `outboundUrl` is set, receives `message.send`
//! events signed with the same secret. The formats are in [`inbound`] and [`outbound`], and
//! in `docs/channels/webhook.md`.

use async_trait::async_trait;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext, PluginError,
    SentMessage, WebhookRejection, WebhookVerdict,
};

mod config;
pub mod inbound;
pub mod outbound;

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The generic webhook channel (`tributary.webhook`, `builtin:webhook`).
#[derive(Debug, Default, Clone)]
pub struct GenericWebhook;

#[async_trait]
impl ChannelPlugin for GenericWebhook {
    /// Verifies `webhook-signature` over `webhook-id`, `webhook-timestamp` and the body, within
    /// five minutes of receipt; the delivery id is `webhook-id`.
    fn verify_webhook(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        inbound::verify(ctx, request)
    }

    /// `message.received` becomes a message, `message.status` a delivery status; other types
    /// are ignored.
    async fn handle_incoming(
        &self,
        _ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        inbound::parse(&payload)
    }

    /// POSTs a signed `message.send` event to `outboundUrl`.
    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        outbound::send(ctx, &msg).await
    }
}
