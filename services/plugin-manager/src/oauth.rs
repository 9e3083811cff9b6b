//! OAuth 2.0 for instances whose plugin's manifest has an `auth` section: the consent flow
//! ([`consent`]: `plugins.connect`, the `/oauth/callback` route, `plugins.connect_status`)
//! and the token broker ([`broker`]: `plugins.token`, refreshes ahead of expiry and on a
//! 401, the look for tokens due, `needs_reconnect`).
//!
//! Who holds what: the plugin manager alone holds the client secrets (from
//! `[oauth.providers.<name>]` or the instance's own sealed config field), the refresh tokens
//! and the PKCE verifiers. The services running instances get an access token from
//! `plugins.token` and attach it to the plugin's requests; the plugin never sees any of it.
//!
//! The tokens are sealed in `plugin_secret` under [`ACCESS_TOKEN_FIELD`] and
//! [`REFRESH_TOKEN_FIELD`], so key rotation and the master key check cover them; a refresh
//! writes the new access token, the rotated refresh token and the expiry in one transaction,
//! under a PostgreSQL advisory lock per instance that every plugin manager process takes
//! before it asks the provider ([`store::lock_connection`]).

pub mod broker;
pub mod callback;
pub mod consent;
pub mod provider;
pub mod store;
pub mod token_client;

use std::sync::Arc;

use tributary_kit::config::OAuthConfig;

pub use token_client::TokenClient;

/// The `plugin_secret` field of an instance's access token (no config field is named so:
/// those are JSON pointers).
pub const ACCESS_TOKEN_FIELD: &str = "oauth:access_token";
/// The `plugin_secret` field of an instance's refresh token.
pub const REFRESH_TOKEN_FIELD: &str = "oauth:refresh_token";

/// Who the audit log and the events name for what the broker does on its own.
pub const BROKER_ACTOR: crate::actor::Actor = crate::actor::Actor::fixed("oauth-broker");

/// What the consent flow and the broker work with: the deployment's `[oauth]` section, the
/// redirect URI every consent names, and the client of token requests.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// `[oauth]`.
    pub config: Arc<OAuthConfig>,
    /// `<redirect_base_url>/oauth/callback`.
    pub redirect_uri: String,
    /// Makes the token requests.
    pub client: TokenClient,
}

impl OAuthSettings {
    /// Settings from `config`, consents naming `redirect_uri`.
    pub fn new(config: OAuthConfig, redirect_uri: String) -> Self {
        Self {
            config: Arc::new(config),
            redirect_uri,
            client: TokenClient::new(),
        }
    }
}
