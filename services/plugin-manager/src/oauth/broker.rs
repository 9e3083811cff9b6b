//! The token broker: `plugins.token` answers with a fresh access token, refreshing it first
//! when it expires within the margin or the API just refused it; the plugin manager also
//! looks every `oauth.refresh_check_secs` for tokens due (expiring within the margin, or
//! unrefreshed for `oauth.refresh_every_secs`) and refreshes them ahead of need.
//!
//! One refresh at a time per instance, across processes: each takes the instance's advisory
//! lock ([`oauth_store::lock_connection`]), then looks again: when another process refreshed
//! while it waited, it uses that token. The new access token, a rotated refresh token and the
//! expiry are written in the one transaction, committed before anyone is answered, so a kill
//! after the refresh loses nothing.
//!
//! A refusal meaning the grant is gone (`invalid_grant`, a revoked consent, each provider's
//! codes in the catalog) moves the connection to `needs_reconnect`, a running instance to the
//! `needs_reconnect` state, and announces `PluginReconnectNeeded` with the provider's words. A
//! transient failure (unreachable, 5xx, 429, `temporarily_unavailable`) is retried with
//! backoff and never changes the state: it is recorded as `last_refresh_error`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tributary_proto::events::{InstanceState, PluginEvent};
use tributary_proto::manifest::PluginType;
use tributary_proto::oauth::{Grant, TokenErrorKind};
use tributary_proto::requests::plugins::{token_fingerprint, AccessToken, AuthStatus, AuthView};

use super::provider::{self, InstanceProvider};
use super::store::{self as oauth_store, ConnectionRow};
use super::token_client::{IssuedTokens, TokenFailure, TokenGrant};
use super::{ACCESS_TOKEN_FIELD, BROKER_ACTOR, REFRESH_TOKEN_FIELD};
use crate::actor::Actor;
use crate::error::RegistryError;
use crate::manager::{findable, of_plugin_type, PluginManager};
use crate::store::{self, InstanceRow};

/// Attempts of one token request when it fails transiently.
const TOKEN_ATTEMPTS: u32 = 3;
/// The wait before the second attempt; doubled for each after.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// Why a refresh is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// A service asked for a token.
    Asked,
    /// The look for tokens due found it.
    Due,
}

impl PluginManager {
    /// A fresh access token of `instance_id`: the stored one unless it expires within the
    /// margin or is the one `rejected` (a fingerprint, [`token_fingerprint`]) names, else a
    /// refreshed one. Only for the service running plugins of type `asked`: an instance of
    /// another type is refused before anything is read or refreshed
    /// ([`RegistryError::OtherPluginType`]).
    pub async fn access_token(
        &self,
        asked: PluginType,
        instance_id: &str,
        rejected: Option<&str>,
    ) -> Result<AccessToken, RegistryError> {
        findable(instance_id)?;
        let row = store::instance(self.pool(), instance_id)
            .await?
            .ok_or_else(|| RegistryError::UnknownInstance(instance_id.to_owned()))?;
        of_plugin_type(&row, asked, "token")?;
        let auth = provider::auth_of(&row)?;
        if row.state == InstanceState::Uninstalled {
            return Err(RegistryError::Uninstalled {
                instance_id: row.id.clone(),
                plugin_id: row.plugin_id.clone(),
            });
        }
        let mut conn = self.pool().acquire().await?;
        let connection = oauth_store::connection(&mut conn, instance_id).await?;
        match &connection {
            None if auth.grant == Grant::AuthorizationCode => {
                return Err(RegistryError::NotConnected {
                    instance_id: instance_id.to_owned(),
                    provider: auth.provider.clone(),
                })
            }
            Some(c) if c.status == AuthStatus::NeedsReconnect => {
                return Err(reconnect_needed(instance_id, c));
            }
            Some(c) => {
                if let Some(token) = self.stored_token(&mut conn, instance_id).await? {
                    if self.fresh(c, Utc::now()) && !is_rejected(&token, rejected) {
                        return Ok(answer(&token, c.expires_at));
                    }
                }
            }
            None => {}
        }
        drop(conn);
        self.refresh(instance_id, rejected, Trigger::Asked).await
    }

    /// Whether `connection`'s token lasts beyond the margin.
    fn fresh(&self, connection: &ConnectionRow, now: DateTime<Utc>) -> bool {
        let margin =
            chrono::Duration::from_std(self.oauth().config.refresh_margin()).unwrap_or_default();
        connection
            .expires_at
            .is_none_or(|expires| expires - margin > now)
    }

    /// Whether `connection` is due for a refresh by the look: expiring within the margin, or
    /// unrefreshed for `refresh_every`.
    fn due(&self, connection: &ConnectionRow, now: DateTime<Utc>) -> bool {
        let every =
            chrono::Duration::from_std(self.oauth().config.refresh_every()).unwrap_or_default();
        let last = connection
            .last_refresh_at
            .unwrap_or(connection.connected_at);
        !self.fresh(connection, now) || last + every <= now
    }

    async fn stored_token(
        &self,
        conn: &mut sqlx::PgConnection,
        instance_id: &str,
    ) -> Result<Option<SecretString>, RegistryError> {
        self.opened_secret(conn, instance_id, ACCESS_TOKEN_FIELD)
            .await
    }

    /// Refreshes `instance_id`'s tokens under its lock, unless another process did while this
    /// one waited.
    async fn refresh(
        &self,
        instance_id: &str,
        rejected: Option<&str>,
        trigger: Trigger,
    ) -> Result<AccessToken, RegistryError> {
        let mut tx = self.pool().begin().await?;
        oauth_store::lock_connection(&mut tx, instance_id).await?;
        let mut row = store::lock_instance(&mut tx, instance_id)
            .await?
            .ok_or_else(|| RegistryError::UnknownInstance(instance_id.to_owned()))?;
        let connection = oauth_store::connection(&mut tx, instance_id).await?;
        let current = self.stored_token(&mut tx, instance_id).await?;
        let now = Utc::now();
        if let (Some(c), Some(token)) = (&connection, &current) {
            if c.status == AuthStatus::NeedsReconnect {
                return Err(reconnect_needed(instance_id, c));
            }
            let still_good = match trigger {
                Trigger::Asked => self.fresh(c, now),
                Trigger::Due => !self.due(c, now),
            };
            if still_good && !is_rejected(token, rejected) {
                // Another process refreshed while this one waited for the lock.
                return Ok(answer(token, c.expires_at));
            }
        }
        let secrets = self.secrets_of(&mut tx, instance_id).await?;
        let resolved = provider::resolve(self.oauth(), &row, &secrets)?;
        let refresh_token = self
            .opened_secret(&mut tx, instance_id, REFRESH_TOKEN_FIELD)
            .await?;
        let grant = match (&refresh_token, resolved.auth.grant) {
            (Some(refresh_token), _) => TokenGrant::Refresh { refresh_token },
            (None, Grant::ClientCredentials) => TokenGrant::ClientCredentials {
                scope: resolved.profile.scope_value(&resolved.auth.scopes),
            },
            (None, Grant::AuthorizationCode) => {
                let expired = connection
                    .as_ref()
                    .and_then(|c| c.expires_at)
                    .is_some_and(|e| e <= now);
                let reason = match (&current, expired) {
                    (Some(token), false) if !is_rejected(token, rejected) => {
                        // Nothing to refresh with, and nothing to refresh yet.
                        let expires_at = connection.as_ref().and_then(|c| c.expires_at);
                        return Ok(answer(token, expires_at));
                    }
                    (Some(_), false) => {
                        "the API refused the access token, and the provider gave no refresh token to get another (the consent was probably revoked)"
                    }
                    _ => "the access token expired, and the provider gave no refresh token to get another",
                };
                self.mark_needs_reconnect(
                    &mut tx,
                    &mut row,
                    &resolved.profile.name,
                    reason,
                    &BROKER_ACTOR,
                )
                .await?;
                self.commit(tx).await?;
                return Err(RegistryError::ReconnectNeeded {
                    instance_id: instance_id.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        };
        let is_client_credentials = matches!(grant, TokenGrant::ClientCredentials { .. });
        match self.request_with_retries(&resolved, grant).await {
            Ok(issued) => {
                let token = issued.access_token.clone();
                let expires_at = expires_at_of(&issued);
                self.seal_tokens(
                    &mut tx,
                    instance_id,
                    &issued.access_token,
                    issued.refresh_token.as_ref(),
                    false,
                )
                .await?;
                if connection.is_none() {
                    // A client credentials instance's first token.
                    let scopes = issued
                        .scopes
                        .clone()
                        .unwrap_or_else(|| resolved.auth.scopes.clone());
                    oauth_store::save_connected(
                        &mut tx,
                        instance_id,
                        &resolved.profile.name,
                        &scopes,
                        issued.connected_as.as_deref(),
                        expires_at,
                    )
                    .await?;
                } else {
                    oauth_store::save_refreshed(
                        &mut tx,
                        instance_id,
                        expires_at,
                        issued.scopes.as_deref(),
                    )
                    .await?;
                }
                self.commit(tx).await?;
                tracing::debug!(instance = instance_id, provider = %resolved.profile.name, ?trigger, rotated = issued.refresh_token.is_some(), "Refreshed an OAuth access token.");
                Ok(answer(&token, expires_at))
            }
            Err(failure) if failure.grant_gone() && !is_client_credentials => {
                let reason = format!("{} refused the refresh: {failure}", resolved.profile.name);
                self.mark_needs_reconnect(
                    &mut tx,
                    &mut row,
                    &resolved.profile.name,
                    &reason,
                    &BROKER_ACTOR,
                )
                .await?;
                self.commit(tx).await?;
                Err(RegistryError::ReconnectNeeded {
                    instance_id: instance_id.to_owned(),
                    reason,
                })
            }
            Err(failure) => {
                let error = failure.to_string();
                oauth_store::save_refresh_error(&mut tx, instance_id, &error).await?;
                store::audit(
                    &mut tx,
                    &BROKER_ACTOR,
                    "oauth_refresh_failed",
                    Some(&row.plugin_id),
                    Some(instance_id),
                    json!({ "provider": resolved.profile.name, "error": error,
                            "transient": failure.is_transient() }),
                )
                .await?;
                self.commit(tx).await?;
                tracing::warn!(instance = instance_id, provider = %resolved.profile.name, error, "An OAuth refresh failed; the connection is kept and the refresh tried again.");
                // A token that still works is better than none.
                if let (Some(c), Some(token)) = (&connection, &current) {
                    let unexpired = c.expires_at.is_none_or(|e| e > Utc::now());
                    if unexpired && !is_rejected(token, rejected) {
                        return Ok(answer(token, c.expires_at));
                    }
                }
                Err(match failure {
                    TokenFailure::Refused {
                        kind: TokenErrorKind::ClientRejected,
                        ..
                    } => RegistryError::ClientRejected {
                        provider: resolved.profile.name.clone(),
                        reason: error,
                    },
                    _ => RegistryError::TokenEndpoint {
                        provider: resolved.profile.name.clone(),
                        reason: error,
                    },
                })
            }
        }
    }

    /// A token request, tried again with backoff while it fails transiently.
    pub(crate) async fn request_with_retries(
        &self,
        resolved: &InstanceProvider,
        grant: TokenGrant<'_>,
    ) -> Result<IssuedTokens, TokenFailure> {
        let mut wait = FIRST_RETRY;
        let mut attempt = 1;
        loop {
            let grant = match &grant {
                TokenGrant::AuthorizationCode {
                    code,
                    redirect_uri,
                    verifier,
                } => TokenGrant::AuthorizationCode {
                    code,
                    redirect_uri,
                    verifier,
                },
                TokenGrant::Refresh { refresh_token } => TokenGrant::Refresh { refresh_token },
                TokenGrant::ClientCredentials { scope } => TokenGrant::ClientCredentials {
                    scope: scope.clone(),
                },
            };
            match self
                .oauth()
                .client
                .request(
                    &resolved.profile,
                    &resolved.endpoints.token_url,
                    &resolved.client,
                    grant,
                )
                .await
            {
                Err(failure) if failure.is_transient() && attempt < TOKEN_ATTEMPTS => {
                    tracing::debug!(provider = %resolved.profile.name, attempt, error = %failure, ?wait, "Asking the token endpoint again.");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Moves a connection to `needs_reconnect`: the connection's status and reason, a running
    /// instance's state, the `PluginReconnectNeeded` event and the audit entry.
    async fn mark_needs_reconnect(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &mut InstanceRow,
        provider: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        oauth_store::save_needs_reconnect(tx, &row.id, reason).await?;
        if row.state.runs() {
            row.state = InstanceState::NeedsReconnect;
            row.last_error = Some(format!("reconnect needed: {reason}"));
            store::save_instance(tx, row).await?;
        }
        store::audit(
            tx,
            actor,
            "oauth_reconnect_needed",
            Some(&row.plugin_id),
            Some(&row.id),
            json!({ "provider": provider, "reason": reason }),
        )
        .await?;
        self.announce(
            tx,
            PluginEvent::ReconnectNeeded,
            row,
            actor,
            Some(reason.to_owned()),
        )
        .await?;
        tracing::warn!(instance = %row.id, provider, reason, "An instance needs to be connected again.");
        Ok(())
    }

    /// After a configuration change moved a granted destination: forgets the instance's
    /// tokens (they would be attached to requests to the new host, which nobody consented
    /// to) and asks for a reconnect.
    pub(crate) async fn forget_tokens_after_move(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &mut InstanceRow,
        moved: &[crate::manager::MovedDestination],
        actor: &Actor,
    ) -> Result<(), RegistryError> {
        let Some(connection) = oauth_store::connection(tx, &row.id).await? else {
            return Ok(());
        };
        store::clear_secret(tx, &row.id, ACCESS_TOKEN_FIELD).await?;
        store::clear_secret(tx, &row.id, REFRESH_TOKEN_FIELD).await?;
        let moves = moved
            .iter()
            .map(|m| format!("`{}` moved from {} to {}", m.field, m.from, m.to))
            .collect::<Vec<_>>()
            .join(", ");
        let reason = format!(
            "{moves}; the tokens were forgotten so they go only where a person consented: connect again"
        );
        self.mark_needs_reconnect(tx, row, &connection.provider, &reason, actor)
            .await
    }

    /// Refreshes every token due, once.
    pub async fn refresh_due(&self) -> Result<usize, RegistryError> {
        let config = &self.oauth().config;
        let due = oauth_store::due(
            self.pool(),
            config.refresh_margin_secs,
            config.refresh_every_secs,
        )
        .await?;
        let mut refreshed = 0;
        for instance_id in due {
            match self.refresh(&instance_id, None, Trigger::Due).await {
                Ok(_) => refreshed += 1,
                Err(e) => {
                    tracing::warn!(instance = %instance_id, error = %e, "A token due could not be refreshed.");
                }
            }
        }
        Ok(refreshed)
    }

    /// Looks for tokens due every `oauth.refresh_check_secs` until `stop`.
    pub async fn refresh_due_until(&self, stop: CancellationToken) {
        let period = self.oauth().config.refresh_check();
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.refresh_due().await {
                tracing::warn!(error = %e, "Cannot look for OAuth tokens due.");
            }
            if let Err(e) = oauth_store::prune_consents(self.pool()).await {
                tracing::debug!(error = %e, "Cannot forget old consents.");
            }
        }
    }

    /// Where `row`'s connection stands, for an enable: `None` when its plugin has no `auth`;
    /// a client credentials instance never connected counts as connected (it fetches its
    /// first token when asked).
    pub(crate) async fn connection_status(
        &self,
        conn: &mut sqlx::PgConnection,
        row: &InstanceRow,
    ) -> Result<Option<AuthStatus>, RegistryError> {
        let Some(auth) = &row.manifest.auth else {
            return Ok(None);
        };
        Ok(Some(match oauth_store::connection(conn, &row.id).await? {
            Some(c) => c.status,
            None if auth.grant == Grant::ClientCredentials => AuthStatus::Connected,
            None => AuthStatus::NotConnected,
        }))
    }

    /// The auth state of `row`, for the instance's view; `None` when its plugin has no
    /// `auth`.
    pub(crate) async fn auth_view(
        &self,
        conn: &mut sqlx::PgConnection,
        row: &InstanceRow,
    ) -> Result<Option<AuthView>, RegistryError> {
        let Some(auth) = &row.manifest.auth else {
            return Ok(None);
        };
        let connection = oauth_store::connection(conn, &row.id).await?;
        Ok(Some(match connection {
            None => AuthView {
                provider: auth.provider.clone(),
                grant: auth.grant.as_str().to_owned(),
                status: AuthStatus::NotConnected,
                connected_as: None,
                scopes: Vec::new(),
                expires_at: None,
                connected_at: None,
                last_refresh_at: None,
                last_refresh_error: None,
                reconnect_reason: None,
            },
            Some(c) => AuthView {
                provider: c.provider,
                grant: auth.grant.as_str().to_owned(),
                status: c.status,
                connected_as: c.connected_as,
                scopes: c.scopes,
                expires_at: c.expires_at,
                connected_at: Some(c.connected_at),
                last_refresh_at: c.last_refresh_at,
                last_refresh_error: c.last_refresh_error,
                reconnect_reason: c.reconnect_reason,
            },
        }))
    }
}

fn reconnect_needed(instance_id: &str, connection: &ConnectionRow) -> RegistryError {
    RegistryError::ReconnectNeeded {
        instance_id: instance_id.to_owned(),
        reason: connection
            .reconnect_reason
            .clone()
            .unwrap_or_else(|| "the grant is gone".to_owned()),
    }
}

fn is_rejected(token: &SecretString, rejected: Option<&str>) -> bool {
    rejected.is_some_and(|fingerprint| token_fingerprint(token.expose_secret()) == fingerprint)
}

fn answer(token: &SecretString, expires_at: Option<DateTime<Utc>>) -> AccessToken {
    AccessToken {
        access_token: token.expose_secret().to_owned(),
        expires_at,
    }
}

/// When tokens issued now expire.
pub(super) fn expires_at_of(issued: &IssuedTokens) -> Option<DateTime<Utc>> {
    issued.expires_in.map(|secs| {
        Utc::now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2_000))
    })
}
