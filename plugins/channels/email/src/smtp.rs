//! One SMTP conversation per message, retried when the failure may pass.

// SMTP is not HTTP: lettre opens the connection itself, outside PluginHttp's address and
// port checks, which is why the lint refuses its transport to the other built-in plugins
// (plugins/channels/clippy.toml). This module is allowed it because sending mail is the
// e-mail channel's job; lib.rs checks the host and port against the grants before.
#![allow(clippy::disallowed_types)]

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tributary_plugin_sdk::secrecy::ExposeSecret;
use tributary_plugin_sdk::{with_retry, PluginError, RetryPolicy};

use crate::config::{Settings, TlsMode};

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
pub(crate) async fn send(settings: &Settings, email: &Message) -> Result<(), PluginError> {
    let transport = transport(settings)?;
    let server = &settings.server;
    let what = format!("SMTP {}:{}", server.host, server.port);
    with_retry(RETRY, || async {
        match tokio::time::timeout(settings.timeout, transport.send(email.clone())).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(error)) => Err(map_error(&what, &error)),
            Err(_elapsed) => Err(PluginError::Transient(format!(
                "{what}: no answer within {} s",
                settings.timeout.as_secs()
            ))),
        }
    })
    .await
}

fn transport(settings: &Settings) -> Result<AsyncSmtpTransport<Tokio1Executor>, PluginError> {
    let server = &settings.server;
    let tls = match server.tls {
        TlsMode::None => Tls::None,
        TlsMode::StartTls => Tls::Required(tls_parameters(&server.host)?),
        TlsMode::Implicit => Tls::Wrapper(tls_parameters(&server.host)?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.as_str())
        .port(server.port)
        .tls(tls)
        .timeout(Some(settings.timeout));
    if let Some((user, password)) = &settings.credentials {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

fn tls_parameters(host: &str) -> Result<TlsParameters, PluginError> {
    TlsParameters::new(host.to_owned())
        .map_err(|e| PluginError::Other(format!("cannot set up TLS for `{host}`: {e}")))
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
