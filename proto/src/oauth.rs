//! OAuth 2.0 as a plugin declares it: the manifest's `auth` section ([`AuthSpec`]), the
//! built-in provider catalog ([`BUILTIN_PROVIDERS`], [`builtin`]), and what a provider is once
//! the manifest, the deployment's configuration and the instance's config have each had their
//! say ([`ProviderProfile`], [`Endpoints`]).
//!
//! [`crate::manifest::PluginManifest::from_value`] checks the section with the rest of the
//! manifest, every problem named by its field (`auth.scopes[1]`, `auth.endpoints.tokenUrl`).
//! The checks a deployment's configuration shares with it (an endpoint URL, a provider name,
//! a tenant) are the functions of this module, so both judge alike.
//!
//! Who does what, once the consent flow and the token broker are built on this: the host
//! builds the consent URL from [`ProviderProfile::authorization_query`] plus `client_id`,
//! `redirect_uri`, `state` and the PKCE challenge; it exchanges and refreshes at
//! [`Endpoints::token_url`], authenticating the client as
//! [`ProviderProfile::client_authentication`] says, reading the answer as
//! [`ProviderProfile::quirks`] describes and classifying a refusal with
//! [`TokenQuirks::classify`]. The plugin names scopes and a provider; it never sees a client
//! secret or a refresh token.
//!
//! # Why these types are not the `oauth2` crate's
//!
//! The `oauth2` crate (`AuthUrl`, `TokenUrl`, `Scope`, `PkceCodeChallenge`, `BasicClient`)
//! models a client performing a flow, and that is where it belongs: in the broker, for the
//! PKCE pair and the token requests. It does not fit this data model. These types are the
//! manifest contract: they derive `JsonSchema` for `proto/schemas/plugin-manifest.json`, which
//! its newtypes do not; a catalog endpoint is a template (`{tenant}`) that is a URL only once
//! the deployment or the instance names the tenant, and the catalog is `const` data; and its
//! `Scope` is an unchecked string, where a manifest's scope is held to RFC 6749's
//! `scope-token` grammar with the problem named. Nor do its standard token responses cover
//! the quirks recorded here (GitHub's 200 answer with an `error` field, Slack's `ok: false`
//! and `authed_user`), so the broker will need its own response types whichever client it
//! uses. Keeping it out of this crate also keeps the contract crate free of an HTTP stack.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// How the host obtains tokens for an instance (`auth.grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// A person consents in a browser; the host exchanges the code, always with PKCE (S256,
    /// RFC 7636), and refreshes the token it gets (RFC 6749 §4.1).
    AuthorizationCode,
    /// The deployment's (or instance's) client authenticates as itself, without a person
    /// (RFC 6749 §4.4).
    ClientCredentials,
}

impl Grant {
    /// Every grant, in manifest order.
    pub const ALL: [Grant; 2] = [Grant::AuthorizationCode, Grant::ClientCredentials];

    /// The manifest spelling, which is also the token request's `grant_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client authenticates at the token endpoint, named as OpenID Connect Discovery's
/// `token_endpoint_auth_methods_supported` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthentication {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1: every server must support
    /// it), the default for a custom provider.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuthentication {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthentication::ClientSecretBasic => "client_secret_basic",
            ClientAuthentication::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A manifest's `auth` section: how the host connects an instance to the service the plugin
/// talks to.
///
/// ```json
/// "auth": {
///   "grant": "authorization_code",
///   "provider": "microsoft",
///   "scopes": ["offline_access", "https://graph.microsoft.com/Mail.Read"],
///   "tenant": "${tenantId}"
/// }
/// ```
///
/// `provider` names a built-in provider (microsoft, google, github, slack) or, with
/// `endpoints`, the plugin's own.
/// Either way the name keys the deployment's `[oauth.providers.<name>]` configuration, where
/// its OAuth client id and secret live unless `client` names instance config fields for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSpec {
    /// `authorization_code` (with PKCE) or `client_credentials`.
    pub grant: Grant,
    /// A built-in provider (`microsoft`, `google`, `github`, `slack`), or the name of the
    /// plugin's own provider when `endpoints` is given: lower-case letters, digits and `_`,
    /// starting with a letter.
    pub provider: String,
    /// A provider of the plugin's own: its endpoints and conventions. Only when `provider` is
    /// not built in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<CustomEndpoints>,
    /// The scopes asked for, as the provider names them (RFC 6749 `scope-token`s). For
    /// Slack, the bot scopes.
    pub scopes: Vec<String>,
    /// Slack only: the user scopes (`user_scope`), for a user token besides (or instead of)
    /// the bot token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_scopes: Vec<String>,
    /// Extra parameters of the authorization request (`login_hint`, `hd`), never one the host
    /// sets (`client_id`, `redirect_uri`, `response_type`, `scope`, `state`, the PKCE pair) nor
    /// one the provider's catalog entry sets. Only with `authorization_code`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization_params: BTreeMap<String, String>,
    /// For a provider whose endpoints hold `{tenant}` (Microsoft): a tenant (`organizations`,
    /// a tenant id or domain), or `${property}`, the tenant in that string property of the
    /// instance's config. Without it, the deployment's configured tenant, else the provider's
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Where an instance brings its own OAuth client: the config fields that hold its id and
    /// secret. An instance that leaves them unset uses the deployment's client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<InstanceClient>,
}

/// A provider of the plugin's own (`auth.endpoints`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomEndpoints {
    /// The authorization endpoint (`https://`, or `http://` on a loopback host), for
    /// `authorization_code`; may hold `{tenant}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    /// The token endpoint, under the same rules.
    pub token_url: String,
    /// What joins scopes in the `scope` parameter: `" "` (RFC 6749, the default) or `","`.
    #[serde(default = "space", skip_serializing_if = "is_space")]
    pub scope_separator: String,
    /// How the client authenticates at the token endpoint; `client_secret_basic` by default.
    #[serde(default, skip_serializing_if = "is_basic")]
    pub client_authentication: ClientAuthentication,
}

fn space() -> String {
    " ".to_owned()
}

fn is_space(s: &str) -> bool {
    s == " "
}

fn is_basic(a: &ClientAuthentication) -> bool {
    *a == ClientAuthentication::ClientSecretBasic
}

/// The instance config fields that hold an instance's own OAuth client (`auth.client`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceClient {
    /// A string property of `configSchema` holding the client id.
    pub id_field: String,
    /// A secret (`writeOnly`) string property holding the client secret; left out for a
    /// public client, which `client_credentials` cannot use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_field: Option<String>,
}

/// The shape of a successful token response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// A JSON object (RFC 6749 §5.1).
    Json,
    /// `application/x-www-form-urlencoded` unless the request says `Accept: application/json`
    /// (GitHub): the host always sends that header.
    FormUnlessAcceptJson,
}

/// How a token endpoint reports a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// A 4xx status with `{"error", "error_description"}` (RFC 6749 §5.2).
    Rfc6749,
    /// Status 200 with an `error` field in place of the token (GitHub): the status alone
    /// does not tell success.
    ErrorFieldWithStatus200,
    /// Status 200 with `{"ok": false, "error": "<code>"}` (Slack Web API).
    SlackOkFalse,
}

/// Where the access token sits in a successful response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenShape {
    /// `access_token` at the top level (RFC 6749 §5.1).
    Rfc6749,
    /// Slack OAuth v2: the bot token at the top level (`token_type: "bot"`) when bot scopes
    /// were asked for, the user token under `authed_user` when user scopes were; a refresh
    /// answers with the refreshed token at the top level. `team.name` says which workspace.
    SlackV2,
}

/// What becomes of the refresh token when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshBehaviour {
    /// Every refresh answers with a new refresh token. When `old_revoked`, the one used stops
    /// working at once, so losing the new one loses the connection.
    Rotates {
        /// Whether the refresh token just used is revoked.
        old_revoked: bool,
    },
    /// A refresh answers without a refresh token; the first one stays valid.
    Kept,
    /// Unknown (a custom provider): RFC 6749 §6 lets the server issue a new one.
    MayRotate,
}

/// What a token endpoint's refusal means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// The grant is gone (revoked, expired, already used): the instance needs a person to
    /// connect again.
    GrantGone,
    /// The client id, secret or redirect URI was refused: the deployment's or instance's
    /// configuration is wrong, not the person's consent.
    ClientRejected,
    /// The provider is busy or failing; retry with backoff.
    Transient,
    /// Anything else (a malformed request, an unknown code).
    Other,
}

/// How a provider's token endpoint answers: what the broker must know to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenQuirks {
    /// The success body's format.
    pub response_format: ResponseFormat,
    /// How a refusal is reported.
    pub errors: ErrorStyle,
    /// Where the access token is.
    pub token_shape: TokenShape,
    /// What joins scopes in the response's `scope` field (GitHub and Slack answer with
    /// commas).
    pub response_scope_separator: &'static str,
    /// What becomes of a refresh token once used. Whatever it says, a refresh response that
    /// carries a refresh token replaces the stored one, and one that carries none keeps it.
    pub refresh: RefreshBehaviour,
    /// Whether an access token may come without `expires_in` and never expire (a GitHub OAuth
    /// app's; a Slack app's without token rotation); then no refresh token comes either.
    pub may_not_expire: bool,
    /// Error codes meaning the grant is gone ([`TokenErrorKind::GrantGone`]).
    pub grant_gone: &'static [&'static str],
    /// Error codes meaning the client was refused ([`TokenErrorKind::ClientRejected`]).
    pub client_rejected: &'static [&'static str],
    /// Error codes of a transient failure ([`TokenErrorKind::Transient`]).
    pub transient: &'static [&'static str],
}

impl TokenQuirks {
    /// What the token endpoint's `error` code means for the connection.
    pub fn classify(&self, error: &str) -> TokenErrorKind {
        if self.grant_gone.contains(&error) {
            TokenErrorKind::GrantGone
        } else if self.client_rejected.contains(&error) {
            TokenErrorKind::ClientRejected
        } else if self.transient.contains(&error) {
            TokenErrorKind::Transient
        } else {
            TokenErrorKind::Other
        }
    }
}

/// RFC 6749's errors, for a provider of the plugin's own.
pub const STANDARD_QUIRKS: TokenQuirks = TokenQuirks {
    response_format: ResponseFormat::Json,
    errors: ErrorStyle::Rfc6749,
    token_shape: TokenShape::Rfc6749,
    response_scope_separator: " ",
    refresh: RefreshBehaviour::MayRotate,
    may_not_expire: false,
    grant_gone: &["invalid_grant"],
    client_rejected: &["invalid_client", "unauthorized_client"],
    transient: &["temporarily_unavailable", "server_error"],
};

/// One provider of the built-in catalog: its documented endpoints and conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinProvider {
    /// The name a manifest's `auth.provider` and the configuration's
    /// `[oauth.providers.<name>]` use.
    pub name: &'static str,
    /// Who it is, for people.
    pub title: &'static str,
    /// The provider's page documenting the endpoints below.
    pub docs: &'static str,
    /// The authorization endpoint; `{tenant}` stands for the tenant.
    pub authorization_url: &'static str,
    /// The token endpoint; `{tenant}` stands for the tenant.
    pub token_url: &'static str,
    /// The tenant when neither the manifest, the instance nor the deployment names one; only
    /// for endpoints that hold `{tenant}`.
    pub default_tenant: Option<&'static str>,
    /// What joins scopes in the authorization request's `scope`.
    pub scope_separator: &'static str,
    /// Parameters the authorization request always carries.
    pub authorization_params: &'static [(&'static str, &'static str)],
    /// A scope added to every `authorization_code` request when the manifest leaves it out,
    /// without which no refresh token comes.
    pub offline_scope: Option<&'static str>,
    /// The authorization parameter that carries `auth.userScopes`, for a provider with two
    /// kinds of token.
    pub user_scope_param: Option<&'static str>,
    /// The grants it offers.
    pub grants: &'static [Grant],
    /// How the client authenticates at its token endpoint.
    pub client_authentication: ClientAuthentication,
    /// How its token endpoint answers.
    pub quirks: TokenQuirks,
}

/// Microsoft identity platform (v2.0 endpoints): Microsoft 365, Outlook, OneDrive, Teams
/// through Microsoft Graph.
///
/// - Endpoints `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize` and
///   `…/token`; the tenant is `common`, `organizations`, `consumers`, or a tenant id or
///   domain (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols#endpoints>).
/// - Scopes are space-separated; a refresh token comes only when `offline_access` is asked for,
///   so it is added to every consent (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>).
/// - A refresh answers with a new refresh token, to replace the old; the old one is not
///   revoked (same page, "Refresh the access token").
/// - Refusals are JSON with `error`, an `AADSTS<n>:` `error_description` and `error_codes`
///   (<https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>):
///   `invalid_grant` for an expired or revoked grant (AADSTS70008, AADSTS50173), a used code
///   (AADSTS54005) or a PKCE verifier that does not match (AADSTS501481); `invalid_client` with
///   status 401 for a wrong secret (AADSTS7000215); `interaction_required` and
///   `consent_required` when a person must sign in again.
/// - Client credentials ask for `<resource>/.default` and need a real tenant, not `common`,
///   `organizations` or `consumers`
///   (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
pub const MICROSOFT: BuiltinProvider = BuiltinProvider {
    name: "microsoft",
    title: "Microsoft identity platform",
    docs: "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow",
    authorization_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
    token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    default_tenant: Some("common"),
    scope_separator: " ",
    authorization_params: &[],
    offline_scope: Some("offline_access"),
    user_scope_param: None,
    grants: &[Grant::AuthorizationCode, Grant::ClientCredentials],
    client_authentication: ClientAuthentication::ClientSecretPost,
    quirks: TokenQuirks {
        response_format: ResponseFormat::Json,
        errors: ErrorStyle::Rfc6749,
        token_shape: TokenShape::Rfc6749,
        response_scope_separator: " ",
        refresh: RefreshBehaviour::Rotates { old_revoked: false },
        may_not_expire: false,
        grant_gone: &["invalid_grant", "interaction_required", "consent_required"],
        client_rejected: &["invalid_client", "unauthorized_client"],
        transient: &["temporarily_unavailable", "server_error"],
    },
};

/// Google OAuth 2.0 for web server applications: Gmail, Calendar, Drive, Contacts.
///
/// - Endpoints `https://accounts.google.com/o/oauth2/v2/auth` and
///   `https://oauth2.googleapis.com/token`; scopes space-separated
///   (<https://developers.google.com/identity/protocols/oauth2/web-server>).
/// - A refresh token comes only with `access_type=offline`, and only at a person's first
///   consent unless `prompt=consent` asks again, so both are always sent (same page,
///   "Refresh access token (offline access)").
/// - A refresh answers without a new refresh token: the first one stays.
/// - Refusals are JSON (`{"error": "invalid_grant", "error_description": "Token has been
///   expired or revoked."}`); `invalid_client` comes with status 401. Google offers no
///   client credentials grant (server-to-server access uses service accounts).
pub const GOOGLE: BuiltinProvider = BuiltinProvider {
    name: "google",
    title: "Google",
    docs: "https://developers.google.com/identity/protocols/oauth2/web-server",
    authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
    token_url: "https://oauth2.googleapis.com/token",
    default_tenant: None,
    scope_separator: " ",
    authorization_params: &[("access_type", "offline"), ("prompt", "consent")],
    offline_scope: None,
    user_scope_param: None,
    grants: &[Grant::AuthorizationCode],
    client_authentication: ClientAuthentication::ClientSecretPost,
    quirks: TokenQuirks {
        response_format: ResponseFormat::Json,
        errors: ErrorStyle::Rfc6749,
        token_shape: TokenShape::Rfc6749,
        response_scope_separator: " ",
        refresh: RefreshBehaviour::Kept,
        may_not_expire: false,
        grant_gone: &["invalid_grant"],
        client_rejected: &[
            "invalid_client",
            "unauthorized_client",
            "redirect_uri_mismatch",
        ],
        transient: &[
            "temporarily_unavailable",
            "server_error",
            "internal_failure",
        ],
    },
};

/// GitHub OAuth apps (and GitHub Apps acting for a user).
///
/// - Endpoints `https://github.com/login/oauth/authorize` and
///   `https://github.com/login/oauth/access_token`; the request's scopes are
///   space-separated, the response's `scope` comma-separated; the token answer is
///   form-encoded unless the request says `Accept: application/json`
///   (<https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>).
/// - PKCE with S256 is accepted
///   (<https://github.blog/changelog/2025-07-14-pkce-support-for-oauth-and-github-app-authentication>).
/// - A refusal is answered with status 200 and an `error` field: `bad_verification_code`,
///   `incorrect_client_credentials`, `redirect_uri_mismatch`
///   (<https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors>).
/// - An OAuth app's token does not expire and comes without a refresh token; a GitHub App
///   with expiring user tokens gets one valid eight hours and a refresh token that stops
///   working once used, as does the old access token (`bad_refresh_token` after)
///   (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens>).
pub const GITHUB: BuiltinProvider = BuiltinProvider {
    name: "github",
    title: "GitHub",
    docs: "https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps",
    authorization_url: "https://github.com/login/oauth/authorize",
    token_url: "https://github.com/login/oauth/access_token",
    default_tenant: None,
    scope_separator: " ",
    authorization_params: &[],
    offline_scope: None,
    user_scope_param: None,
    grants: &[Grant::AuthorizationCode],
    client_authentication: ClientAuthentication::ClientSecretPost,
    quirks: TokenQuirks {
        response_format: ResponseFormat::FormUnlessAcceptJson,
        errors: ErrorStyle::ErrorFieldWithStatus200,
        token_shape: TokenShape::Rfc6749,
        response_scope_separator: ",",
        refresh: RefreshBehaviour::Rotates { old_revoked: true },
        may_not_expire: true,
        grant_gone: &["bad_verification_code", "bad_refresh_token"],
        client_rejected: &["incorrect_client_credentials", "redirect_uri_mismatch"],
        transient: &[],
    },
};

/// Slack OAuth v2 (apps with granular permissions).
///
/// - Endpoints `https://slack.com/oauth/v2/authorize` and
///   `https://slack.com/api/oauth.v2.access`; bot scopes go in `scope`, user scopes in
///   `user_scope`, both comma-separated; the answer carries the bot token at the top level and
///   the user token under `authed_user`, with `team`
///   (<https://docs.slack.dev/authentication/installing-with-oauth>).
/// - The client id and secret are best sent with HTTP Basic; `code_verifier` is accepted
///   (<https://docs.slack.dev/reference/methods/oauth.v2.access>).
/// - A refusal is status 200 with `{"ok": false, "error": "invalid_code"}` (Slack Web API
///   style; `invalid_refresh_token`, `bad_client_secret`, `invalid_client_id`,
///   `bad_redirect_uri`).
/// - Tokens never expire unless the app turned on token rotation; then they last 12 hours,
///   and each refresh revokes the refresh token used and answers with a new one
///   (<https://docs.slack.dev/authentication/using-token-rotation>).
pub const SLACK: BuiltinProvider = BuiltinProvider {
    name: "slack",
    title: "Slack",
    docs: "https://docs.slack.dev/authentication/installing-with-oauth",
    authorization_url: "https://slack.com/oauth/v2/authorize",
    token_url: "https://slack.com/api/oauth.v2.access",
    default_tenant: None,
    scope_separator: ",",
    authorization_params: &[],
    offline_scope: None,
    user_scope_param: Some("user_scope"),
    grants: &[Grant::AuthorizationCode],
    client_authentication: ClientAuthentication::ClientSecretBasic,
    quirks: TokenQuirks {
        response_format: ResponseFormat::Json,
        errors: ErrorStyle::SlackOkFalse,
        token_shape: TokenShape::SlackV2,
        response_scope_separator: ",",
        refresh: RefreshBehaviour::Rotates { old_revoked: true },
        may_not_expire: true,
        grant_gone: &["invalid_code", "invalid_refresh_token", "token_revoked"],
        client_rejected: &[
            "invalid_client_id",
            "bad_client_secret",
            "bad_redirect_uri",
            "oauth_authorization_url_mismatch",
        ],
        transient: &[
            "internal_error",
            "fatal_error",
            "service_unavailable",
            "ratelimited",
        ],
    },
};

/// The built-in providers.
pub const BUILTIN_PROVIDERS: [BuiltinProvider; 4] = [MICROSOFT, GOOGLE, GITHUB, SLACK];

/// The built-in provider named `name`.
pub fn builtin(name: &str) -> Option<&'static BuiltinProvider> {
    BUILTIN_PROVIDERS.iter().find(|p| p.name == name)
}

/// The names of the built-in providers, joined for a message: `microsoft, google, …`.
pub fn builtin_names() -> String {
    BUILTIN_PROVIDERS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one placeholder an endpoint template may hold.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

/// Authorization parameters the host sets itself; a manifest may not.
pub const HOST_AUTHORIZATION_PARAMS: [&str; 7] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Whether `name` may name a provider: lower-case ASCII letters, digits and `_`, starting
/// with a letter, so it is one key of `[oauth.providers.<name>]` and of
/// `TRIBUTARY__OAUTH__PROVIDERS__<NAME>__…`.
pub fn is_provider_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether `tenant` may stand for `{tenant}`: ASCII letters, digits, `.` and `-` (`common`, a
/// tenant id, `contoso.onmicrosoft.com`), so it cannot change the URL around it.
pub fn is_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Whether `scope` is an RFC 6749 `scope-token` (§3.3): one or more of `!`, `#`–`[`, `]`–`~`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .chars()
            .all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c))
}

/// Checks an endpoint template (a catalog entry, a manifest's or the deployment's): once
/// `{tenant}` is filled in it must be an `https://` URL, or `http://` on a loopback host
/// (RFC 6749 §3.1 and §3.2 require TLS), without a fragment. Says what is wrong.
pub fn check_endpoint(template: &str) -> Result<(), String> {
    let filled = template.replace(TENANT_PLACEHOLDER, "common");
    if filled.contains(['{', '}']) {
        return Err(format!(
            "`{template}` holds a placeholder other than {TENANT_PLACEHOLDER}"
        ));
    }
    let url = Url::parse(&filled).map_err(|e| format!("`{template}` is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "`{template}` is not https://; OAuth endpoints need TLS (http:// only on localhost)"
            ))
        }
        _ => return Err(format!("`{template}` is not an https:// URL")),
    }
    if url.fragment().is_some() {
        return Err(format!(
            "`{template}` has a fragment, which an endpoint may not"
        ));
    }
    Ok(())
}

/// A provider that cannot be reached as configured, with the key or field at fault
/// (`oauth.providers.microsoft.tenant`, `tenantId`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct ProviderSetupError {
    /// The configuration key or instance config field.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ProviderSetupError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What a deployment's configuration says of a provider beyond its client
/// (`[oauth.providers.<name>]`): endpoints in place of the catalog's (a national cloud,
/// GitHub Enterprise Server, a local test server) and a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeploymentOverrides<'a> {
    /// The authorization endpoint template, if not the provider's.
    pub authorization_url: Option<&'a str>,
    /// The token endpoint template, if not the provider's.
    pub token_url: Option<&'a str>,
    /// The tenant, if the deployment names one.
    pub tenant: Option<&'a str>,
}

/// A provider's endpoints for one instance, every placeholder filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the person consents; `None` for `client_credentials`.
    pub authorization_url: Option<Url>,
    /// Where codes and refresh tokens are exchanged.
    pub token_url: Url,
    /// The tenant filled in, for endpoints that hold one.
    pub tenant: Option<String>,
}

/// A provider as the host uses it: the catalog's entry or the manifest's own endpoints, in
/// one shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderProfile {
    /// Its name, which keys `[oauth.providers.<name>]`.
    pub name: String,
    /// Whether it is a built-in provider.
    pub builtin: bool,
    /// The authorization endpoint template, when it has one.
    pub authorization_url: Option<String>,
    /// The token endpoint template.
    pub token_url: String,
    /// The tenant when nobody names one.
    pub default_tenant: Option<String>,
    /// What joins scopes in the `scope` parameter.
    pub scope_separator: String,
    /// Parameters every authorization request carries (the catalog's).
    pub authorization_params: Vec<(String, String)>,
    /// A scope added to every `authorization_code` consent when not asked for.
    pub offline_scope: Option<String>,
    /// The parameter carrying user scopes, if the provider has one.
    pub user_scope_param: Option<String>,
    /// How the client authenticates at the token endpoint.
    pub client_authentication: ClientAuthentication,
    /// How the token endpoint answers.
    pub quirks: TokenQuirks,
}

impl From<&BuiltinProvider> for ProviderProfile {
    fn from(p: &BuiltinProvider) -> Self {
        ProviderProfile {
            name: p.name.to_owned(),
            builtin: true,
            authorization_url: Some(p.authorization_url.to_owned()),
            token_url: p.token_url.to_owned(),
            default_tenant: p.default_tenant.map(str::to_owned),
            scope_separator: p.scope_separator.to_owned(),
            authorization_params: p
                .authorization_params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            offline_scope: p.offline_scope.map(str::to_owned),
            user_scope_param: p.user_scope_param.map(str::to_owned),
            client_authentication: p.client_authentication,
            quirks: p.quirks,
        }
    }
}

impl ProviderProfile {
    /// Whether its endpoints hold `{tenant}`.
    pub fn takes_tenant(&self) -> bool {
        self.token_url.contains(TENANT_PLACEHOLDER)
            || self
                .authorization_url
                .as_deref()
                .is_some_and(|u| u.contains(TENANT_PLACEHOLDER))
    }

    /// The endpoints for one instance of `auth`: the deployment's endpoint templates where it
    /// gives them, else the provider's; the tenant from the instance (`instance_tenant`, see
    /// [`AuthSpec::instance_tenant`]), else the deployment's, else the provider's default.
    /// The errors name `oauth.providers.<name>.…`.
    pub fn endpoints(
        &self,
        auth: &AuthSpec,
        instance_tenant: Option<&str>,
        deployment: &DeploymentOverrides<'_>,
    ) -> Result<Endpoints, ProviderSetupError> {
        let key = |field: &str| format!("oauth.providers.{}.{field}", self.name);
        let tenant = if self.takes_tenant() {
            let tenant = instance_tenant
                .or(deployment.tenant)
                .or(self.default_tenant.as_deref())
                .ok_or_else(|| {
                    ProviderSetupError::new(
                        key("tenant"),
                        format!("the endpoints of `{}` need a tenant; set one", self.name),
                    )
                })?;
            if !is_tenant(tenant) {
                return Err(ProviderSetupError::new(
                    key("tenant"),
                    format!("`{tenant}` is not a tenant (letters, digits, `.` and `-`)"),
                ));
            }
            if auth.grant == Grant::ClientCredentials
                && self.name == MICROSOFT.name
                && ["common", "organizations", "consumers"].contains(&tenant)
            {
                return Err(ProviderSetupError::new(
                    key("tenant"),
                    format!("client credentials need the tenant's id or domain, not `{tenant}`"),
                ));
            }
            Some(tenant.to_owned())
        } else {
            None
        };
        let fill = |field: &str, template: &str| -> Result<Url, ProviderSetupError> {
            check_endpoint(template).map_err(|m| ProviderSetupError::new(key(field), m))?;
            let filled = match &tenant {
                Some(t) => template.replace(TENANT_PLACEHOLDER, t),
                None => template.to_owned(),
            };
            Url::parse(&filled).map_err(|e| ProviderSetupError::new(key(field), e.to_string()))
        };
        let authorization_url = match auth.grant {
            Grant::ClientCredentials => None,
            Grant::AuthorizationCode => {
                let template = deployment
                    .authorization_url
                    .or(self.authorization_url.as_deref())
                    .ok_or_else(|| {
                        ProviderSetupError::new(
                            key("authorization_url"),
                            "the provider has no authorization endpoint",
                        )
                    })?;
                Some(fill("authorization_url", template)?)
            }
        };
        let token_url = fill(
            "token_url",
            deployment.token_url.unwrap_or(self.token_url.as_str()),
        )?;
        Ok(Endpoints {
            authorization_url,
            token_url,
            tenant,
        })
    }

    /// `scopes` as the `scope` parameter: joined by the provider's separator.
    pub fn scope_value(&self, scopes: &[String]) -> String {
        scopes.join(&self.scope_separator)
    }

    /// The scopes a consent for `auth` asks for: the manifest's, with the provider's offline
    /// scope added for `authorization_code` when missing.
    pub fn consent_scopes(&self, auth: &AuthSpec) -> Vec<String> {
        let mut scopes = auth.scopes.clone();
        if let (Grant::AuthorizationCode, Some(offline)) = (auth.grant, &self.offline_scope) {
            if !scopes.contains(offline) {
                scopes.push(offline.clone());
            }
        }
        scopes
    }

    /// The authorization request's parameters for `auth`, besides those the host adds for
    /// each consent (`client_id`, `redirect_uri`, `response_type`, `state`, the PKCE pair):
    /// `scope`, the user scopes where the provider has them, the catalog's parameters, then
    /// the manifest's.
    pub fn authorization_query(&self, auth: &AuthSpec) -> Vec<(String, String)> {
        let mut query = Vec::new();
        let scopes = self.consent_scopes(auth);
        if !scopes.is_empty() {
            query.push(("scope".to_owned(), self.scope_value(&scopes)));
        }
        if let Some(param) = &self.user_scope_param {
            if !auth.user_scopes.is_empty() {
                query.push((param.clone(), self.scope_value(&auth.user_scopes)));
            }
        }
        query.extend(self.authorization_params.iter().cloned());
        query.extend(
            auth.authorization_params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        query
    }
}

impl AuthSpec {
    /// The provider this section names: the catalog's entry, or its own endpoints.
    pub fn profile(&self) -> ProviderProfile {
        match (&self.endpoints, builtin(&self.provider)) {
            (None, Some(provider)) => provider.into(),
            (endpoints, _) => {
                let endpoints = endpoints.clone().unwrap_or(CustomEndpoints {
                    authorization_url: None,
                    token_url: String::new(),
                    scope_separator: space(),
                    client_authentication: ClientAuthentication::default(),
                });
                ProviderProfile {
                    name: self.provider.clone(),
                    builtin: false,
                    authorization_url: endpoints.authorization_url,
                    token_url: endpoints.token_url,
                    default_tenant: None,
                    scope_separator: endpoints.scope_separator,
                    authorization_params: Vec::new(),
                    offline_scope: None,
                    user_scope_param: None,
                    client_authentication: endpoints.client_authentication,
                    quirks: STANDARD_QUIRKS,
                }
            }
        }
    }

    /// The config property `tenant` reads, when it is `${property}`.
    pub fn tenant_property(&self) -> Option<&str> {
        self.tenant
            .as_deref()
            .and_then(crate::manifest::config_host_property)
    }

    /// The tenant this section names for an instance configured with `config`: the literal,
    /// or the string in the `${property}` it names; `None` when it names none or the property
    /// is unset or empty (the deployment's tenant then applies). A property holding no tenant
    /// is an error naming it.
    pub fn instance_tenant(&self, config: &Value) -> Result<Option<String>, ProviderSetupError> {
        let Some(tenant) = &self.tenant else {
            return Ok(None);
        };
        let Some(property) = self.tenant_property() else {
            return Ok(Some(tenant.clone()));
        };
        match config.get(property) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if is_tenant(s.trim()) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(ProviderSetupError::new(
                property,
                "is not a tenant: a tenant id, a domain, `organizations` or `consumers`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn auth(value: Value) -> AuthSpec {
        serde_json::from_value(value).unwrap()
    }

    fn query(auth: &AuthSpec) -> Vec<(String, String)> {
        auth.profile().authorization_query(auth)
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_catalog_endpoint_passes_the_checks_a_manifest_passes() {
        for p in BUILTIN_PROVIDERS {
            assert!(is_provider_name(p.name), "{}", p.name);
            check_endpoint(p.authorization_url).unwrap();
            check_endpoint(p.token_url).unwrap();
            assert_eq!(
                p.default_tenant.is_some(),
                ProviderProfile::from(&p).takes_tenant(),
                "{}: a default tenant exactly when the endpoints take one",
                p.name
            );
            assert!(p.docs.starts_with("https://"), "{}", p.name);
            for (name, _) in p.authorization_params {
                assert!(!HOST_AUTHORIZATION_PARAMS.contains(name), "{}", p.name);
            }
        }
        assert_eq!(builtin("github").map(|p| p.title), Some("GitHub"));
        assert!(builtin("hubspot").is_none());
    }

    #[test]
    fn microsoft_consent_asks_for_offline_access_once_and_fills_the_tenant() {
        let spec = auth(serde_json::json!({
            "grant": "authorization_code", "provider": "microsoft",
            "scopes": ["User.Read", "Mail.Read"], "tenant": "${tenantId}"
        }));
        assert_eq!(
            query(&spec),
            pairs(&[("scope", "User.Read Mail.Read offline_access")])
        );
        let listed = auth(serde_json::json!({
            "grant": "authorization_code", "provider": "microsoft",
            "scopes": ["offline_access", "User.Read"]
        }));
        assert_eq!(
            query(&listed),
            pairs(&[("scope", "offline_access User.Read")])
        );

        let profile = spec.profile();
        let config = serde_json::json!({ "tenantId": "contoso.onmicrosoft.com" });
        let tenant = spec.instance_tenant(&config).unwrap();
        let endpoints = profile
            .endpoints(&spec, tenant.as_deref(), &DeploymentOverrides::default())
            .unwrap();
        assert_eq!(
            endpoints.token_url.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        // Unset in the instance: the deployment's tenant, else the provider's default.
        let deployment = DeploymentOverrides {
            tenant: Some("organizations"),
            ..Default::default()
        };
        let unset = spec.instance_tenant(&serde_json::json!({})).unwrap();
        assert_eq!(unset, None);
        let endpoints = profile.endpoints(&spec, None, &deployment).unwrap();
        assert_eq!(endpoints.tenant.as_deref(), Some("organizations"));
        let endpoints = profile
            .endpoints(&spec, None, &DeploymentOverrides::default())
            .unwrap();
        assert_eq!(
            endpoints.authorization_url.unwrap().as_str(),
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
        );
        // A tenant that would change the URL is refused, naming where it came from.
        let err = spec
            .instance_tenant(&serde_json::json!({ "tenantId": "x/../evil" }))
            .unwrap_err();
        assert_eq!(err.key, "tenantId");
    }

    #[test]
    fn microsoft_client_credentials_need_a_real_tenant_and_no_consent() {
        let spec = auth(serde_json::json!({
            "grant": "client_credentials", "provider": "microsoft",
            "scopes": ["https://graph.microsoft.com/.default"]
        }));
        let profile = spec.profile();
        let err = profile
            .endpoints(&spec, None, &DeploymentOverrides::default())
            .unwrap_err();
        assert_eq!(err.key, "oauth.providers.microsoft.tenant");
        let deployment = DeploymentOverrides {
            tenant: Some("8eaef023-2b34-4da1-9baa-8bc8c9d6a490"),
            ..Default::default()
        };
        let endpoints = profile.endpoints(&spec, None, &deployment).unwrap();
        assert_eq!(endpoints.authorization_url, None);
        assert_eq!(
            profile.consent_scopes(&spec),
            vec!["https://graph.microsoft.com/.default".to_owned()],
            "no offline_access without a person"
        );
    }

    #[test]
    fn google_always_asks_for_offline_access_and_a_fresh_consent() {
        let spec = auth(serde_json::json!({
            "grant": "authorization_code", "provider": "google",
            "scopes": ["openid", "https://www.googleapis.com/auth/calendar.readonly"],
            "authorizationParams": { "login_hint": "ada@example.com" }
        }));
        assert_eq!(
            query(&spec),
            pairs(&[
                (
                    "scope",
                    "openid https://www.googleapis.com/auth/calendar.readonly"
                ),
                ("access_type", "offline"),
                ("prompt", "consent"),
                ("login_hint", "ada@example.com"),
            ])
        );
    }

    #[test]
    fn slack_joins_with_commas_and_sends_user_scopes_apart() {
        let spec = auth(serde_json::json!({
            "grant": "authorization_code", "provider": "slack",
            "scopes": ["channels:history", "chat:write"], "userScopes": ["search:read"]
        }));
        assert_eq!(
            query(&spec),
            pairs(&[
                ("scope", "channels:history,chat:write"),
                ("user_scope", "search:read")
            ])
        );
        assert_eq!(
            spec.profile().client_authentication,
            ClientAuthentication::ClientSecretBasic
        );
    }

    #[test]
    fn a_deployment_may_point_a_provider_elsewhere() {
        let spec = auth(serde_json::json!({
            "grant": "authorization_code", "provider": "github", "scopes": ["repo"]
        }));
        let deployment = DeploymentOverrides {
            authorization_url: Some("https://ghe.example.com/login/oauth/authorize"),
            token_url: Some("http://127.0.0.1:9000/login/oauth/access_token"),
            tenant: None,
        };
        let endpoints = spec.profile().endpoints(&spec, None, &deployment).unwrap();
        assert_eq!(
            endpoints.token_url.as_str(),
            "http://127.0.0.1:9000/login/oauth/access_token"
        );
        let plain = DeploymentOverrides {
            token_url: Some("http://ghe.example.com/login/oauth/access_token"),
            ..Default::default()
        };
        let err = spec.profile().endpoints(&spec, None, &plain).unwrap_err();
        assert_eq!(err.key, "oauth.providers.github.token_url");
    }

    #[test]
    fn a_custom_provider_keeps_its_own_conventions() {
        let spec = auth(serde_json::json!({
            "grant": "authorization_code", "provider": "hubspot",
            "endpoints": {
                "authorizationUrl": "https://app.hubspot.com/oauth/authorize",
                "tokenUrl": "https://api.hubapi.com/oauth/v1/token",
                "clientAuthentication": "client_secret_post"
            },
            "scopes": ["crm.objects.contacts.read", "oauth"]
        }));
        let profile = spec.profile();
        assert!(!profile.builtin);
        assert_eq!(profile.quirks, STANDARD_QUIRKS);
        assert_eq!(
            query(&spec),
            pairs(&[("scope", "crm.objects.contacts.read oauth")])
        );
        // A parsed section serialises back to what the manifest said.
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["endpoints"].get("scopeSeparator"), None);
        assert_eq!(
            back["endpoints"]["clientAuthentication"],
            "client_secret_post"
        );
    }

    #[test]
    fn refusals_are_classified_by_each_providers_own_codes() {
        let cases = [
            (MICROSOFT, "invalid_grant", TokenErrorKind::GrantGone),
            (MICROSOFT, "invalid_client", TokenErrorKind::ClientRejected),
            (
                MICROSOFT,
                "temporarily_unavailable",
                TokenErrorKind::Transient,
            ),
            (GOOGLE, "invalid_grant", TokenErrorKind::GrantGone),
            (GITHUB, "bad_refresh_token", TokenErrorKind::GrantGone),
            (
                GITHUB,
                "incorrect_client_credentials",
                TokenErrorKind::ClientRejected,
            ),
            (SLACK, "invalid_refresh_token", TokenErrorKind::GrantGone),
            (SLACK, "bad_client_secret", TokenErrorKind::ClientRejected),
            (SLACK, "ratelimited", TokenErrorKind::Transient),
            (SLACK, "invalid_grant", TokenErrorKind::Other),
        ];
        for (provider, code, kind) in cases {
            assert_eq!(
                provider.quirks.classify(code),
                kind,
                "{} {code}",
                provider.name
            );
        }
    }

    #[test]
    fn names_tenants_scopes_and_endpoints_are_judged_alike_everywhere() {
        assert!(is_provider_name("hubspot_eu"));
        for bad in ["", "HubSpot", "1password", "hub-spot", "a.b"] {
            assert!(!is_provider_name(bad), "{bad}");
        }
        assert!(is_tenant("8eaef023-2b34-4da1-9baa-8bc8c9d6a490"));
        for bad in ["", "a/b", "a?b", "a b", "{tenant}"] {
            assert!(!is_tenant(bad), "{bad}");
        }
        assert!(is_scope_token("https://graph.microsoft.com/Mail.Read"));
        assert!(is_scope_token("channels:history"));
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(!is_scope_token(bad), "{bad}");
        }
        for bad in [
            "login.example.com/authorize",
            "ftp://example.com/token",
            "http://example.com/token",
            "https://example.com/{region}/token",
            "https://example.com/token#x",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        check_endpoint("http://localhost:8080/token").unwrap();
        check_endpoint("https://example.com/token?api-version=2").unwrap();
    }
}
