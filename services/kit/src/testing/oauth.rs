//! Local OAuth 2.0 providers for tests: one HTTP server per provider of the built-in catalog
//! ([`Provider`]), answering its authorization endpoint, its token endpoint and one API call
//! the way the provider documents them, refusals included (each dialect's module cites the
//! pages):
//!
//! - Microsoft identity platform v2.0 ([`microsoft`]): JSON refusals with an `AADSTS<n>:`
//!   description, `error_codes`, `trace_id`, `correlation_id` and `timestamp`; `invalid_client`
//!   with status 401; `GET /v1.0/me` as Microsoft Graph answers it.
//! - Google OAuth 2.0 ([`google`]): a refresh token only with `access_type=offline`, and only at
//!   the first consent unless `prompt=consent`; `GET /oauth2/v3/userinfo`.
//! - GitHub OAuth apps ([`github`]): form-encoded answers unless `Accept: application/json`,
//!   refusals with status 200 and an `error` field, a redirect URI that does not match sent to
//!   the registered callback with `error=redirect_uri_mismatch`; tokens that do not expire
//!   unless expiring user tokens are turned on; `GET /user`.
//! - Slack OAuth v2 ([`slack`]): comma-separated `scope` and `user_scope`, the bot token at
//!   the top level and the user token under `authed_user`, `{"ok": false, "error": …}` with
//!   status 200; tokens that expire only with token rotation; `auth.test`.
//!
//! What every server shares lives here once: the registered client, codes bound to their
//! client, redirect URI and PKCE challenge (S256 verified at the exchange; a code requested
//! without a challenge is refused unless [`ServerSettings::require_pkce`] is off), codes that
//! expire and work once (a reused code revokes what it gave, as RFC 6749 §4.1.2 asks), refresh
//! tokens that rotate as [`Rotation`] says, consent a test can narrow, deny or revoke, token
//! requests counted and logged ([`TokenRequest`]), and transient failures and delays on
//! demand. The consent screen is skipped: a `GET` of the authorization URL answers at once with
//! the redirect a person's click would have produced, so a test's user agent follows it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tributary_kit::testing::oauth::{Provider, ProviderServer};
//!
//! let microsoft = ProviderServer::start(Provider::Microsoft).await?;
//! let mut config = tributary_kit::Config::defaults().expect("defaults");
//! microsoft.configure(&mut config); // [oauth.providers.microsoft] points here
//! // … connect an instance; then:
//! assert_eq!(microsoft.token_requests().refresh_token, 0);
//! microsoft.revoke_consent(); // the next refresh gets invalid_grant (AADSTS50173)
//! # Ok(()) }
//! ```

pub mod github;
pub mod google;
pub mod microsoft;
pub mod slack;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tributary_proto::oauth::{
    BuiltinProvider, ClientAuthentication, GITHUB, GOOGLE, MICROSOFT, SLACK,
};

use crate::config::{Config, OAuthProviderConfig};

/// The provider a server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Microsoft identity platform v2.0.
    Microsoft,
    /// Google OAuth 2.0.
    Google,
    /// GitHub OAuth apps.
    GitHub,
    /// Slack OAuth v2.
    Slack,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 4] = [
        Provider::Microsoft,
        Provider::Google,
        Provider::GitHub,
        Provider::Slack,
    ];

    /// Its entry in the built-in catalog.
    pub fn catalog(self) -> &'static BuiltinProvider {
        match self {
            Provider::Microsoft => &MICROSOFT,
            Provider::Google => &GOOGLE,
            Provider::GitHub => &GITHUB,
            Provider::Slack => &SLACK,
        }
    }

    /// Its name in manifests and configuration (`microsoft`).
    pub fn name(self) -> &'static str {
        self.catalog().name
    }

    /// The authorization endpoint's path, as the provider serves it (`{tenant}` is a path
    /// segment for Microsoft).
    pub fn authorization_path(self) -> &'static str {
        match self {
            Provider::Microsoft => "/{tenant}/oauth2/v2.0/authorize",
            Provider::Google => "/o/oauth2/v2/auth",
            Provider::GitHub => "/login/oauth/authorize",
            Provider::Slack => "/oauth/v2/authorize",
        }
    }

    /// The token endpoint's path.
    pub fn token_path(self) -> &'static str {
        match self {
            Provider::Microsoft => "/{tenant}/oauth2/v2.0/token",
            Provider::Google => "/token",
            Provider::GitHub => "/login/oauth/access_token",
            Provider::Slack => "/api/oauth.v2.access",
        }
    }

    /// The path of the API call that says who the token belongs to: Graph's `/v1.0/me`,
    /// Google's `/oauth2/v3/userinfo`, GitHub's `/user`, Slack's `/api/auth.test`.
    pub fn api_path(self) -> &'static str {
        match self {
            Provider::Microsoft => "/v1.0/me",
            Provider::Google => "/oauth2/v3/userinfo",
            Provider::GitHub => "/user",
            Provider::Slack => "/api/auth.test",
        }
    }

    /// The separator of the `scope` parameter it reads.
    fn request_scope_separator(self) -> &'static str {
        self.catalog().scope_separator
    }
}

/// What becomes of a refresh token when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// A refresh answers without a refresh token; the first one stays valid (Google).
    Keep,
    /// Each refresh answers with a new refresh token; the old one still works (Microsoft).
    Rotate,
    /// Each refresh answers with a new refresh token; the old one, and the access token it
    /// was issued with, stop working at once (GitHub's expiring tokens, Slack's rotation).
    RotateAndRevoke,
}

/// What the person at the consent screen does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// Grants every scope asked for.
    Approve,
    /// Grants only these of the scopes asked for (a person unticking some, an admin policy).
    ApproveOnly(Vec<String>),
    /// Cancels: the redirect carries `error=access_denied`.
    Deny,
}

/// The person who consents, as the provider's API describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// The provider's id of the user (an object id, a `sub`, a numeric id, `U…`).
    pub id: String,
    /// Their login (GitHub) or handle (Slack).
    pub login: String,
    /// Their name.
    pub name: String,
    /// Their e-mail address, also the Microsoft `userPrincipalName`.
    pub email: String,
    /// The Microsoft tenant id or the Slack workspace's name.
    pub team: String,
}

/// How a server behaves; [`ServerSettings::of`] gives each provider's documented defaults.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The registered client's id.
    pub client_id: String,
    /// Its secret; empty for a public client, which needs none.
    pub client_secret: String,
    /// The registered redirect URIs; empty: any `http(s)` one is accepted, until
    /// [`ProviderServer::register_redirect_uri`] registers one.
    pub redirect_uris: Vec<String>,
    /// How long a code may wait for its exchange (10 minutes at every provider).
    pub code_lifetime: Duration,
    /// How long an access token lasts; `None`: it never expires and no `expires_in` is sent
    /// (a GitHub OAuth app's, a Slack app's without token rotation).
    pub access_token_lifetime: Option<Duration>,
    /// Whether refresh tokens are issued at all (under each provider's own conditions too:
    /// Microsoft's `offline_access`, Google's `access_type=offline`).
    pub refresh_tokens: bool,
    /// What becomes of a refresh token when used.
    pub rotation: Rotation,
    /// Whether a code requested without an S256 challenge is refused (`invalid_request` on
    /// the redirect). Stricter than the providers, which only check a challenge when one was
    /// given, so a client that forgets PKCE fails loudly.
    pub require_pkce: bool,
    /// Scopes the provider does not know: a consent asking for one is refused with
    /// `invalid_scope` (GitHub ignores unknown scopes, as it documents).
    pub invalid_scopes: Vec<String>,
    /// The person who consents.
    pub user: TestUser,
}

impl ServerSettings {
    /// Each provider's documented behaviour: Microsoft's and Google's tokens last an hour
    /// (Microsoft rotates its refresh tokens and keeps the old ones valid, Google keeps the
    /// one); a GitHub OAuth app's and a Slack app's never expire and come without a refresh
    /// token ([`ServerSettings::expiring`] turns on GitHub's expiring user tokens and Slack's
    /// token rotation). A fresh client secret each time.
    pub fn of(provider: Provider) -> Self {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let (client_id, client_secret, lifetime, refresh_tokens, rotation, user) = match provider {
            Provider::Microsoft => (
                "00001111-aaaa-2222-bbbb-3333cccc4444",
                format!("Qs8Q~{secret}"),
                Some(Duration::from_secs(3599)),
                true,
                Rotation::Rotate,
                TestUser {
                    id: "00000000-0000-0000-66f3-3332eca7ea81".into(),
                    login: "ada".into(),
                    name: "Ada Lovelace".into(),
                    email: "ada@contoso.onmicrosoft.com".into(),
                    team: "9188040d-6c67-4c5b-b112-36a304b66dad".into(),
                },
            ),
            Provider::Google => (
                "407408718192-test.apps.googleusercontent.com",
                format!("GOCSPX-{secret}"),
                Some(Duration::from_secs(3599)),
                true,
                Rotation::Keep,
                TestUser {
                    id: "110169484474386276334".into(),
                    login: "ada".into(),
                    name: "Ada Lovelace".into(),
                    email: "ada@example.com".into(),
                    team: String::new(),
                },
            ),
            Provider::GitHub => (
                "Iv1.8a61f9b3a7aba766",
                secret,
                None,
                false,
                Rotation::RotateAndRevoke,
                TestUser {
                    id: "583231".into(),
                    login: "octocat".into(),
                    name: "The Octocat".into(),
                    email: "octocat@github.com".into(),
                    team: String::new(),
                },
            ),
            Provider::Slack => (
                "2141029472.691202649728",
                secret,
                None,
                false,
                Rotation::RotateAndRevoke,
                TestUser {
                    id: "U0KRQLJ9H".into(),
                    login: "ada".into(),
                    name: "Ada Lovelace".into(),
                    email: "ada@example.com".into(),
                    team: "Slack Softball Team".into(),
                },
            ),
        };
        ServerSettings {
            client_id: client_id.to_owned(),
            client_secret,
            redirect_uris: Vec::new(),
            code_lifetime: Duration::from_secs(600),
            access_token_lifetime: lifetime,
            refresh_tokens,
            rotation,
            require_pkce: true,
            invalid_scopes: Vec::new(),
            user,
        }
    }

    /// `provider`'s defaults with access tokens lasting `lifetime` and refresh tokens issued:
    /// GitHub's expiring user tokens, Slack's token rotation, or short-lived Microsoft and
    /// Google tokens for a test of refreshing ahead of expiry.
    pub fn expiring(provider: Provider, lifetime: Duration) -> Self {
        ServerSettings {
            access_token_lifetime: Some(lifetime),
            refresh_tokens: true,
            ..ServerSettings::of(provider)
        }
    }
}

/// How many token requests a server has answered, by grant type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRequestCounts {
    /// Every request to the token endpoint, refused ones included.
    pub total: u64,
    /// Code exchanges.
    pub authorization_code: u64,
    /// Refreshes.
    pub refresh_token: u64,
    /// Client credentials requests.
    pub client_credentials: u64,
    /// Requests refused, with an error or a transient failure.
    pub refused: u64,
}

/// One request to the token endpoint, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Its `grant_type`, as sent (empty when missing).
    pub grant_type: String,
    /// How the client authenticated, if it did.
    pub client_authentication: Option<ClientAuthentication>,
    /// Its `Accept` header.
    pub accept: Option<String>,
    /// The tenant in the path (Microsoft).
    pub tenant: Option<String>,
    /// Whether it sent a `code_verifier`.
    pub code_verifier: bool,
    /// The error code it was refused with, if it was (`invalid_grant`,
    /// `bad_verification_code`, `temporarily_unavailable` for an injected failure).
    pub error: Option<String>,
}

/// Why the token endpoint refuses a request; each dialect words it as its provider does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A required parameter is missing.
    MissingParameter(&'static str),
    /// A `grant_type` the provider does not offer.
    UnsupportedGrant(String),
    /// The client id is not the registered one.
    UnknownClient(String),
    /// No client secret came, and the client has one.
    MissingSecret,
    /// The client secret is wrong.
    WrongSecret,
    /// The code is unknown, expired, or not this client's.
    InvalidCode,
    /// The code was redeemed before.
    ReusedCode,
    /// The code was requested with a challenge and no verifier came.
    MissingVerifier,
    /// The verifier does not hash to the code's challenge.
    WrongVerifier,
    /// The redirect URI differs from the one the code was sent to.
    RedirectMismatch(String),
    /// The refresh token is unknown, used up or not this client's.
    InvalidRefreshToken,
    /// The person revoked the consent the token came from.
    RevokedConsent,
    /// A scope the grant does not allow (Microsoft client credentials without `/.default`).
    InvalidScope(String),
    /// An injected transient failure ([`ProviderServer::fail_token_requests`]).
    Unavailable,
}

/// Why the authorization endpoint refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeFailure {
    /// The client id is not the registered one.
    UnknownClient(String),
    /// No client id.
    MissingClient,
    /// A redirect URI that is not registered.
    RedirectNotRegistered(String),
    /// No redirect URI, where the provider needs one.
    MissingRedirect,
    /// A `response_type` other than `code`.
    UnsupportedResponseType(String),
    /// No PKCE challenge ([`ServerSettings::require_pkce`]).
    MissingChallenge,
    /// A challenge method other than S256.
    UnsupportedChallengeMethod(String),
    /// No scope, where the provider needs one.
    MissingScope,
    /// A scope the provider does not know.
    InvalidScope(String),
    /// The person cancelled.
    Denied,
}

/// How the authorization endpoint answers a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeAnswer {
    /// Back to the client's redirect URI with these parameters (and `state`).
    Redirect(Vec<(String, String)>),
    /// To the registered callback, whatever was asked (GitHub's `redirect_uri_mismatch`).
    RedirectToRegistered(Vec<(String, String)>),
    /// An error page for the person; the client hears nothing.
    Page {
        /// The page's status.
        status: StatusCode,
        /// The error as the page names it.
        error: String,
        /// What the page says.
        description: String,
    },
}

/// The kind of token (Slack's bot and user tokens; one kind elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A token acting for the person (every provider's; Slack's `authed_user` token).
    User,
    /// A Slack bot token.
    Bot,
}

/// Tokens issued by one grant, for a dialect to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Bot or user.
    pub kind: TokenKind,
    /// The access token.
    pub access_token: String,
    /// Seconds it lasts, if it expires.
    pub expires_in: Option<u64>,
    /// The refresh token, if one is issued.
    pub refresh_token: Option<String>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// An OpenID Connect ID token, when `openid` was granted (Microsoft, Google).
    pub id_token: Option<String>,
}

/// Why the API call refuses its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiRefusal {
    /// No bearer token.
    Missing,
    /// A token the server never issued or has replaced.
    Invalid,
    /// An expired token.
    Expired,
    /// A token whose consent was revoked.
    Revoked,
}

/// What a dialect renders with.
pub struct Ctx<'a> {
    /// The server's settings.
    pub settings: &'a ServerSettings,
    /// Whether the request asked for JSON (GitHub answers form-encoded otherwise).
    pub accept_json: bool,
    /// The tenant in the path (Microsoft).
    pub tenant: Option<&'a str>,
    /// The client id the request named.
    pub client_id: &'a str,
}

/// A code waiting for its exchange.
#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: Option<String>,
    challenge: Option<String>,
    scopes: Vec<String>,
    user_scopes: Vec<String>,
    /// Google: whether a refresh token may come (`access_type=offline`, and a first consent or
    /// `prompt=consent`).
    offline: bool,
    issued_at: Instant,
    /// The grant it was redeemed for, once redeemed.
    redeemed: Option<usize>,
}

#[derive(Debug, Clone)]
struct GrantRecord {
    revoked: bool,
}

#[derive(Debug, Clone)]
struct RefreshRecord {
    grant: usize,
    kind: TokenKind,
    client_id: String,
    scopes: Vec<String>,
    valid: bool,
    /// The access token issued with it, revoked with it under [`Rotation::RotateAndRevoke`].
    access_token: String,
}

#[derive(Debug, Clone)]
struct AccessRecord {
    grant: Option<usize>,
    expires_at: Option<Instant>,
    valid: bool,
}

#[derive(Debug)]
struct State {
    settings: ServerSettings,
    consent: Consent,
    codes: HashMap<String, Code>,
    grants: Vec<GrantRecord>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    access_tokens: HashMap<String, AccessRecord>,
    /// Google: whether the person has consented to this client before.
    consented_before: bool,
    fail_next: usize,
    token_delay: Duration,
    counts: TokenRequestCounts,
    log: Vec<TokenRequest>,
    api_requests: u64,
    /// Every code, access token and refresh token issued, in order.
    issued: Vec<String>,
}

struct Shared {
    provider: Provider,
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test thread panicking while it holds the lock leaves the state as it was; go on.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A local provider: its endpoints on `127.0.0.1`, until dropped.
pub struct ProviderServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ProviderServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderServer")
            .field("provider", &self.shared.provider)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ProviderServer {
    /// Starts `provider` with its documented defaults ([`ServerSettings::of`]).
    pub async fn start(provider: Provider) -> std::io::Result<Self> {
        Self::start_with(provider, ServerSettings::of(provider)).await
    }

    /// Starts `provider` with `settings`.
    pub async fn start_with(provider: Provider, settings: ServerSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            provider,
            base_url: format!("http://{addr}"),
            state: Mutex::new(State {
                settings,
                consent: Consent::Approve,
                codes: HashMap::new(),
                grants: Vec::new(),
                refresh_tokens: HashMap::new(),
                access_tokens: HashMap::new(),
                consented_before: false,
                fail_next: 0,
                token_delay: Duration::ZERO,
                counts: TokenRequestCounts::default(),
                log: Vec::new(),
                api_requests: 0,
                issued: Vec::new(),
            }),
        });
        let router = router(provider).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(ProviderServer { shared, addr, task })
    }

    /// The provider it plays.
    pub fn provider(&self) -> Provider {
        self.shared.provider
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The authorization endpoint, a template with `{tenant}` for Microsoft as the catalog's
    /// is.
    pub fn authorization_url(&self) -> String {
        format!(
            "{}{}",
            self.base_url(),
            self.provider().authorization_path()
        )
    }

    /// The token endpoint, a template like [`ProviderServer::authorization_url`].
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), self.provider().token_path())
    }

    /// The API call that says whose the token is ([`Provider::api_path`]).
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url(), self.provider().api_path())
    }

    /// The registered client's id.
    pub fn client_id(&self) -> String {
        self.shared.lock().settings.client_id.clone()
    }

    /// The registered client's secret.
    pub fn client_secret(&self) -> SecretString {
        SecretString::from(self.shared.lock().settings.client_secret.clone())
    }

    /// The deployment configuration that points at this server: its client, and its
    /// endpoints in place of the provider's.
    pub fn provider_config(&self) -> OAuthProviderConfig {
        let settings = &self.shared.lock().settings;
        OAuthProviderConfig {
            client_id: settings.client_id.clone(),
            client_secret: SecretString::from(settings.client_secret.clone()),
            client_secret_file: Default::default(),
            tenant: if self.provider() == Provider::Microsoft {
                "common".into()
            } else {
                String::new()
            },
            authorization_url: self.authorization_url(),
            token_url: self.token_url(),
        }
    }

    /// Points `config`'s `[oauth.providers.<name>]` at this server.
    pub fn configure(&self, config: &mut Config) {
        config
            .oauth
            .providers
            .insert(self.provider().name().to_owned(), self.provider_config());
    }

    /// Registers a redirect URI; from the first one on, only registered ones are accepted.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.shared
            .lock()
            .settings
            .redirect_uris
            .push(uri.to_owned());
    }

    /// What the person does at the next consents.
    pub fn set_consent(&self, consent: Consent) {
        self.shared.lock().consent = consent;
    }

    /// Changes what becomes of refresh tokens from now on.
    pub fn set_rotation(&self, rotation: Rotation) {
        self.shared.lock().settings.rotation = rotation;
    }

    /// Changes how long access tokens issued from now on last.
    pub fn set_access_token_lifetime(&self, lifetime: Option<Duration>) {
        self.shared.lock().settings.access_token_lifetime = lifetime;
    }

    /// The person revokes every consent given so far (in the provider's account settings):
    /// the refresh tokens are refused as revoked, the access tokens by the API.
    pub fn revoke_consent(&self) {
        let mut state = self.shared.lock();
        for grant in &mut state.grants {
            grant.revoked = true;
        }
    }

    /// Every access token issued so far expires now (the refresh tokens stay valid).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for record in self.shared.lock().access_tokens.values_mut() {
            record.expires_at = Some(now);
        }
    }

    /// The next `count` token requests fail as a provider's do when it is overloaded: status
    /// 503 with its `temporarily_unavailable` (or own) body.
    pub fn fail_token_requests(&self, count: usize) {
        self.shared.lock().fail_next = count;
    }

    /// Each token request waits `delay` before it is answered, so concurrent refreshes
    /// overlap.
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.lock().token_delay = delay;
    }

    /// How many token requests came, by grant type.
    pub fn token_requests(&self) -> TokenRequestCounts {
        self.shared.lock().counts
    }

    /// Every token request, in order, without secrets.
    pub fn token_request_log(&self) -> Vec<TokenRequest> {
        self.shared.lock().log.clone()
    }

    /// How many API calls ([`ProviderServer::api_url`]) came.
    pub fn api_requests(&self) -> u64 {
        self.shared.lock().api_requests
    }

    /// Whether `access_token` would be accepted by the API now.
    pub fn accepts_access_token(&self, access_token: &str) -> bool {
        let state = self.shared.lock();
        check_access(&state, access_token).is_ok()
    }

    /// Every secret this server has handed out or holds: the client secret, each code, access
    /// token and refresh token; for a test that none of them leaks into logs, events or the
    /// database.
    pub fn secrets(&self) -> Vec<String> {
        let state = self.shared.lock();
        let mut secrets = vec![state.settings.client_secret.clone()];
        secrets.extend(state.issued.iter().cloned());
        secrets.retain(|s| !s.is_empty());
        secrets
    }
}

impl Drop for ProviderServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Server = AxumState<Arc<Shared>>;

fn router(provider: Provider) -> Router<Arc<Shared>> {
    let router = match provider {
        Provider::Microsoft => Router::new()
            .route(
                provider.authorization_path(),
                get(|s: Server, q: RawQuery| async move { authorize(&s.0, q.0) }),
            )
            .route(
                provider.token_path(),
                axum::routing::post(
                    |s: Server, Path(tenant): Path<String>, h: HeaderMap, body: Bytes| async move {
                        token(&s.0, Some(tenant), &h, &body).await
                    },
                ),
            ),
        _ => Router::new()
            .route(
                provider.authorization_path(),
                get(|s: Server, q: RawQuery| async move { authorize(&s.0, q.0) }),
            )
            .route(
                provider.token_path(),
                axum::routing::post(|s: Server, h: HeaderMap, body: Bytes| async move {
                    token(&s.0, None, &h, &body).await
                }),
            ),
    };
    router.route(
        provider.api_path(),
        get(|s: Server, h: HeaderMap| async move { api(&s.0, &h) })
            .post(|s: Server, h: HeaderMap| async move { api(&s.0, &h) }),
    )
}

/// The pairs of a query string or form body.
fn pairs(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

/// A random token with `prefix`, recorded as issued.
fn mint(state: &mut State, prefix: &str) -> String {
    let token = format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    state.issued.push(token.clone());
    token
}

/// RFC 7636 §4.2: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a PKCE code verifier (RFC 7636 §4.1): 43 to 128 unreserved
/// characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

fn redirect_to(uri: &str, params: &[(String, String)]) -> Response {
    let mut location = uri.to_owned();
    if !params.is_empty() {
        location.push(if uri.contains('?') { '&' } else { '?' });
        location.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish(),
        );
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn page(status: StatusCode, error: &str, description: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!DOCTYPE html><html><head><title>Sign in error</title></head><body><h1>{}</h1><p>{}</p></body></html>",
        escape(error),
        escape(description)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The dialect's answer to an authorization refusal.
fn authorize_refusal(
    provider: Provider,
    settings: &ServerSettings,
    failure: &AuthorizeFailure,
) -> AuthorizeAnswer {
    match provider {
        Provider::Microsoft => microsoft::authorize_refusal(settings, failure),
        Provider::Google => google::authorize_refusal(settings, failure),
        Provider::GitHub => github::authorize_refusal(settings, failure),
        Provider::Slack => slack::authorize_refusal(settings, failure),
    }
}

fn authorize(shared: &Shared, query: Option<String>) -> Response {
    let provider = shared.provider;
    let q = pairs(query.as_deref().unwrap_or_default());
    let mut state = shared.lock();
    let answer = |state: &State, redirect: Option<&str>, failure: AuthorizeFailure| {
        let state_param = q.get("state").cloned();
        let with_state = |mut params: Vec<(String, String)>| {
            if let Some(s) = &state_param {
                params.push(("state".into(), s.clone()));
            }
            params
        };
        match authorize_refusal(provider, &state.settings, &failure) {
            AuthorizeAnswer::Redirect(params) => match redirect {
                Some(uri) => redirect_to(uri, &with_state(params)),
                None => page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "no redirect URI",
                ),
            },
            AuthorizeAnswer::RedirectToRegistered(params) => {
                match state.settings.redirect_uris.first() {
                    Some(uri) => redirect_to(uri, &with_state(params)),
                    None => page(
                        StatusCode::BAD_REQUEST,
                        "redirect_uri_mismatch",
                        "no callback URL registered",
                    ),
                }
            }
            AuthorizeAnswer::Page {
                status,
                error,
                description,
            } => page(status, &error, &description),
        }
    };

    // Who asks, and where the answer goes: refused on a page, never redirected, while either
    // is in doubt.
    let Some(client_id) = q.get("client_id") else {
        return answer(&state, None, AuthorizeFailure::MissingClient);
    };
    if *client_id != state.settings.client_id {
        return answer(
            &state,
            None,
            AuthorizeFailure::UnknownClient(client_id.clone()),
        );
    }
    let redirect = match q.get("redirect_uri") {
        Some(uri) => {
            let registered = &state.settings.redirect_uris;
            let known = if registered.is_empty() {
                url::Url::parse(uri).is_ok_and(|u| u.scheme() == "http" || u.scheme() == "https")
            } else {
                registered.contains(uri)
            };
            if !known {
                return answer(
                    &state,
                    None,
                    AuthorizeFailure::RedirectNotRegistered(uri.clone()),
                );
            }
            Some(uri.clone())
        }
        None => None,
    };
    // GitHub and Slack fall back to the registered callback; Microsoft and Google need one.
    let target = match (&redirect, state.settings.redirect_uris.first()) {
        (Some(uri), _) => uri.clone(),
        (None, Some(registered)) if matches!(provider, Provider::GitHub | Provider::Slack) => {
            registered.clone()
        }
        (None, _) => return answer(&state, None, AuthorizeFailure::MissingRedirect),
    };

    let response_type = q.get("response_type").map(String::as_str);
    if provider != Provider::Slack && provider != Provider::GitHub && response_type != Some("code")
    {
        let failure =
            AuthorizeFailure::UnsupportedResponseType(response_type.unwrap_or_default().to_owned());
        return answer(&state, Some(&target), failure);
    }
    let challenge = q.get("code_challenge").cloned();
    match (
        &challenge,
        q.get("code_challenge_method").map(String::as_str),
    ) {
        (None, _) if state.settings.require_pkce => {
            return answer(&state, Some(&target), AuthorizeFailure::MissingChallenge)
        }
        (Some(_), Some("S256")) | (None, None) => {}
        (_, method) => {
            let failure =
                AuthorizeFailure::UnsupportedChallengeMethod(method.unwrap_or("plain").to_owned());
            return answer(&state, Some(&target), failure);
        }
    }

    let separator = provider.request_scope_separator();
    let split = |value: Option<&String>| -> Vec<String> {
        value
            .map(|s| {
                s.split(separator)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let scopes = split(q.get("scope"));
    let user_scopes = if provider == Provider::Slack {
        split(q.get("user_scope"))
    } else {
        Vec::new()
    };
    let needs_scope = matches!(
        provider,
        Provider::Microsoft | Provider::Google | Provider::Slack
    );
    if needs_scope && scopes.is_empty() && user_scopes.is_empty() {
        return answer(&state, Some(&target), AuthorizeFailure::MissingScope);
    }
    if provider != Provider::GitHub {
        if let Some(bad) = scopes
            .iter()
            .chain(&user_scopes)
            .find(|s| state.settings.invalid_scopes.contains(s))
        {
            let failure = AuthorizeFailure::InvalidScope(bad.clone());
            return answer(&state, Some(&target), failure);
        }
    }
    let narrow = |asked: Vec<String>, consent: &Consent| match consent {
        Consent::ApproveOnly(allowed) => asked
            .into_iter()
            .filter(|s| allowed.contains(s) || s == "offline_access")
            .collect(),
        _ => asked,
    };
    let consent = state.consent.clone();
    if consent == Consent::Deny {
        return answer(&state, Some(&target), AuthorizeFailure::Denied);
    }
    let scopes = narrow(scopes, &consent);
    let user_scopes = narrow(user_scopes, &consent);

    let offline = match provider {
        Provider::Google => {
            let asked_offline = q.get("access_type").map(String::as_str) == Some("offline");
            let prompted = q
                .get("prompt")
                .is_some_and(|p| p.split(' ').any(|p| p == "consent"));
            asked_offline && (!state.consented_before || prompted)
        }
        _ => true,
    };
    state.consented_before = true;
    let code = mint(&mut state, code_prefix(provider));
    state.codes.insert(
        code.clone(),
        Code {
            client_id: client_id.clone(),
            redirect_uri: redirect,
            challenge,
            scopes: scopes.clone(),
            user_scopes,
            offline,
            issued_at: Instant::now(),
            redeemed: None,
        },
    );
    let mut params = vec![("code".to_owned(), code)];
    if let Some(s) = q.get("state") {
        params.push(("state".into(), s.clone()));
    }
    if provider == Provider::Google {
        // Google's redirect says which scopes were granted.
        params.push(("scope".into(), scopes.join(" ")));
    }
    redirect_to(&target, &params)
}

fn code_prefix(provider: Provider) -> &'static str {
    match provider {
        Provider::Microsoft => "M.C507_BAY.2.U.",
        Provider::Google => "4/0A",
        Provider::GitHub => "",
        Provider::Slack => "4724469134.",
    }
}

/// The client a token request names, and how it authenticated: HTTP Basic (RFC 6749 §2.3.1,
/// each part form-decoded) or the form's `client_id` and `client_secret`.
fn client_of(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>, Option<ClientAuthentication>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| {
            let (id, secret) = text.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    match basic {
        Some((id, secret)) => (
            Some(id),
            Some(secret),
            Some(ClientAuthentication::ClientSecretBasic),
        ),
        None => {
            let id = form.get("client_id").cloned();
            let secret = form.get("client_secret").cloned();
            let how = secret
                .as_ref()
                .map(|_| ClientAuthentication::ClientSecretPost);
            (id, secret, how)
        }
    }
}

fn issue(
    state: &mut State,
    provider: Provider,
    kind: TokenKind,
    grant: Option<usize>,
    scopes: &[String],
    with_refresh: bool,
    client_id: &str,
) -> Issued {
    let (access_prefix, refresh_prefix) = match (
        provider,
        kind,
        state.settings.access_token_lifetime.is_some(),
    ) {
        (Provider::Microsoft, _, _) => ("eyJ0eXAiOiJKV1QiLCJub25jZSI6", "0.AXkA"),
        (Provider::Google, _, _) => ("ya29.a0", "1//0g"),
        (Provider::GitHub, _, false) => ("gho_", "ghr_"),
        (Provider::GitHub, _, true) => ("ghu_", "ghr_"),
        (Provider::Slack, TokenKind::Bot, false) => ("xoxb-", "xoxe-1-"),
        (Provider::Slack, TokenKind::Bot, true) => ("xoxe.xoxb-1-", "xoxe-1-"),
        (Provider::Slack, TokenKind::User, false) => ("xoxp-", "xoxe-1-"),
        (Provider::Slack, TokenKind::User, true) => ("xoxe.xoxp-1-", "xoxe-1-"),
    };
    let lifetime = state.settings.access_token_lifetime;
    let access_token = mint(state, access_prefix);
    state.access_tokens.insert(
        access_token.clone(),
        AccessRecord {
            grant,
            expires_at: lifetime.map(|l| Instant::now() + l),
            valid: true,
        },
    );
    let refresh_token = match grant {
        Some(grant) if with_refresh => {
            let token = mint(state, refresh_prefix);
            state.refresh_tokens.insert(
                token.clone(),
                RefreshRecord {
                    grant,
                    kind,
                    client_id: client_id.to_owned(),
                    scopes: scopes.to_vec(),
                    valid: true,
                    access_token: access_token.clone(),
                },
            );
            Some(token)
        }
        _ => None,
    };
    let id_token = (matches!(provider, Provider::Microsoft | Provider::Google)
        && scopes.iter().any(|s| s == "openid"))
    .then(|| id_token(provider, &state.settings, client_id));
    Issued {
        kind,
        access_token,
        expires_in: lifetime.map(|l| l.as_secs()),
        refresh_token,
        scopes: scopes.to_vec(),
        id_token,
    }
}

/// An OpenID Connect ID token naming the person, signed with nothing a client could check:
/// a test reads its claims ("connected as"), it does not verify it.
fn id_token(provider: Provider, settings: &ServerSettings, client_id: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let user = &settings.user;
    let claims = match provider {
        Provider::Microsoft => serde_json::json!({
            "aud": client_id,
            "iss": format!("https://login.microsoftonline.com/{}/v2.0", user.team),
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": user.name, "oid": user.id, "preferred_username": user.email,
            "sub": user.id, "tid": user.team, "ver": "2.0",
        }),
        _ => serde_json::json!({
            "aud": client_id, "azp": client_id, "iss": "https://accounts.google.com",
            "iat": now, "exp": now + 3600,
            "sub": user.id, "email": user.email, "email_verified": true, "name": user.name,
        }),
    };
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.{}",
        b64(&serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "local-test"})),
        b64(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"not-a-signature")
    )
}

/// The token endpoint: the client authenticated, then the grant.
async fn token(
    shared: &Shared,
    tenant: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let provider = shared.provider;
    let delay = shared.lock().token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let form = pairs(&String::from_utf8_lossy(body));
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accept_json = accept
        .as_deref()
        .is_some_and(|a| a.contains("application/json"));
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let (client_id, secret, how) = client_of(headers, &form);

    let mut state = shared.lock();
    state.counts.total += 1;
    match grant_type.as_str() {
        "authorization_code" => state.counts.authorization_code += 1,
        "refresh_token" => state.counts.refresh_token += 1,
        "client_credentials" => state.counts.client_credentials += 1,
        _ => {}
    }
    let outcome = if state.fail_next > 0 {
        state.fail_next -= 1;
        Err(Failure::Unavailable)
    } else {
        grant(
            &mut state,
            provider,
            &grant_type,
            &form,
            client_id.as_deref(),
            secret.as_deref(),
            how,
        )
    };
    let client_id = client_id.unwrap_or_default();
    let settings = state.settings.clone();
    let ctx = Ctx {
        settings: &settings,
        accept_json,
        tenant: tenant.as_deref(),
        client_id: &client_id,
    };
    let (response, error) = match outcome {
        Ok((issued, refreshed)) => (token_success(provider, &ctx, &issued, refreshed), None),
        Err(failure) => {
            state.counts.refused += 1;
            let (response, code) = token_refusal(provider, &ctx, &failure);
            (response, Some(code.to_owned()))
        }
    };
    state.log.push(TokenRequest {
        grant_type,
        client_authentication: how,
        accept,
        tenant,
        code_verifier: form.contains_key("code_verifier"),
        error,
    });
    response
}

fn token_success(
    provider: Provider,
    ctx: &Ctx<'_>,
    issued: &[Issued],
    refreshed: bool,
) -> Response {
    match provider {
        Provider::Microsoft => microsoft::token_success(ctx, issued),
        Provider::Google => google::token_success(ctx, issued),
        Provider::GitHub => github::token_success(ctx, issued),
        Provider::Slack => slack::token_success(ctx, issued, refreshed),
    }
}

fn token_refusal(provider: Provider, ctx: &Ctx<'_>, failure: &Failure) -> (Response, &'static str) {
    match provider {
        Provider::Microsoft => microsoft::token_refusal(ctx, failure),
        Provider::Google => google::token_refusal(ctx, failure),
        Provider::GitHub => github::token_refusal(ctx, failure),
        Provider::Slack => slack::token_refusal(ctx, failure),
    }
}

/// The grant of one token request, once it came: the tokens issued and whether they
/// refreshed, or why not.
fn grant(
    state: &mut State,
    provider: Provider,
    grant_type: &str,
    form: &HashMap<String, String>,
    client_id: Option<&str>,
    secret: Option<&str>,
    how: Option<ClientAuthentication>,
) -> Result<(Vec<Issued>, bool), Failure> {
    let client_id = client_id.ok_or(Failure::MissingParameter("client_id"))?;
    if client_id != state.settings.client_id {
        return Err(Failure::UnknownClient(client_id.to_owned()));
    }
    // GitHub documents no HTTP Basic client authentication at this endpoint.
    let refused_basic =
        provider == Provider::GitHub && how == Some(ClientAuthentication::ClientSecretBasic);
    if !state.settings.client_secret.is_empty() {
        match secret {
            _ if refused_basic => return Err(Failure::WrongSecret),
            None => return Err(Failure::MissingSecret),
            Some(s)
                if !bool::from(subtle::ConstantTimeEq::ct_eq(
                    s.as_bytes(),
                    state.settings.client_secret.as_bytes(),
                )) =>
            {
                return Err(Failure::WrongSecret)
            }
            Some(_) => {}
        }
    }
    match grant_type {
        "" => Err(Failure::MissingParameter("grant_type")),
        "authorization_code" => exchange(state, provider, form, client_id).map(|i| (i, false)),
        "refresh_token" => refresh(state, provider, form, client_id).map(|i| (vec![i], true)),
        "client_credentials" if provider == Provider::Microsoft => {
            let scopes: Vec<String> = form
                .get("scope")
                .map(|s| {
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            match scopes.as_slice() {
                [] => Err(Failure::MissingParameter("scope")),
                [one] if one.ends_with("/.default") => Ok((
                    vec![issue(
                        state,
                        provider,
                        TokenKind::User,
                        None,
                        &scopes,
                        false,
                        client_id,
                    )],
                    false,
                )),
                _ => Err(Failure::InvalidScope(scopes.join(" "))),
            }
        }
        other => Err(Failure::UnsupportedGrant(other.to_owned())),
    }
}

fn exchange(
    state: &mut State,
    provider: Provider,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<Vec<Issued>, Failure> {
    let code_value = form.get("code").ok_or(Failure::MissingParameter("code"))?;
    let code = state
        .codes
        .get(code_value)
        .cloned()
        .ok_or(Failure::InvalidCode)?;
    if let Some(grant) = code.redeemed {
        // RFC 6749 §4.1.2: a code used twice revokes what it gave.
        if let Some(record) = state.grants.get_mut(grant) {
            record.revoked = true;
        }
        return Err(Failure::ReusedCode);
    }
    if code.client_id != client_id || code.issued_at.elapsed() > state.settings.code_lifetime {
        return Err(Failure::InvalidCode);
    }
    let given = form.get("redirect_uri");
    match (&code.redirect_uri, given) {
        (Some(sent), Some(given)) if sent != given => {
            return Err(Failure::RedirectMismatch(given.clone()))
        }
        // Microsoft and Google need the same redirect URI at the exchange.
        (Some(sent), None) if matches!(provider, Provider::Microsoft | Provider::Google) => {
            return Err(Failure::RedirectMismatch(sent.clone()))
        }
        _ => {}
    }
    if let Some(challenge) = &code.challenge {
        let verifier = form.get("code_verifier").ok_or(Failure::MissingVerifier)?;
        let matches = is_verifier(verifier)
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                s256_challenge(verifier).as_bytes(),
                challenge.as_bytes(),
            ));
        if !matches {
            return Err(Failure::WrongVerifier);
        }
    }
    let grant = state.grants.len();
    state.grants.push(GrantRecord { revoked: false });
    if let Some(stored) = state.codes.get_mut(code_value) {
        stored.redeemed = Some(grant);
    }
    let refresh_allowed = state.settings.refresh_tokens
        && code.offline
        && (provider != Provider::Microsoft || code.scopes.iter().any(|s| s == "offline_access"));
    let mut issued = Vec::new();
    match provider {
        Provider::Slack => {
            if !code.scopes.is_empty() {
                issued.push(issue(
                    state,
                    provider,
                    TokenKind::Bot,
                    Some(grant),
                    &code.scopes,
                    refresh_allowed,
                    client_id,
                ));
            }
            if !code.user_scopes.is_empty() {
                issued.push(issue(
                    state,
                    provider,
                    TokenKind::User,
                    Some(grant),
                    &code.user_scopes,
                    refresh_allowed,
                    client_id,
                ));
            }
        }
        _ => issued.push(issue(
            state,
            provider,
            TokenKind::User,
            Some(grant),
            &code.scopes,
            refresh_allowed,
            client_id,
        )),
    }
    Ok(issued)
}

fn refresh(
    state: &mut State,
    provider: Provider,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<Issued, Failure> {
    let token = form
        .get("refresh_token")
        .ok_or(Failure::MissingParameter("refresh_token"))?;
    let record = state
        .refresh_tokens
        .get(token)
        .cloned()
        .filter(|r| r.client_id == client_id)
        .ok_or(Failure::InvalidRefreshToken)?;
    if state.grants.get(record.grant).is_none_or(|g| g.revoked) {
        return Err(Failure::RevokedConsent);
    }
    if !record.valid {
        return Err(Failure::InvalidRefreshToken);
    }
    let rotation = state.settings.rotation;
    let mut issued = issue(
        state,
        provider,
        record.kind,
        Some(record.grant),
        &record.scopes,
        rotation != Rotation::Keep,
        client_id,
    );
    match rotation {
        Rotation::Keep => {
            // The same refresh token goes on; the new access token is its current one.
            if let Some(kept) = state.refresh_tokens.get_mut(token) {
                kept.access_token = issued.access_token.clone();
            }
            issued.refresh_token = None;
        }
        Rotation::Rotate => {}
        Rotation::RotateAndRevoke => {
            if let Some(old) = state.refresh_tokens.get_mut(token) {
                old.valid = false;
            }
            if let Some(access) = state.access_tokens.get_mut(&record.access_token) {
                access.valid = false;
            }
        }
    }
    Ok(issued)
}

/// Whether the API accepts `token` now.
fn check_access(state: &State, token: &str) -> Result<(), ApiRefusal> {
    let record = state.access_tokens.get(token).ok_or(ApiRefusal::Invalid)?;
    if record
        .grant
        .and_then(|g| state.grants.get(g))
        .is_some_and(|g| g.revoked)
    {
        return Err(ApiRefusal::Revoked);
    }
    if !record.valid {
        return Err(ApiRefusal::Invalid);
    }
    if record.expires_at.is_some_and(|at| Instant::now() >= at) {
        return Err(ApiRefusal::Expired);
    }
    Ok(())
}

fn api(shared: &Shared, headers: &HeaderMap) -> Response {
    let mut state = shared.lock();
    state.api_requests += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let verdict = match token {
        None => Err(ApiRefusal::Missing),
        Some(token) => check_access(&state, token),
    };
    let settings = &state.settings;
    match (shared.provider, verdict) {
        (Provider::Microsoft, v) => microsoft::api(settings, v),
        (Provider::Google, v) => google::api(settings, v),
        (Provider::GitHub, v) => github::api(settings, v),
        (Provider::Slack, v) => slack::api(settings, v),
    }
}

/// A JSON answer.
fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `scopes` joined by `separator`.
fn joined(scopes: &[String], separator: &str) -> String {
    scopes.join(separator)
}
