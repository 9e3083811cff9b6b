//! The instance's configuration, as declared in `plugin.json`.

use serde::Deserialize;
use tributary_plugin_sdk::secrecy::{ExposeSecret, SecretString};
use tributary_plugin_sdk::{require_config, PluginContext, PluginError, WebhookRejection};

/// Where the Bot API lives unless the instance says otherwise.
const DEFAULT_API_BASE_URL: &str = "https://api.telegram.org";

/// A Telegram bot instance's settings (`configSchema` of `plugin.json`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TelegramConfig {
    /// The bot's token from @BotFather; it goes in the path of every Bot API URL, so it must
    /// never reach an error message or a log line (see [`crate::redact`]).
    pub(crate) bot_token: SecretString,
    /// The `secret_token` given to `setWebhook`, sent back with every update.
    pub(crate) secret_token: SecretString,
    #[serde(default = "default_api_base_url")]
    api_base_url: String,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

impl TelegramConfig {
    /// Reads the instance's config, naming the field that is missing or wrong.
    pub(crate) fn load(ctx: &PluginContext) -> Result<Self, PluginError> {
        require_config(ctx)
    }

    /// Reads the instance's config on the webhook path: a config that cannot be read is the
    /// hub's fault, not Telegram's, so it is a 500 (Telegram retries later) naming the field.
    pub(crate) fn load_for_webhook(ctx: &PluginContext) -> Result<Self, WebhookRejection> {
        Self::load(ctx).map_err(|error| {
            WebhookRejection::internal(format!(
                "the Telegram instance's configuration cannot be read: {error}"
            ))
        })
    }

    /// The URL of Bot API method `method`: `<base>/bot<token>/<method>`. It holds the token.
    pub(crate) fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.api_base_url.trim_end_matches('/'),
            self.bot_token.expose_secret()
        )
    }
}
