//! The HTTP client a plugin is handed: every request checked against the grants before a
//! connection is made, retried on transient failures, and rate limited per instance.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, Request, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tributary_proto::grants::{Grants, PermissionDenied};
use tributary_proto::requests::plugins::token_fingerprint;

use crate::retry::{parse_retry_after, RetryPolicy};
use crate::PluginError;

/// Redirects followed before giving up, each one checked against the grants.
const MAX_REDIRECTS: usize = 10;
/// How much of an error answer's body goes into [`PluginError::Http`].
const ERROR_BODY_CHARS: usize = 300;

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
/// any connection is made, and so is a redirect to one. Connection failures, 429 and 5xx
/// answers are retried with exponential backoff, honouring `Retry-After`; any answer of 400
/// or more that is not retried comes back as [`PluginError::Http`].
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
}

impl std::fmt::Debug for PluginHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHttp")
            .field("grants", &self.inner.grants)
            .field("retry", &self.inner.retry)
            .field("access_tokens", &self.inner.tokens.is_some())
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

    /// Builds the client; fails only if the TLS backend cannot be initialised.
    pub fn build(self) -> Result<PluginHttp, PluginError> {
        let redirect_grants = self.grants.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match check_url(&redirect_grants, "a redirect to", attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(RefusedUrl::Denied(denied)) => attempt.error(denied),
                Err(RefusedUrl::NoHost) => attempt.error("a redirect to a URL without a host"),
            }
        });
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(redirects)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| PluginError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(PluginHttp {
            inner: Arc::new(HttpInner {
                client,
                grants: self.grants,
                retry: self.retry,
                limiter: self.min_interval.and_then(RateLimiter::new),
                tokens: self.tokens,
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
        }
    }

    /// The grants every request is checked against.
    pub fn grants(&self) -> &Grants {
        &self.inner.grants
    }

    /// Starts a request; an invalid URL is reported when it is sent.
    pub fn request(&self, method: Method, url: &str) -> HttpRequest {
        HttpRequest {
            http: self.clone(),
            builder: self.inner.client.request(method, url),
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

    /// Sends `request`: checks its host, then tries it as the retry policy allows. A request
    /// whose body is a stream cannot be repeated and is tried once. An answer of 400 or more
    /// that is not retried is [`PluginError::Http`].
    pub async fn execute(&self, request: Request) -> Result<Response, PluginError> {
        self.send_checked(request, true).await
    }

    /// Sends `request` as [`PluginHttp::execute`] does (the same grant checks, retries and
    /// rate limit) and answers with the final response whatever its status: for callers
    /// that read error answers themselves (a WebAssembly guest's `fetch`).
    pub async fn fetch(&self, request: Request) -> Result<Response, PluginError> {
        self.send_checked(request, false).await
    }

    async fn send_checked(
        &self,
        mut request: Request,
        error_status_is_err: bool,
    ) -> Result<Response, PluginError> {
        let method = request.method().to_string();
        check_url(&self.inner.grants, &method, request.url()).map_err(|refused| match refused {
            RefusedUrl::Denied(denied) => PluginError::from(denied),
            RefusedUrl::NoHost => PluginError::Other(format!(
                "cannot send a request to `{}`: it has no host",
                request.url().scheme()
            )),
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
            let response = self.send_with_retries(request, &what).await?;
            return finish(&what, response, error_status_is_err).await;
        };
        let url = request.url().clone();
        let again = request.try_clone();
        let response = self.send_with_retries(request, &what).await?;
        let refused_our_token =
            response.status() == StatusCode::UNAUTHORIZED && same_origin(response.url(), &url);
        let Some(mut again) = again.filter(|_| refused_our_token) else {
            return finish(&what, response, error_status_is_err).await;
        };
        // Refused: ask for a fresh token once, and send once more with it. A second 401 is
        // the caller's to read; never a loop.
        let rejected = token_fingerprint(token.expose_secret());
        let fresh = tokens.access_token(Some(&rejected)).await?;
        if fresh.expose_secret() == token.expose_secret() {
            return finish(&what, response, error_status_is_err).await;
        }
        tracing::debug!(request = %what, "Sending a request again with a refreshed access token.");
        set_bearer(&mut again, &fresh)?;
        let response = self.send_with_retries(again, &what).await?;
        finish(&what, response, error_status_is_err).await
    }

    /// Tries `request` as the retry policy allows and answers with the last response,
    /// whatever its status.
    async fn send_with_retries(
        &self,
        request: Request,
        what: &str,
    ) -> Result<Response, PluginError> {
        let policy = self.inner.retry;
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
                Err(error) if error.is_connect() && !error.is_timeout() && retry_copy.is_some() => {
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

/// The final answer to a request: an error for a status of 400 or more when the caller wants
/// one ([`PluginHttp::execute`]), else the response as it is.
async fn finish(
    what: &str,
    response: Response,
    error_status_is_err: bool,
) -> Result<Response, PluginError> {
    if error_status_is_err && response.status().as_u16() >= 400 {
        Err(http_error(what, response).await)
    } else {
        Ok(response)
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
fn same_origin(answered: &reqwest::Url, asked: &reqwest::Url) -> bool {
    answered.scheme() == asked.scheme()
        && answered.host_str() == asked.host_str()
        && answered.port_or_known_default() == asked.port_or_known_default()
}

/// A request being built; send it with [`HttpRequest::send`] or [`HttpRequest::send_json`].
#[derive(Debug)]
pub struct HttpRequest {
    http: PluginHttp,
    builder: reqwest::RequestBuilder,
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
    pub fn body(mut self, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.body(body);
        self
    }

    /// Replaces the client's time limit for each attempt of this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.timeout(timeout);
        self
    }

    /// Sends the request (see [`PluginHttp::execute`]); an answer of 400 or more is an error.
    pub async fn send(self) -> Result<Response, PluginError> {
        let (http, request) = self.build()?;
        http.execute(request).await
    }

    /// Sends the request and answers with the final response whatever its status (see
    /// [`PluginHttp::fetch`]).
    pub async fn fetch(self) -> Result<Response, PluginError> {
        let (http, request) = self.build()?;
        http.fetch(request).await
    }

    fn build(self) -> Result<(PluginHttp, Request), PluginError> {
        let request = self
            .builder
            .build()
            .map_err(|e| PluginError::Other(format!("invalid request: {}", e.without_url())))?;
        Ok((self.http, request))
    }

    /// Sends the request and reads the answer as JSON.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, PluginError> {
        let response = self.send().await?;
        let what = format!(
            "{} {}",
            response.url().host_str().unwrap_or_default(),
            response.url().path()
        );
        response.json().await.map_err(|e| {
            if e.is_decode() {
                PluginError::Other(format!("{what}: invalid JSON: {}", e.without_url()))
            } else {
                transport_error(&what, e)
            }
        })
    }
}

/// Why a URL may not be requested.
enum RefusedUrl {
    Denied(PermissionDenied),
    NoHost,
}

/// Checks the host of `url` against `grants`; an IPv6 literal is passed without brackets (and
/// refused, as no grant names one).
fn check_url(grants: &Grants, method: &str, url: &reqwest::Url) -> Result<(), RefusedUrl> {
    let host = url.host_str().ok_or(RefusedUrl::NoHost)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    grants.check_outbound_host(bare).map_err(|denied| {
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        // Not the path or the query: either may hold a key (Telegram's bot token is a path).
        let asked = format!("{method} {}://{host}{port}", url.scheme());
        RefusedUrl::Denied(denied.asking(asked))
    })
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
    let body = response.text().await.unwrap_or_default();
    let mut snippet: String = body.chars().take(ERROR_BODY_CHARS).collect();
    if snippet.len() < body.len() {
        snippet.push('…');
    }
    PluginError::Http {
        status,
        message: if snippet.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {snippet}")
        },
    }
}

fn transport_error(what: &str, error: reqwest::Error) -> PluginError {
    // A redirect refused by the grants carries the refusal as its source.
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(denied) = cause.downcast_ref::<PermissionDenied>() {
            return PluginError::PermissionDenied(denied.clone());
        }
        source = cause.source();
    }
    let error = error.without_url();
    if error.is_timeout() {
        PluginError::Transient(format!("{what}: timed out"))
    } else if error.is_connect() || error.is_request() || error.is_body() {
        PluginError::Transient(format!("{what}: {error}"))
    } else {
        PluginError::Other(format!("{what}: {error}"))
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
