//! Google OAuth 2.0 for web server applications, as
//! <https://developers.google.com/identity/protocols/oauth2/web-server> documents it: the
//! redirect carries `code`, `state` and the granted `scope`; the token answer is JSON with
//! `access_token`, `expires_in`, `token_type: Bearer`, space-separated `scope`, an `id_token`
//! with `openid`, and a `refresh_token` only for `access_type=offline` at a first consent or
//! with `prompt=consent`; a refresh answers without a refresh token. Refusals are
//! `{"error", "error_description"}`: `invalid_grant` (`Bad Request`, `Token has been expired or
//! revoked.`), `invalid_client` with status 401, `redirect_uri_mismatch`; a consent refused is
//! `error=access_denied` on the redirect, a bad client or redirect URI an error page
//! (`Error 400: redirect_uri_mismatch`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{
    joined, json, ApiRefusal, AuthorizeAnswer, AuthorizeFailure, Ctx, Failure, Issued,
    ServerSettings,
};

fn refusal(status: StatusCode, error: &'static str, description: &str) -> (Response, &'static str) {
    (
        json(
            status,
            json!({ "error": error, "error_description": description }),
        ),
        error,
    )
}

/// The token endpoint's refusal of `failure`, and its `error`.
pub fn token_refusal(_ctx: &Ctx<'_>, failure: &Failure) -> (Response, &'static str) {
    let bad = StatusCode::BAD_REQUEST;
    match failure {
        Failure::MissingParameter(name) => refusal(
            bad,
            "invalid_request",
            &format!("Missing required parameter: {name}"),
        ),
        Failure::UnsupportedGrant(grant) => refusal(
            bad,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant}"),
        ),
        Failure::UnknownClient(_) => refusal(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        ),
        Failure::MissingSecret | Failure::WrongSecret => {
            refusal(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized")
        }
        Failure::InvalidCode | Failure::ReusedCode | Failure::InvalidRefreshToken => {
            refusal(bad, "invalid_grant", "Bad Request")
        }
        Failure::MissingVerifier => refusal(bad, "invalid_grant", "Missing code verifier."),
        Failure::WrongVerifier => refusal(bad, "invalid_grant", "Invalid code verifier."),
        Failure::RedirectMismatch(_) => refusal(bad, "redirect_uri_mismatch", "Bad Request"),
        Failure::RevokedConsent => {
            refusal(bad, "invalid_grant", "Token has been expired or revoked.")
        }
        Failure::InvalidScope(_) => refusal(bad, "invalid_scope", "Bad Request"),
        Failure::Unavailable => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is currently unavailable.",
        ),
    }
}

/// The token answer.
pub fn token_success(_ctx: &Ctx<'_>, issued: &[Issued]) -> Response {
    let Some(token) = issued.first() else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_failure",
            "No token.",
        )
        .0;
    };
    let mut body = json!({
        "access_token": token.access_token,
        "expires_in": token.expires_in.unwrap_or(3599),
        "token_type": "Bearer",
        "scope": joined(&token.scopes, " "),
    });
    if let Some(refresh) = &token.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(id_token) = &token.id_token {
        body["id_token"] = json!(id_token);
    }
    json(StatusCode::OK, body)
}

/// The authorization endpoint's refusal.
pub fn authorize_refusal(
    _settings: &ServerSettings,
    failure: &AuthorizeFailure,
) -> AuthorizeAnswer {
    let page = |status: StatusCode, error: &str, description: String| AuthorizeAnswer::Page {
        status,
        error: format!("Error {}: {error}", status.as_u16()),
        description,
    };
    let redirect = |error: &str| AuthorizeAnswer::Redirect(vec![("error".into(), error.into())]);
    match failure {
        AuthorizeFailure::MissingClient => page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: client_id".into(),
        ),
        AuthorizeFailure::UnknownClient(_) => page(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.".into(),
        ),
        AuthorizeFailure::RedirectNotRegistered(uri) => page(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            format!("You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. Request details: redirect_uri={uri}"),
        ),
        AuthorizeFailure::MissingRedirect => page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: redirect_uri".into(),
        ),
        AuthorizeFailure::UnsupportedResponseType(kind) => page(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            format!("Invalid response_type: {kind}"),
        ),
        AuthorizeFailure::MissingChallenge | AuthorizeFailure::UnsupportedChallengeMethod(_) => {
            page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid code_challenge_method; use S256 with a code_challenge.".into(),
            )
        }
        AuthorizeFailure::MissingScope => page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: scope".into(),
        ),
        AuthorizeFailure::InvalidScope(scope) => page(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("Some requested scopes were invalid. {{invalid=[{scope}]}}"),
        ),
        AuthorizeFailure::Denied => redirect("access_denied"),
    }
}

/// `GET /oauth2/v3/userinfo`.
pub fn api(settings: &ServerSettings, verdict: Result<(), ApiRefusal>) -> Response {
    let user = &settings.user;
    match verdict {
        Ok(()) => json(
            StatusCode::OK,
            json!({
                "sub": user.id,
                "name": user.name,
                "email": user.email,
                "email_verified": true,
            }),
        ),
        Err(_) => {
            let mut response = json(
                StatusCode::UNAUTHORIZED,
                json!({
                    "error": "invalid_request",
                    "error_description": "Invalid Credentials"
                }),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
                ),
            );
            response
        }
    }
}
