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
        // Basic authentication sends the password with every request: over plain http anyone
        // on the path reads it. Only a server on this machine may be reached so.
        if config.password.is_some() && in_clear(&url) {
            return Err(config_error(
                "url",
                format!(
                    "is http:// to {}, which would send the password in clear with every request; use https:// (plain http is allowed only to a loopback address: localhost, 127.0.0.0/8, ::1)",
                    url.host_str().unwrap_or_default()
                ),
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

/// Whether a request to `url` crosses the network unencrypted: plain `http` to a host that
/// is not this machine. Basic authentication is never sent so.
pub(crate) fn in_clear(url: &Url) -> bool {
    url.scheme() == "http" && !is_loopback(url)
}

/// Whether `url`'s host is this machine: `localhost` (or a name under it), 127.0.0.0/8 or
/// `::1`. Any other name may resolve anywhere.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
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
    fn a_password_over_plain_http_is_refused_unless_the_server_is_loopback() {
        // The attack: a config sending the password in clear across the network.
        for url in [
            "http://dav.example.com/",
            "http://10.0.0.5:5232/",
            "http://[fe80::1]/",
            "http://localhost.example.com/",
        ] {
            match check(json!({ "url": url, "username": "ada", "password": "hunter2" })) {
                Err(PluginError::Config { field, message }) => {
                    assert_eq!(field, "url", "{message}");
                    assert!(message.contains("https://"), "{message}");
                    assert!(!message.contains("hunter2"), "{message}");
                }
                other => panic!("{url}: expected a config error, got {other:?}"),
            }
        }
        for url in [
            "https://dav.example.com/",
            "http://127.0.0.1:5232/",
            "http://127.8.9.10/",
            "http://[::1]:5232/",
            "http://localhost:5232/",
            "http://LOCALHOST./",
        ] {
            let config = check(json!({ "url": url, "username": "ada", "password": "hunter2" }));
            assert!(config.is_ok(), "{url}: {config:?}");
        }
        // Without a password nothing secret is sent: any http server may be read.
        assert!(check(json!({ "url": "http://dav.example.com/" })).is_ok());
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
