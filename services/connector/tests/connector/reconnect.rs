//! A connector instance whose plugin connects to an account (a manifest `auth` section),
//! through the real plugin manager's token broker and a local provider answering as the
//! Microsoft identity platform does: its requests carry the brokered token; once the person
//! revokes the grant the sync fails saying a reconnect is needed, the instance is neither
//! scheduled nor synced on demand, and connecting it again resumes its schedule.

use std::time::Duration;

use serde_json::{json, Value};
use tributary_kit::testing::oauth::{Provider, ProviderServer};
use tributary_kit::testing::Accept;
use tributary_proto::events::{EventKind, PluginEvent, SyncEvent};
use tributary_proto::requests::connector::SyncCommand;
use tributary_proto::requests::plugins::{
    AttemptStatus, ConnectAttempt, ConnectRequest, ConnectStatusQuery, InstanceCall,
};
use tributary_proto::requests::ErrorCode;

use crate::numbers;
use crate::support::{Harness, TempDir};

/// The test connector under a manifest that connects to a Microsoft account.
const MAILBOX: &str = "test.numbers.mailbox";

/// The numbers connector's manifest with an `auth` section asking Microsoft for `Mail.Read`.
fn mailbox_manifest() -> String {
    let mut manifest: Value = serde_json::from_str(&numbers::manifest(
        MAILBOX,
        numbers::ENTRYPOINT,
        &["network:outbound:${url}", "data:write:persons"],
    ))
    .unwrap();
    manifest["auth"] = json!({
        "grant": "authorization_code",
        "provider": Provider::Microsoft.name(),
        "scopes": ["Mail.Read"],
    });
    manifest.to_string()
}

/// The services with the mailbox plugin, and the provider the plugin manager is pointed at.
async fn start() -> (Harness, ProviderServer, TempDir) {
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let dir = TempDir::new("connector-oauth-plugins");
    std::fs::create_dir_all(dir.0.join("mailbox")).unwrap();
    std::fs::write(dir.0.join("mailbox/plugin.json"), mailbox_manifest()).unwrap();
    let plugins = dir.0.clone();
    let harness = Harness::start_with(false, |env| {
        env.config.plugin_manager.plugin_dirs.push(plugins);
        provider.configure(&mut env.config);
    })
    .await;
    (harness, provider, dir)
}

/// Connects `instance` as a person would: `plugins.connect`, the consent URL opened in a
/// browser that follows the provider's redirect back to the hub's callback.
async fn connect(mesh: &Harness, instance: &str) {
    let attempt: ConnectAttempt = mesh
        .ask::<InstanceCall<ConnectRequest>, _>(json!({ "instance_id": instance, "actor": "test" }))
        .await
        .unwrap_or_else(|e| panic!("connect {instance}: {e:?}"));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at_provider = browser
        .get(attempt.consent_url.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert!(at_provider.status().is_redirection(), "{at_provider:?}");
    let back = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let callback = browser.get(&back).send().await.unwrap();
    assert_eq!(callback.status(), 200, "{}", callback.text().await.unwrap());
    let ended: ConnectAttempt = mesh
        .ask::<ConnectStatusQuery, _>(json!({ "attempt_id": attempt.attempt_id }))
        .await
        .unwrap();
    assert_eq!(ended.status, AttemptStatus::Connected, "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_needing_a_reconnect_is_not_synced_until_it_is_connected_again() {
    let (mesh, provider, _dir) = start().await;
    let mut started = mesh.watch(EventKind::Sync(SyncEvent::Started)).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let mut failed = mesh.watch(EventKind::Sync(SyncEvent::Failed)).await;
    let mut reconnect_needed = mesh
        .watch(EventKind::Plugin(PluginEvent::ReconnectNeeded))
        .await;
    // The API call before each page is Graph's `/v1.0/me`, which wants the bearer token.
    mesh.install(
        MAILBOX,
        "mailbox",
        json!({ "count": 3, "url": provider.api_url(), "schedule": "10s" }),
        Accept::Requested,
    )
    .await;
    connect(&mesh, "mailbox").await;
    mesh.enable("mailbox").await;

    // Connected: the first sync runs at once and the API accepts the brokered token (it
    // refuses a request without one).
    completed.next_of("mailbox", Duration::from_secs(30)).await;
    assert_eq!(provider.api_requests(), 1);

    // The person revokes the grant: the API refuses the token, the refresh is refused too.
    // (A full sync: an incremental one at the end of its cursor calls no API.)
    provider.revoke_consent();
    mesh.sync_now(json!({ "instance_id": "mailbox", "mode": "full" }))
        .await;
    let failure = failed.next_of("mailbox", Duration::from_secs(30)).await;
    let error = failure.data["error"].as_str().unwrap();
    assert!(error.contains("reconnect needed: "), "{error}");
    assert!(
        error.contains("tributary plugins connect mailbox"),
        "{error}"
    );
    reconnect_needed
        .next_of("mailbox", Duration::from_secs(10))
        .await;
    let state = mesh
        .wait_state("mailbox", 10, |s| s["scheduled"] == false)
        .await;
    assert_eq!(state["status"], "failed", "{state}");

    // Refused on demand, naming why and what to run.
    let refused = mesh
        .ask::<SyncCommand, Value>(json!({ "instance_id": "mailbox" }))
        .await
        .unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict, "{refused:?}");
    assert!(
        refused.message.starts_with("reconnect needed: ")
            && refused.message.contains("invalid_grant"),
        "{}",
        refused.message
    );
    assert!(
        refused
            .message
            .ends_with("run `tributary plugins connect mailbox`"),
        "{}",
        refused.message
    );
    // And not on schedule: its 10 s interval passes without a sync.
    while started.try_next(Duration::from_millis(10)).await.is_some() {}
    assert!(
        started.try_next(Duration::from_secs(12)).await.is_none(),
        "a sync started while the instance needs a reconnect"
    );

    // Connected again: enabled, scheduled, and its overdue sync runs on its own.
    connect(&mesh, "mailbox").await;
    let resumed = started.next_of("mailbox", Duration::from_secs(20)).await;
    let done = completed.next_of("mailbox", Duration::from_secs(30)).await;
    assert_eq!(done.data["sync_id"], resumed.data["sync_id"]);
    let state = mesh.state("mailbox").await;
    assert_eq!(state["scheduled"], true, "{state}");
    // And the API takes the token of the new grant.
    let api_requests = provider.api_requests();
    mesh.sync_now(json!({ "instance_id": "mailbox", "mode": "full" }))
        .await;
    let done = completed.next_of("mailbox", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 3);
    assert_eq!(provider.api_requests(), api_requests + 1);
    mesh.stop().await;
}
