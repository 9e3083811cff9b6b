//! The instance's configuration, as declared in `plugin.json`.

use serde::Deserialize;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError};

/// Where the Messages API lives unless `apiBaseUrl` says otherwise.
const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";

/// The configuration of one Twilio SMS instance.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TwilioConfig {
    /// The account SID (`AC…`): the user of the Messages API's basic auth, a segment of its
    /// path, and the `AccountSid` every webhook must carry.
    pub account_sid: String,
    /// Signs every webhook and is the password of the Messages API's basic auth.
    pub auth_token: SecretString,
    /// The number messages are sent from, E.164.
    pub from_number: String,
    /// The REST API's base URL, without a trailing slash once loaded.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

impl TwilioConfig {
    /// Reads and checks the instance's configuration.
    pub(crate) fn load(ctx: &PluginContext) -> Result<Self, PluginError> {
        let mut config: TwilioConfig = require_config(ctx)?;
        // The SID becomes a path segment of every API call: letters and digits only, so it
        // can never reshape the URL.
        if config.account_sid.is_empty()
            || !config
                .account_sid
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return Err(PluginError::Config {
                field: "accountSid".to_owned(),
                message: "must be the account SID, letters and digits only (AC…)".to_owned(),
            });
        }
        if config.from_number.trim().is_empty() {
            return Err(PluginError::Config {
                field: "fromNumber".to_owned(),
                message: "must be the Twilio number to send from, such as +15557654321".to_owned(),
            });
        }
        config.api_base_url = config.api_base_url.trim_end_matches('/').to_owned();
        Ok(config)
    }
}
