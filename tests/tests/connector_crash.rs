//! The connector process SIGKILLed in the middle of a folder sync and started again: the
//! interrupted sync resumes from its last checkpoint, and every file ends up exactly once in
//! PostgreSQL, is announced by exactly one `data.DocumentCreated`, and is in the search index
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tributary_e2e::{ServiceName, Stack};
use tributary_proto::streams::{ConsumerKey, StreamKey};

const INSTANCE: &str = "notes-kill";
const N: usize = 3_000;
/// Items the connector has published when it is killed: at least this many.
const KILL_AT: u64 = 400;

const DOCUMENTS: &str = "SELECT count(*) FROM document d JOIN source_record s \
     ON s.entity_id = d.id AND s.entity_type = 'document' WHERE s.instance_id = 'notes-kill'";

/// The sync state's status of the instance (`running`, `succeeded`, …).
async fn sync_status(stack: &Stack) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM connector_sync_state WHERE instance_id = $1")
        .bind(INSTANCE)
        .fetch_optional(stack.pool())
        .await
        .unwrap()
}

/// How many items the connector items stream holds.
async fn items_published(stack: &Stack) -> u64 {
    stack.stream_len(StreamKey::ConnectorItems).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_killed_mid_sync_resumes_and_stores_announces_and_indexes_each_file_once() {
    let folder = tempfile::tempdir().unwrap();
    for i in 0..N {
        std::fs::write(
            folder.path().join(format!("note-{i:05}.txt")),
            format!("heron note number {i}"),
        )
        .unwrap();
    }
    let mut stack = Stack::new().await;
    // One publish in flight at a time, so the sync of N files takes long enough to be killed
    // in the middle of it on any machine.
    stack.set("connector.max_inflight_publishes", 1);
    stack.start_all().await;
    stack
        .admin_install(
            "tributary.folder",
            INSTANCE,
            json!({ "path": folder.path() }),
        )
        .await;
    stack.admin_enable(INSTANCE).await;

    // SIGKILL once some items are published, the sync still running.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while items_published(&stack).await < KILL_AT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connector published fewer than {KILL_AT} items in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = stack.process(ServiceName::Connector).pid();
    stack.kill(ServiceName::Connector);
    let published = items_published(&stack).await;
    assert!(
        (KILL_AT..N as u64).contains(&published),
        "killed mid-sync: {published} of {N} items published"
    );
    assert_eq!(sync_status(&stack).await.as_deref(), Some("running"));
    // The items its last checkpoint or heartbeat recorded.
    let checkpointed: i64 =
        sqlx::query_scalar("SELECT items FROM connector_sync_state WHERE instance_id = $1")
            .bind(INSTANCE)
            .fetch_one(stack.pool())
            .await
            .unwrap();
    eprintln!(
        "The connector was killed mid-sync with {published} of {N} items published \
         ({checkpointed} recorded in its sync state)."
    );

    // Another connector process resumes the interrupted sync on its own.
    stack.start(ServiceName::Connector).await;
    assert_ne!(stack.process(ServiceName::Connector).pid(), pid);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while sync_status(&stack).await.as_deref() != Some("succeeded") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resumed sync did not succeed in 120 s: {:?}",
            sync_status(&stack).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stored once.
    stack
        .wait_for_rows(DOCUMENTS, N as i64, Duration::from_secs(120))
        .await;
    stack.wait_consumer_settled(ConsumerKey::EtlItems, 60).await;
    stack
        .wait_for_rows("SELECT count(*) FROM outbox", 0, Duration::from_secs(60))
        .await;
    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT external_id) FROM source_record WHERE instance_id = $1",
    )
    .bind(INSTANCE)
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(
        (rows, distinct),
        (N as i64, N as i64),
        "one source row per file"
    );
    assert_eq!(stack.count("SELECT count(*) FROM document").await, N as i64);
    let ids: BTreeSet<String> = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT d.id FROM document d JOIN source_record s ON s.entity_id = d.id \
         AND s.entity_type = 'document' WHERE s.instance_id = $1",
    )
    .bind(INSTANCE)
    .fetch_all(stack.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|id| id.to_string())
    .collect();
    assert_eq!(ids.len(), N, "one document per file");

    // Announced once: the whole data stream is these N creations.
    let events = stack.stream_messages(StreamKey::DataEvents).await;
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["data.DocumentCreated"]),
        "only creations"
    );
    assert_eq!(events.len(), N, "one event per document, none twice");
    let announced: BTreeSet<String> = events
        .iter()
        .filter_map(|e| e.json["entity_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        announced, ids,
        "each stored document announced exactly once"
    );

    // Indexed once.
    stack
        .wait_search_total(&[("source", INSTANCE)], N as u64, 60)
        .await;
    stack
        .wait_consumer_settled(ConsumerKey::SearchIndexer, 60)
        .await;
    assert_eq!(stack.indexed().await, N as u64);
    let found = stack.search(&[("q", "heron")]).await;
    assert_eq!(found["total"], N, "every file by its word");

    let sent = items_published(&stack).await;
    eprintln!(
        "{sent} items on the stream for {N} files: {} published again after the restart, \
         {} documents, {} events, {} indexed.",
        sent.saturating_sub(N as u64),
        ids.len(),
        events.len(),
        N
    );
    stack.assert_all_running();
}
