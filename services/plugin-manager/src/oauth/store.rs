//! The rows of OAuth 2.0 connections and consents (`plugin_oauth_connection`,
//! `plugin_oauth_consent`); the tokens are sealed secrets ([`crate::store::set_secret`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use tributary_proto::requests::plugins::{AttemptStatus, AuthStatus, ConnectFailure};
use uuid::Uuid;

use crate::keys::SealedSecret;
use crate::store::StoreError;

/// The advisory lock class of token writes (`pg_advisory_xact_lock(class, hashtext(id))`),
/// apart from the connector's sync locks.
const TOKEN_LOCK_CLASS: i32 = 0x6f61_7574; // "oaut"

/// One instance's connection.
#[derive(Debug, Clone)]
pub struct ConnectionRow {
    /// The provider.
    pub provider: String,
    /// Connected, or in need of a reconnect.
    pub status: AuthStatus,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Who the tokens act for.
    pub connected_as: Option<String>,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When a person connected it.
    pub connected_at: DateTime<Utc>,
    /// The last refresh.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// The last failed refresh that kept the grant.
    pub last_refresh_error: Option<String>,
    /// Why a reconnect is needed.
    pub reconnect_reason: Option<String>,
}

fn status_from(text: &str) -> Result<AuthStatus, StoreError> {
    match text {
        "connected" => Ok(AuthStatus::Connected),
        "needs_reconnect" => Ok(AuthStatus::NeedsReconnect),
        other => Err(StoreError::Corrupt {
            what: "OAuth connection status",
            reason: format!("`{other}`"),
        }),
    }
}

fn scopes_from(value: Value) -> Vec<String> {
    serde_json::from_value(value).unwrap_or_default()
}

/// Takes the instance's token lock until the transaction ends: one refresh or connect at a
/// time per instance, across every process.
pub async fn lock_connection(conn: &mut PgConnection, instance_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(TOKEN_LOCK_CLASS)
        .bind(instance_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An instance's connection, if it was ever connected.
pub async fn connection(
    conn: &mut PgConnection,
    instance_id: &str,
) -> Result<Option<ConnectionRow>, StoreError> {
    let row = sqlx::query(
        "SELECT provider, status, scopes, connected_as, expires_at, connected_at, \
           last_refresh_at, last_refresh_error, reconnect_reason \
         FROM plugin_oauth_connection WHERE instance_id = $1",
    )
    .bind(instance_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ConnectionRow {
            provider: r.try_get("provider")?,
            status: status_from(r.try_get("status")?)?,
            scopes: scopes_from(r.try_get("scopes")?),
            connected_as: r.try_get("connected_as")?,
            expires_at: r.try_get("expires_at")?,
            connected_at: r.try_get("connected_at")?,
            last_refresh_at: r.try_get("last_refresh_at")?,
            last_refresh_error: r.try_get("last_refresh_error")?,
            reconnect_reason: r.try_get("reconnect_reason")?,
        })
    })
    .transpose()
}

/// Records a (new) connection: connected now, with these scopes and expiry.
pub async fn save_connected(
    conn: &mut PgConnection,
    instance_id: &str,
    provider: &str,
    scopes: &[String],
    connected_as: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plugin_oauth_connection (instance_id, provider, status, scopes, \
           connected_as, expires_at, connected_at) VALUES ($1, $2, 'connected', $3, $4, $5, now()) \
         ON CONFLICT (instance_id) DO UPDATE SET provider = EXCLUDED.provider, \
           status = 'connected', scopes = EXCLUDED.scopes, connected_as = EXCLUDED.connected_as, \
           expires_at = EXCLUDED.expires_at, connected_at = now(), last_refresh_at = NULL, \
           last_refresh_error = NULL, reconnect_reason = NULL, \
           generation = plugin_oauth_connection.generation + 1, updated_at = now()",
    )
    .bind(instance_id)
    .bind(provider)
    .bind(serde_json::json!(scopes))
    .bind(connected_as)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a refresh that worked: the new expiry, and the scopes when the provider said.
pub async fn save_refreshed(
    conn: &mut PgConnection,
    instance_id: &str,
    expires_at: Option<DateTime<Utc>>,
    scopes: Option<&[String]>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE plugin_oauth_connection SET expires_at = $2, \
           scopes = COALESCE($3, scopes), last_refresh_at = now(), last_refresh_error = NULL, \
           generation = generation + 1, updated_at = now() WHERE instance_id = $1",
    )
    .bind(instance_id)
    .bind(expires_at)
    .bind(scopes.map(|s| serde_json::json!(s)))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a refresh that failed without losing the grant.
pub async fn save_refresh_error(
    conn: &mut PgConnection,
    instance_id: &str,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE plugin_oauth_connection SET last_refresh_error = $2, updated_at = now() \
         WHERE instance_id = $1",
    )
    .bind(instance_id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the grant is gone, and why.
pub async fn save_needs_reconnect(
    conn: &mut PgConnection,
    instance_id: &str,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE plugin_oauth_connection SET status = 'needs_reconnect', reconnect_reason = $2, \
           updated_at = now() WHERE instance_id = $1",
    )
    .bind(instance_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The instances whose tokens are due for a refresh: connected, not uninstalled, able to
/// refresh (a refresh token, or the client credentials grant), and either expiring within
/// `margin_secs` or unrefreshed for `every_secs`.
pub async fn due(
    pool: &PgPool,
    margin_secs: u64,
    every_secs: u64,
) -> Result<Vec<String>, StoreError> {
    let ids = sqlx::query_scalar(
        "SELECT c.instance_id FROM plugin_oauth_connection c \
           JOIN plugin_instance i ON i.id = c.instance_id \
         WHERE c.status = 'connected' AND i.state <> 'uninstalled' \
           AND (EXISTS (SELECT 1 FROM plugin_secret s WHERE s.instance_id = c.instance_id \
                          AND s.field = 'oauth:refresh_token') \
                OR i.manifest->'auth'->>'grant' = 'client_credentials') \
           AND ((c.expires_at IS NOT NULL \
                 AND c.expires_at <= now() + make_interval(secs => $1::double precision)) \
                OR COALESCE(c.last_refresh_at, c.connected_at) \
                   <= now() - make_interval(secs => $2::double precision)) \
         ORDER BY c.expires_at NULLS LAST",
    )
    .bind(margin_secs as f64)
    .bind(every_secs as f64)
    .fetch_all(pool)
    .await?;
    Ok(ids)
}

/// A consent under way, as stored.
#[derive(Debug, Clone)]
pub struct ConsentRow {
    /// The attempt.
    pub attempt_id: Uuid,
    /// Its instance.
    pub instance_id: String,
    /// The provider.
    pub provider: String,
    /// The redirect URI it named.
    pub redirect_uri: String,
    /// The PKCE verifier, sealed.
    pub verifier: SealedSecret,
    /// Who started it.
    pub actor: String,
    /// Until when it works.
    pub expires_at: DateTime<Utc>,
    /// When its state came back, if it did.
    pub used_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: AttemptStatus,
    /// Once connected: the scopes.
    pub scopes: Vec<String>,
    /// Once connected: who.
    pub connected_as: Option<String>,
    /// Once failed: why.
    pub error: Option<ConnectFailure>,
}

/// A new consent.
pub struct NewConsent<'a> {
    /// The attempt.
    pub attempt_id: Uuid,
    /// SHA-256 of its state.
    pub state_hash: &'a [u8],
    /// The instance.
    pub instance_id: &'a str,
    /// The provider.
    pub provider: &'a str,
    /// The redirect URI.
    pub redirect_uri: &'a str,
    /// The sealed verifier.
    pub verifier: &'a SealedSecret,
    /// Who starts it.
    pub actor: &'a str,
    /// Until when it works.
    pub expires_at: DateTime<Utc>,
}

/// Stores a new consent.
pub async fn insert_consent(conn: &mut PgConnection, c: &NewConsent<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plugin_oauth_consent (attempt_id, state_hash, instance_id, provider, \
           redirect_uri, verifier_key, verifier_nonce, verifier, actor, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(c.attempt_id)
    .bind(c.state_hash)
    .bind(c.instance_id)
    .bind(c.provider)
    .bind(c.redirect_uri)
    .bind(&c.verifier.key_id)
    .bind(&c.verifier.nonce)
    .bind(&c.verifier.ciphertext)
    .bind(c.actor)
    .bind(c.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

const CONSENT_COLUMNS: &str = "attempt_id, instance_id, provider, redirect_uri, \
    verifier_key, verifier_nonce, verifier, actor, expires_at, used_at, status, scopes, \
    connected_as, error_code, error_message";

fn consent_from(r: &sqlx::postgres::PgRow) -> Result<ConsentRow, StoreError> {
    let status: String = r.try_get("status")?;
    let status = match status.as_str() {
        "pending" => AttemptStatus::Pending,
        "connected" => AttemptStatus::Connected,
        "failed" => AttemptStatus::Failed,
        "expired" => AttemptStatus::Expired,
        other => {
            return Err(StoreError::Corrupt {
                what: "consent status",
                reason: format!("`{other}`"),
            })
        }
    };
    let code: Option<String> = r.try_get("error_code")?;
    let message: Option<String> = r.try_get("error_message")?;
    Ok(ConsentRow {
        attempt_id: r.try_get("attempt_id")?,
        instance_id: r.try_get("instance_id")?,
        provider: r.try_get("provider")?,
        redirect_uri: r.try_get("redirect_uri")?,
        verifier: SealedSecret {
            key_id: r.try_get("verifier_key")?,
            nonce: r.try_get("verifier_nonce")?,
            ciphertext: r.try_get("verifier")?,
        },
        actor: r.try_get("actor")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        status,
        scopes: scopes_from(r.try_get("scopes")?),
        connected_as: r.try_get("connected_as")?,
        error: code.map(|code| ConnectFailure {
            code,
            message: message.unwrap_or_default(),
        }),
    })
}

/// The consent whose state hashes to `state_hash`, locked.
pub async fn lock_consent_by_state(
    conn: &mut PgConnection,
    state_hash: &[u8],
) -> Result<Option<ConsentRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CONSENT_COLUMNS} FROM plugin_oauth_consent WHERE state_hash = $1 FOR UPDATE"
    ))
    .bind(state_hash)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(consent_from).transpose()
}

/// One attempt.
pub async fn consent(pool: &PgPool, attempt_id: Uuid) -> Result<Option<ConsentRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CONSENT_COLUMNS} FROM plugin_oauth_consent WHERE attempt_id = $1"
    ))
    .bind(attempt_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(consent_from).transpose()
}

/// Marks a consent's state as come back: it works no more.
pub async fn mark_used(conn: &mut PgConnection, attempt_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE plugin_oauth_consent SET used_at = now() WHERE attempt_id = $1")
        .bind(attempt_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records how an attempt ended.
pub async fn finish_consent(
    conn: &mut PgConnection,
    attempt_id: Uuid,
    status: AttemptStatus,
    scopes: &[String],
    connected_as: Option<&str>,
    error: Option<&ConnectFailure>,
) -> Result<(), StoreError> {
    let status = match status {
        AttemptStatus::Pending => "pending",
        AttemptStatus::Connected => "connected",
        AttemptStatus::Failed => "failed",
        AttemptStatus::Expired => "expired",
    };
    sqlx::query(
        "UPDATE plugin_oauth_consent SET status = $2, scopes = $3, connected_as = $4, \
           error_code = $5, error_message = $6, \
           verifier = CASE WHEN $2 = 'pending' THEN verifier ELSE ''::bytea END \
         WHERE attempt_id = $1",
    )
    .bind(attempt_id)
    .bind(status)
    .bind(serde_json::json!(scopes))
    .bind(connected_as)
    .bind(error.map(|e| e.code.as_str()))
    .bind(error.map(|e| e.message.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets consents that ended or expired more than a day ago.
pub async fn prune_consents(pool: &PgPool) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM plugin_oauth_consent WHERE expires_at < now() - interval '1 day'")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
