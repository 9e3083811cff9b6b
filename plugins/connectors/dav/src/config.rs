//! The instance configuration, as `plugin.json`'s `configSchema` describes it.

use serde::Deserialize;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError};
use url::Url;

/// One instance's settings. `Debug` never shows the password (a [`SecretString`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DavConfig {
    /// Where discovery starts: a server root, a principal, a home set or one collection.
    pub url: String,
    /// The user name for basic authentication, if the server asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// The password for basic authentication; never logged.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Collection hrefs or display names to sync; all when absent.
    #[serde(default)]
    pub collections: Option<Vec<String>>,
    /// Read by the connector service to schedule syncs; accepted here so that a config the
    /// schema allows is never refused, and otherwise ignored.
    #[serde(default)]
    #[allow(dead_code)]
    pub schedule: Option<String>,
}

/// The configuration read and checked: the URL parsed.
#[derive(Debug)]
pub(crate) struct CheckedConfig {
    /// Where discovery starts.
    pub url: Url,
    /// The user name and password, when the server asks for them.
    pub username: Option<String>,
    /// The password; never logged.
    pub password: Option<SecretString>,
    /// Collection hrefs or display names to sync; all when absent.
    pub collections: Option<Vec<String>>,
}

impl CheckedConfig {
    /// Reads the instance's config, naming the field that is missing or wrong.
    pub fn from_context(ctx: &PluginContext) -> Result<Self, PluginError> {
        let config: DavConfig = require_config(ctx)?;
        let mut url =
            Url::parse(config.url.trim()).map_err(|e| config_error("url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(config_error(
                "url",
                "must be an http or https URL with a host".to_owned(),
            ));
        }
        if url.password().is_some() {
            return Err(config_error(
                "url",
                "must not carry a password; set `password` instead, which is kept secret"
                    .to_owned(),
            ));
        }
        // A user name in the URL (`https://ada@dav.example.com/`) is taken as `username`.
        let url_username = Some(url.username().to_owned()).filter(|u| !u.is_empty());
        let _ = url.set_username("");
        let username = config.username.filter(|u| !u.is_empty()).or(url_username);
        if username.is_none() && config.password.is_some() {
            return Err(config_error(
                "username",
                "is required when a password is given".to_owned(),
            ));
        }
        if let Some(collections) = &config.collections {
            if collections.iter().any(|c| c.trim().is_empty()) {
                return Err(config_error(
                    "collections",
                    "must not contain an empty name".to_owned(),
                ));
            }
        }
        Ok(CheckedConfig {
            url,
            username,
            password: config.password,
            collections: config.collections,
        })
    }
}

/// A [`PluginError::Config`] for `field`.
pub(crate) fn config_error(field: &str, message: String) -> PluginError {
    PluginError::Config {
        field: field.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tributary_plugin_sdk::Grants;

    use super::*;

    fn check(config: serde_json::Value) -> Result<CheckedConfig, PluginError> {
        let ctx = PluginContext::builder("tributary.dav", "i", Grants::default())
            .config(config)
            .build()
            .unwrap();
        CheckedConfig::from_context(&ctx)
    }

    fn failing_field(config: serde_json::Value) -> String {
        match check(config) {
            Err(PluginError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_config_names_its_field() {
        assert_eq!(failing_field(json!({})), "url");
        assert_eq!(failing_field(json!({ "url": "not a url" })), "url");
        assert_eq!(failing_field(json!({ "url": "ftp://example.com/" })), "url");
        assert_eq!(
            failing_field(json!({ "url": "https://dav.example.com/", "password": "p" })),
            "username"
        );
        assert_eq!(
            failing_field(json!({ "url": "https://ada:secret@dav.example.com/" })),
            "url"
        );
        assert_eq!(
            failing_field(json!({ "url": "https://dav.example.com/", "collections": [""] })),
            "collections"
        );
        assert_eq!(
            failing_field(json!({ "url": "https://dav.example.com/", "colections": [] })),
            "colections"
        );
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let config = check(json!({
            "url": "https://dav.example.com/", "username": "ada", "password": "hunter2",
            "schedule": "15m"
        }))
        .unwrap();
        assert_eq!(config.username.as_deref(), Some("ada"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_user_name_in_the_url_is_the_username() {
        let config =
            check(json!({ "url": "https://ada@dav.example.com/dav/", "password": "p" })).unwrap();
        assert_eq!(config.username.as_deref(), Some("ada"));
        assert_eq!(config.url.as_str(), "https://dav.example.com/dav/");
    }
}
