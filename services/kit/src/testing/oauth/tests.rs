//! The local providers against what their documentation promises: PKCE checked at the
//! exchange, refresh tokens rotating, a revoked consent refused, each in its provider's words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::*;

const REDIRECT: &str = "https://hub.example.com/oauth/callback";

/// A PKCE verifier of 43 characters and its S256 challenge.
fn pkce(seed: char) -> (String, String) {
    let verifier: String = std::iter::repeat_n(seed, 43).collect();
    let challenge = s256_challenge(&verifier);
    (verifier, challenge)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GETs the authorization URL (`{tenant}` as `common`) as a person's browser would, and
/// returns where it is sent: the redirect's parameters.
async fn consent(server: &ProviderServer, params: &[(&str, &str)]) -> HashMap<String, String> {
    let url = server.authorization_url().replace("{tenant}", "common");
    let response = client().get(url).query(params).send().await.unwrap();
    assert_eq!(response.status(), 302, "{:?}", response.text().await);
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let url = url::Url::parse(&location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// A code for `scope`, with `challenge`.
async fn code_for(
    server: &ProviderServer,
    scope: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let client_id = server.client_id();
    let mut params = vec![
        ("client_id", client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st4te"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let answer = consent(server, &params).await;
    assert_eq!(answer.get("state").map(String::as_str), Some("st4te"));
    answer["code"].clone()
}

/// POSTs `form` to the token endpoint with the client's id and secret in the form (or, with
/// `basic`, in an `Authorization: Basic` header) and `Accept: application/json` unless
/// `accept` says otherwise.
async fn token(
    server: &ProviderServer,
    form: &[(&str, &str)],
    basic: bool,
    accept: &str,
) -> (u16, String) {
    let id = server.client_id();
    let secret = secrecy::ExposeSecret::expose_secret(&server.client_secret()).to_owned();
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = client()
        .post(server.token_url().replace("{tenant}", "common"))
        .header(reqwest::header::ACCEPT, accept);
    if basic {
        request = request.basic_auth(&id, Some(&secret));
    } else {
        form.push(("client_id", &id));
        form.push(("client_secret", &secret));
    }
    let response = request.form(&form).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn api(server: &ProviderServer, access_token: &str) -> (u16, Value) {
    let response = client()
        .get(server.api_url())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[test]
fn the_challenge_is_rfc_7636s() {
    // RFC 7636 Appendix B.
    assert_eq!(
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[tokio::test]
async fn microsoft_checks_the_verifier_and_a_code_works_once() {
    let server = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let (verifier, challenge) = pkce('a');
    let code = code_for(&server, "openid User.Read offline_access", &challenge, &[]).await;

    let (wrong, _) = pkce('b');
    let exchange = |verifier: String| {
        let code = code.clone();
        let server = &server;
        async move {
            token(
                server,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                ],
                false,
                "application/json",
            )
            .await
        }
    };
    let (status, body) = exchange(wrong).await;
    let body = parsed(&body);
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_codes"], serde_json::json!([501481]));
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS501481: The Code_Verifier does not match"));
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());

    let (status, body) = exchange(verifier.clone()).await;
    assert_eq!(status, 200, "{body}");
    let body = parsed(&body);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid User.Read");
    assert!(
        body["refresh_token"].is_string(),
        "offline_access gives one"
    );
    assert!(body["id_token"].is_string(), "openid gives one");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, me) = api(&server, &access).await;
    assert_eq!(
        (status, me["userPrincipalName"].as_str()),
        (200, Some("ada@contoso.onmicrosoft.com"))
    );

    // The same code again: refused, and what it gave is revoked.
    let (status, body) = exchange(verifier).await;
    assert_eq!(status, 400);
    assert_eq!(parsed(&body)["error_codes"], serde_json::json!([54005]));
    assert_eq!(api(&server, &access).await.0, 401);

    let log = server.token_request_log();
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|r| r.tenant.as_deref() == Some("common") && r.code_verifier));
    assert_eq!(server.token_requests().authorization_code, 3);
    assert_eq!(server.token_requests().refused, 2);
}

#[tokio::test]
async fn a_consent_without_pkce_or_with_the_wrong_secret_is_refused() {
    let server = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let client_id = server.client_id();
    let answer = consent(
        &server,
        &[
            ("client_id", &client_id),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "User.Read"),
            ("state", "s"),
        ],
    )
    .await;
    assert_eq!(answer["error"], "invalid_request");
    assert_eq!(answer["state"], "s");

    let response = client()
        .post(server.token_url().replace("{tenant}", "common"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &client_id),
            ("client_secret", "not-the-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], serde_json::json!([7000215]));
}

#[tokio::test]
async fn github_rotates_refresh_tokens_and_answers_refusals_with_200() {
    let settings = ServerSettings::expiring(Provider::GitHub, Duration::from_secs(28_800));
    let server = ProviderServer::start_with(Provider::GitHub, settings)
        .await
        .unwrap();
    let (verifier, challenge) = pkce('c');
    let code = code_for(&server, "repo read:org", &challenge, &[]).await;

    // Form-encoded unless JSON is asked for.
    let (status, text) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ],
        false,
        "*/*",
    )
    .await;
    assert_eq!(status, 200);
    let first: HashMap<String, String> = url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(first["scope"], "repo,read:org");
    assert_eq!(first["token_type"], "bearer");
    assert_eq!(first["expires_in"], "28800");
    assert!(first["access_token"].starts_with("ghu_"));
    let old_refresh = first["refresh_token"].clone();
    assert!(old_refresh.starts_with("ghr_"));

    let refresh = |refresh_token: String, accept: &'static str| {
        let server = &server;
        async move {
            token(
                server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh_token),
                ],
                false,
                accept,
            )
            .await
        }
    };
    let (status, text) = refresh(old_refresh.clone(), "application/json").await;
    assert_eq!(status, 200);
    let second = parsed(&text);
    let new_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, old_refresh, "rotated");
    assert_eq!(
        api(&server, second["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    assert_eq!(
        api(&server, &first["access_token"]).await.0,
        401,
        "the old access token stops"
    );

    // The old refresh token works once: refused, with status 200, form-encoded by default.
    let (status, text) = refresh(old_refresh, "*/*").await;
    assert_eq!(status, 200);
    assert!(
        text.starts_with("error=bad_refresh_token&error_description=The+refresh+token"),
        "{text}"
    );
    let (status, text) = refresh(new_refresh, "application/json").await;
    assert_eq!(
        (status, parsed(&text)["refresh_token"].is_string()),
        (200, true)
    );
    assert_eq!(server.token_requests().refresh_token, 3);
    assert_eq!(server.token_requests().refused, 1);
}

#[tokio::test]
async fn a_revoked_google_consent_refuses_the_refresh_with_invalid_grant() {
    let server = ProviderServer::start(Provider::Google).await.unwrap();
    let (verifier, challenge) = pkce('d');
    let scope = "openid https://www.googleapis.com/auth/calendar.readonly";
    let offline = [("access_type", "offline"), ("prompt", "consent")];
    let code = code_for(&server, scope, &challenge, &offline).await;
    let (status, text) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
        false,
        "application/json",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let body = parsed(&text);
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // Google keeps the refresh token: a refresh answers without one.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    let (status, text) = token(&server, &form, true, "application/json").await;
    assert_eq!(status, 200, "{text}");
    assert!(parsed(&text).get("refresh_token").is_none());

    server.revoke_consent();
    let (status, text) = token(&server, &form, false, "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(
        parsed(&text),
        serde_json::json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    assert_eq!(
        api(&server, body["access_token"].as_str().unwrap()).await.0,
        401
    );

    // Without prompt=consent a second consent brings no refresh token.
    server.set_consent(Consent::Approve);
    let code = code_for(&server, scope, &challenge, &[("access_type", "offline")]).await;
    let (_, text) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
        false,
        "application/json",
    )
    .await;
    assert!(parsed(&text).get("refresh_token").is_none(), "{text}");
}

#[tokio::test]
async fn slack_denies_on_the_redirect_and_installs_bot_and_user_tokens() {
    let settings = ServerSettings::expiring(Provider::Slack, Duration::from_secs(43_200));
    let server = ProviderServer::start_with(Provider::Slack, settings)
        .await
        .unwrap();
    server.register_redirect_uri(REDIRECT);
    let (verifier, challenge) = pkce('e');
    let client_id = server.client_id();
    let asked = [
        ("client_id", client_id.as_str()),
        ("scope", "channels:history,chat:write"),
        ("user_scope", "search:read"),
        ("state", "st4te"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    server.set_consent(Consent::Deny);
    let answer = consent(&server, &asked).await;
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "st4te");

    server.set_consent(Consent::Approve);
    let code = consent(&server, &asked).await["code"].clone();
    let (status, text) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ],
        true,
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    let body = parsed(&text);
    assert_eq!(body["ok"], true);
    assert_eq!(body["token_type"], "bot");
    assert_eq!(body["scope"], "channels:history,chat:write");
    assert!(body["access_token"]
        .as_str()
        .unwrap()
        .starts_with("xoxe.xoxb-1-"));
    assert_eq!(body["authed_user"]["token_type"], "user");
    assert_eq!(body["authed_user"]["scope"], "search:read");
    assert_eq!(body["team"]["name"], "Slack Softball Team");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // Token rotation: the refresh token used is revoked.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    let (_, text) = token(&server, &form, true, "application/json").await;
    assert_eq!(parsed(&text)["token_type"], "bot");
    let (status, text) = token(&server, &form, true, "application/json").await;
    assert_eq!(status, 200);
    assert_eq!(
        parsed(&text),
        serde_json::json!({"ok": false, "error": "invalid_refresh_token"})
    );
}

#[tokio::test]
async fn injected_outages_are_counted_and_pass() {
    let server = ProviderServer::start(Provider::Microsoft).await.unwrap();
    server.fail_token_requests(2);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "unknown"),
    ];
    for _ in 0..2 {
        let (status, text) = token(&server, &form, false, "application/json").await;
        assert_eq!(status, 503);
        assert_eq!(parsed(&text)["error"], "temporarily_unavailable");
    }
    let (status, text) = token(&server, &form, false, "application/json").await;
    assert_eq!(
        (status, parsed(&text)["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let counts = server.token_requests();
    assert_eq!(
        (counts.total, counts.refresh_token, counts.refused),
        (3, 3, 3)
    );
    let errors: Vec<_> = server
        .token_request_log()
        .into_iter()
        .map(|r| r.error.unwrap_or_default())
        .collect();
    assert_eq!(
        errors,
        [
            "temporarily_unavailable",
            "temporarily_unavailable",
            "invalid_grant"
        ]
    );
    assert!(server.secrets().iter().all(|s| !s.is_empty()));
}
