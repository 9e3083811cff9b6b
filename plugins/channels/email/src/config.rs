//! The instance's configuration, as `plugin.json` declares it, and the SMTP server URL read
//! into host, port and TLS mode.

use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError};
use url::Url;

/// Seconds one SMTP conversation may take when `timeoutSecs` is not set.
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The config keys of `tributary.email`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Config {
    /// `smtp://host:587`, `smtps://host:465` or `smtp://host:25?tls=none`.
    server: String,
    /// The SMTP login, if the server wants one.
    #[serde(default)]
    username: Option<String>,
    /// The SMTP password.
    #[serde(default)]
    password: Option<SecretString>,
    /// The sender: `address` or `Name <address>`.
    from: String,
    /// Seconds one SMTP conversation may take.
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// Plain connection upgraded with STARTTLS; a server that does not offer it is refused.
    StartTls,
    /// TLS from the first byte (`smtps`).
    Implicit,
    /// No encryption at all (`?tls=none`), for a relay on a trusted network.
    None,
}

/// The SMTP server, read from `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    /// The host name or IP address, without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: TlsMode,
}

/// Everything a send needs, checked.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) server: Server,
    pub(crate) credentials: Option<(String, SecretString)>,
    pub(crate) from: Mailbox,
    pub(crate) timeout: Duration,
}

impl Settings {
    /// Reads and checks the instance's config; every problem names its field.
    pub(crate) fn of(ctx: &PluginContext) -> Result<Self, PluginError> {
        let config: Config = require_config(ctx)?;
        let server = parse_server(&config.server)?;
        let from: Mailbox = config
            .from
            .trim()
            .parse()
            .map_err(|e| PluginError::Config {
                field: "from".to_owned(),
                message: format!("not an address or `Name <address>`: {e}"),
            })?;
        let credentials = match (config.username, config.password) {
            (Some(user), password) if !user.is_empty() => Some((
                user,
                password.unwrap_or_else(|| SecretString::from(String::new())),
            )),
            (_, Some(_)) => {
                return Err(PluginError::Config {
                    field: "username".to_owned(),
                    message: "required when `password` is set".to_owned(),
                })
            }
            _ => None,
        };
        if credentials.is_some() && server.tls == TlsMode::None {
            return Err(PluginError::Config {
                field: "server".to_owned(),
                message: "`tls=none` would send the password unencrypted; use STARTTLS \
                          (smtp://) or implicit TLS (smtps://) with a login"
                    .to_owned(),
            });
        }
        let timeout = match config.timeout_secs {
            Some(0) => {
                return Err(PluginError::Config {
                    field: "timeoutSecs".to_owned(),
                    message: "must be at least 1".to_owned(),
                })
            }
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        };
        Ok(Settings {
            server,
            credentials,
            from,
            timeout,
        })
    }
}

/// Reads `smtp://host[:port][?tls=none|starttls]` or `smtps://host[:port]`. Default ports:
/// 587 for STARTTLS, 465 for implicit TLS, 25 without TLS.
pub(crate) fn parse_server(text: &str) -> Result<Server, PluginError> {
    let bad = |message: String| PluginError::Config {
        field: "server".to_owned(),
        message,
    };
    let url = Url::parse(text.trim()).map_err(|e| {
        bad(format!(
            "not a URL ({e}); write smtp://host:587, smtps://host:465 or smtp://host:25?tls=none"
        ))
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host".to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if !url.username().is_empty() || url.password().is_some() {
        // The server URL is not a secret field; a password in it would be shown and logged.
        return Err(bad(
            "must not carry a login; set `username` and `password` instead".to_owned(),
        ));
    }
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(bad("must have no path or fragment".to_owned()));
    }
    let mut tls_param = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "tls" if tls_param.is_none() => tls_param = Some(value.into_owned()),
            other => {
                return Err(bad(format!(
                    "unknown or repeated query parameter `{other}`; only `tls=none` or \
                     `tls=starttls` is understood"
                )))
            }
        }
    }
    let tls = match (url.scheme(), tls_param.as_deref()) {
        ("smtp", None | Some("starttls" | "required")) => TlsMode::StartTls,
        ("smtp", Some("none")) => TlsMode::None,
        ("smtps", None) => TlsMode::Implicit,
        ("smtp" | "smtps", Some(other)) => {
            return Err(bad(format!(
                "`tls={other}` is not understood with {}://; use `tls=none` with smtp:// or \
                 leave it out",
                url.scheme()
            )))
        }
        (scheme, _) => {
            return Err(bad(format!(
                "the scheme `{scheme}` is not smtp:// or smtps://"
            )))
        }
    };
    let port = url.port().unwrap_or(default_port(tls));
    Ok(Server { host, port, tls })
}

/// The port an SMTP URL without one means, for its TLS mode.
pub(crate) fn default_port(tls: TlsMode) -> u16 {
    match tls {
        TlsMode::StartTls => 587,
        TlsMode::Implicit => 465,
        TlsMode::None => 25,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16, tls: TlsMode) -> Server {
        Server {
            host: host.to_owned(),
            port,
            tls,
        }
    }

    #[test]
    fn server_urls_give_host_port_and_tls_mode() {
        let cases = [
            (
                "smtp://mail.example.com:587",
                server("mail.example.com", 587, TlsMode::StartTls),
            ),
            (
                "smtp://mail.example.com",
                server("mail.example.com", 587, TlsMode::StartTls),
            ),
            (
                "smtps://mail.example.com",
                server("mail.example.com", 465, TlsMode::Implicit),
            ),
            (
                "smtps://mail.example.com:2465/",
                server("mail.example.com", 2465, TlsMode::Implicit),
            ),
            (
                "smtp://relay.lan:25?tls=none",
                server("relay.lan", 25, TlsMode::None),
            ),
            (
                "smtp://relay.lan?tls=none",
                server("relay.lan", 25, TlsMode::None),
            ),
            (
                "smtp://relay.lan:2525?tls=starttls",
                server("relay.lan", 2525, TlsMode::StartTls),
            ),
            ("smtp://[::1]:25?tls=none", server("::1", 25, TlsMode::None)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_server(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn bad_server_urls_are_config_errors_naming_server() {
        for text in [
            "mail.example.com:587",
            "http://mail.example.com",
            "smtps://mail.example.com?tls=none",
            "smtp://mail.example.com?tls=maybe",
            "smtp://mail.example.com?port=1",
            "smtp://user:pw@mail.example.com",
            "smtp://mail.example.com/inbox",
            "smtp://",
        ] {
            match parse_server(text) {
                Err(PluginError::Config { field, message }) => {
                    assert_eq!(field, "server", "{text}: {message}");
                    assert!(!message.contains("pw@"), "{message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
