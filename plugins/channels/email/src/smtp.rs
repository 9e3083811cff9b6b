//! One SMTP conversation per message, retried when the failure may pass.

// SMTP is not HTTP: lettre opens the connection itself, outside PluginHttp, which is why the
// lint refuses its transport to the other built-in plugins (plugins/channels/clippy.toml).
// This module is allowed it because sending mail is the e-mail channel's job: lib.rs checks
// the host and port against the grants before, and `send` hands lettre only addresses the
// SDK's egress rules passed (PluginHttp::resolve_checked).
#![allow(clippy::disallowed_types)]

use std::net::IpAddr;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tributary_plugin_sdk::secrecy::ExposeSecret;
use tributary_plugin_sdk::{with_retry, PluginError, PluginHttp, RetryPolicy};

use crate::config::{Server, Settings, TlsMode};

/// Three attempts, the second after about half a second, the third after about one: enough
/// for a greylisting or momentarily busy server, short enough for the send request. The
/// channel service may retry a failed send again later.
pub(crate) const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial_backoff: Duration::from_millis(500),
    max_backoff: Duration::from_secs(5),
    max_retry_after: Duration::from_secs(5),
};

/// Sends `email` to the server in `settings`, retrying transient failures.
///
/// Each attempt resolves the server's host through `http` ([`PluginHttp::resolve_checked`]),
/// which keeps only the addresses the instance may reach (no loopback, private, link-local or
/// metadata address unless the operator allows private targets and the grant names the host
/// exactly), and connects to those addresses, in order, never to the name: a second lookup
/// cannot lead elsewhere (DNS rebinding). TLS still verifies the certificate against the
/// configured host name.
pub(crate) async fn send(
    http: &PluginHttp,
    settings: &Settings,
    email: &Message,
) -> Result<(), PluginError> {
    let server = &settings.server;
    let tls = tls(server)?;
    let what = format!("SMTP {}:{}", server.host, server.port);
    with_retry(RETRY, || async {
        let addresses = http
            .resolve_checked(&server.host, server.port)
            .await
            .map_err(|error| match error {
                PluginError::Transient(reason) => {
                    PluginError::Transient(format!("{what}: {reason}"))
                }
                PluginError::Other(reason) => PluginError::Other(format!("{what}: {reason}")),
                other => other,
            })?;
        let mut unreachable = None;
        for address in addresses {
            let at = at_address(&what, &server.host, address.ip());
            let transport = transport(settings, address.ip(), tls.clone());
            match tokio::time::timeout(settings.timeout, transport.send(email.clone())).await {
                Ok(Ok(_response)) => return Ok(()),
                // Not reached at this address: the next one may answer, as a connection to
                // the name would have tried them all.
                Ok(Err(error)) if is_unreachable(&error) => {
                    unreachable = Some(map_error(&at, &error));
                }
                Ok(Err(error)) => return Err(map_error(&at, &error)),
                Err(_elapsed) => {
                    return Err(PluginError::Transient(format!(
                        "{at}: no answer within {} s",
                        settings.timeout.as_secs()
                    )))
                }
            }
        }
        // `resolve_checked` answers at least one address.
        Err(unreachable
            .unwrap_or_else(|| PluginError::Transient(format!("{what}: no address to connect to"))))
    })
    .await
}

/// `what`, with the address connected to when the host is a name.
fn at_address(what: &str, host: &str, address: IpAddr) -> String {
    if host.parse::<IpAddr>() == Ok(address) {
        what.to_owned()
    } else {
        format!("{what} (at {address})")
    }
}

/// How the connection is protected; TLS verifies the certificate against the host name.
fn tls(server: &Server) -> Result<Tls, PluginError> {
    Ok(match server.tls {
        TlsMode::None => Tls::None,
        TlsMode::StartTls => Tls::Required(tls_parameters(&server.host)?),
        TlsMode::Implicit => Tls::Wrapper(tls_parameters(&server.host)?),
    })
}

/// A transport to `address`, the checked address of the server's host: lettre connects to
/// the address it is given, so it is handed the address, not the name, and resolves nothing.
fn transport(settings: &Settings, address: IpAddr, tls: Tls) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string())
        .port(settings.server.port)
        .tls(tls)
        .timeout(Some(settings.timeout));
    if let Some((user, password)) = &settings.credentials {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    builder.build()
}

fn tls_parameters(host: &str) -> Result<TlsParameters, PluginError> {
    TlsParameters::new(host.to_owned())
        .map_err(|e| PluginError::Other(format!("cannot set up TLS for `{host}`: {e}")))
}

/// Whether `error` says the server was not reached (refused, reset, unreachable, a connect
/// timeout): no SMTP reply, no TLS failure, nothing of lettre's own.
fn is_unreachable(error: &lettre::transport::smtp::Error) -> bool {
    !(error.is_transient()
        || error.is_permanent()
        || error.is_tls()
        || error.is_client()
        || error.is_response())
}

/// 4xx replies, refused connections, resets and timeouts may pass; a 5xx reply, a TLS failure
/// or a server without STARTTLS will not.
fn map_error(what: &str, error: &lettre::transport::smtp::Error) -> PluginError {
    if error.is_transient() || error.is_timeout() {
        PluginError::Transient(format!("{what}: {error}"))
    } else if error.is_permanent() {
        PluginError::Other(format!("{what} refused the message: {error}"))
    } else if error.is_tls() || error.is_client() || error.is_response() {
        PluginError::Other(format!("{what}: {error}"))
    } else {
        // Connection and network errors: refused, reset, unreachable.
        PluginError::Transient(format!("{what}: {error}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_connects_to_the_checked_address_not_the_name() {
        let settings = Settings {
            server: Server {
                host: "mail.example.com".to_owned(),
                port: 587,
                tls: TlsMode::StartTls,
            },
            credentials: None,
            from: "a@example.com".parse().unwrap(),
            timeout: Duration::from_secs(5),
        };
        let protection = tls(&settings.server).unwrap();
        let shown = format!(
            "{:?}",
            transport(&settings, "93.184.216.34".parse().unwrap(), protection)
        );
        assert!(shown.contains("server: \"93.184.216.34\""), "{shown}");
        assert!(!shown.contains("mail.example.com"), "{shown}");
        // The certificate is verified against the name.
        let Tls::Required(parameters) = tls(&settings.server).unwrap() else {
            panic!("STARTTLS is required");
        };
        assert_eq!(parameters.domain(), "mail.example.com");
    }

    #[test]
    fn errors_name_the_address_connected_to_when_the_host_is_a_name() {
        let at = |host: &str, ip: &str| at_address("SMTP x:25", host, ip.parse().unwrap());
        assert_eq!(
            at("mail.example.com", "93.184.216.34"),
            "SMTP x:25 (at 93.184.216.34)"
        );
        assert_eq!(at("127.0.0.1", "127.0.0.1"), "SMTP x:25");
        assert_eq!(at("::1", "::1"), "SMTP x:25");
    }
}
