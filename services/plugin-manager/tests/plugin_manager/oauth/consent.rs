//! The consent flow: a full one per provider dialect, PKCE checked by the provider, the
//! callback's refusals of a missing, unknown, used or expired state, and the providers'
//! refusals in plain words.

use std::time::Duration;

use tributary_kit::testing::oauth::{Consent, Provider, ServerSettings};
use tributary_proto::events::PluginEvent;
use tributary_proto::requests::plugins::{AttemptStatus, AuthStatus};
use tributary_proto::requests::ErrorCode;

use super::{code_grant, OAuthEnv};
use crate::support::{next_event, watch};

#[tokio::test]
async fn a_consent_connects_the_instance_with_pkce_and_says_who_and_which_scopes() {
    let t = OAuthEnv::microsoft(&["openid", "email", "Mail.Read"]).await;
    let mut connected_events = watch(&t.env, PluginEvent::Connected).await;
    let before = t.view("mail").await.auth.unwrap();
    assert_eq!(before.status, AuthStatus::NotConnected);
    assert_eq!(before.provider, "microsoft");

    let attempt = t.connect("mail").await.unwrap();
    assert_eq!(attempt.status, AttemptStatus::Pending);
    let url = url::Url::parse(attempt.consent_url.as_deref().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], t.provider.client_id());
    assert_eq!(query["scope"], "openid email Mail.Read offline_access");
    assert_eq!(
        query["redirect_uri"],
        format!("http://{}/oauth/callback", t.pm.http_addr)
    );
    assert!(query["state"].len() >= 22, "an unguessable state");
    assert!(url.path().starts_with("/common/"), "the configured tenant");
    // The consent is pending until the person answers.
    assert_eq!(t.status(&attempt).await.status, AttemptStatus::Pending);

    let (status, page, _) = t.consent(&attempt).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Connected"), "{page}");
    let ended = t.status(&attempt).await;
    assert_eq!(ended.status, AttemptStatus::Connected, "{ended:?}");
    // As Microsoft answers: `offline_access` shows as the refresh token, not in `scope`.
    assert_eq!(ended.scopes, ["openid", "email", "Mail.Read"]);
    assert_eq!(
        ended.connected_as.as_deref(),
        Some("ada@contoso.onmicrosoft.com")
    );
    assert!(ended.consent_url.is_none(), "the state is shown once");

    // The provider checked the PKCE verifier against the challenge of the consent.
    let log = t.provider.token_request_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].grant_type, "authorization_code");
    assert!(log[0].code_verifier);
    assert_eq!(log[0].error, None);

    let auth = t.view("mail").await.auth.unwrap();
    assert_eq!(auth.status, AuthStatus::Connected);
    assert_eq!(
        auth.connected_as.as_deref(),
        Some("ada@contoso.onmicrosoft.com")
    );
    let expires_in = auth.expires_at.unwrap() - chrono::Utc::now();
    assert!(
        expires_in > chrono::Duration::minutes(55) && expires_in <= chrono::Duration::minutes(60),
        "{expires_in}"
    );
    let event = next_event(&mut connected_events).await;
    assert_eq!(event["data"]["instance_id"], "mail");
    // Asked on plugins.connect, which only `admin` may publish; completed by the callback.
    assert_eq!(event["data"]["actor"], "nats:admin");

    // What the host attaches works at the provider's API; no refresh was needed for it.
    let token = t.token("mail", None).await.unwrap();
    assert!(t.provider.accepts_access_token(&token.access_token));
    assert_eq!(t.provider.token_requests().refresh_token, 0);
    let actions = t.actions("mail").await;
    assert!(
        actions.ends_with(&["oauth_connect_started".into(), "oauth_connect".into()]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_callback_refuses_a_missing_foreign_reused_or_expired_state() {
    let t = OAuthEnv::start(
        Provider::Google,
        ServerSettings::of(Provider::Google),
        code_grant(
            Provider::Google,
            &["https://www.googleapis.com/auth/gmail.readonly"],
        ),
        |c| c.oauth.consent_ttl_secs = 2,
    )
    .await;
    let callback = format!("http://{}/oauth/callback", t.pm.http_addr);

    let (status, page) = t.open(&format!("{callback}?code=abc")).await;
    assert_eq!(status, 400, "no state: {page}");
    assert!(page.contains("no `state`"), "{page}");
    let (status, page) = t
        .open(&format!("{callback}?code=abc&state=made-up-by-an-attacker"))
        .await;
    assert_eq!(status, 400, "a foreign state: {page}");
    assert!(page.contains("not issued by this hub"), "{page}");

    // A used state: the replayed callback is refused, and no second exchange is made.
    let attempt = t.connect("mail").await.unwrap();
    let (status, page, back) = t.consent(&attempt).await;
    assert_eq!(status, 200, "{page}");
    let (status, page) = t.open(&back).await;
    assert_eq!(status, 400, "a reused state: {page}");
    assert!(page.contains("used already"), "{page}");
    assert_eq!(t.provider.token_requests().authorization_code, 1);
    assert_eq!(t.status(&attempt).await.status, AttemptStatus::Connected);

    // An expired state: refused, the attempt says expired, nothing is exchanged.
    let late = t.connect("mail").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(t.status(&late).await.status, AttemptStatus::Expired);
    let back = t.answered(&late).await;
    let (status, page) = t.open(&back).await;
    assert_eq!(status, 400, "an expired state: {page}");
    assert!(
        page.contains("used already") || page.contains("expired"),
        "{page}"
    );
    assert_eq!(t.provider.token_requests().authorization_code, 1);
    // A fresh attempt that expires unanswered, then comes back: expired.
    let slow = t.connect("mail").await.unwrap();
    let back = t.answered(&slow).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, page) = t.open(&back).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("expired"), "{page}");
    assert_eq!(t.status(&slow).await.status, AttemptStatus::Expired);
    assert_eq!(t.provider.token_requests().authorization_code, 1);
}

#[tokio::test]
async fn a_refused_consent_is_said_in_plain_words() {
    // The person declines.
    let google = OAuthEnv::start(
        Provider::Google,
        ServerSettings::of(Provider::Google),
        code_grant(Provider::Google, &["openid"]),
        |_| {},
    )
    .await;
    google.provider.set_consent(Consent::Deny);
    let attempt = google.connect("mail").await.unwrap();
    let (status, page, _) = google.consent(&attempt).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("was not connected: access denied"), "{page}");
    let ended = google.status(&attempt).await;
    assert_eq!(ended.status, AttemptStatus::Failed);
    let error = ended.error.unwrap();
    assert_eq!(error.code, "access_denied");
    assert!(
        error.message.starts_with("access denied"),
        "{}",
        error.message
    );
    assert_eq!(google.provider.token_requests().total, 0);
    assert_eq!(
        google.view("mail").await.auth.unwrap().status,
        AuthStatus::NotConnected
    );
    assert!(google
        .actions("mail")
        .await
        .contains(&"oauth_connect_failed".to_owned()));
    // Not connected: it cannot be enabled yet, and says how to connect.
    let refused = google.enable("mail").await.unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict);
    assert!(
        refused.message.contains("tributary plugins connect mail"),
        "{}",
        refused.message
    );

    // A scope the provider does not know.
    let mut settings = ServerSettings::of(Provider::Microsoft);
    settings.invalid_scopes = vec!["Mail.Everything".into()];
    let microsoft = OAuthEnv::start(
        Provider::Microsoft,
        settings,
        code_grant(Provider::Microsoft, &["Mail.Everything"]),
        |_| {},
    )
    .await;
    let attempt = microsoft.connect("mail").await.unwrap();
    let (_, page, _) = microsoft.consent(&attempt).await;
    assert!(page.contains("scope refused"), "{page}");
    assert_eq!(
        microsoft.status(&attempt).await.error.unwrap().code,
        "invalid_scope"
    );

    // GitHub sends a redirect URI mismatch to the registered callback: here the hub's own
    // address on 127.0.0.1, while the hub names itself `localhost`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let github = OAuthEnv::start(
        Provider::GitHub,
        ServerSettings::of(Provider::GitHub),
        code_grant(Provider::GitHub, &["repo"]),
        |c| {
            c.plugin_manager.http_addr = ([127, 0, 0, 1], port).into();
            c.oauth.redirect_base_url = format!("http://localhost:{port}");
        },
    )
    .await;
    github
        .provider
        .register_redirect_uri(&format!("http://127.0.0.1:{port}/oauth/callback"));
    let attempt = github.connect("mail").await.unwrap();
    assert_eq!(
        attempt.redirect_uri.as_deref(),
        Some(format!("http://localhost:{port}/oauth/callback").as_str())
    );
    let (_, page, _) = github.consent(&attempt).await;
    assert!(page.contains("wrong redirect URI"), "{page}");
    let error = github.status(&attempt).await.error.unwrap();
    assert_eq!(error.code, "redirect_uri_mismatch");
    assert!(error.message.contains("localhost"), "{}", error.message);
    assert_eq!(github.provider.token_requests().total, 0);
}
