//! Built-in channel: e-mail out over SMTP.
//!
//! Each message is one plain-text e-mail to all its recipients, sent through the configured
//! SMTP server with STARTTLS, implicit TLS or (for a trusted relay) none. The channel receives
//! nothing: mail comes in through a mail connector. See `docs/channels/email.md`.

use async_trait::async_trait;
use chrono::Utc;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, Participant, PluginContext,
    PluginError, SentMessage,
};

mod config;
pub mod message;
mod smtp;

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The e-mail channel (`tributary.email`, `builtin:email`).
#[derive(Debug, Default, Clone)]
pub struct Email;

#[async_trait]
impl ChannelPlugin for Email {
    /// E-mail arrives through a mail connector, never on a webhook: there is nothing to handle.
    async fn handle_incoming(
        &self,
        _ctx: &PluginContext,
        _payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        Err(PluginError::Other(
            "the e-mail channel receives no webhooks".to_owned(),
        ))
    }

    /// Sends `msg` as one e-mail to all its recipients. The provider message id is the
    /// e-mail's `Message-ID`, and the status `sent` means the SMTP server accepted it.
    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        let settings = config::Settings::of(ctx)?;
        // SMTP does not go through PluginHttp, so the grant is checked here, before any
        // connection is made.
        ctx.grants().check_outbound_host(&settings.server.host)?;
        let (email, message_id) = message::build(&msg, &settings.from)?;
        smtp::send(&settings, &email).await?;
        Ok(SentMessage {
            id: msg.id,
            provider_message_id: message_id,
            status: "sent".to_owned(),
            sender: Some(Participant {
                address: settings.from.email.to_string(),
                display_name: settings.from.name.clone(),
            }),
            sent_at: Utc::now(),
        })
    }
}
