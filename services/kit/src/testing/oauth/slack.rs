//! Slack OAuth v2, as <https://docs.slack.dev/authentication/installing-with-oauth> and
//! <https://docs.slack.dev/reference/methods/oauth.v2.access> document it: bot scopes in
//! `scope`, user scopes in `user_scope`, comma-separated; the answer is
//! `{"ok": true, "access_token": "xoxb-…", "token_type": "bot", "scope", "bot_user_id",
//! "app_id", "team": {"name", "id"}, "enterprise": null, "is_enterprise_install": false,
//! "authed_user": {"id", "scope", "access_token": "xoxp-…", "token_type": "user"}}`, the user
//! token only when user scopes were granted and the bot token only when bot scopes were. With
//! token rotation (<https://docs.slack.dev/authentication/using-token-rotation>) each token
//! carries `expires_in` (12 hours) and a `refresh_token`; a refresh answers with the refreshed
//! token at the top level, and the refresh token used is revoked. Refusals are status 200 with
//! `{"ok": false, "error": "invalid_code"}` (`invalid_client_id`, `bad_client_secret`,
//! `bad_redirect_uri`, `invalid_grant_type`, `invalid_refresh_token`); a consent refused is
//! `error=access_denied` on the redirect. `auth.test` answers a bad token with status 200 and
//! `invalid_auth`, `token_expired` or `token_revoked`. Slack documents no error of its own for a
//! PKCE verifier that does not match; this server answers `invalid_code`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{
    joined, json, ApiRefusal, AuthorizeAnswer, AuthorizeFailure, Ctx, Failure, Issued,
    ServerSettings, TokenKind,
};

const APP_ID: &str = "A0KRD7HC3";
const TEAM_ID: &str = "T9TK3CUKW";
const BOT_USER_ID: &str = "U0KRQLJ9H";

fn team(settings: &ServerSettings) -> serde_json::Value {
    json!({ "name": settings.user.team, "id": TEAM_ID })
}

/// The token endpoint's refusal of `failure`, and its `error`: status 200 and `ok: false`,
/// except for an injected outage.
pub fn token_refusal(_ctx: &Ctx<'_>, failure: &Failure) -> (Response, &'static str) {
    let error = match failure {
        Failure::UnknownClient(_) | Failure::MissingParameter("client_id") => "invalid_client_id",
        Failure::MissingSecret | Failure::WrongSecret => "bad_client_secret",
        Failure::RedirectMismatch(_) => "bad_redirect_uri",
        Failure::UnsupportedGrant(_) | Failure::MissingParameter("grant_type") => {
            "invalid_grant_type"
        }
        Failure::MissingParameter("refresh_token")
        | Failure::InvalidRefreshToken
        | Failure::RevokedConsent => "invalid_refresh_token",
        Failure::MissingParameter(_)
        | Failure::InvalidCode
        | Failure::ReusedCode
        | Failure::MissingVerifier
        | Failure::WrongVerifier
        | Failure::InvalidScope(_) => "invalid_code",
        Failure::Unavailable => {
            return (
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "ok": false, "error": "service_unavailable" }),
                ),
                "service_unavailable",
            )
        }
    };
    (
        json(StatusCode::OK, json!({ "ok": false, "error": error })),
        error,
    )
}

fn token_fields(token: &Issued, body: &mut serde_json::Value) {
    body["access_token"] = json!(token.access_token);
    body["token_type"] = json!(match token.kind {
        TokenKind::Bot => "bot",
        TokenKind::User => "user",
    });
    body["scope"] = json!(joined(&token.scopes, ","));
    if let Some(expires_in) = token.expires_in {
        body["expires_in"] = json!(expires_in);
    }
    if let Some(refresh) = &token.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
}

/// The token answer: an install (`refreshed` false) with the bot token at the top level and
/// the user token under `authed_user`, or a refresh with the one token at the top level.
pub fn token_success(ctx: &Ctx<'_>, issued: &[Issued], refreshed: bool) -> Response {
    let settings = ctx.settings;
    let mut body = json!({
        "ok": true,
        "app_id": APP_ID,
        "team": team(settings),
        "enterprise": null,
        "is_enterprise_install": false,
    });
    if refreshed {
        if let Some(token) = issued.first() {
            token_fields(token, &mut body);
            if token.kind == TokenKind::Bot {
                body["bot_user_id"] = json!(BOT_USER_ID);
            }
        }
        return json(StatusCode::OK, body);
    }
    let mut authed_user = json!({ "id": settings.user.id });
    for token in issued {
        match token.kind {
            TokenKind::Bot => {
                token_fields(token, &mut body);
                body["bot_user_id"] = json!(BOT_USER_ID);
            }
            TokenKind::User => token_fields(token, &mut authed_user),
        }
    }
    body["authed_user"] = authed_user;
    json(StatusCode::OK, body)
}

/// The authorization endpoint's refusal.
pub fn authorize_refusal(
    _settings: &ServerSettings,
    failure: &AuthorizeFailure,
) -> AuthorizeAnswer {
    let page = |error: &str, description: &str| AuthorizeAnswer::Page {
        status: StatusCode::BAD_REQUEST,
        error: error.into(),
        description: description.into(),
    };
    let redirect = |error: &str| AuthorizeAnswer::Redirect(vec![("error".into(), error.into())]);
    match failure {
        AuthorizeFailure::MissingClient | AuthorizeFailure::UnknownClient(_) => page(
            "invalid_client_id",
            "Something's wrong: the client_id is not valid.",
        ),
        AuthorizeFailure::RedirectNotRegistered(_) | AuthorizeFailure::MissingRedirect => page(
            "bad_redirect_uri",
            "Something's wrong: the redirect_uri did not match any configured URIs.",
        ),
        AuthorizeFailure::Denied => redirect("access_denied"),
        AuthorizeFailure::InvalidScope(_) | AuthorizeFailure::MissingScope => {
            redirect("invalid_scope")
        }
        AuthorizeFailure::UnsupportedResponseType(_)
        | AuthorizeFailure::MissingChallenge
        | AuthorizeFailure::UnsupportedChallengeMethod(_) => redirect("invalid_request"),
    }
}

/// `auth.test`: status 200 either way, `ok` telling.
pub fn api(settings: &ServerSettings, verdict: Result<(), ApiRefusal>) -> Response {
    let user = &settings.user;
    let body = match verdict {
        Ok(()) => json!({
            "ok": true,
            "url": "https://subarachnoid.slack.com/",
            "team": user.team,
            "user": user.login,
            "team_id": TEAM_ID,
            "user_id": user.id,
        }),
        Err(refusal) => json!({
            "ok": false,
            "error": match refusal {
                ApiRefusal::Missing => "not_authed",
                ApiRefusal::Invalid => "invalid_auth",
                ApiRefusal::Expired => "token_expired",
                ApiRefusal::Revoked => "token_revoked",
            },
        }),
    };
    json(StatusCode::OK, body)
}
