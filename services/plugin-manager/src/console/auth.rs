//! Signing in to the console, the session that follows, and the CSRF check of every form.
//!
//! - Sign-in takes the admin token (`plugin_manager.admin_token`, the admin API's bearer
//!   token), compared in constant time. A wrong one is answered 401 with one sentence and
//!   nothing else. A right one starts a new session (a fresh random id, so an id planted
//!   before sign-in is worth nothing) holding the token's fingerprint and a CSRF token.
//! - A page asked without such a session is redirected to `/sign-in` ([`SignedIn`]).
//! - Every POST carries a `csrf` field ([`require_csrf`]): the session's token, or, for the
//!   sign-in form (before any session exists), the double-submit token of a short-lived
//!   cookie scoped to `/sign-in`. A missing or wrong one is refused 403 before any handler
//!   runs, so nothing changes. Sessions are made only for a right token, so nobody without it
//!   can fill the session store.
//! - The one multipart form, adding a plugin from an archive, is too large to read here: it
//!   is refused unread without a signed-in session, and its handler checks its first field,
//!   `csrf`, before it reads the archive ([`super::add_plugin`]).

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use secrecy::ExposeSecret;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::cookie::{Cookie, SameSite};
use tower_sessions::Session;

use super::{add_plugin, ConsoleState};

/// The session key holding the fingerprint of the token it was signed in with.
const SIGNED_IN: &str = "signed_in";
/// The session key holding its CSRF token.
const CSRF: &str = "csrf";
/// The cookie carrying the sign-in form's CSRF token.
pub const SIGN_IN_COOKIE: &str = "tributary_console_sign_in";
/// The largest form body read (a configuration form included).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// What a wrong token is told, and all it is told.
pub const WRONG_TOKEN: &str = "That is not the admin token. Check plugin_manager.admin_token (or the file named by plugin_manager.admin_token_file) and try again.";

/// What a form without its CSRF token, or with a wrong one, is told.
pub const CSRF_REFUSED: &str = "This form was refused: its security token is missing or does not match your session. Nothing was changed. Go back, reload the page and try again.";

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A signed-in session: extracting it redirects a request without one to `/sign-in`.
pub(crate) struct SignedIn {
    /// The session, for flash messages.
    pub(crate) session: Session,
    /// Its CSRF token, for the forms of the page.
    pub(crate) csrf: String,
}

impl FromRequestParts<ConsoleState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        let to_sign_in = || Redirect::to("/sign-in").into_response();
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| to_sign_in())?;
        let fingerprint: Option<String> = session.get(SIGNED_IN).await.ok().flatten();
        if fingerprint.as_deref() != Some(state.fingerprint.as_str()) {
            return Err(to_sign_in());
        }
        let csrf: Option<String> = session.get(CSRF).await.ok().flatten();
        match csrf {
            Some(csrf) => Ok(SignedIn { session, csrf }),
            None => Err(to_sign_in()),
        }
    }
}

/// Refuses with 403 a POST whose `csrf` field is missing or is not the session's token (the
/// sign-in form's: the sign-in cookie's), before its handler runs. Other methods pass.
pub(crate) async fn require_csrf(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if parts.uri.path() == add_plugin::ADD_PATH && is_multipart(&parts) {
        // The archive is not read here: refused unread without a signed-in session, else its
        // handler checks the form's first field before reading the archive.
        if session_csrf(&mut parts, &state).await.is_empty() {
            tracing::warn!(path = %parts.uri.path(), "A console upload without a session was refused.");
            return refused(&state, StatusCode::FORBIDDEN, CSRF_REFUSED);
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refused(
            &state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "This form is too large.",
        );
    };
    let given = form_field(&bytes, "csrf").unwrap_or_default();
    let expected = if parts.uri.path() == "/sign-in" {
        cookie_value(&parts, SIGN_IN_COOKIE).unwrap_or_default()
    } else {
        session_csrf(&mut parts, &state).await
    };
    if !tokens_match(&expected, &given) {
        tracing::warn!(path = %parts.uri.path(), "A console form without a valid CSRF token was refused.");
        return refused(&state, StatusCode::FORBIDDEN, CSRF_REFUSED);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The CSRF token of the request's session; empty without one.
async fn session_csrf(parts: &mut Parts, state: &ConsoleState) -> String {
    match Session::from_request_parts(parts, state).await {
        Ok(session) => session.get::<String>(CSRF).await.ok().flatten(),
        Err(_) => None,
    }
    .unwrap_or_default()
}

/// Whether the request's body is `multipart/form-data`.
fn is_multipart(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The message page with `status`.
pub(crate) fn refused(state: &ConsoleState, status: StatusCode, message: &str) -> Response {
    let page = state.render(
        "message.html",
        minijinja::context! { title => "Refused", message => message },
    );
    (status, page).into_response()
}

/// The first value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of the cookie `name` the request carries.
fn cookie_value(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The sign-in form's cookie: its CSRF token, for `/sign-in` only, for an hour.
fn sign_in_cookie(state: &ConsoleState, value: String, max_age_secs: i64) -> HeaderValue {
    let cookie = Cookie::build((SIGN_IN_COOKIE, value))
        .path("/sign-in")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure)
        .max_age(tower_sessions::cookie::time::Duration::seconds(
            max_age_secs,
        ))
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The sign-in form, with a new double-submit token (its status `status`, its message
/// `error`).
fn sign_in_form(state: &ConsoleState, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = crate::keys::random_token();
    let cookie = sign_in_cookie(state, csrf.clone(), 3600);
    let page = state.render(
        "sign_in.html",
        minijinja::context! { csrf => csrf, error => error, title => "Sign in" },
    );
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

/// `GET /sign-in`: the form, or the overview for a session already signed in.
pub(crate) async fn sign_in_page(State(state): State<ConsoleState>, session: Session) -> Response {
    let fingerprint: Option<String> = session.get(SIGNED_IN).await.ok().flatten();
    if fingerprint.as_deref() == Some(state.fingerprint.as_str()) {
        return Redirect::to("/").into_response();
    }
    sign_in_form(&state, StatusCode::OK, None)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    /// The admin token typed in.
    #[serde(default)]
    token: String,
}

/// `POST /sign-in`: a right token starts a new session and goes to the overview; a wrong one
/// is told so, and nothing else.
pub(crate) async fn sign_in(
    State(state): State<ConsoleState>,
    session: Session,
    Form(form): Form<SignInForm>,
) -> Response {
    if !tokens_match(state.token.expose_secret(), form.token.trim()) {
        tracing::warn!("A console sign-in with a wrong token was refused.");
        return sign_in_form(&state, StatusCode::UNAUTHORIZED, Some(WRONG_TOKEN));
    }
    let started = async {
        session.cycle_id().await?;
        session.insert(SIGNED_IN, &state.fingerprint).await?;
        session.insert(CSRF, crate::keys::random_token()).await
    };
    if let Err(e) = started.await {
        tracing::error!(error = %e, "A console session could not be started.");
        return refused(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The session could not be started; the plugin manager's log says why.",
        );
    }
    tracing::info!(actor = %state.actor, "Signed in to the console.");
    let spent = sign_in_cookie(&state, String::new(), 0);
    ([(header::SET_COOKIE, spent)], Redirect::to("/")).into_response()
}

/// `POST /sign-out`: ends the session (deleted from the store) and goes to the sign-in form.
pub(crate) async fn sign_out(session: Session) -> Response {
    if let Err(e) = session.flush().await {
        tracing::warn!(error = %e, "A console session could not be deleted.");
    }
    Redirect::to("/sign-in").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal_and_never_when_empty() {
        assert!(tokens_match("abc123", "abc123"));
        assert!(!tokens_match("abc123", "abc124"));
        assert!(!tokens_match("abc123", "abc12"));
        assert!(!tokens_match("abc123", ""));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn a_form_field_is_read_decoded() {
        let body = b"mode=full&csrf=a%2Bb+c&csrf=second";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("a+b c"));
        assert_eq!(form_field(body, "missing"), None);
    }
}
