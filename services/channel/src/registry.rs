//! The channel plugins this service can run, by manifest entrypoint (`builtin:slack`). The
//! route of an instance is named after its entrypoint: `builtin:twilio-sms` serves
//! `/webhooks/twilio-sms/<instance>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_plugin_sdk::ChannelPlugin;

/// The prefix of a built-in plugin's entrypoint.
const BUILTIN_PREFIX: &str = "builtin:";

/// Entrypoint → channel.
#[derive(Clone, Default)]
pub struct ChannelRegistry {
    channels: BTreeMap<String, Arc<dyn ChannelPlugin>>,
}

impl std::fmt::Debug for ChannelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.channels.keys()).finish()
    }
}

impl ChannelRegistry {
    /// No channels.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in channels: Twilio SMS, Slack, Telegram, WhatsApp, the generic webhook and
    /// e-mail over SMTP.
    pub fn builtin() -> Self {
        Self::empty()
            .with(
                "builtin:twilio-sms",
                Arc::new(tributary_channel_twilio_sms::TwilioSms),
            )
            .with("builtin:slack", Arc::new(tributary_channel_slack::Slack))
            .with(
                "builtin:telegram",
                Arc::new(tributary_channel_telegram::Telegram),
            )
            .with(
                "builtin:whatsapp",
                Arc::new(tributary_channel_whatsapp::WhatsApp),
            )
            .with(
                "builtin:webhook",
                Arc::new(tributary_channel_webhook::GenericWebhook),
            )
            .with("builtin:email", Arc::new(tributary_channel_email::Email))
    }

    /// The same registry, with `channel` run for instances whose manifest says
    /// `entrypoint`. Replaces one registered there before.
    pub fn with(mut self, entrypoint: &str, channel: Arc<dyn ChannelPlugin>) -> Self {
        self.channels.insert(entrypoint.to_owned(), channel);
        self
    }

    /// The channel for `entrypoint`.
    pub fn get(&self, entrypoint: &str) -> Option<Arc<dyn ChannelPlugin>> {
        self.channels.get(entrypoint).cloned()
    }

    /// Every entrypoint it runs.
    pub fn entrypoints(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }
}

/// The route name of an entrypoint: `builtin:twilio-sms` → `twilio-sms`; any other form is
/// used whole, with characters that cannot be in a URL path segment or a NATS token made `-`.
pub fn channel_name(entrypoint: &str) -> String {
    entrypoint
        .strip_prefix(BUILTIN_PREFIX)
        .unwrap_or(entrypoint)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tributary_plugin_manager::discovery::builtin_entrypoints;
    use tributary_proto::manifest::PluginType;

    use super::*;

    #[test]
    fn every_builtin_channel_manifest_has_its_channel_and_the_reverse() {
        let manifests = builtin_entrypoints(PluginType::Channel).unwrap();
        let registry = ChannelRegistry::builtin();
        let mut registered: Vec<&str> = registry.entrypoints().collect();
        registered.sort_unstable();
        assert_eq!(registered, manifests, "registry against built-in manifests");
        assert_eq!(manifests.len(), 6);
    }

    #[test]
    fn route_names_come_from_entrypoints() {
        assert_eq!(channel_name("builtin:twilio-sms"), "twilio-sms");
        assert_eq!(channel_name("wasm:acme/chat.wasm"), "wasm-acme-chat-wasm");
    }
}
