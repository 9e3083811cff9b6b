//! `tributary plugins connect <instance>`: connects an instance to its account with OAuth 2.0.
//! It asks the plugin manager to start an attempt (`plugins.connect`); for the authorization
//! code grant that answers a consent URL, which a person opens in any browser, on this machine
//! or another, while the command follows the attempt (`plugins.connect_status`, every half
//! second) until the provider has sent the browser back, refused, or the URL expired. A client
//! credentials grant is connected (or refused) in the first answer.
//!
//! Tokens never pass through the command: the plugin manager exchanges the code and keeps
//! them; the answers carry only the scopes granted and who the tokens act for.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tributary_kit::client::{CallError, MeshClient};
use tributary_proto::requests::plugins::{
    AttemptStatus, ConnectAttempt, ConnectRequest, ConnectStatusQuery,
};

use super::print_json;
use super::render::auth::{asked_scopes, connect_command, missing_scopes, span, timestamp};
use crate::outln;

/// How often the attempt is asked after while a person consents.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// How long past the consent URL's expiry the command still waits for the plugin manager to
/// say so (its clock may run a little behind this machine's).
const EXPIRY_GRACE: Duration = Duration::from_secs(5);

/// The exit code when ctrl-c stopped the wait (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// What `plugins connect` was asked.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The instance to connect.
    pub instance_id: String,
    /// Whether to follow the attempt until it ends (`--no-wait` turns it off).
    pub wait: bool,
    /// The longest to wait; until the consent URL expires when absent.
    pub timeout: Option<Duration>,
}

/// Why `plugins connect` ended without a connection. Each says what happened and what to do,
/// in words for the person at the terminal; [`NotConnected::exit_code`] is the process's.
#[derive(Debug, thiserror::Error)]
pub enum NotConnected {
    /// The provider refused, or the code exchange failed.
    #[error("`{instance_id}` was not connected to {provider}: {message}")]
    Failed {
        /// The instance.
        instance_id: String,
        /// The provider.
        provider: String,
        /// The plugin manager's words: what it means and what to do.
        message: String,
    },
    /// Nobody consented before the consent URL expired.
    #[error("the consent URL for `{instance_id}` expired before anyone consented; run `{}` again for a new one", connect_command(.instance_id))]
    Expired {
        /// The instance.
        instance_id: String,
    },
    /// `--timeout` passed while the attempt was still waiting for consent.
    #[error("stopped waiting after {}; the consent URL works until {}, and `tributary plugins info {instance_id}` shows whether it was connected", span(.waited.as_secs().try_into().unwrap_or(i64::MAX)), timestamp(*.until))]
    GaveUp {
        /// The instance.
        instance_id: String,
        /// How long the command waited.
        waited: Duration,
        /// Until when the consent URL still works.
        until: DateTime<Utc>,
    },
    /// Ctrl-C stopped the wait.
    #[error("stopped waiting; the consent URL works until {}, and `tributary plugins info {instance_id}` shows whether it was connected", timestamp(*.until))]
    Interrupted {
        /// The instance.
        instance_id: String,
        /// Until when the consent URL still works.
        until: DateTime<Utc>,
    },
}

impl NotConnected {
    /// The process's exit code: 130 after ctrl-c, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            NotConnected::Interrupted { .. } => ExitCode::from(EXIT_INTERRUPTED),
            _ => ExitCode::FAILURE,
        }
    }
}

/// `plugins connect`: starts the attempt, shows where to consent, follows it (unless
/// `--no-wait`) and reports how it ended. With `json`, the last answer (a `ConnectAttempt`) is
/// printed on standard output and the guidance for the person on standard error.
pub async fn connect(client: &MeshClient, args: Connect, json: bool) -> anyhow::Result<()> {
    let request = client.instance_call(&args.instance_id, ConnectRequest {});
    let first = client.call(&request).await?;
    let asked = first
        .consent_url
        .as_deref()
        .map(asked_scopes)
        .unwrap_or_default();
    let last = if first.status == AttemptStatus::Pending {
        // Listened for before the URL is printed, so a ctrl-c pressed at once is heard.
        let interrupt = args.wait.then(Interrupt::listen);
        let guidance = consent_guidance(&first, args.wait);
        if json {
            eprint!("{guidance}");
        } else {
            crate::out!("{guidance}");
        }
        match interrupt {
            Some(interrupt) => follow(client, first, args.timeout, interrupt).await?,
            None if json => return print_json(&first),
            None => return Ok(()),
        }
    } else {
        first
    };
    if json {
        print_json(&last)?;
    }
    finish(&last, &asked, json)
}

/// What the person is told while the attempt waits for them: the URL to open, the redirect
/// URI the provider must know, until when the URL works.
fn consent_guidance(attempt: &ConnectAttempt, wait: bool) -> String {
    let mut out = String::new();
    let url = attempt.consent_url.as_deref().unwrap_or_default();
    out.push_str(&format!(
        "Connecting `{}` to {}.\n\nOpen this URL in a browser, on this machine or any other:\n\n    {url}\n\n",
        attempt.instance_id, attempt.provider
    ));
    if let Some(redirect) = &attempt.redirect_uri {
        out.push_str(&format!(
            "The provider sends the browser back to {redirect}: it must be registered as a redirect URI of the OAuth app at {}, and reachable from that browser (on a headless server set `oauth.redirect_base_url`).\n",
            attempt.provider
        ));
    }
    let left = (attempt.expires_at - Utc::now()).num_seconds().max(0);
    out.push_str(&format!(
        "The URL works once, until {} (in {}).\n",
        timestamp(attempt.expires_at),
        span(left)
    ));
    if wait {
        out.push_str("Waiting for consent (ctrl-c stops waiting)…\n");
    } else {
        out.push_str(&format!(
            "`tributary plugins info {}` shows when it is connected.\n",
            attempt.instance_id
        ));
    }
    out
}

/// Asks after the attempt every [`POLL_EVERY`] until it is no longer pending; stops at
/// `timeout`, at the URL's expiry, or on ctrl-c. A plugin manager that does not answer for a
/// moment (a restart) is asked again: the attempt is kept in its database.
async fn follow(
    client: &MeshClient,
    first: ConnectAttempt,
    timeout: Option<Duration>,
    mut interrupt: Interrupt,
) -> anyhow::Result<ConnectAttempt> {
    let started = tokio::time::Instant::now();
    let until_expiry = (first.expires_at - Utc::now()).to_std().unwrap_or_default() + EXPIRY_GRACE;
    let limit = timeout.map_or(until_expiry, |t| t.min(until_expiry));
    let gives_up_first = timeout.is_some_and(|t| t < until_expiry);
    let deadline = started + limit;
    let interrupted = interrupt.recv();
    tokio::pin!(interrupted);
    let query = ConnectStatusQuery {
        attempt_id: first.attempt_id,
    };
    // Each ask waits at most a few seconds, so a stuck request never outlives the deadline
    // by much.
    let asker = client.clone().with_timeout(Duration::from_secs(5));
    let mut last = first;
    loop {
        let ask = async {
            tokio::time::sleep(POLL_EVERY).await;
            asker.call(&query).await
        };
        tokio::select! {
            () = &mut interrupted => {
                return Err(NotConnected::Interrupted {
                    instance_id: last.instance_id.clone(),
                    until: last.expires_at,
                }
                .into());
            }
            () = tokio::time::sleep_until(deadline) => {
                if gives_up_first {
                    return Err(NotConnected::GaveUp {
                        instance_id: last.instance_id.clone(),
                        waited: started.elapsed(),
                        until: last.expires_at,
                    }
                    .into());
                }
                last.status = AttemptStatus::Expired;
                return Ok(last);
            }
            answer = ask => match answer {
                Ok(attempt) if attempt.status != AttemptStatus::Pending => return Ok(attempt),
                Ok(attempt) => last = attempt,
                Err(CallError::NotAnswering { .. }) => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
}

/// Ctrl-C (SIGINT), listened for from the moment it is made: until then, and where it cannot
/// be listened for, ctrl-c ends the process as it always does.
struct Interrupt(Option<tokio::signal::unix::Signal>);

impl Interrupt {
    fn listen() -> Self {
        Self(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok())
    }

    /// Resolves at the first ctrl-c; never when none can be heard.
    async fn recv(&mut self) {
        let heard = match &mut self.0 {
            Some(signal) => signal.recv().await.is_some(),
            None => false,
        };
        if !heard {
            std::future::pending::<()>().await;
        }
    }
}

/// Reports how the attempt ended: the connection and its scopes (and any asked for but not
/// granted), or why there is none.
fn finish(attempt: &ConnectAttempt, asked: &[String], json: bool) -> anyhow::Result<()> {
    match attempt.status {
        AttemptStatus::Connected => {
            if !json {
                let who = attempt
                    .connected_as
                    .as_deref()
                    .map(|w| format!(" as {w}"))
                    .unwrap_or_default();
                outln!(
                    "Connected {} to {}{who}.",
                    attempt.instance_id,
                    attempt.provider
                );
                if attempt.scopes.is_empty() {
                    outln!("Scopes granted: none listed by the provider.");
                } else {
                    outln!("Scopes granted: {}", attempt.scopes.join(" "));
                    let missing = missing_scopes(asked, &attempt.scopes);
                    if !missing.is_empty() {
                        outln!(
                            "Asked for but not granted: {} (what needs them will be refused; an administrator at {} may have to allow them, then connect again)",
                            missing.join(" "),
                            attempt.provider
                        );
                    }
                }
            }
            Ok(())
        }
        AttemptStatus::Failed => Err(NotConnected::Failed {
            instance_id: attempt.instance_id.clone(),
            provider: attempt.provider.clone(),
            message: attempt
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "the provider gave no reason".to_owned()),
        }
        .into()),
        AttemptStatus::Expired => Err(NotConnected::Expired {
            instance_id: attempt.instance_id.clone(),
        }
        .into()),
        // `follow` returns only once the attempt is no longer pending; a pending one here is
        // a client credentials answer that should not be, reported as it is.
        AttemptStatus::Pending => Err(anyhow::anyhow!(
            "the plugin manager answered that connecting `{}` is still pending",
            attempt.instance_id
        )),
    }
}
