//! The HTTP client a plugin is handed: every request checked against the grants before a
//! connection is made, every address checked before it is connected to ([`egress`]),
//! retried on transient failures, rate limited per instance, and every answer's body read up
//! to a limit ([`HttpResponse`]).

mod egress;
mod response;

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, Request, Response, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tributary_proto::grants::{Grants, PermissionDenied};
use tributary_proto::redact::redact_urls;
use tributary_proto::requests::plugins::token_fingerprint;

use crate::retry::{parse_retry_after, RetryPolicy};
use crate::PluginError;
use egress::{
    check_address, resolve_checked, CheckedResolver, EgressSettings, RefusedAddress, Unreachable,
};
pub use response::HttpResponse;
use response::{read_limited, Limited};

/// Redirects followed before giving up, each one checked against the grants.
const MAX_REDIRECTS: usize = 10;
/// How much of an error answer's body goes into [`PluginError::Http`].
const ERROR_BODY_CHARS: usize = 300;
/// How much of an error answer's body is read to find those characters.
const ERROR_BODY_READ: u64 = 64 * 1024;
/// The most body bytes of one answer a plugin is handed unless the builder says otherwise:
/// the default of `plugins.max_response_bytes`.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// Where the host gets the OAuth 2.0 access token it attaches to an instance's requests: the
/// plugin manager's `plugins.token` in the services, a fixed token in tests.
///
/// The plugin never sees the token: [`PluginHttp`] puts it in the outgoing request only.
#[async_trait]
pub trait AccessTokens: Send + Sync {
    /// The instance's current access token. `rejected` is the fingerprint
    /// ([`tributary_proto::requests::plugins::token_fingerprint`]) of a token the API has just
    /// refused with 401: the source then answers a refreshed one (unless it was refreshed
    /// since). An error (a grant that is gone: "reconnect needed: …") fails the request.
    async fn access_token(&self, rejected: Option<&str>) -> Result<SecretString, PluginError>;
}

/// The token source of a client, if it has one; a newtype so the builder stays `Debug`.
#[derive(Clone)]
struct TokenSource(Arc<dyn AccessTokens>);

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessTokens")
    }
}

/// An HTTP client for one plugin instance; cheap to clone, and clones share the rate limit.
///
/// A request to a host the grants do not cover (`network:outbound:<host>`) is refused before
/// any connection is made, and so is a redirect to one. So is a port other than 80 and 443
/// unless a grant names it (`network:outbound:<host>:<port>`), a scheme other than `http` and
/// `https`, and a redirect from `https` to `http`. A host name is resolved by the client
/// itself and only the addresses that pass are connected to: loopback, private, link-local
/// (the metadata service 169.254.169.254), CGNAT and other addresses inside the network are
/// refused, for names and IP literals alike, unless the operator allows private targets
/// ([`PluginHttpBuilder::allow_private_network`]) and a grant names that host or address
/// exactly. No proxy is used: the address checked is the address connected to.
///
/// Connection failures, 429 and 5xx answers are retried with exponential backoff, honouring
/// `Retry-After`; any answer of 400 or more that is not retried comes back as
/// [`PluginError::Http`]. A body longer than the limit
/// ([`PluginHttpBuilder::max_response_bytes`], 32 MiB by default) is an error naming it.
///
/// With a token source ([`PluginHttpBuilder::access_tokens`], for a plugin whose manifest has
/// an `auth` section), a request to a granted host that carries no `Authorization` of its own
/// gets `Authorization: Bearer <access token>`, marked sensitive. A 401 answer to it asks the
/// source for a fresh token once and sends the request once more (when it can be repeated).
/// reqwest drops the header on a redirect to another host.
///
/// ```no_run
/// # async fn demo() -> Result<(), tributary_plugin_sdk::PluginError> {
/// use std::time::Duration;
/// use tributary_plugin_sdk::{Grants, PluginHttp};
///
/// let grants = Grants::new(["network:outbound:api.example.com".parse().unwrap()]);
/// let http = PluginHttp::builder(grants)
///     .timeout(Duration::from_secs(10))
///     .max_attempts(3)
///     .rate_limit_per_second(5)
///     .build()?;
/// let me: serde_json::Value = http.get("https://api.example.com/me").send_json().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PluginHttp {
    inner: Arc<HttpInner>,
}

struct HttpInner {
    client: reqwest::Client,
    /// What the instance may reach; checked before every request and redirect.
    grants: Grants,
    retry: RetryPolicy,
    /// Shared by every clone, so the whole instance keeps to one rate.
    limiter: Option<RateLimiter>,
    /// Where the instance's OAuth access token comes from, for a plugin with an `auth`
    /// section; `None`: requests go out with only the headers the plugin gave them.
    tokens: Option<TokenSource>,
    /// What the operator allows besides the grants: private targets, any port.
    egress: EgressSettings,
    /// The most body bytes of one answer read.
    max_response_bytes: u64,
}

impl std::fmt::Debug for PluginHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHttp")
            .field("grants", &self.inner.grants)
            .field("retry", &self.inner.retry)
            .field("access_tokens", &self.inner.tokens.is_some())
            .field("egress", &self.inner.egress)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`PluginHttp`]; start with [`PluginHttp::builder`].
#[derive(Debug, Clone)]
pub struct PluginHttpBuilder {
    grants: Grants,
    timeout: Duration,
    retry: RetryPolicy,
    /// The least time between two requests, if limited.
    min_interval: Option<Duration>,
    user_agent: String,
    /// The token source, if requests get an access token attached.
    tokens: Option<TokenSource>,
    /// Private targets and ports beyond the grants.
    egress: EgressSettings,
    /// The most body bytes of one answer read.
    max_response_bytes: u64,
}

impl PluginHttpBuilder {
    /// The time limit of each attempt, from connecting to the end of the answer; 30 s by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts per request, the first included (4 by default; 1 never retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts;
        self
    }

    /// The whole retry policy: attempts, backoff, and the longest `Retry-After` honoured.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most `requests` requests per second, evenly spaced, across every clone of the
    /// client (retries count). `0` removes the limit.
    pub fn rate_limit_per_second(self, requests: u32) -> Self {
        self.rate_limit(requests, Duration::from_secs(1))
    }

    /// At most `requests` requests per `period`, evenly spaced. `0` removes the limit.
    pub fn rate_limit(mut self, requests: u32, period: Duration) -> Self {
        self.min_interval = (requests > 0).then(|| period / requests);
        self
    }

    /// The `User-Agent` header sent with every request.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Attaches the access token `tokens` gives to every request to a granted host that has
    /// no `Authorization` header of its own, and asks it for a fresh one after a 401 (see
    /// [`PluginHttp`]). For an instance whose plugin's manifest has an `auth` section.
    pub fn access_tokens(mut self, tokens: Arc<dyn AccessTokens>) -> Self {
        self.tokens = Some(TokenSource(tokens));
        self
    }

    /// Whether the instance may reach addresses inside the network (loopback, private,
    /// link-local, CGNAT…), each only through a grant naming that host or address exactly:
    /// the operator's `plugins.allow_private_network`. Off by default.
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.egress.allow_private_network = allow;
        self
    }

    /// The most body bytes of one answer a plugin is handed (32 MiB by default): the
    /// operator's `plugins.max_response_bytes`. A longer body is an error naming the limit.
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Lets a grant of a host reach every port of it, not only 80, 443 and the ports
    /// grants name: for test harnesses whose servers listen on a port the system picks. Only
    /// with the SDK's `testing` feature; the services never set it.
    #[cfg(any(test, feature = "testing"))]
    pub fn any_port_for_tests(mut self, any: bool) -> Self {
        self.egress.any_port = any;
        self
    }

    /// Builds the client; fails only if the TLS backend cannot be initialised.
    pub fn build(self) -> Result<PluginHttp, PluginError> {
        let redirect_grants = self.grants.clone();
        let egress = self.egress;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if downgrades(attempt.previous().last(), attempt.url()) {
                let refused = RedirectRefused(RefusedUrl::Downgrade.message(attempt.url()));
                return attempt.error(refused);
            }
            match check_url(&redirect_grants, egress, "a redirect to", attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(RefusedUrl::Denied(denied)) => attempt.error(denied),
                Err(RefusedUrl::Address(refused)) => attempt.error(refused),
                Err(other) => {
                    let refused = RedirectRefused(other.message(attempt.url()));
                    attempt.error(refused)
                }
            }
        });
        let resolver = CheckedResolver {
            grants: self.grants.clone(),
            settings: self.egress,
        };
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(redirects)
            .user_agent(self.user_agent)
            // A proxy would resolve and connect where this client cannot check.
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| PluginError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(PluginHttp {
            inner: Arc::new(HttpInner {
                client,
                grants: self.grants,
                retry: self.retry,
                limiter: self.min_interval.and_then(RateLimiter::new),
                tokens: self.tokens,
                egress: self.egress,
                max_response_bytes: self.max_response_bytes,
            }),
        })
    }
}

impl PluginHttp {
    /// Settings for a client restricted to `grants`: 30 s timeout, the default
    /// [`RetryPolicy`], no rate limit.
    pub fn builder(grants: Grants) -> PluginHttpBuilder {
        PluginHttpBuilder {
            grants,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            min_interval: None,
            user_agent: concat!("tributary-plugin-sdk/", env!("CARGO_PKG_VERSION")).to_owned(),
            tokens: None,
            egress: EgressSettings {
                allow_private_network: false,
                any_port: false,
            },
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The grants every request is checked against.
    pub fn grants(&self) -> &Grants {
        &self.inner.grants
    }

    /// The most body bytes of one answer this client reads.
    pub fn max_response_bytes(&self) -> u64 {
        self.inner.max_response_bytes
    }

    /// The addresses `host` (a name or an IP address) resolves to that the instance may
    /// connect to on `port`, checked by the rules of every request of this client: for a
    /// built-in plugin that opens a connection of its own (the e-mail channel's SMTP).
    ///
    /// The name is resolved now, and every address is checked as [`PluginHttp`] checks the
    /// ones it connects to: loopback, private, link-local (the metadata service
    /// 169.254.169.254), CGNAT and the other addresses inside the network are dropped unless
    /// the operator allows private targets ([`PluginHttpBuilder::allow_private_network`])
    /// and a grant names `host` exactly. Connect to the addresses answered, never to the name
    /// again: a second lookup may answer another address (DNS rebinding). The grant of `host`
    /// on `port` is the caller's to check first ([`Grants::check_outbound`]).
    ///
    /// When every address is refused, the error is [`PluginError::Other`], naming the host,
    /// the first address refused, what kind of address it is and the setting and grant that
    /// would allow it; a name that cannot be resolved is [`PluginError::Transient`].
    pub async fn resolve_checked(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<std::net::SocketAddr>, PluginError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        resolve_checked(&self.inner.grants, self.inner.egress, host, port)
            .await
            .map_err(|unreachable| match unreachable {
                Unreachable::Refused(refused) => PluginError::Other(refused.to_string()),
                other => PluginError::Transient(other.to_string()),
            })
    }

    /// Starts a request; an invalid URL is reported when it is sent.
    pub fn request(&self, method: Method, url: &str) -> HttpRequest {
        HttpRequest {
            http: self.clone(),
            builder: self.inner.client.request(method, url),
            once: false,
        }
    }

    /// Starts a `GET`.
    pub fn get(&self, url: &str) -> HttpRequest {
        self.request(Method::GET, url)
    }

    /// Starts a `POST`.
    pub fn post(&self, url: &str) -> HttpRequest {
        self.request(Method::POST, url)
    }

    /// Starts a `PUT`.
    pub fn put(&self, url: &str) -> HttpRequest {
        self.request(Method::PUT, url)
    }

    /// Starts a `PATCH`.
    pub fn patch(&self, url: &str) -> HttpRequest {
        self.request(Method::PATCH, url)
    }

    /// Starts a `DELETE`.
    pub fn delete(&self, url: &str) -> HttpRequest {
        self.request(Method::DELETE, url)
    }

    /// Sends `request`: checks its URL, then tries it as the retry policy allows (once when
    /// `once`). An answer of 400 or more that is not retried is [`PluginError::Http`] when
    /// `error_status_is_err`.
    async fn send_checked(
        &self,
        mut request: Request,
        error_status_is_err: bool,
        once: bool,
    ) -> Result<HttpResponse, PluginError> {
        let method = request.method().to_string();
        check_url(
            &self.inner.grants,
            self.inner.egress,
            &method,
            request.url(),
        )
        .map_err(|refused| match refused {
            RefusedUrl::Denied(denied) => PluginError::from(denied),
            RefusedUrl::Address(refused) => PluginError::Other(refused.to_string()),
            other => PluginError::Other(other.message(request.url())),
        })?;
        let what = describe(&request);
        // Only after the grant check: a token never goes to a host the instance may not reach.
        let attached = match &self.inner.tokens {
            Some(TokenSource(tokens)) if !request.headers().contains_key(AUTHORIZATION) => {
                let token = tokens.access_token(None).await?;
                set_bearer(&mut request, &token)?;
                Some((tokens.clone(), token))
            }
            _ => None,
        };
        let Some((tokens, token)) = attached else {
            let response = self.send_with_retries(request, &what, once).await?;
            return self.finish(&what, response, error_status_is_err).await;
        };
        let url = request.url().clone();
        let again = request.try_clone();
        let response = self.send_with_retries(request, &what, once).await?;
        let refused_our_token =
            response.status() == StatusCode::UNAUTHORIZED && same_origin(response.url(), &url);
        let Some(mut again) = again.filter(|_| refused_our_token) else {
            return self.finish(&what, response, error_status_is_err).await;
        };
        // Refused: ask for a fresh token once, and send once more with it. A second 401 is
        // the caller's to read; never a loop.
        let rejected = token_fingerprint(token.expose_secret());
        let fresh = tokens.access_token(Some(&rejected)).await?;
        if fresh.expose_secret() == token.expose_secret() {
            return self.finish(&what, response, error_status_is_err).await;
        }
        tracing::debug!(request = %what, "Sending a request again with a refreshed access token.");
        set_bearer(&mut again, &fresh)?;
        let response = self.send_with_retries(again, &what, once).await?;
        self.finish(&what, response, error_status_is_err).await
    }

    /// The final answer to a request: an error for a status of 400 or more when the caller
    /// wants one, else the response with the client's body limit.
    async fn finish(
        &self,
        what: &str,
        response: Response,
        error_status_is_err: bool,
    ) -> Result<HttpResponse, PluginError> {
        if error_status_is_err && response.status().as_u16() >= 400 {
            Err(http_error(what, response).await)
        } else {
            Ok(HttpResponse::new(
                response,
                self.inner.max_response_bytes,
                what.to_owned(),
            ))
        }
    }

    /// Tries `request` as the retry policy allows and answers with the last response,
    /// whatever its status.
    async fn send_with_retries(
        &self,
        request: Request,
        what: &str,
        once: bool,
    ) -> Result<Response, PluginError> {
        let mut policy = self.inner.retry;
        if once {
            policy.max_attempts = 1;
        }
        let mut next = Some(request);
        let mut attempt = 1;
        while let Some(request) = next.take() {
            let retry_copy = if attempt < policy.attempts() {
                request.try_clone()
            } else {
                None
            };
            if let Some(limiter) = &self.inner.limiter {
                limiter.acquire().await;
            }
            let wait = match self.inner.client.execute(request).await {
                Ok(response) if is_retryable(response.status()) && retry_copy.is_some() => {
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let wait = match retry_after {
                        Some(wait) => policy.server_wait(wait),
                        None => policy.backoff(attempt),
                    };
                    tracing::warn!(request = %what, status = response.status().as_u16(), attempt, ?wait, "Retrying a request the server could not serve.");
                    wait
                }
                Ok(response) => return Ok(response),
                Err(error)
                    if error.is_connect()
                        && !error.is_timeout()
                        && retry_copy.is_some()
                        && refused_address(&error).is_none() =>
                {
                    let wait = policy.backoff(attempt);
                    tracing::warn!(request = %what, attempt, ?wait, error = %error.without_url(), "Retrying a request that could not connect.");
                    wait
                }
                Err(error) => return Err(transport_error(what, error)),
            };
            tokio::time::sleep(wait).await;
            next = retry_copy;
            attempt += 1;
        }
        // Every iteration returns or sets `next`; reaching here means no request was given.
        Err(PluginError::Other(format!("{what}: no attempt was made")))
    }
}

/// Sets `Authorization: Bearer <token>` on `request`, marked sensitive so that it is never
/// shown by `Debug` nor compressed into an HTTP/2 header table.
fn set_bearer(request: &mut Request, token: &SecretString) -> Result<(), PluginError> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).map_err(|_| {
            PluginError::Other(
                "the access token holds characters an HTTP header cannot carry".to_owned(),
            )
        })?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

/// Whether the answer came from the origin the request was sent to: a 401 from another host,
/// reached by a redirect that dropped the token, says nothing about the token.
fn same_origin(answered: &Url, asked: &Url) -> bool {
    answered.scheme() == asked.scheme()
        && answered.host_str() == asked.host_str()
        && answered.port_or_known_default() == asked.port_or_known_default()
}

/// A request being built; send it with [`HttpRequest::send`] or [`HttpRequest::send_json`].
#[derive(Debug)]
pub struct HttpRequest {
    http: PluginHttp,
    builder: reqwest::RequestBuilder,
    /// Sent once, never retried.
    once: bool,
}

impl HttpRequest {
    /// Adds a header; an invalid name or value is reported when the request is sent.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Adds `Authorization: Bearer <token>`, marked sensitive.
    pub fn bearer_auth(mut self, token: &SecretString) -> Self {
        self.builder = self.builder.bearer_auth(token.expose_secret());
        self
    }

    /// Adds HTTP basic authentication, marked sensitive.
    pub fn basic_auth(mut self, user: &str, password: Option<&SecretString>) -> Self {
        self.builder = self
            .builder
            .basic_auth(user, password.map(|p| p.expose_secret()));
        self
    }

    /// Appends query parameters, such as `&[("page", "2")]`.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.builder = self.builder.query(query);
        self
    }

    /// Sends `body` as JSON.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// Sends `body` as it is.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.builder = self.builder.body(body.into());
        self
    }

    /// Sends the request once, whatever the retry policy: for a call that must not be
    /// repeated (a message the provider may have taken in before the connection failed).
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    /// Replaces the client's time limit for each attempt of this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.timeout(timeout);
        self
    }

    /// Sends the request: checks its URL and address (see [`PluginHttp`]), then tries it as
    /// the retry policy allows; a request whose body is a stream cannot be repeated and is
    /// tried once. An answer of 400 or more that is not retried is [`PluginError::Http`].
    pub async fn send(self) -> Result<HttpResponse, PluginError> {
        let (http, request, once) = self.build()?;
        http.send_checked(request, true, once).await
    }

    /// Sends the request as [`HttpRequest::send`] does (the same checks, retries and rate
    /// limit) and answers with the final response whatever its status: for callers that read
    /// error answers themselves (a WebAssembly guest's `fetch`).
    pub async fn fetch(self) -> Result<HttpResponse, PluginError> {
        let (http, request, once) = self.build()?;
        http.send_checked(request, false, once).await
    }

    fn build(self) -> Result<(PluginHttp, Request, bool), PluginError> {
        let request = self
            .builder
            .build()
            .map_err(|e| PluginError::Other(format!("invalid request: {}", e.without_url())))?;
        Ok((self.http, request, self.once))
    }

    /// Sends the request and reads the answer as JSON, at most the client's body limit.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, PluginError> {
        self.send().await?.json().await
    }
}

/// Why a URL may not be requested.
enum RefusedUrl {
    /// No grant covers its host and port.
    Denied(PermissionDenied),
    /// Its host is an IP literal no plugin may reach.
    Address(RefusedAddress),
    NoHost,
    /// Neither `http` nor `https`.
    Scheme,
    /// A redirect from `https` to `http`.
    Downgrade,
}

impl RefusedUrl {
    /// What the refusal of `url` says, for the refusals that carry no error of their own.
    fn message(&self, url: &Url) -> String {
        match self {
            RefusedUrl::Denied(denied) => denied.to_string(),
            RefusedUrl::Address(refused) => refused.to_string(),
            RefusedUrl::NoHost => format!(
                "cannot send a request to `{}`: it has no host",
                url.scheme()
            ),
            RefusedUrl::Scheme => format!(
                "cannot send a request to a `{}` URL: a plugin sends http and https only",
                url.scheme()
            ),
            RefusedUrl::Downgrade => format!(
                "a redirect from https to http (to {}) is refused: it would send the request in clear",
                origin(url)
            ),
        }
    }
}

/// Checks `url` against `grants`: its scheme, then its host and port (an IPv6 literal is
/// passed without brackets, and refused, as no grant names one), then, for an IP literal,
/// its address. A name's addresses are checked when it is resolved ([`CheckedResolver`]).
fn check_url(
    grants: &Grants,
    egress: EgressSettings,
    method: &str,
    url: &Url,
) -> Result<(), RefusedUrl> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RefusedUrl::Scheme);
    }
    let host = url.host().ok_or(RefusedUrl::NoHost)?;
    let bare = match &host {
        url::Host::Domain(name) => (*name).to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let port = url.port_or_known_default().unwrap_or_default();
    let checked = if egress.any_port {
        grants.check_outbound_host(&bare)
    } else {
        grants.check_outbound(&bare, port)
    };
    checked.map_err(|denied| {
        // Not the path or the query: either may hold a key (Telegram's bot token is a path).
        RefusedUrl::Denied(denied.asking(format!("{method} {}", origin(url))))
    })?;
    let literal = match host {
        url::Host::Domain(_) => None,
        url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
    };
    match literal {
        Some(address) => check_address(grants, egress, &bare, address).map_err(RefusedUrl::Address),
        None => Ok(()),
    }
}

/// Whether a redirect from `previous` to `next` leaves TLS: `https` to anything else.
fn downgrades(previous: Option<&Url>, next: &Url) -> bool {
    previous.is_some_and(|previous| previous.scheme() == "https") && next.scheme() != "https"
}

/// A redirect refused for another reason than the grants or an address, carried through
/// reqwest's error to [`transport_error`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RedirectRefused(String);

/// `scheme://host[:port]` of `url`: never its path or query, which may hold a key.
fn origin(url: &Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

/// The address refusal somewhere in `error`'s causes, if the resolver refused every address.
fn refused_address(error: &reqwest::Error) -> Option<&RefusedAddress> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<RefusedAddress>() {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Method, host and path of a request: enough to find it, without a query that may hold a key.
fn describe(request: &Request) -> String {
    format!(
        "{} {}{}",
        request.method(),
        request.url().host_str().unwrap_or_default(),
        request.url().path()
    )
}

async fn http_error(what: &str, response: Response) -> PluginError {
    let status = response.status().as_u16();
    // The start of the body is enough, and a long one is not worth holding.
    let body = match read_limited(response, ERROR_BODY_READ).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(Limited::Over) => "(a body too long to show)".to_owned(),
        Err(Limited::Read(_)) => String::new(),
    };
    let mut snippet: String = body.chars().take(ERROR_BODY_CHARS).collect();
    if snippet.len() < body.len() {
        snippet.push('…');
    }
    PluginError::Http {
        status,
        // A server may echo the URL asked, credentials and keys included.
        message: if snippet.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {}", redact_urls(&snippet))
        },
    }
}

fn transport_error(what: &str, error: reqwest::Error) -> PluginError {
    // A redirect refused by the grants carries the refusal as its source; an address
    // refused by the resolver too.
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(denied) = cause.downcast_ref::<PermissionDenied>() {
            return PluginError::PermissionDenied(denied.clone());
        }
        if let Some(refused) = cause.downcast_ref::<RefusedAddress>() {
            return PluginError::Other(format!("{what}: {refused}"));
        }
        if let Some(refused) = cause.downcast_ref::<RedirectRefused>() {
            return PluginError::Other(format!("{what}: {refused}"));
        }
        source = cause.source();
    }
    let error = error.without_url();
    // Without its URL; a cause may still name one (a proxy's, a redirect's).
    let shown = redact_urls(&error.to_string()).into_owned();
    if error.is_timeout() {
        PluginError::Transient(format!("{what}: timed out"))
    } else if error.is_connect() || error.is_request() || error.is_body() {
        PluginError::Transient(format!("{what}: {shown}"))
    } else {
        PluginError::Other(format!("{what}: {shown}"))
    }
}

/// Evenly spaced requests (a `governor` limiter with a burst of one), shared by clones.
struct RateLimiter(governor::DefaultDirectRateLimiter);

impl RateLimiter {
    /// `None` when `interval` is zero.
    fn new(interval: Duration) -> Option<Self> {
        governor::Quota::with_period(interval)
            .map(|quota| RateLimiter(governor::RateLimiter::direct(quota)))
    }

    async fn acquire(&self) {
        self.0.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_from_https_to_http_is_a_downgrade() {
        let url = |u: &str| Url::parse(u).unwrap();
        let https = url("https://api.example.com/a");
        assert!(downgrades(Some(&https), &url("http://api.example.com/b")));
        assert!(!downgrades(Some(&https), &url("https://cdn.example.com/b")));
        assert!(!downgrades(
            Some(&url("http://api.example.com/a")),
            &url("http://api.example.com/b")
        ));
        assert!(!downgrades(None, &url("http://api.example.com/b")));
    }

    #[test]
    fn urls_with_other_schemes_are_refused_whatever_is_granted() {
        let grants = Grants::new(["network:outbound:api.example.com".parse().unwrap()]);
        let egress = EgressSettings {
            allow_private_network: false,
            any_port: false,
        };
        for refused in [
            "ftp://api.example.com/x",
            "file:///etc/passwd",
            "gopher://api.example.com/",
        ] {
            let url = Url::parse(refused).unwrap();
            assert!(
                matches!(
                    check_url(&grants, egress, "GET", &url),
                    Err(RefusedUrl::Scheme | RefusedUrl::NoHost)
                ),
                "{refused}"
            );
        }
        let url = Url::parse("https://api.example.com/x").unwrap();
        assert!(check_url(&grants, egress, "GET", &url).is_ok());
    }
}
