//! Built-in channel: Slack Events API in, chat.postMessage out.

use async_trait::async_trait;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext, PluginError,
    SentMessage,
};

/// The channel (being written).
#[derive(Debug, Default, Clone)]
pub struct Slack;

#[async_trait]
impl ChannelPlugin for Slack {
    async fn handle_incoming(
        &self,
        _ctx: &PluginContext,
        _payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        Err(PluginError::Other("not written yet".into()))
    }

    async fn send_message(
        &self,
        _ctx: &PluginContext,
        _msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        Err(PluginError::Other("not written yet".into()))
    }
}
