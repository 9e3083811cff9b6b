//! The ETL process SIGKILLed in the middle of a stream of items and started again: every item
//! ends up exactly once in PostgreSQL, is announced by exactly one `data.PersonCreated`, and
//! is in the search index once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use tributary_e2e::{items, ServiceName, Stack};
use tributary_proto::streams::{ConsumerKey, StreamKey};

const INSTANCE: &str = "crm-kill";
const N: usize = 2_000;
/// Items published before the kill; the rest only after it, so the kill is mid-stream
/// whatever the speed of the machine.
const BEFORE_KILL: usize = 1_500;
/// Rows committed when the ETL is killed: at least this many.
const KILL_AT: i64 = 200;

const PERSONS: &str = "SELECT count(*) FROM person p JOIN source_record s \
     ON s.entity_id = p.id AND s.entity_type = 'person' WHERE s.instance_id = 'crm-kill'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etl_killed_mid_stream_and_restarted_stores_announces_and_indexes_each_item_once() {
    let mut stack = Stack::new().await;
    // Small batches, so the stream takes many transactions; redelivery 3 s after the kill.
    // The items are published as a connector would, for an instance never installed: the
    // ETL's data:write check would dead-letter them all.
    stack
        .set("etl.check_data_write", false)
        .set("etl.batch_size", 25)
        .set("etl.concurrent_batches", 2)
        .set("etl.ack_wait_secs", 3);
    stack.start_all().await;

    let people = items::people(INSTANCE, "kestrel", N);
    let mesh = stack.mesh().clone();
    let (killed, after_kill) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(async move {
        mesh.publish_items(&people[..BEFORE_KILL]).await;
        let _ = after_kill.await;
        mesh.publish_items(&people[BEFORE_KILL..]).await;
    });

    // SIGKILL as soon as some rows are committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stack.count(PERSONS).await < KILL_AT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ETL committed fewer than {KILL_AT} rows in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = stack.process(ServiceName::Etl).pid();
    stack.kill(ServiceName::Etl);
    let committed = stack.count(PERSONS).await;
    assert!(
        (KILL_AT..N as i64).contains(&committed),
        "killed mid-stream: {committed} of {N} rows committed"
    );
    eprintln!("The ETL was killed with {committed} of {N} rows committed.");
    let _ = killed.send(());
    publisher.await.unwrap();

    // Another ETL process takes over.
    stack.start(ServiceName::Etl).await;
    assert_ne!(stack.process(ServiceName::Etl).pid(), pid);
    stack.assert_persons_once(INSTANCE, N, 120).await;

    // Nothing else anywhere: the whole data stream is these N creations, the whole index these
    // N documents.
    let events = stack.stream_messages(StreamKey::DataEvents).await;
    assert_eq!(events.len(), N);
    assert_eq!(stack.count("SELECT count(*) FROM person").await, N as i64);
    assert_eq!(stack.indexed().await, N as u64);
    let found = stack.search(&[("q", "kestrel")]).await;
    assert_eq!(found["total"], N, "every person by its word");

    let delivered = stack
        .consumer_info(ConsumerKey::EtlItems)
        .await
        .delivered
        .consumer_sequence;
    eprintln!(
        "{delivered} deliveries of {N} items: {} again after the kill.",
        delivered.saturating_sub(N as u64)
    );
    stack.assert_all_running();
}
