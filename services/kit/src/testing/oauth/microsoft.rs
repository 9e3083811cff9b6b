//! Microsoft identity platform v2.0, as
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>
//! documents its endpoints: token answers with `token_type: Bearer`, `expires_in`,
//! `ext_expires_in`, space-separated `scope`, a `refresh_token` with `offline_access` and an
//! `id_token` with `openid`; refusals as JSON with `error`, an `error_description` starting
//! `AADSTS<n>:` and ending with the trace and correlation ids and the time, `error_codes`,
//! `timestamp`, `trace_id`, `correlation_id` and `error_uri`, the codes as
//! <https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes> lists
//! them. `invalid_client` comes with status 401. Graph's `GET /v1.0/me` refuses a bad token
//! with 401 and `InvalidAuthenticationToken`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{
    joined, json, ApiRefusal, AuthorizeAnswer, AuthorizeFailure, Ctx, Failure, Issued,
    ServerSettings,
};

/// A refusal body: `{error, error_description: "AADSTS<n>: …", error_codes: [n], …}`.
pub fn refusal(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// The token endpoint's refusal of `failure`, and its `error`.
pub fn token_refusal(ctx: &Ctx<'_>, failure: &Failure) -> (Response, &'static str) {
    let bad = StatusCode::BAD_REQUEST;
    let tenant = ctx.tenant.unwrap_or("common");
    let (status, error, code, description) = match failure {
        Failure::MissingParameter(name) => (
            bad,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        ),
        Failure::UnsupportedGrant(grant) => (
            bad,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ),
        Failure::UnknownClient(id) => (
            bad,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ),
        Failure::MissingSecret => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned(),
        ),
        Failure::WrongSecret => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                ctx.client_id
            ),
        ),
        Failure::InvalidCode => (
            bad,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.".to_owned(),
        ),
        Failure::ReusedCode => (
            bad,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.".to_owned(),
        ),
        Failure::MissingVerifier | Failure::WrongVerifier => (
            bad,
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.".to_owned(),
        ),
        Failure::RedirectMismatch(uri) => (
            bad,
            "invalid_grant",
            50011,
            format!(
                "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{}'.",
                ctx.client_id
            ),
        ),
        Failure::InvalidRefreshToken => (
            bad,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.".to_owned(),
        ),
        Failure::RevokedConsent => (
            bad,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.".to_owned(),
        ),
        Failure::InvalidScope(scope) => (
            bad,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ),
        Failure::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.".to_owned(),
        ),
    };
    (refusal(status, error, code, &description), error)
}

/// The token answer: one token, with a refresh token when `offline_access` was granted.
pub fn token_success(_ctx: &Ctx<'_>, issued: &[Issued]) -> Response {
    let Some(token) = issued.first() else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90033,
            "No token.",
        );
    };
    let scopes: Vec<String> = token
        .scopes
        .iter()
        .filter(|s| *s != "offline_access")
        .cloned()
        .collect();
    let mut body = json!({
        "token_type": "Bearer",
        "scope": joined(&scopes, " "),
        "expires_in": token.expires_in.unwrap_or(3599),
        "ext_expires_in": token.expires_in.unwrap_or(3599),
        "access_token": token.access_token,
    });
    if let Some(refresh) = &token.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(id_token) = &token.id_token {
        body["id_token"] = json!(id_token);
    }
    json(StatusCode::OK, body)
}

/// The authorization endpoint's refusal: a page while the client or its redirect URI is in
/// doubt, else back to the redirect URI with `error` and an `AADSTS` description.
pub fn authorize_refusal(settings: &ServerSettings, failure: &AuthorizeFailure) -> AuthorizeAnswer {
    let redirect = |error: &str, description: String| {
        AuthorizeAnswer::Redirect(vec![
            ("error".into(), error.into()),
            ("error_description".into(), description),
        ])
    };
    let page = |error: &str, description: String| AuthorizeAnswer::Page {
        status: StatusCode::BAD_REQUEST,
        error: error.into(),
        description,
    };
    match failure {
        AuthorizeFailure::MissingClient => page(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.".into(),
        ),
        AuthorizeFailure::UnknownClient(id) => page(
            "unauthorized_client",
            format!("AADSTS700016: Application with identifier '{id}' was not found in the directory."),
        ),
        AuthorizeFailure::RedirectNotRegistered(uri) => page(
            "invalid_request",
            format!(
                "AADSTS50011: The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{}'.",
                settings.client_id
            ),
        ),
        AuthorizeFailure::MissingRedirect => page(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'redirect_uri'.".into(),
        ),
        AuthorizeFailure::UnsupportedResponseType(kind) => redirect(
            "unsupported_response_type",
            format!("AADSTS700054: response_type '{kind}' is not enabled for the application."),
        ),
        AuthorizeFailure::MissingChallenge => redirect(
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption.".into(),
        ),
        // The identity platform takes `plain` too; this server, like GitHub, only S256.
        AuthorizeFailure::UnsupportedChallengeMethod(method) => redirect(
            "invalid_request",
            format!("code_challenge_method '{method}' is not supported here: use S256."),
        ),
        AuthorizeFailure::MissingScope => redirect(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.".into(),
        ),
        AuthorizeFailure::InvalidScope(scope) => redirect(
            "invalid_scope",
            format!("AADSTS70011: The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid."),
        ),
        AuthorizeFailure::Denied => redirect(
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.".into(),
        ),
    }
}

/// `GET /v1.0/me`, as Microsoft Graph answers it.
pub fn api(settings: &ServerSettings, verdict: Result<(), ApiRefusal>) -> Response {
    let user = &settings.user;
    match verdict {
        Ok(()) => json(
            StatusCode::OK,
            json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                "id": user.id,
                "displayName": user.name,
                "userPrincipalName": user.email,
                "mail": user.email,
            }),
        ),
        Err(refusal) => {
            let message = match refusal {
                ApiRefusal::Missing => "Access token is empty.",
                ApiRefusal::Invalid => "IDX14100: JWT is not well formed.",
                ApiRefusal::Expired => "Lifetime validation failed, the token is expired.",
                ApiRefusal::Revoked => "Access token has been revoked.",
            };
            let mut response = json(
                StatusCode::UNAUTHORIZED,
                json!({
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": message,
                        "innerError": {
                            "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                            "request-id": uuid::Uuid::new_v4().to_string(),
                            "client-request-id": uuid::Uuid::new_v4().to_string(),
                        }
                    }
                }),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
            response.into_response()
        }
    }
}
