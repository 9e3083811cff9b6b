//! Connecting an instance: `plugins.connect` makes the consent URL (its `state` and PKCE
//! verifier kept here, the state only as its SHA-256, the verifier sealed), the provider sends
//! the person back to `/oauth/callback` ([`super::callback`]) with a code, which is exchanged
//! once; `plugins.connect_status` tells the waiting CLI how it ended. A state works once,
//! until it expires, and only if this hub issued it.
//!
//! For `client_credentials`, connecting is fetching the first token at once.

use chrono::Utc;
use oauth2::{CsrfToken, PkceCodeChallenge};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::oauth::Grant;
use tributary_proto::requests::plugins::{AttemptStatus, ConnectAttempt, ConnectFailure};
use uuid::Uuid;

use super::provider::{self, InstanceProvider};
use super::store::{self as oauth_store, ConsentRow, NewConsent};
use super::token_client::{IssuedTokens, TokenFailure, TokenGrant};
use super::{ACCESS_TOKEN_FIELD, REFRESH_TOKEN_FIELD};
use crate::actor::Actor;
use crate::error::RegistryError;
use crate::manager::PluginManager;
use crate::store;
use crate::vault::secret_context;

/// What the callback was given: the query the provider redirected with.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackQuery {
    /// The code, on consent.
    pub code: Option<String>,
    /// The state the consent URL carried.
    pub state: Option<String>,
    /// The provider's error code, on a refusal.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

/// How a callback ended, for the page the person sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The state is missing, unknown, used or expired: nothing was done (400).
    Refused(String),
    /// The attempt ended; it says how.
    Ended(ConnectAttempt),
}

fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// The context the PKCE verifier of an attempt is sealed under.
fn verifier_context(attempt_id: Uuid) -> String {
    format!("oauth-consent\u{0}{attempt_id}")
}

/// What a provider's refusal means, in plain words, with its own words after.
pub fn plain_words(
    provider: &str,
    code: &str,
    description: Option<&str>,
    redirect_uri: &str,
) -> String {
    let meaning = match code {
        "access_denied" => "access denied: the person declined the consent, or a policy of the account refused it".to_owned(),
        "redirect_uri_mismatch" | "bad_redirect_uri" | "oauth_authorization_url_mismatch" | "invalid_redirect_uri" => format!(
            "wrong redirect URI: `{provider}` does not have {redirect_uri} registered for this client; register it with the provider, or set oauth.redirect_base_url to the base of the one registered"
        ),
        "invalid_scope" => format!("scope refused: `{provider}` does not grant the scopes asked for to this client"),
        "invalid_client" | "unauthorized_client" | "incorrect_client_credentials" | "invalid_client_id" | "bad_client_secret" => format!(
            "the client was refused: check the client id and secret in oauth.providers.{provider} (or the instance's own)"
        ),
        "consent_required" | "interaction_required" | "login_required" => "the person must sign in and consent again".to_owned(),
        "invalid_grant" | "bad_verification_code" | "invalid_code" => "the code was refused (used already, expired, or its PKCE verifier did not match); connect again".to_owned(),
        "temporarily_unavailable" | "server_error" => format!("`{provider}` is failing for now; try again later"),
        other => format!("`{provider}` refused: {other}"),
    };
    match description.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => format!("{meaning} ({provider} said: {d})"),
        None => meaning,
    }
}

impl PluginManager {
    /// Starts connecting `instance_id` to its account: the consent URL for
    /// `authorization_code`, the first token at once for `client_credentials`.
    pub async fn connect(
        &self,
        instance_id: &str,
        actor: &Actor,
    ) -> Result<ConnectAttempt, RegistryError> {
        let mut tx = self.pool().begin().await?;
        let row = self.lock_live(&mut tx, instance_id).await?;
        let secrets = self.secrets_of(&mut tx, instance_id).await?;
        let settings = self.oauth();
        let resolved = provider::resolve(settings, &row, &secrets)?;
        tx.commit().await?;
        match resolved.auth.grant {
            Grant::ClientCredentials => self.connect_client(&resolved, instance_id, actor).await,
            Grant::AuthorizationCode => self.start_consent(&resolved, instance_id, actor).await,
        }
    }

    async fn start_consent(
        &self,
        resolved: &InstanceProvider,
        instance_id: &str,
        actor: &Actor,
    ) -> Result<ConnectAttempt, RegistryError> {
        let settings = self.oauth();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random();
        let attempt_id = Uuid::now_v7();
        let redirect_uri = settings.redirect_uri.clone();
        let Some(mut url) = resolved.endpoints.authorization_url.clone() else {
            return Err(RegistryError::ProviderSetup(
                tributary_proto::oauth::ProviderSetupError {
                    key: format!(
                        "oauth.providers.{}.authorization_url",
                        resolved.profile.name
                    ),
                    message: "the provider has no authorization endpoint".into(),
                },
            ));
        };
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &resolved.client.id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", state.secret())
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", challenge.method().as_str());
            for (name, value) in resolved.profile.authorization_query(&resolved.auth) {
                query.append_pair(&name, &value);
            }
        }
        let expires_at = Utc::now()
            + chrono::Duration::from_std(settings.config.consent_ttl()).unwrap_or_default();
        let sealed = self
            .key()
            .seal(verifier.secret(), &verifier_context(attempt_id));
        let mut tx = self.pool().begin().await?;
        let row = self.lock_live(&mut tx, instance_id).await?;
        oauth_store::insert_consent(
            &mut tx,
            &NewConsent {
                attempt_id,
                state_hash: &state_hash(state.secret()),
                instance_id,
                provider: &resolved.profile.name,
                redirect_uri: &redirect_uri,
                verifier: &sealed,
                // The established name only: the claim is in the audit entry of the start.
                actor: actor.name(),
                expires_at,
            },
        )
        .await?;
        store::audit(
            &mut tx,
            actor,
            "oauth_connect_started",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "provider": resolved.profile.name, "attempt_id": attempt_id,
                    "scopes": resolved.profile.consent_scopes(&resolved.auth) }),
        )
        .await?;
        self.commit(tx).await?;
        Ok(ConnectAttempt {
            attempt_id,
            instance_id: instance_id.to_owned(),
            provider: resolved.profile.name.clone(),
            status: AttemptStatus::Pending,
            consent_url: Some(url.to_string()),
            redirect_uri: Some(redirect_uri),
            expires_at,
            scopes: Vec::new(),
            connected_as: None,
            error: None,
        })
    }

    async fn connect_client(
        &self,
        resolved: &InstanceProvider,
        instance_id: &str,
        actor: &Actor,
    ) -> Result<ConnectAttempt, RegistryError> {
        let scope = resolved.profile.scope_value(&resolved.auth.scopes);
        let issued = self
            .request_with_retries(resolved, TokenGrant::ClientCredentials { scope })
            .await;
        let attempt_id = Uuid::now_v7();
        let mut attempt = ConnectAttempt {
            attempt_id,
            instance_id: instance_id.to_owned(),
            provider: resolved.profile.name.clone(),
            status: AttemptStatus::Connected,
            consent_url: None,
            redirect_uri: None,
            expires_at: Utc::now(),
            scopes: Vec::new(),
            connected_as: None,
            error: None,
        };
        match issued {
            Ok(issued) => {
                let (scopes, connected_as) = self
                    .store_connection(resolved, instance_id, issued, actor, attempt_id)
                    .await?;
                attempt.scopes = scopes;
                attempt.connected_as = connected_as;
            }
            Err(failure) => {
                attempt.status = AttemptStatus::Failed;
                attempt.error = Some(self.failure_of(resolved, &failure));
                self.audit_connect_failed(
                    instance_id,
                    &resolved.profile.name,
                    attempt.error.as_ref(),
                    actor,
                )
                .await?;
            }
        }
        Ok(attempt)
    }

    fn failure_of(&self, resolved: &InstanceProvider, failure: &TokenFailure) -> ConnectFailure {
        let (code, description) = match failure {
            TokenFailure::Refused {
                code, description, ..
            } => (code.clone(), description.clone()),
            TokenFailure::Unreachable(m) => ("unreachable".to_owned(), Some(m.clone())),
            TokenFailure::Unreadable(m) => ("unreadable_answer".to_owned(), Some(m.clone())),
        };
        ConnectFailure {
            message: plain_words(
                &resolved.profile.name,
                &code,
                description.as_deref(),
                &self.oauth().redirect_uri,
            ),
            code,
        }
    }

    async fn audit_connect_failed(
        &self,
        instance_id: &str,
        provider: &str,
        error: Option<&ConnectFailure>,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let mut conn = self.pool().acquire().await?;
        let plugin_id = store::instance(self.pool(), instance_id)
            .await?
            .map(|r| r.plugin_id);
        store::audit(
            &mut conn,
            actor,
            "oauth_connect_failed",
            plugin_id.as_deref(),
            Some(instance_id),
            json!({ "provider": provider, "error": error.map(|e| &e.code),
                    "message": error.map(|e| &e.message) }),
        )
        .await?;
        Ok(())
    }

    /// Seals what the provider issued and records the connection, in one transaction under
    /// the instance's token lock: the tokens, the scopes and expiry, the instance back to
    /// running if it needed a reconnect, the `PluginConnected` event and the audit entry.
    /// Answers the scopes granted and who they act for.
    async fn store_connection(
        &self,
        resolved: &InstanceProvider,
        instance_id: &str,
        issued: IssuedTokens,
        actor: &Actor,
        attempt_id: Uuid,
    ) -> Result<(Vec<String>, Option<String>), RegistryError> {
        let scopes = issued
            .scopes
            .clone()
            .unwrap_or_else(|| resolved.profile.consent_scopes(&resolved.auth));
        let expires_at = super::broker::expires_at_of(&issued);
        let mut tx = self.pool().begin().await?;
        oauth_store::lock_connection(&mut tx, instance_id).await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        self.seal_tokens(
            &mut tx,
            instance_id,
            &issued.access_token,
            issued.refresh_token.as_ref(),
            true,
        )
        .await?;
        oauth_store::save_connected(
            &mut tx,
            instance_id,
            &resolved.profile.name,
            &scopes,
            issued.connected_as.as_deref(),
            expires_at,
        )
        .await?;
        if row.state == InstanceState::NeedsReconnect {
            row.state = InstanceState::Enabled;
            row.last_error = None;
            store::save_instance(&mut tx, &row).await?;
        }
        let asked = resolved.profile.consent_scopes(&resolved.auth);
        // The offline scope shows as the refresh token (Microsoft leaves it out of `scope`).
        let offline = resolved
            .profile
            .offline_scope
            .as_ref()
            .filter(|_| issued.refresh_token.is_some());
        let missing: Vec<&String> = asked
            .iter()
            .filter(|s| !scopes.contains(s) && Some(*s) != offline)
            .collect();
        store::audit(
            &mut tx,
            actor,
            "oauth_connect",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "provider": resolved.profile.name, "scopes": scopes,
                    "not_granted": missing, "connected_as": issued.connected_as,
                    "expires_at": expires_at, "refresh_token": issued.refresh_token.is_some(),
                    "attempt_id": attempt_id }),
        )
        .await?;
        let reason = issued
            .connected_as
            .as_ref()
            .map(|who| format!("connected to {} as {who}", resolved.profile.name));
        self.announce(&mut tx, PluginEvent::Connected, &row, actor, reason)
            .await?;
        self.commit(tx).await?;
        Ok((scopes, issued.connected_as))
    }

    /// Seals the access token and the refresh token; with `replace_refresh`, a missing
    /// refresh token clears the stored one (a new consent), else it keeps it (a refresh that
    /// answered without one).
    pub(crate) async fn seal_tokens(
        &self,
        conn: &mut sqlx::PgConnection,
        instance_id: &str,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        replace_refresh: bool,
    ) -> Result<(), RegistryError> {
        let sealed = self.key().seal(
            access_token.expose_secret(),
            &secret_context(instance_id, ACCESS_TOKEN_FIELD),
        );
        store::set_secret(conn, instance_id, ACCESS_TOKEN_FIELD, &sealed).await?;
        match refresh_token {
            Some(refresh) => {
                let sealed = self.key().seal(
                    refresh.expose_secret(),
                    &secret_context(instance_id, REFRESH_TOKEN_FIELD),
                );
                store::set_secret(conn, instance_id, REFRESH_TOKEN_FIELD, &sealed).await?;
            }
            None if replace_refresh => {
                store::clear_secret(conn, instance_id, REFRESH_TOKEN_FIELD).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Where connect attempt `attempt_id` stands (an expired pending one is marked so).
    pub async fn connect_status(&self, attempt_id: Uuid) -> Result<ConnectAttempt, RegistryError> {
        let row = oauth_store::consent(self.pool(), attempt_id)
            .await?
            .ok_or(RegistryError::UnknownAttempt(attempt_id))?;
        let mut attempt = attempt_view(&row);
        if attempt.status == AttemptStatus::Pending && row.expires_at <= Utc::now() {
            let mut conn = self.pool().acquire().await?;
            oauth_store::finish_consent(
                &mut conn,
                attempt_id,
                AttemptStatus::Expired,
                &[],
                None,
                None,
            )
            .await?;
            attempt.status = AttemptStatus::Expired;
        }
        Ok(attempt)
    }

    /// Handles the provider's redirect back: refuses a missing, unknown, used or expired
    /// state; otherwise uses the state up, and exchanges the code (or records the provider's
    /// refusal).
    pub async fn oauth_callback(
        &self,
        query: CallbackQuery,
    ) -> Result<CallbackOutcome, RegistryError> {
        let Some(state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(CallbackOutcome::Refused(
                "the request carries no `state`: it did not come from a consent this hub started"
                    .into(),
            ));
        };
        let mut tx = self.pool().begin().await?;
        let Some(consent) = oauth_store::lock_consent_by_state(&mut tx, &state_hash(state)).await?
        else {
            return Ok(CallbackOutcome::Refused(
                "this `state` was not issued by this hub (or its attempt is long gone); start again with `tributary plugins connect <instance>`".into(),
            ));
        };
        if consent.used_at.is_some() || consent.status != AttemptStatus::Pending {
            return Ok(CallbackOutcome::Refused(format!(
                "this consent link was used already; start again with `tributary plugins connect {}`",
                consent.instance_id
            )));
        }
        oauth_store::mark_used(&mut tx, consent.attempt_id).await?;
        if consent.expires_at <= Utc::now() {
            oauth_store::finish_consent(
                &mut tx,
                consent.attempt_id,
                AttemptStatus::Expired,
                &[],
                None,
                None,
            )
            .await?;
            tx.commit().await?;
            return Ok(CallbackOutcome::Refused(format!(
                "this consent link expired; start again with `tributary plugins connect {}`",
                consent.instance_id
            )));
        }
        tx.commit().await?;
        let outcome = self.finish_callback(&consent, &query).await;
        let mut attempt = attempt_view(&consent);
        match outcome {
            Ok((scopes, connected_as)) => {
                attempt.status = AttemptStatus::Connected;
                attempt.scopes = scopes;
                attempt.connected_as = connected_as;
            }
            Err(failure) => {
                attempt.status = AttemptStatus::Failed;
                attempt.error = Some(failure);
            }
        }
        let mut conn = self.pool().acquire().await?;
        oauth_store::finish_consent(
            &mut conn,
            consent.attempt_id,
            attempt.status,
            &attempt.scopes,
            attempt.connected_as.as_deref(),
            attempt.error.as_ref(),
        )
        .await?;
        drop(conn);
        if attempt.status == AttemptStatus::Failed {
            self.audit_connect_failed(
                &consent.instance_id,
                &consent.provider,
                attempt.error.as_ref(),
                &Actor::new(consent.actor.clone()),
            )
            .await?;
        }
        Ok(CallbackOutcome::Ended(attempt))
    }

    /// The exchange of a callback whose state checked out: the scopes and who, or why not.
    async fn finish_callback(
        &self,
        consent: &ConsentRow,
        query: &CallbackQuery,
    ) -> Result<(Vec<String>, Option<String>), ConnectFailure> {
        let plain = |code: &str, description: Option<&str>| ConnectFailure {
            code: code.to_owned(),
            message: plain_words(&consent.provider, code, description, &consent.redirect_uri),
        };
        if let Some(error) = query.error.as_deref().filter(|e| !e.is_empty()) {
            return Err(plain(error, query.error_description.as_deref()));
        }
        let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(plain(
                "no_code",
                Some("the provider sent the person back with neither a code nor an error"),
            ));
        };
        let internal = |e: RegistryError| {
            tracing::warn!(instance = %consent.instance_id, error = %e, "A consent could not be completed.");
            ConnectFailure {
                code: "internal".into(),
                message: e.to_string(),
            }
        };
        let resolved = {
            let mut tx = self.pool().begin().await.map_err(|e| internal(e.into()))?;
            let row = self
                .lock_live(&mut tx, &consent.instance_id)
                .await
                .map_err(internal)?;
            let secrets = self
                .secrets_of(&mut tx, &consent.instance_id)
                .await
                .map_err(internal)?;
            provider::resolve(self.oauth(), &row, &secrets).map_err(internal)?
        };
        let verifier = self
            .key()
            .open(&consent.verifier, &verifier_context(consent.attempt_id))
            .map_err(|e| {
                internal(RegistryError::SecretUnreadable {
                    instance_id: consent.instance_id.clone(),
                    field: "PKCE verifier".into(),
                    source: e,
                })
            })?;
        let issued = self
            .oauth()
            .client
            .request(
                &resolved.profile,
                &resolved.endpoints.token_url,
                &resolved.client,
                TokenGrant::AuthorizationCode {
                    code,
                    redirect_uri: &consent.redirect_uri,
                    verifier: &verifier,
                },
            )
            .await
            .map_err(|failure| self.failure_of(&resolved, &failure))?;
        self.store_connection(
            &resolved,
            &consent.instance_id,
            issued,
            &Actor::new(consent.actor.clone()),
            consent.attempt_id,
        )
        .await
        .map_err(internal)
    }
}

fn attempt_view(row: &ConsentRow) -> ConnectAttempt {
    ConnectAttempt {
        attempt_id: row.attempt_id,
        instance_id: row.instance_id.clone(),
        provider: row.provider.clone(),
        status: row.status,
        // The URL holds the state, which is kept only as its hash: it is shown once.
        consent_url: None,
        redirect_uri: Some(row.redirect_uri.clone()),
        expires_at: row.expires_at,
        scopes: row.scopes.clone(),
        connected_as: row.connected_as.clone(),
        error: row.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn refusals_are_said_in_plain_words_with_the_providers_own() {
        let denied = plain_words(
            "google",
            "access_denied",
            Some("The user denied"),
            "http://x/cb",
        );
        assert!(denied.starts_with("access denied"), "{denied}");
        assert!(
            denied.ends_with("(google said: The user denied)"),
            "{denied}"
        );
        let redirect = plain_words(
            "github",
            "redirect_uri_mismatch",
            None,
            "http://x/oauth/callback",
        );
        assert!(redirect.starts_with("wrong redirect URI"), "{redirect}");
        assert!(redirect.contains("http://x/oauth/callback"), "{redirect}");
        assert!(plain_words("microsoft", "invalid_scope", None, "").starts_with("scope refused"));
    }
}
