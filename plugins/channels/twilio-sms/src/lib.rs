//! Built-in channel: two-way SMS through Twilio.
//!
//! - **Inbound.** Twilio posts each message the number receives to the instance's webhook
//!   route (`application/x-www-form-urlencoded`, signed with `X-Twilio-Signature`). The
//!   delivery id is the `MessageSid`.
//! - **Status callbacks.** Every message sent names the same route as its `StatusCallback`;
//!   Twilio posts each status change (`sent`, `delivered`, `undelivered`, `failed`, …) there.
//!   They become [`tributary_plugin_sdk::DeliveryStatusUpdate`]s with the delivery id
//!   `<MessageSid>:<MessageStatus>`.
//! - **Outbound.** One SMS per message, through the Messages API, from `fromNumber`.
//!
//! An SMS has no thread: the conversation of a message is the pair of numbers,
//! [`conversation_id`]`(our number, their number)`, on both sides.

use async_trait::async_trait;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext, PluginError,
    SentMessage, WebhookRejection, WebhookVerdict,
};

mod address;
mod config;
mod inbound;
mod outbound;

pub use address::{conversation_id, normalize_number};

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The Twilio SMS channel (`builtin:twilio-sms`); stateless, every call reads the
/// instance's config from its context.
#[derive(Debug, Default, Clone)]
pub struct TwilioSms;

#[async_trait]
impl ChannelPlugin for TwilioSms {
    /// Checks `X-Twilio-Signature` over the URL and the parameters (or the URL and
    /// `bodySHA256` for a JSON body) with the auth token, then that `AccountSid` is the
    /// configured account. Refuses with 401 a missing or wrong signature or another account,
    /// 400 a request that is neither a message nor a status callback, 405 another method.
    fn verify_webhook(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        inbound::verify(ctx, request)
    }

    /// One [`IncomingEvent::Message`] for an inbound SMS, one
    /// [`IncomingEvent::DeliveryStatus`] for a status callback.
    async fn handle_incoming(
        &self,
        _ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        inbound::handle(&payload)
    }

    /// Sends the message as one SMS to its one recipient.
    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        outbound::send(ctx, &msg).await
    }
}
