//! What goes wrong: a host not granted, a server asking to slow down, a cancel, a disabled
//! instance, bad requests. One instance's failure never stops another's syncs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tributary_kit::testing::Accept;
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::events::{EventKind, PluginEvent, PluginLifecycle, SyncEvent};
use tributary_proto::requests::ErrorCode;

use crate::support::{Harness, NUMBERS, NUMBERS_FIXED_HOST, UNRUNNABLE, UNRUNNABLE_ENTRYPOINT};
use tributary_proto::requests::connector::{CancelSync, StateQuery, StatesQuery, SyncCommand};
use tributary_proto::requests::plugins::{InstanceCall, InstanceInfo, UninstallRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_granted_fails_that_sync_naming_the_permission_while_others_sync() {
    let mesh = Harness::start(false).await;
    let fixture = FixtureServer::start().await.unwrap();
    fixture.respond("/page", [Canned::json(200, json!({}))]);
    let mut failed = mesh.watch(EventKind::Sync(SyncEvent::Failed)).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let url = fixture.url("/page");
    // Granted only api.example.com, it reaches for 127.0.0.1.
    mesh.install(
        NUMBERS_FIXED_HOST,
        "denied",
        json!({ "count": 5, "url": url }),
        Accept::Requested,
    )
    .await;
    mesh.enable("denied").await;
    mesh.install(
        NUMBERS,
        "granted",
        json!({ "count": 30, "url": url }),
        Accept::Requested,
    )
    .await;
    mesh.enable("granted").await;

    let failure = failed.next_of("denied", Duration::from_secs(20)).await;
    let error = failure.data["error"].as_str().unwrap().to_owned();
    assert!(error.contains("network:outbound:127.0.0.1"), "{error}");
    let done = completed.next_of("granted", Duration::from_secs(20)).await;
    assert_eq!(done.data["items"], 30);
    // The failed sync is a line of its instance's timeline, with the error.
    mesh.wait_for_rows(
        "SELECT count(*) FROM instance_timeline WHERE instance_id = 'denied' AND kind = 'sync' \
         AND status = 'error' AND summary LIKE 'incremental sync failed after 0 items%' \
         AND detail->>'error' LIKE '%network:outbound:127.0.0.1%'",
        1,
        Duration::from_secs(30),
    )
    .await;

    let state = mesh.state("denied").await;
    assert_eq!(state["status"], "failed");
    assert!(state["last_error"]
        .as_str()
        .unwrap()
        .contains("network:outbound:127.0.0.1"));
    assert_eq!(state["errors"], 1);
    // The plugin manager hears of it: the instance is failed, with the error.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view: Value = mesh
            .ask::<InstanceInfo, _>(json!({ "instance_id": "denied" }))
            .await
            .unwrap();
        if view["state"] == "failed" {
            assert!(view["last_error"]
                .as_str()
                .unwrap()
                .contains("network:outbound:127.0.0.1"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not failed in the plugin manager: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only the granted instance's requests reached the server.
    assert_eq!(fixture.requests_to("/page").len(), 3, "one per page of 10");
    // A failed instance keeps its schedule: another sync can run.
    let again = mesh.sync_now(json!({ "instance_id": "denied" })).await;
    let failure = failed.next_of("denied", Duration::from_secs(20)).await;
    assert_eq!(failure.data["sync_id"], again["sync_id"]);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_429_with_retry_after_is_waited_for() {
    let mesh = Harness::start(false).await;
    let fixture = FixtureServer::start().await.unwrap();
    fixture.respond(
        "/page",
        [
            Canned::status(429).header("Retry-After", "2"),
            Canned::json(200, json!({})),
        ],
    );
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let began = Instant::now();
    mesh.install(
        NUMBERS,
        "patient",
        json!({ "count": 5, "url": fixture.url("/page") }),
        Accept::Requested,
    )
    .await;
    mesh.enable("patient").await;
    let done = completed.next_of("patient", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5);
    assert_eq!(
        fixture.requests_to("/page").len(),
        2,
        "asked again once, after the wait"
    );
    assert!(
        began.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        began.elapsed()
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_sync_cleanly() {
    let mesh = Harness::start(false).await;
    let mut failed = mesh.watch(EventKind::Sync(SyncEvent::Failed)).await;
    let mut progress = mesh.watch(EventKind::Sync(SyncEvent::Progress)).await;
    mesh.install(
        NUMBERS,
        "long",
        json!({ "count": 100000, "checkpointEvery": 10, "delayMs": 5 }),
        Accept::Requested,
    )
    .await;
    mesh.enable("long").await;
    // Heartbeats come while it runs, with counts and a rate.
    let beat = progress.next_of("long", Duration::from_secs(20)).await;
    assert!(beat.data["rate"].as_f64().is_some(), "{beat:?}");
    let beat = progress.next_of("long", Duration::from_secs(20)).await;
    assert!(beat.data["items"].as_u64().unwrap() > 0, "{beat:?}");

    let cancelled: Value = mesh
        .ask::<CancelSync, _>(json!({ "instance_id": "long" }))
        .await
        .unwrap();
    let failure = failed.next_of("long", Duration::from_secs(10)).await;
    assert_eq!(failure.data["sync_id"], cancelled["sync_id"]);
    assert_eq!(failure.data["error"], "cancelled by connector.cancel");
    let state = mesh.state("long").await;
    assert_eq!(state["status"], "cancelled");
    let items = state["items"].as_u64().unwrap();
    assert!(items > 0 && items < 100000, "{state}");
    // Nothing runs any more: a second cancel has nothing to stop.
    let err = mesh
        .ask::<CancelSync, Value>(json!({ "instance_id": "long" }))
        .await
        .unwrap_err();
    assert_eq!(err.error, ErrorCode::Conflict);
    assert!(
        err.message.contains("no sync of `long` is running"),
        "{}",
        err.message
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_instance_stops_its_sync_and_its_schedule() {
    let mesh = Harness::start(false).await;
    let mut failed = mesh.watch(EventKind::Sync(SyncEvent::Failed)).await;
    mesh.install(
        NUMBERS,
        "stopped",
        json!({ "count": 100000, "checkpointEvery": 10, "delayMs": 5 }),
        Accept::Requested,
    )
    .await;
    mesh.enable("stopped").await;
    mesh.wait_state("stopped", 20, |s| {
        s["status"] == "running" && s["items"].as_u64() > Some(0)
    })
    .await;
    mesh.disable("stopped").await;
    let failure = failed.next_of("stopped", Duration::from_secs(10)).await;
    assert_eq!(failure.data["error"], "the instance was disabled");
    let err = mesh
        .ask::<SyncCommand, Value>(json!({ "instance_id": "stopped" }))
        .await
        .unwrap_err();
    assert_eq!(err.error, ErrorCode::NotFound);
    let state = mesh.state("stopped").await;
    assert_eq!(state["status"], "cancelled");
    assert_eq!(state["scheduled"], false);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sync_requests_are_refused_naming_the_problem() {
    let mesh = Harness::start(false).await;
    mesh.install(
        NUMBERS,
        "busy",
        json!({ "count": 100000, "checkpointEvery": 10, "delayMs": 5 }),
        Accept::Requested,
    )
    .await;
    mesh.enable("busy").await;
    mesh.wait_state("busy", 20, |s| s["status"] == "running")
        .await;
    let cases = [
        (
            json!({ "instance_id": "nobody" }),
            ErrorCode::NotFound,
            "`nobody` is not an enabled connector instance",
        ),
        (
            json!({ "instance_id": "busy" }),
            ErrorCode::Conflict,
            "a sync of `busy` is already running",
        ),
        (
            json!({ "instance_id": "busy", "mode": "backfill" }),
            ErrorCode::BadRequest,
            "`since` is required for a backfill",
        ),
        (
            json!({ "instance_id": "busy", "since": "2026-01-01T00:00:00Z" }),
            ErrorCode::BadRequest,
            "`since` is only for a backfill",
        ),
        (
            json!({ "instance_id": "busy", "mode": "sometimes" }),
            ErrorCode::BadRequest,
            "unknown variant `sometimes`",
        ),
        (
            json!({ "mode": "full" }),
            ErrorCode::BadRequest,
            "missing field `instance_id`",
        ),
    ];
    for (body, code, needle) in cases {
        let err = mesh
            .ask::<SyncCommand, Value>(body.clone())
            .await
            .unwrap_err();
        assert_eq!(err.error, code, "{body}: {}", err.message);
        assert!(err.message.contains(needle), "{body}: {}", err.message);
    }
    let err = mesh
        .ask::<StateQuery, Value>(json!({ "instance_id": "nobody" }))
        .await
        .unwrap_err();
    assert_eq!(err.error, ErrorCode::NotFound);
    let states: Value = mesh.ask::<StatesQuery, _>(json!({})).await.unwrap();
    let ids: Vec<&str> = states["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["busy"]);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_instance_leaves_no_sync_state_and_a_kept_one_keeps_it() {
    let mesh = Harness::start(false).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    for id in ["purged", "kept"] {
        mesh.install(NUMBERS, id, json!({ "count": 3 }), Accept::Requested)
            .await;
        mesh.enable(id).await;
        completed.next_of(id, Duration::from_secs(20)).await;
    }
    for (id, purge) in [("purged", true), ("kept", false)] {
        let _: Value = mesh
            .ask::<InstanceCall<UninstallRequest>, _>(json!({ "instance_id": id, "purge": purge }))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let err = mesh
            .ask::<StateQuery, Value>(json!({ "instance_id": "purged" }))
            .await;
        if matches!(&err, Err(e) if e.error == ErrorCode::NotFound) {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {err:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The kept instance's uninstall event was sent second, and may be handled a moment after
    // the purged one's: its schedule stops, and its sync state stays.
    let kept = mesh
        .wait_state("kept", 10, |s| s["scheduled"] == false)
        .await;
    assert_eq!(kept["status"], "succeeded");
    assert_eq!(kept["scheduled"], false, "{kept}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_entrypoint_no_connector_runs_is_failed_with_the_reason() {
    // Proves the host's health report on a resolve failure: the plugin manager marks the
    // instance failed with the resolver's message, and the connector service does not run it.
    let mesh = Harness::start(false).await;
    let mut failed = mesh
        .watch_as::<PluginLifecycle>(EventKind::Plugin(PluginEvent::Failed))
        .await;
    mesh.install(
        UNRUNNABLE,
        "nowhere",
        json!({ "count": 1 }),
        Accept::Requested,
    )
    .await;

    mesh.enable("nowhere").await;

    let reason =
        format!("no connector runs entrypoint `{UNRUNNABLE_ENTRYPOINT}` in this connector service");
    let failure = failed.next_of("nowhere", Duration::from_secs(20)).await;
    assert_eq!(failure.data.reason.as_deref(), Some(reason.as_str()));
    let view = mesh.client().instance("nowhere").await.unwrap();
    assert_eq!(view.state, "failed");
    assert_eq!(view.last_error.as_deref(), Some(reason.as_str()));
    let err = mesh
        .ask::<SyncCommand, Value>(json!({ "instance_id": "nowhere" }))
        .await
        .unwrap_err();
    assert_eq!(err.error, ErrorCode::NotFound, "{}", err.message);
    mesh.stop().await;
}
