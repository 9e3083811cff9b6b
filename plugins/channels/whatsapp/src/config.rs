//! The instance's configuration, as declared in `plugin.json`.

use serde::Deserialize;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError};

/// The Graph API, version included, unless `apiBaseUrl` says otherwise.
const DEFAULT_API_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// The configuration of one WhatsApp instance: one business phone number.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WhatsAppConfig {
    /// The business phone number's id: messages are sent from it, and webhook changes for
    /// other numbers are ignored.
    pub phone_number_id: String,
    /// The bearer token of the Cloud API.
    pub access_token: SecretString,
    /// The app secret that signs every webhook (`X-Hub-Signature-256`).
    pub app_secret: SecretString,
    /// What Meta's subscription handshake must present as `hub.verify_token`.
    pub verify_token: SecretString,
    /// The Graph API's base URL, without a trailing slash once loaded.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

impl WhatsAppConfig {
    /// Reads and checks the instance's configuration.
    pub(crate) fn load(ctx: &PluginContext) -> Result<Self, PluginError> {
        let mut config: WhatsAppConfig = require_config(ctx)?;
        // The id becomes a path segment of every send: letters and digits only, so it can
        // never reshape the URL.
        if config.phone_number_id.is_empty()
            || !config
                .phone_number_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return Err(PluginError::Config {
                field: "phoneNumberId".to_owned(),
                message: "must be the phone number's id (digits), not the number itself".to_owned(),
            });
        }
        config.api_base_url = config.api_base_url.trim_end_matches('/').to_owned();
        Ok(config)
    }
}
