//! Syncs end to end: enabled instances sync on their own and on demand, into the ETL's tables;
//! an interrupted sync resumes from its checkpoint; two instances sync side by side.

use std::time::Duration;

use serde_json::json;
use tributary_kit::testing::Accept;
use tributary_plugin_sdk::SyncMode;
use tributary_proto::events::{EventKind, SyncEvent};

use crate::support::{Harness, NUMBERS};

const PERSONS_OF: &str =
    "SELECT count(*) FROM source_record WHERE entity_type = 'person' AND instance_id = ";

fn persons_of(instance: &str) -> String {
    format!("{PERSONS_OF}'{instance}'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enabled_instance_syncs_into_the_unified_model_then_only_what_changed() {
    let mesh = Harness::start(true).await;
    let mut started = mesh.watch(EventKind::Sync(SyncEvent::Started)).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(
        NUMBERS,
        "alpha",
        json!({ "count": 250, "checkpointEvery": 50 }),
        Accept::Requested,
    )
    .await;
    mesh.enable("alpha").await;

    // Enabled and never synced: it syncs at once, on its own.
    let start = started.next_of("alpha", Duration::from_secs(20)).await;
    assert_eq!(start.data["mode"], "incremental");
    let done = completed.next_of("alpha", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 250);
    assert_eq!(done.data["sync_id"], start.data["sync_id"]);
    assert_eq!(done.source.service, "connector");
    mesh.wait_for_rows(&persons_of("alpha"), 250, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE deleted_at IS NULL",
        250,
        Duration::from_secs(30),
    )
    .await;

    let state = mesh.state("alpha").await;
    assert_eq!(state["status"], "succeeded", "{state}");
    assert_eq!(state["items"], 250);
    assert_eq!(state["total_items"], 250);
    assert!(state["last_success_at"].is_string(), "{state}");
    assert_eq!(state["scheduled"], true);
    assert!(state["next_sync_at"].is_string(), "{state}");
    // Its timeline tells of it, through the outbox and the plugin manager's `timeline`
    // consumer: how it ended, how many items, how long.
    mesh.wait_for_rows(
        "SELECT count(*) FROM instance_timeline WHERE instance_id = 'alpha' AND kind = 'sync' \
         AND status = 'ok' AND service = 'connector' \
         AND summary LIKE 'incremental sync completed: 250 items in %' \
         AND (detail->>'items')::int = 250 AND detail ? 'duration_ms'",
        1,
        Duration::from_secs(30),
    )
    .await;

    // On demand, incremental: the cursor is at the end, nothing is new.
    let accepted = mesh.sync_now(json!({ "instance_id": "alpha" })).await;
    let done = completed.next_of("alpha", Duration::from_secs(30)).await;
    assert_eq!(done.data["sync_id"], accepted["sync_id"]);
    assert_eq!(done.data["items"], 0);
    let seen = mesh.numbers.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].cursor, Some(json!({ "next": 250 })));

    // Full: everything again, and still one row per person, no new events.
    mesh.sync_now(json!({ "instance_id": "alpha", "mode": "full" }))
        .await;
    let done = completed.next_of("alpha", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 250);
    assert_eq!(done.data["mode"], "full");
    assert_eq!(mesh.numbers.seen()[2].mode, SyncMode::Full);
    mesh.wait_for_rows(&persons_of("alpha"), 250, Duration::from_secs(30))
        .await;
    assert_eq!(mesh.stored_on("data.PersonCreated").await, 250);
    let state = mesh.state("alpha").await;
    assert_eq!(state["total_items"], 500);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_stopped_half_way_resumes_from_its_checkpoint_and_stores_each_item_once() {
    let mut mesh = Harness::start(true).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(
        NUMBERS,
        "resumed",
        json!({ "count": 200, "checkpointEvery": 20, "delayMs": 15 }),
        Accept::Requested,
    )
    .await;
    mesh.enable("resumed").await;
    let pool = mesh.env.pool().await;
    // Wait for a checkpoint past the start, then stop the service mid-sync.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT (cursor->>'next')::bigint FROM connector_sync_state WHERE instance_id = 'resumed'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .flatten();
        if next.is_some_and(|n| n >= 60) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint at 60 within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    mesh.stop_connector().await;
    let (status, checkpoint): (String, i64) = sqlx::query_as(
        "SELECT status, (cursor->>'next')::bigint FROM connector_sync_state WHERE instance_id = 'resumed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        status, "running",
        "an interrupted sync stays running, to resume"
    );
    assert!((60..200).contains(&checkpoint), "{checkpoint}");

    mesh.start_connector().await;
    let done = completed.next_of("resumed", Duration::from_secs(30)).await;
    let seen = mesh.numbers.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].cursor, None);
    assert_eq!(
        seen[1].cursor,
        Some(json!({ "next": checkpoint })),
        "the second sync starts at the last checkpoint, not at zero"
    );
    assert_eq!(done.data["items"], 200 - checkpoint);
    mesh.wait_for_rows(&persons_of("resumed"), 200, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows("SELECT count(*) FROM person", 200, Duration::from_secs(30))
        .await;
    // Items published after the checkpoint and before the stop went out twice; the ETL
    // stored and announced each once.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mesh.stored_on("data.PersonCreated").await, 200);
    assert_eq!(mesh.stored_on("data.PersonUpdated").await, 0);
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_plugin_sync_in_parallel_without_mixing_their_items() {
    let mesh = Harness::start(true).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let config = json!({ "count": 120, "checkpointEvery": 10, "delayMs": 10 });
    mesh.install(NUMBERS, "left", config.clone(), Accept::Requested)
        .await;
    mesh.enable("left").await;
    mesh.install(NUMBERS, "right", config, Accept::Requested)
        .await;
    mesh.enable("right").await;
    // Both run at once: the second is running before the first ends.
    let left = mesh
        .wait_state("left", 20, |s| s["status"] == "running")
        .await;
    let right = mesh
        .wait_state("right", 20, |s| s["status"] == "running")
        .await;
    assert_ne!(left["sync_id"], right["sync_id"]);
    assert_eq!(
        mesh.state("left").await["status"],
        "running",
        "both run side by side"
    );
    // Either may end first.
    let mut done = [
        completed.next(Duration::from_secs(30)).await,
        completed.next(Duration::from_secs(30)).await,
    ];
    done.sort_by_key(|e| e.data["instance_id"].as_str().unwrap().to_owned());
    assert_eq!(done[0].data["items"], 120);
    assert_eq!(done[1].data["items"], 120);
    mesh.wait_for_rows(&persons_of("left"), 120, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(&persons_of("right"), 120, Duration::from_secs(30))
        .await;
    let pool = mesh.env.pool().await;
    let mixed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM source_record s JOIN person p ON p.id = s.entity_id \
         WHERE NOT (p.emails[1] LIKE '%@' || s.instance_id || '.example.com')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(mixed, 0, "every person came from its own instance");
    mesh.wait_for_rows("SELECT count(*) FROM person", 240, Duration::from_secs(30))
        .await;
    mesh.stop().await;
}
