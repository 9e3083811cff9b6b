//! GitHub OAuth apps, as
//! <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>
//! documents them: the token answer is `access_token=…&scope=repo%2Cgist&token_type=bearer`
//! unless the request says `Accept: application/json`, the scopes comma-separated; expiring
//! user tokens add `expires_in` (8 hours), `refresh_token` and `refresh_token_expires_in`
//! (6 months), and a refresh token works once
//! (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens>).
//! Refusals come with status 200 and `error`, `error_description`, `error_uri`, in the same
//! format as a success: `incorrect_client_credentials`, `redirect_uri_mismatch`,
//! `bad_verification_code`
//! (<https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors>),
//! `bad_refresh_token`. At the authorization endpoint a person's refusal is
//! `error=access_denied`, and a redirect URI that does not match sends the person to the
//! registered callback with `error=redirect_uri_mismatch`
//! (<https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-authorization-request-errors>).
//! `GET /user` refuses a bad token with 401 `Bad credentials`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{
    joined, json, ApiRefusal, AuthorizeAnswer, AuthorizeFailure, Ctx, Failure, Issued,
    ServerSettings,
};

const TOKEN_ERRORS: &str =
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";
const AUTHORIZE_ERRORS: &str =
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/";

/// `fields` as GitHub answers them: JSON when asked for, else form-encoded; status 200.
fn answer(ctx: &Ctx<'_>, fields: &[(&str, serde_json::Value)]) -> Response {
    if ctx.accept_json {
        let body: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        return json(StatusCode::OK, serde_json::Value::Object(body));
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        match v {
            serde_json::Value::String(s) => form.append_pair(k, s),
            other => form.append_pair(k, &other.to_string()),
        };
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        form.finish(),
    )
        .into_response()
}

/// The token endpoint's refusal of `failure`, and its `error`: status 200 with an `error`
/// field, except for an injected outage.
pub fn token_refusal(ctx: &Ctx<'_>, failure: &Failure) -> (Response, &'static str) {
    let (error, description, anchor) = match failure {
        Failure::UnknownClient(_) | Failure::MissingSecret | Failure::WrongSecret => (
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "#incorrect-client-credentials",
        ),
        Failure::RedirectMismatch(_) => (
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
            "#redirect-uri-mismatch2",
        ),
        Failure::MissingParameter("refresh_token")
        | Failure::InvalidRefreshToken
        | Failure::RevokedConsent => (
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
            "#bad-refresh-token",
        ),
        Failure::UnsupportedGrant(_) => (
            "unsupported_grant_type",
            "The grant type is not supported.",
            "#unsupported-grant-type",
        ),
        // A missing or bad code, a reused one, a verifier that does not match: GitHub names
        // them all `bad_verification_code` ("incorrect, expired, or doesn't match").
        Failure::MissingParameter(_)
        | Failure::InvalidCode
        | Failure::ReusedCode
        | Failure::MissingVerifier
        | Failure::WrongVerifier
        | Failure::InvalidScope(_) => (
            "bad_verification_code",
            "The code passed is incorrect or expired.",
            "#bad-verification-code",
        ),
        Failure::Unavailable => {
            return (
                (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response(),
                "service_unavailable",
            )
        }
    };
    let response = answer(
        ctx,
        &[
            ("error", json!(error)),
            ("error_description", json!(description)),
            ("error_uri", json!(format!("{TOKEN_ERRORS}{anchor}"))),
        ],
    );
    (response, error)
}

/// The token answer.
pub fn token_success(ctx: &Ctx<'_>, issued: &[Issued]) -> Response {
    let Some(token) = issued.first() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no token").into_response();
    };
    let mut fields = vec![("access_token", json!(token.access_token))];
    if let Some(expires_in) = token.expires_in {
        fields.push(("expires_in", json!(expires_in)));
    }
    if let Some(refresh) = &token.refresh_token {
        fields.push(("refresh_token", json!(refresh)));
        fields.push(("refresh_token_expires_in", json!(15_897_600)));
    }
    fields.push(("scope", json!(joined(&token.scopes, ","))));
    fields.push(("token_type", json!("bearer")));
    answer(ctx, &fields)
}

/// The authorization endpoint's refusal.
pub fn authorize_refusal(
    _settings: &ServerSettings,
    failure: &AuthorizeFailure,
) -> AuthorizeAnswer {
    let params = |error: &str, description: &str, anchor: &str| {
        vec![
            ("error".to_owned(), error.to_owned()),
            ("error_description".to_owned(), description.to_owned()),
            (
                "error_uri".to_owned(),
                format!("{AUTHORIZE_ERRORS}{anchor}"),
            ),
        ]
    };
    match failure {
        AuthorizeFailure::MissingClient | AuthorizeFailure::UnknownClient(_) => {
            AuthorizeAnswer::Page {
                status: StatusCode::NOT_FOUND,
                error: "Not Found".into(),
                description: "This is not the web page you are looking for.".into(),
            }
        }
        AuthorizeFailure::RedirectNotRegistered(_) | AuthorizeFailure::MissingRedirect => {
            AuthorizeAnswer::RedirectToRegistered(params(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                "#redirect-uri-mismatch",
            ))
        }
        AuthorizeFailure::Denied => AuthorizeAnswer::Redirect(params(
            "access_denied",
            "The user has denied your application access.",
            "#access-denied",
        )),
        AuthorizeFailure::MissingChallenge | AuthorizeFailure::UnsupportedChallengeMethod(_) => {
            AuthorizeAnswer::Redirect(params(
                "invalid_request",
                "Only the S256 code_challenge_method is supported, with a code_challenge.",
                "",
            ))
        }
        AuthorizeFailure::UnsupportedResponseType(_)
        | AuthorizeFailure::MissingScope
        | AuthorizeFailure::InvalidScope(_) => {
            AuthorizeAnswer::Redirect(params("invalid_request", "The request is malformed.", ""))
        }
    }
}

/// `GET /user`.
pub fn api(settings: &ServerSettings, verdict: Result<(), ApiRefusal>) -> Response {
    let user = &settings.user;
    match verdict {
        Ok(()) => json(
            StatusCode::OK,
            json!({
                "login": user.login,
                "id": user.id.parse::<u64>().unwrap_or(1),
                "name": user.name,
                "email": user.email,
                "type": "User",
            }),
        ),
        Err(_) => json(
            StatusCode::UNAUTHORIZED,
            json!({
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            }),
        ),
    }
}
