//! What the services' HTTP APIs share: a refusal as the contract's [`ApiError`] JSON with its
//! status ([`HttpError`]), and bearer tokens, read from configuration
//! ([`bearer_token_from`]) and checked on each request ([`require_bearer_token`]).

use std::path::Path;

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
