//! The instance's configuration, as declared in `plugin.json`.

use serde::Deserialize;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError, WebhookRejection};

/// Where the Web API lives unless the instance says otherwise.
const DEFAULT_API_BASE_URL: &str = "https://slack.com/api";

/// A Slack channel instance's settings (`configSchema` of `plugin.json`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SlackConfig {
    /// Keys the HMAC of every request Slack sends (`X-Slack-Signature`).
    pub(crate) signing_secret: SecretString,
    /// The bot user OAuth token (`xoxb-…`) that authorises `chat.postMessage`.
    pub(crate) bot_token: SecretString,
    /// The Web API's base URL, without a trailing slash once read through
    /// [`SlackConfig::api_url`].
    #[serde(default = "default_api_base_url")]
    api_base_url: String,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

impl SlackConfig {
    /// Reads the instance's config, naming the field that is missing or wrong.
    pub(crate) fn load(ctx: &PluginContext) -> Result<Self, PluginError> {
        require_config(ctx)
    }

    /// Reads the instance's config on the webhook path: a config that cannot be read is the
    /// hub's fault, not the caller's, so it is a 500 (Slack retries later) naming the field.
    pub(crate) fn load_for_webhook(ctx: &PluginContext) -> Result<Self, WebhookRejection> {
        Self::load(ctx).map_err(|error| {
            WebhookRejection::internal(format!(
                "the Slack instance's configuration cannot be read: {error}"
            ))
        })
    }

    /// The URL of Web API method `method`, such as `chat.postMessage`.
    pub(crate) fn api_url(&self, method: &str) -> String {
        format!("{}/{method}", self.api_base_url.trim_end_matches('/'))
    }
}
