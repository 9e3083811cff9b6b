//! The search process SIGKILLed while it writes batches of data events into its embedded
//! index, and started again: the events it held unacknowledged come again, and every item ends
//! up in the index exactly once — each stored person found once by its id, none twice, none
//! missing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use tributary_e2e::{eventually, items, ServiceName, Stack};
use tributary_proto::streams::{ConsumerKey, StreamKey};

const INSTANCE: &str = "crm-index-kill";
const N: usize = 2_000;
/// Items published before the kill; the rest only after it, so the kill is mid-stream
/// whatever the speed of the machine.
const BEFORE_KILL: usize = 1_500;
/// Documents the index counts when the search process is killed: at least this many.
const KILL_AT: u64 = 200;
/// Data events the indexer applies at once: small, so the stream takes many index commits.
const BATCH: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_indexer_killed_mid_batch_and_restarted_indexes_each_item_once() {
    let mut stack = Stack::new().await;
    // The items are published as a connector would, for an instance never installed: the
    // ETL's data:write check would dead-letter them all. Redelivery 3 s after the kill.
    stack
        .set("etl.check_data_write", false)
        .set("search.batch_size", BATCH)
        .set("search.ack_wait_secs", 3);
    stack.start_all().await;

    let people = items::people(INSTANCE, "osprey", N);
    let mesh = stack.mesh().clone();
    let (killed, after_kill) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(async move {
        mesh.publish_items(&people[..BEFORE_KILL]).await;
        let _ = after_kill.await;
        mesh.publish_items(&people[BEFORE_KILL..]).await;
    });

    // SIGKILL once some documents are indexed and a batch is in hand: delivered to the
    // indexer, not acknowledged yet.
    let indexed = eventually(
        90,
        &format!("{KILL_AT} documents indexed with a batch in hand"),
        || async {
            let indexed = stack.indexed().await;
            let in_hand = stack
                .consumer_info(ConsumerKey::SearchIndexer)
                .await
                .num_ack_pending;
            (indexed >= KILL_AT && in_hand > 0).then_some(indexed)
        },
    )
    .await;
    let pid = stack.process(ServiceName::Search).pid();
    stack.kill(ServiceName::Search);
    let at_kill = stack.consumer_info(ConsumerKey::SearchIndexer).await;
    assert!(
        indexed < N as u64,
        "killed mid-stream: {indexed} of {N} indexed"
    );
    assert!(
        at_kill.num_ack_pending > 0,
        "killed mid-batch: no data event was in hand"
    );
    eprintln!(
        "The search process was killed with {indexed} of {N} documents indexed, {} data events \
         acknowledged and {} in hand (delivered, not acknowledged).",
        at_kill.ack_floor.consumer_sequence, at_kill.num_ack_pending
    );
    let _ = killed.send(());
    publisher.await.unwrap();

    // Another search process opens the same index and takes over.
    stack.start(ServiceName::Search).await;
    assert_ne!(stack.process(ServiceName::Search).pid(), pid);
    // Stored, announced and counted in the index once each (the index by its source).
    stack.assert_persons_once(INSTANCE, N, 120).await;

    // Each stored person is found by its id exactly once: nothing lost, nothing twice.
    let hits = stack.search_ids(&[("source", INSTANCE)]).await;
    let found: BTreeSet<String> = hits.iter().cloned().collect();
    assert_eq!(hits.len(), found.len(), "a document indexed twice");
    let stored = stack.person_ids(INSTANCE).await;
    assert_eq!(
        found, stored,
        "every stored person indexed, and nothing else"
    );
    // The whole index is these N, the whole data stream their N events.
    let events = stack.stream_len(StreamKey::DataEvents).await;
    assert_eq!(events, N as u64);
    let documents = stack.indexed().await;
    assert_eq!(documents, N as u64);
    let by_word = stack.search(&[("q", "osprey")]).await;
    assert_eq!(by_word["total"], N, "every person by its word");

    let delivered = stack
        .consumer_info(ConsumerKey::SearchIndexer)
        .await
        .delivered
        .consumer_sequence;
    eprintln!(
        "{N} items, {events} data events: {indexed} indexed before the kill, {delivered} \
         deliveries to the indexer ({} again after the kill), {documents} documents in the \
         index at the end, {} found by id.",
        delivered.saturating_sub(events),
        found.len()
    );
    stack.assert_all_running();
}
