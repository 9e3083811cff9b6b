//! The instance's configuration, as `plugin.json` declares it.

use serde::Deserialize;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_plugin_sdk::Url;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError};

/// The config keys of `tributary.webhook`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Config {
    /// `whsec_` and Base64: verifies inbound deliveries and signs outbound ones.
    pub(crate) secret: SecretString,
    /// Where outbound messages are POSTed; `None` for a channel that only receives.
    #[serde(default)]
    pub(crate) outbound_url: Option<String>,
}

impl Config {
    /// The instance's config.
    pub(crate) fn of(ctx: &PluginContext) -> Result<Self, PluginError> {
        require_config(ctx)
    }

    /// The HMAC key the secret stands for; a secret that is not Base64 is a config error
    /// that never repeats the secret.
    pub(crate) fn key(&self) -> Result<Vec<u8>, PluginError> {
        standard_webhooks::key_of(&self.secret).ok_or_else(|| PluginError::Config {
            field: "secret".to_owned(),
            message: "not a Standard Webhooks secret (`whsec_` followed by Base64)".to_owned(),
        })
    }

    /// The URL outbound messages go to, checked to be an absolute `http(s)` URL.
    pub(crate) fn outbound_url(&self) -> Result<Url, PluginError> {
        let text = self
            .outbound_url
            .as_deref()
            .ok_or_else(|| PluginError::Config {
                field: "outboundUrl".to_owned(),
                message: "not set: this instance only receives; set `outboundUrl` to send"
                    .to_owned(),
            })?;
        let url = Url::parse(text).map_err(|e| PluginError::Config {
            field: "outboundUrl".to_owned(),
            message: format!("not a URL: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(PluginError::Config {
                field: "outboundUrl".to_owned(),
                message: "must be an http:// or https:// URL with a host".to_owned(),
            });
        }
        Ok(url)
    }
}
