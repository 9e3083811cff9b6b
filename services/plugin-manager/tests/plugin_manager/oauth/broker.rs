//! The token broker: refresh ahead of expiry with rotation, a refused token refreshed once,
//! one refresh across two plugin manager processes, `invalid_grant` → `needs_reconnect` and
//! back, transient failures that keep the connection, and the client credentials grant.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use tributary_kit::testing::oauth::{Provider, Rotation, ServerSettings};
use tributary_proto::events::PluginEvent;
use tributary_proto::requests::plugins::{token_fingerprint, AttemptStatus, AuthStatus};
use tributary_proto::requests::ErrorCode;

use super::{code_grant, OAuthEnv};
use crate::support::{next_event, watch, RunningPm};

#[tokio::test]
async fn tokens_are_refreshed_ahead_of_expiry_and_rotated_refresh_tokens_kept() {
    // Tokens of 6 s, refreshed 4 s ahead, looked for every second: each lives about 2 s
    // before its refresh, which must come while it still works.
    let mut settings = ServerSettings::expiring(Provider::GitHub, Duration::from_secs(6));
    settings.rotation = Rotation::RotateAndRevoke;
    let t = OAuthEnv::start(
        Provider::GitHub,
        settings,
        code_grant(Provider::GitHub, &["repo"]),
        |c| {
            c.oauth.refresh_margin_secs = 4;
            c.oauth.refresh_check_secs = 1;
        },
    )
    .await;
    t.connected("mail").await;
    let first = t.token("mail", None).await.unwrap();
    let first_expiry = first.expires_at.unwrap();
    t.until(10, "a refresh ahead of expiry", |t| {
        t.provider.token_requests().refresh_token >= 1
    })
    .await;
    let auth = t.refreshed("mail").await;
    let refreshed_at = auth.last_refresh_at.unwrap();
    assert!(
        refreshed_at < first_expiry,
        "refreshed at {refreshed_at}, before {first_expiry}"
    );
    let second = t.token("mail", None).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert!(t.provider.accepts_access_token(&second.access_token));
    // The provider revoked the refresh token it was given: the next refreshes work only with
    // the rotated one, which was kept.
    t.until(15, "two more refreshes", |t| {
        t.provider.token_requests().refresh_token >= 3
    })
    .await;
    assert_eq!(t.provider.token_requests().refused, 0);
    let auth = t.view("mail").await.auth.unwrap();
    assert_eq!(auth.status, AuthStatus::Connected);
    assert_eq!(auth.last_refresh_error, None);
    let now = t.token("mail", None).await.unwrap();
    assert!(t.provider.accepts_access_token(&now.access_token));
}

#[tokio::test]
async fn a_token_the_api_refused_is_refreshed_once_and_a_fresh_one_is_not_refreshed() {
    let t = OAuthEnv::microsoft(&["Mail.Read"]).await;
    t.connected("mail").await;
    let first = t.token("mail", None).await.unwrap();
    // Asked again: the same token, fresh for an hour; nothing asked of the provider.
    assert_eq!(
        t.token("mail", None).await.unwrap().access_token,
        first.access_token
    );
    assert_eq!(t.provider.token_requests().refresh_token, 0);
    // The API said 401 to it (revoked early, say): one refresh, a new token.
    t.provider.expire_access_tokens();
    assert!(!t.provider.accepts_access_token(&first.access_token));
    let fingerprint = token_fingerprint(&first.access_token);
    let second = t.token("mail", Some(&fingerprint)).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert!(t.provider.accepts_access_token(&second.access_token));
    assert_eq!(t.provider.token_requests().refresh_token, 1);
    // A late caller still holding the old token's fingerprint gets the new one, no second
    // refresh.
    let late = t.token("mail", Some(&fingerprint)).await.unwrap();
    assert_eq!(late.access_token, second.access_token);
    assert_eq!(t.provider.token_requests().refresh_token, 1);
}

#[tokio::test]
async fn two_plugin_manager_processes_asked_at_once_make_one_token_request() {
    let t = OAuthEnv::start(
        Provider::Google,
        ServerSettings::of(Provider::Google),
        code_grant(Provider::Google, &["openid"]),
        |_| {},
    )
    .await;
    t.connected("mail").await;
    // A second plugin manager on the same database and subjects: the NATS queue group
    // spreads the requests over both.
    let mut second_config = t.env.config.clone();
    second_config.plugin_manager.http_addr = ([127, 0, 0, 1], 0).into();
    let _second = RunningPm::start(second_config).await;
    let first = t.token("mail", None).await.unwrap();
    t.provider.expire_access_tokens();
    t.provider.set_token_delay(Duration::from_millis(400));
    let fingerprint = token_fingerprint(&first.access_token);
    let asked = join_all((0..8).map(|_| t.token("mail", Some(&fingerprint)))).await;
    let tokens: Vec<String> = asked.into_iter().map(|a| a.unwrap().access_token).collect();
    assert!(
        tokens.iter().all(|token| *token == tokens[0]),
        "every caller uses the one new token"
    );
    assert_ne!(tokens[0], first.access_token);
    assert_eq!(
        t.provider.token_requests().refresh_token,
        1,
        "one refresh for eight callers on two processes"
    );
}

#[tokio::test]
async fn a_revoked_grant_needs_a_reconnect_says_so_and_connecting_again_recovers() {
    let t = OAuthEnv::microsoft(&["Mail.Read"]).await;
    t.connected("mail").await;
    t.enable("mail").await.unwrap();
    let mut reconnect_events = watch(&t.env, PluginEvent::ReconnectNeeded).await;
    let mut connected_events = watch(&t.env, PluginEvent::Connected).await;
    let first = t.token("mail", None).await.unwrap();

    t.provider.revoke_consent();
    let refused = t
        .token("mail", Some(&token_fingerprint(&first.access_token)))
        .await
        .unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict);
    assert!(
        refused
            .message
            .starts_with("reconnect needed: microsoft refused the refresh: invalid_grant"),
        "{}",
        refused.message
    );
    assert!(refused
        .message
        .ends_with("run `tributary plugins connect mail`"));
    let event = next_event(&mut reconnect_events).await;
    assert_eq!(event["data"]["instance_id"], "mail");
    assert_eq!(event["data"]["state"], "needs_reconnect");
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("AADSTS50173"),
        "the provider's reason: {event}"
    );
    let view = t.view("mail").await;
    assert_eq!(view.state, "needs_reconnect");
    let auth = view.auth.unwrap();
    assert_eq!(auth.status, AuthStatus::NeedsReconnect);
    assert!(auth.reconnect_reason.unwrap().contains("invalid_grant"));
    // Asked again, it says the same without asking the provider.
    let requests = t.provider.token_requests().total;
    assert_eq!(
        t.token("mail", None).await.unwrap_err().error,
        ErrorCode::Conflict
    );
    assert_eq!(t.provider.token_requests().total, requests);
    // A sync's report neither fails nor recovers it.
    let reported: serde_json::Value = crate::support::ask::<
        tributary_proto::requests::plugins::HeartbeatRequest,
        _,
    >(&t.env, json!({ "instance_id": "mail", "error": null }))
    .await
    .unwrap();
    assert_eq!(reported["state"], "needs_reconnect");

    // Connecting again: the recovery event, running again, a working token.
    let again = t.connected("mail").await;
    assert_eq!(again.status, AttemptStatus::Connected);
    let event = next_event(&mut connected_events).await;
    assert_eq!(event["data"]["instance_id"], "mail");
    assert_eq!(event["data"]["state"], "enabled", "{event}");
    let view = t.view("mail").await;
    assert_eq!(view.state, "enabled");
    assert_eq!(view.auth.unwrap().status, AuthStatus::Connected);
    let token = t.token("mail", None).await.unwrap();
    assert!(t.provider.accepts_access_token(&token.access_token));
    let actions = t.actions("mail").await;
    assert!(
        actions.contains(&"oauth_reconnect_needed".to_owned()),
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "oauth_connect").count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_token_endpoint_down_is_retried_and_never_flips_the_connection() {
    let t = OAuthEnv::microsoft(&["Mail.Read"]).await;
    t.connected("mail").await;
    let first = t.token("mail", None).await.unwrap();
    let fingerprint = token_fingerprint(&first.access_token);
    // Two failures, then an answer: the broker's backoff gets through.
    t.provider.fail_token_requests(2);
    let second = t.token("mail", Some(&fingerprint)).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    let counts = t.provider.token_requests();
    assert_eq!((counts.refresh_token, counts.refused), (3, 2));

    // Down for longer than the retries: the connection is kept, the failure recorded.
    t.provider.fail_token_requests(100);
    let refused = t
        .token("mail", Some(&token_fingerprint(&second.access_token)))
        .await
        .unwrap_err();
    assert_eq!(refused.error, ErrorCode::Internal, "{}", refused.message);
    assert!(refused.message.contains("503"), "{}", refused.message);
    let auth = t.view("mail").await.auth.unwrap();
    assert_eq!(auth.status, AuthStatus::Connected);
    assert!(auth.last_refresh_error.unwrap().contains("503"));
    assert!(t
        .actions("mail")
        .await
        .contains(&"oauth_refresh_failed".to_owned()));
    // A caller whose token was not refused still gets it while it lasts.
    assert_eq!(
        t.token("mail", None).await.unwrap().access_token,
        second.access_token
    );
    // Back up: the next refresh works and clears the error.
    t.provider.fail_token_requests(0);
    let third = t
        .token("mail", Some(&token_fingerprint(&second.access_token)))
        .await
        .unwrap();
    assert!(t.provider.accepts_access_token(&third.access_token));
    assert_eq!(t.view("mail").await.auth.unwrap().last_refresh_error, None);
}

#[tokio::test]
async fn the_client_credentials_grant_connects_without_a_person() {
    let t = OAuthEnv::start(
        Provider::Microsoft,
        ServerSettings::of(Provider::Microsoft),
        json!({ "grant": "client_credentials", "provider": "microsoft",
                "scopes": ["https://graph.microsoft.com/.default"],
                "tenant": "contoso.onmicrosoft.com" }),
        |_| {},
    )
    .await;
    let attempt = t.connect("mail").await.unwrap();
    assert_eq!(attempt.status, AttemptStatus::Connected, "{attempt:?}");
    assert!(attempt.consent_url.is_none());
    let log = t.provider.token_request_log();
    assert_eq!(log[0].grant_type, "client_credentials");
    assert_eq!(log[0].tenant.as_deref(), Some("contoso.onmicrosoft.com"));
    let token = t.token("mail", None).await.unwrap();
    assert!(t.provider.accepts_access_token(&token.access_token));
    // Refused by the API: a new client credentials token, no person needed.
    let again = t
        .token("mail", Some(&token_fingerprint(&token.access_token)))
        .await
        .unwrap();
    assert_ne!(again.access_token, token.access_token);
    assert_eq!(t.provider.token_requests().client_credentials, 2);
}

#[tokio::test]
async fn pointing_a_granted_host_elsewhere_forgets_the_tokens_and_asks_for_a_reconnect() {
    let t = OAuthEnv::start(
        Provider::Google,
        ServerSettings::of(Provider::Google),
        code_grant(Provider::Google, &["openid"]),
        |_| {},
    )
    .await;
    t.connected("mail").await;
    t.enable("mail").await.unwrap();
    let mut reconnect_events = watch(&t.env, PluginEvent::ReconnectNeeded).await;
    // The token would now be attached to requests to a host nobody consented to send it to.
    let _: serde_json::Value = crate::support::ask::<
        tributary_proto::requests::plugins::InstanceCall<
            tributary_proto::requests::plugins::ConfigureRequest,
        >,
        _,
    >(
        &t.env,
        json!({ "instance_id": "mail", "config": { "apiBaseUrl": "https://collector.example.net" } }),
    )
    .await
    .unwrap();
    let event = next_event(&mut reconnect_events).await;
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("`apiBaseUrl` moved from none to https://collector.example.net:443"),
        "{event}"
    );
    let view = t.view("mail").await;
    assert_eq!(view.state, "needs_reconnect");
    assert_eq!(view.auth.unwrap().status, AuthStatus::NeedsReconnect);
    assert_eq!(
        t.token("mail", None).await.unwrap_err().error,
        ErrorCode::Conflict
    );
    let pool = t.env.pool().await;
    let tokens: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM plugin_secret WHERE instance_id = 'mail' AND field LIKE 'oauth:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tokens, 0, "the tokens are forgotten");
}

#[tokio::test]
async fn a_token_that_does_not_expire_soon_is_still_refreshed_every_refresh_every_secs() {
    // An hour-long token, a margin of 15 minutes: only the "at least every" rule makes it
    // refresh, here every 2 s instead of every day.
    let t = OAuthEnv::start(
        Provider::Microsoft,
        ServerSettings::of(Provider::Microsoft),
        code_grant(Provider::Microsoft, &["Mail.Read"]),
        |c| {
            c.oauth.refresh_every_secs = 2;
            c.oauth.refresh_check_secs = 1;
        },
    )
    .await;
    t.connected("mail").await;
    let first = t.token("mail", None).await.unwrap();
    t.until(10, "a refresh by age", |t| {
        t.provider.token_requests().refresh_token >= 1
    })
    .await;
    let auth = t.refreshed("mail").await;
    assert!(auth.expires_at.unwrap() > first.expires_at.unwrap());
    assert_ne!(
        t.token("mail", None).await.unwrap().access_token,
        first.access_token
    );
}
