//! `com.example.js-tasks` under a manifest that connects to a Google account (an `auth`
//! section), through the real plugin manager's token broker, the connector's wasm host and a
//! local server answering as Google's OAuth 2.0 endpoints do: the tasks API it reads with
//! `fetch()` wants the brokered bearer token; a 401 from it makes the host ask for a fresh
//! token once and send the request once more; once the person revokes the grant the sync
//! fails, the instance needs a reconnect (announced, with the provider's reason), its
//! `connector.sync` is refused saying so, and nothing asks for its tokens until it is
//! connected again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tributary_e2e::{eventually, ServiceName, Stack};
use tributary_kit::testing::guests;
use tributary_kit::testing::oauth::{Provider, ProviderServer, TokenRequestCounts};
use tributary_proto::events::{EventKind, PluginEvent, SyncEvent, SyncMode};
use tributary_proto::requests::connector::{StateQuery, SyncCommand};
use tributary_proto::requests::ErrorCode;

use crate::support::{self, task, BearerCheck, SyncEnds, TasksApi, FIRST_LOAD};

/// The built guest, whose component the OAuth plugin runs.
const GUEST: &str = "com.example.js-tasks";

/// The same component under a manifest with an `auth` section.
const PLUGIN: &str = "com.example.js-tasks-oauth";

/// The scope it asks Google for.
const SCOPE: &str = "https://www.googleapis.com/auth/tasks.readonly";

/// The tasks of the API: three, an hour apart.
fn api_tasks() -> Vec<Value> {
    vec![
        task(
            "g-1",
            "Renew the lighthouse lease",
            "Before the spring tide.",
            "2026-04-01T08:00:00Z",
        ),
        task(
            "g-2",
            "Replace the foghorn reed",
            "The brass one, not the steel.",
            "2026-04-01T09:00:00Z",
        ),
        task(
            "g-3",
            "Log the keeper's hours",
            "Weekly, in the blue ledger.",
            "2026-04-01T10:00:00Z",
        ),
    ]
}

/// Writes into `dir` a plugin directory of `PLUGIN`: the built guest's manifest with another
/// id and an `auth` section naming Google, next to a copy of its component (the same bytes,
/// so the same sha256 and the same compiled component in the shared cache).
fn write_oauth_plugin(dir: &Path) {
    let built = guests::guests_dir().join(GUEST);
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(built.join("plugin.json")).unwrap()).unwrap();
    manifest["id"] = json!(PLUGIN);
    manifest["auth"] = json!({
        "grant": "authorization_code",
        "provider": Provider::Google.name(),
        "scopes": [SCOPE],
    });
    let component = manifest["entrypoint"]
        .as_str()
        .and_then(|e| e.strip_prefix("wasm:"))
        .unwrap()
        .to_owned();
    let plugin = dir.join(PLUGIN);
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::copy(built.join(&component), plugin.join(&component)).unwrap();
    std::fs::write(
        plugin.join("plugin.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

/// Connects `instance` as a person would, through the admin API: the connect answers the
/// consent URL, which a browser opens; the provider sends it back to the plugin manager's
/// callback at once, which exchanges the code. The attempt, connected.
async fn connect(stack: &Stack, instance: &str) -> Value {
    let (status, attempt) = stack
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/instances/{instance}/connect"),
            None,
        )
        .await;
    assert_eq!(status, 200, "connect {instance}: {attempt}");
    assert_eq!(attempt["status"], "pending", "{attempt}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent_url = attempt["consent_url"].as_str().unwrap();
    let at_provider = browser.get(consent_url).send().await.unwrap();
    assert!(at_provider.status().is_redirection(), "{at_provider:?}");
    let back = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let callback = format!(
        "http://{}/oauth/callback?",
        stack.http_addr(ServiceName::PluginManager)
    );
    assert!(
        back.starts_with(&callback),
        "back to the plugin manager: {back}"
    );
    let answer = browser.get(&back).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let (status, ended) = stack
        .admin(
            reqwest::Method::GET,
            &format!(
                "/api/v1/connect/{}",
                attempt["attempt_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "connected", "{ended}");
    assert!(
        ended["scopes"].as_array().unwrap().contains(&json!(SCOPE)),
        "{ended}"
    );
    ended
}

/// The instance's state in the plugin manager, once it is `state`.
async fn wait_for_state(stack: &Stack, instance: &str, state: &str) -> Value {
    eventually(20, &format!("{instance} to be {state}"), || async {
        let view = stack.admin_instance(instance).await;
        (view["state"] == state).then_some(view)
    })
    .await
}

/// Asks for an incremental sync of `instance` once; its refusal, if refused.
async fn ask_sync(
    stack: &Stack,
    instance: &str,
) -> Result<Value, tributary_proto::requests::ApiError> {
    stack
        .ask(&SyncCommand {
            instance_id: instance.to_owned(),
            mode: SyncMode::Incremental,
            since: None,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_the_token_once_and_retries_and_a_revoked_grant_stops_syncs_until_connected_again(
) {
    // Google, whose access tokens last an hour and whose refresh token is kept; the tasks API
    // takes what Google's API would.
    let provider = Arc::new(ProviderServer::start(Provider::Google).await.unwrap());
    let check: BearerCheck = {
        let provider = provider.clone();
        Arc::new(move |token: &str| provider.accepts_access_token(token))
    };
    let api = TasksApi::start_with_bearer(api_tasks(), 2, check).await;
    let plugins = tempfile::tempdir().unwrap();
    write_oauth_plugin(plugins.path());
    let mut stack = Stack::new().await;
    // The plugin manager looks for tokens to refresh every second, so a refresh it should not
    // make would show within the waits below.
    stack
        .serve_wasm_guests()
        .add_plugin_dir(plugins.path())
        .use_oauth_provider(&provider)
        .set("oauth.refresh_check_secs", 1);
    stack.start_all().await;
    let instance = "js-tasks-google";
    let mut ends = SyncEnds::watch(&stack).await;
    let mut started = stack.watch(EventKind::Sync(SyncEvent::Started)).await;
    let mut reconnect_needed = stack
        .watch(EventKind::Plugin(PluginEvent::ReconnectNeeded))
        .await;
    let mut connected = stack.watch(EventKind::Plugin(PluginEvent::Connected)).await;

    // 1. Installed, connected through the consent flow, enabled: its first sync reads both
    // pages with the brokered token.
    stack
        .admin_install(PLUGIN, instance, json!({"baseUrl": api.base_url()}))
        .await;
    connect(&stack, instance).await;
    connected.next_of(instance, Duration::from_secs(10)).await;
    let view = stack.admin_instance(instance).await;
    assert_eq!(view["auth"]["status"], "connected", "{view}");
    stack.admin_enable(instance).await;
    let enabled = std::time::Instant::now();
    let done = ends.completed(instance, FIRST_LOAD).await;
    eprintln!(
        "{PLUGIN}: the first sync ended {:.1?} after the instance was enabled",
        enabled.elapsed()
    );
    assert_eq!(done.data["items"], 3, "{:?}", done.data);
    stack
        .wait_for_rows(
            &format!("SELECT count(*) FROM source_record WHERE instance_id = '{instance}'"),
            3,
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        api.statuses(),
        [200, 200],
        "both pages taken with the token"
    );
    assert_eq!(
        provider.token_requests(),
        TokenRequestCounts {
            total: 1,
            authorization_code: 1,
            ..Default::default()
        },
        "the code exchanged, nothing refreshed"
    );

    // 2. Google expires the access token before its time: the next sync's request is refused
    // with 401, the host asks for a fresh token once (one refresh at Google) and sends the
    // request once more, and the sync completes.
    provider.expire_access_tokens();
    support::sync_now(&stack, instance).await;
    let done = ends.completed(instance, Duration::from_secs(60)).await;
    assert_eq!(done.data["items"], 1, "{:?}", done.data);
    assert_eq!(
        api.statuses()[2..],
        [401, 200],
        "one 401, then the request retried with the fresh token"
    );
    assert_eq!(api.answered(401), 1);
    assert_eq!(
        provider.token_requests(),
        TokenRequestCounts {
            total: 2,
            authorization_code: 1,
            refresh_token: 1,
            ..Default::default()
        },
        "exactly one refresh"
    );

    // 3. The person revokes the grant at Google: the API refuses the token, and the refresh
    // the 401 asks for is refused with invalid_grant: the instance needs a reconnect,
    // announced with the provider's reason.
    provider.revoke_consent();
    provider.expire_access_tokens();
    support::sync_now(&stack, instance).await;
    // The sync fails saying why: componentize-js makes a bare `NetworkError` of the failed
    // fetch, and the host reports the request it could not make instead.
    let failed = ends.failed(instance, Duration::from_secs(60)).await;
    let error = failed.data["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("reconnect needed"),
        "the sync says a reconnect is needed: {error}"
    );
    let event = reconnect_needed
        .next_of(instance, Duration::from_secs(10))
        .await;
    assert_eq!(event.data["state"], "needs_reconnect", "{:?}", event.data);
    assert!(
        event.data["reason"]
            .as_str()
            .is_some_and(|r| r.contains("invalid_grant")),
        "the provider's reason: {:?}",
        event.data
    );
    let view = wait_for_state(&stack, instance, "needs_reconnect").await;
    assert_eq!(view["auth"]["status"], "needs_reconnect", "{view}");
    assert!(
        view["auth"]["reconnect_reason"]
            .as_str()
            .is_some_and(|r| r.contains("invalid_grant")),
        "{view}"
    );
    assert_eq!(
        api.statuses()[4..],
        [401],
        "one 401, no retry without a token"
    );
    let tokens = provider.token_requests();
    assert_eq!(
        (
            tokens.total,
            tokens.refresh_token,
            tokens.authorization_code
        ),
        (3, 2, 1),
        "one refresh asked for, and refused: {tokens:?}"
    );

    // Refused on demand, saying a reconnect is needed; not scheduled. The connector hears
    // of the reconnect through PluginReconnectNeeded: wait until it has taken it in.
    tributary_e2e::eventually(
        10,
        "the connector takes in the reconnect needed",
        || async {
            let state = stack
                .ask(&StateQuery {
                    instance_id: instance.to_owned(),
                })
                .await
                .ok()?;
            (state["scheduled"] == false).then_some(())
        },
    )
    .await;
    let refused = ask_sync(&stack, instance).await.unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict, "{refused:?}");
    assert!(
        refused.message.contains("reconnect needed"),
        "{}",
        refused.message
    );
    let state = stack
        .ask(&StateQuery {
            instance_id: instance.to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(state["scheduled"], false, "{state}");
    // Nothing asks Google or the API for it any more: not the connector, not the plugin
    // manager's refresher (which looks every second).
    while started.try_next(Duration::from_millis(10)).await.is_some() {}
    assert!(
        started.try_next(Duration::from_secs(5)).await.is_none(),
        "a sync started while the instance needs a reconnect"
    );
    assert_eq!(provider.token_requests(), tokens, "no token request since");
    assert_eq!(api.statuses().len(), 5, "no API request since");

    // 4. Connected again: the recovery event, enabled, and a sync completes with the new
    // grant's token.
    connect(&stack, instance).await;
    connected.next_of(instance, Duration::from_secs(10)).await;
    let view = wait_for_state(&stack, instance, "enabled").await;
    assert_eq!(view["auth"]["status"], "connected", "{view}");
    support::sync_now(&stack, instance).await;
    let done = ends.completed(instance, Duration::from_secs(60)).await;
    assert_eq!(done.data["items"], 1, "{:?}", done.data);
    assert_eq!(api.statuses().last(), Some(&200), "{:?}", api.statuses());
    assert_eq!(api.answered(401), 2, "{:?}", api.statuses());
    let tokens = provider.token_requests();
    assert_eq!(
        (tokens.authorization_code, tokens.refresh_token),
        (2, 2),
        "a second code exchanged, no refresh: {tokens:?}"
    );
    stack.assert_all_running();
}
