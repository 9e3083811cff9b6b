//! What the services' HTTP APIs share: a refusal as the contract's [`ApiError`] JSON with its
//! status ([`HttpError`]), and bearer tokens, read from configuration
//! ([`bearer_token_from`]) and checked on each request ([`require_bearer_token`]), and the
//! Host check of a listener bound to loopback ([`AllowedHosts`], [`require_allowed_host`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tributary_proto::requests::{ApiError, ErrorCode};

use crate::ConfigError;

/// An [`ApiError`] as an HTTP answer: its code's status ([`ErrorCode::http_status`]) and the
/// error as JSON; a 401 also says `WWW-Authenticate: Bearer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.error.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.0)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Refuses a request without the right bearer token (the state); compares in constant time.
/// Shared by every HTTP API that needs a token: `from_fn_with_state(token, require_bearer_token)`.
pub async fn require_bearer_token(
    State(token): State<SecretString>,
    request: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes())) => {
            Ok(next.run(request).await)
        }
        Some(_) => Err(HttpError(ApiError::new(
            ErrorCode::Unauthorized,
            "the bearer token is wrong",
        ))),
        None => Err(HttpError(ApiError::new(
            ErrorCode::Unauthorized,
            "an `Authorization: Bearer <token>` header is required",
        ))),
    }
}

/// An inline value, or else the contents of a file, or else an error naming the inline key.
/// `key` is the inline setting's full name (`search.api_token`); the file setting is the same
/// with `_file` appended.
pub fn inline_or_file(
    inline: &SecretString,
    file: &Path,
    key: &str,
    what: &str,
) -> Result<SecretString, ConfigError> {
    if !inline.expose_secret().trim().is_empty() {
        return Ok(inline.clone());
    }
    if file.as_os_str().is_empty() {
        let env = format!("TRIBUTARY__{}", key.replace('.', "__").to_uppercase());
        return Err(ConfigError::new(
            key,
            format!("{what} is not set: give {key} (or {env}) or {key}_file"),
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::new(
            format!("{key}_file"),
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    check_secret_file_mode(file, &format!("{key}_file"))?;
    if text.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{key}_file"),
            format!("{} is empty", file.display()),
        ));
    }
    Ok(SecretString::from(text.trim().to_owned()))
}

/// Refuses a secret file that users other than its owner (and its group, for reading) may
/// read or change: mode `0600` or `0640`, as `tributary up` writes them, passes; `0644` does
/// not, naming `key` and the `chmod` that fixes it.
#[cfg(unix)]
pub fn check_secret_file_mode(file: &Path, key: &str) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", file.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o027 != 0 {
        return Err(ConfigError::new(
            key,
            format!(
                "{} may be read or changed by other users (mode {mode:04o}); a secret file must be its owner's alone: chmod 600 {}",
                file.display(),
                file.display()
            ),
        ));
    }
    Ok(())
}

/// On systems without Unix modes there is nothing to check.
#[cfg(not(unix))]
pub fn check_secret_file_mode(_file: &Path, _key: &str) -> Result<(), ConfigError> {
    Ok(())
}

/// A bearer token from `key` (inline) or `key_file`, at least 16 characters long.
pub fn bearer_token_from(
    inline: &SecretString,
    file: &Path,
    key: &str,
    what: &str,
) -> Result<SecretString, ConfigError> {
    let token = inline_or_file(inline, file, key, what)?;
    if token.expose_secret().len() < 16 {
        return Err(ConfigError::new(key, "must be at least 16 characters"));
    }
    Ok(token)
}

/// The names a service bound to loopback answers to in the `Host` header: `localhost`, the
/// loopback addresses, the bound address, and the names configured for it.
///
/// A listener on 127.0.0.1 is reachable from every web page open in a browser on the same
/// machine through DNS rebinding: `attacker.example` first resolves to the attacker's server,
/// then to 127.0.0.1, and the page's requests carry `Host: attacker.example`. Refusing a Host
/// that is not one of these names closes that door; a listener others can reach (bound to
/// `0.0.0.0` behind a proxy) is not checked, as its proxy decides what Host it forwards.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Arc<Vec<String>>,
}

impl AllowedHosts {
    /// The check for a listener bound to `addr`, allowing `configured` names too (host names,
    /// any port); `None` when `addr` is not a loopback address.
    pub fn for_listener(
        addr: SocketAddr,
        configured: impl IntoIterator<Item = String>,
    ) -> Option<Self> {
        if !addr.ip().is_loopback() {
            return None;
        }
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        names.push(addr.ip().to_string());
        names.extend(configured.into_iter().map(|n| normalise_host(&n)));
        names.sort();
        names.dedup();
        Some(Self {
            names: Arc::new(names),
        })
    }

    /// Whether a request with this `Host` header value (`name`, `name:port`, `[::1]:port`)
    /// may be answered.
    pub fn allows(&self, host: &str) -> bool {
        let name = normalise_host(host_name(host));
        self.names.contains(&name)
    }
}

/// The name of a Host header value, without its port: `[::1]:8080` is `::1`.
fn host_name(value: &str) -> &str {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match value.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => value,
    }
}

/// A host name as compared: lower case, without a trailing dot or IPv6 brackets.
fn normalise_host(name: &str) -> String {
    name.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Refuses with 421 Misdirected Request a request whose `Host` (or HTTP/2 authority) is not
/// one of [`AllowedHosts`]; a request that names no host at all (HTTP/1.0) cannot come from a
/// rebound name and is answered. `from_fn_with_state(allowed, require_allowed_host)`.
pub async fn require_allowed_host(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{FFFD}").to_owned())
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if !allowed.allows(&host) => {
            tracing::debug!(host = %host.escape_debug(), "A request for another host was refused.");
            (
                StatusCode::MISDIRECTED_REQUEST,
                Json(ApiError::new(
                    ErrorCode::BadRequest,
                    "this service does not answer to that host name; add it to http_allowed_hosts",
                )),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_listener_allows_its_own_names_and_configured_ones_only() {
        let addr: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        let allowed = AllowedHosts::for_listener(addr, ["Hub.Example.".to_owned()]).unwrap();
        for host in [
            "localhost",
            "localhost:8081",
            "LOCALHOST:1",
            "127.0.0.1:8081",
            "[::1]:8081",
            "hub.example",
            "hub.example:443",
        ] {
            assert!(allowed.allows(host), "{host} is refused");
        }
        for host in [
            "attacker.example",
            "attacker.example:8081",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:8081",
            "",
        ] {
            assert!(!allowed.allows(host), "{host} is allowed");
        }
    }

    #[test]
    fn a_listener_others_can_reach_is_not_checked() {
        let addr: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        assert!(AllowedHosts::for_listener(addr, Vec::new()).is_none());
    }
}
