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
        // connection is made: the host on its port (`${server}` with
        // `smtp://relay.lan:2525` grants `relay.lan:2525`), or, on SMTP's own port for the
        // TLS mode (587, 465, 25), a grant of the host alone, as 80 and 443 are for HTTP.
        // The addresses the host resolves to are checked when connecting (smtp::send).
        let server = &settings.server;
        let grants = ctx.grants();
        grants
            .check_outbound(&server.host, server.port)
            .or_else(|denied| {
                if server.port == config::default_port(server.tls) {
                    grants.check_outbound_host(&server.host)
                } else {
                    Err(denied)
                }
            })?;
        let (email, message_id) = message::build(&msg, &settings.from)?;
        smtp::send(ctx.http(), &settings, &email).await?;
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
