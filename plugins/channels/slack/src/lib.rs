//! Built-in channel: Slack Events API in, chat.postMessage out.
//!
//! Inbound, every request is checked against the app's signing secret (`X-Slack-Signature`
//! over the timestamp and body, five-minute window) before anything else; the
//! `url_verification` handshake is answered with its challenge, and an `event_callback` is
//! accepted under its `event_id`, which Slack repeats on every retry. Messages written by
//! people (`message` and `app_mention` events) become [`tributary_plugin_sdk::InboundMessage`]s
//! with the provider message id `<channel>:<ts>` and the channel as conversation; bot
//! messages (our own included), edits, deletions and channel notices are ignored.
//!
//! Outbound, `chat.postMessage` posts in the message's conversation (or to its one
//! recipient), in the thread of the message it replies to. See `docs/channels/slack.md`.

use async_trait::async_trait;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext, PluginError,
    SentMessage, WebhookRejection, WebhookVerdict,
};

mod config;
mod inbound;
mod outbound;

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The Slack channel: one instance per Slack app installation.
#[derive(Debug, Default, Clone)]
pub struct Slack;

#[async_trait]
impl ChannelPlugin for Slack {
    fn verify_webhook(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        inbound::verify(ctx, request)
    }

    async fn handle_incoming(
        &self,
        _ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        inbound::parse(&payload)
    }

    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        outbound::send(ctx, msg).await
    }
}
