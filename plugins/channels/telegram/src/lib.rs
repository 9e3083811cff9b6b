//! Built-in channel: a Telegram bot.
//!
//! Inbound, Telegram pushes each update to the instance's webhook route with the
//! `secret_token` given to `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`; an update
//! whose token matches is accepted under its `update_id`. New messages and channel posts
//! with text (or a caption) become [`tributary_plugin_sdk::InboundMessage`]s with the
//! provider message id `<chat id>:<message id>` and the chat as conversation; edits and every
//! other kind of update are ignored.
//!
//! Outbound, `sendMessage` sends to the message's conversation (or its one recipient),
//! replying with `reply_parameters` when it answers a message. The bot token is part of the
//! Bot API's URLs, so it is kept out of every error and log line (see the `outbound` module). See
//! `docs/channels/telegram.md`.

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

/// The Telegram channel: one instance per bot.
#[derive(Debug, Default, Clone)]
pub struct Telegram;

#[async_trait]
impl ChannelPlugin for Telegram {
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

/// What stands in for the bot token wherever it would have appeared.
const REDACTED: &str = "<botToken>";

/// `text` with the bot token (as is, or with its `:` percent-encoded) replaced.
pub(crate) fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token, REDACTED)
        .replace(&token.replace(':', "%3A"), REDACTED)
        .replace(&token.replace(':', "%3a"), REDACTED)
}

/// `error` with the bot token taken out of its message.
pub(crate) fn redact_error(error: PluginError, token: &str) -> PluginError {
    match error {
        PluginError::Http { status, message } => PluginError::Http {
            status,
            message: redact(&message, token),
        },
        PluginError::Transient(message) => PluginError::Transient(redact(&message, token)),
        PluginError::Other(message) => PluginError::Other(redact(&message, token)),
        other @ (PluginError::PermissionDenied(_) | PluginError::Config { .. }) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_redacted_plain_and_percent_encoded() {
        let token = "123456:ABC-DEF";
        assert_eq!(
            redact(
                "POST api.telegram.org/bot123456:ABC-DEF/x and bot123456%3AABC-DEF",
                token
            ),
            "POST api.telegram.org/bot<botToken>/x and bot<botToken>"
        );
    }
}
