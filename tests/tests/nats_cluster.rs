//! A three-node NATS cluster on loopback with every stream kept on all three
//! (`nats.replicas = 3`), losing the node that leads the item stream in the middle of a stream
//! of items: JetStream elects another leader, the services move to the servers left, and every
//! item ends up exactly once in PostgreSQL, on the data stream and in the search index.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use tributary_e2e::nats_cluster::{consumer_placement, stream_placement, Placement};
use tributary_e2e::{eventually, items, NatsCluster, Servers, ServiceName, Stack};
use tributary_proto::streams::{ConsumerKey, StreamKey};

const N: usize = 2_000;
/// Items published before the kill; the rest only after it, so the kill is mid-stream.
const BEFORE_KILL: usize = 1_500;
/// Rows committed when the node is killed: at least this many.
const KILL_AT: i64 = 200;
const INSTANCE: &str = "crm-cluster";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_a_three_node_cluster_killed_mid_stream_loses_and_repeats_nothing() {
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = NatsCluster::start(dir.path(), 3).await;
    let meta = cluster.wait_meta_leader(Duration::from_secs(30)).await;
    eprintln!(
        "Cluster of {:?} up at {} with meta leader {meta} after {:.1} s.",
        cluster.names(),
        cluster.url(),
        began.elapsed().as_secs_f64()
    );

    let mut stack = Stack::on(Servers {
        nats_url: cluster.url(),
        ..Servers::shared()
    })
    .await;
    stack
        .tuned_for_tests()
        .set("nats.replicas", 3)
        // The items are published as a connector would, for an instance never installed: the
        // ETL's data:write check would dead-letter them all.
        .set("etl.check_data_write", false)
        .set("etl.batch_size", 25)
        .set("etl.concurrent_batches", 2)
        .set("etl.ack_wait_secs", 3)
        .set("search.ack_wait_secs", 3);
    stack.start_all().await;

    // Every stream, and the consumers on them, on all three nodes, each with a leader.
    let js = stack.jetstream();
    for key in StreamKey::ALL {
        let name = key.name(stack.subjects());
        let placement = eventually(30, &format!("a leader and 3 replicas of {name}"), || {
            let (js, name) = (js.clone(), name.clone());
            async move {
                stream_placement(&js, &name)
                    .await
                    .ok()
                    .filter(|p| p.leader.is_some() && p.replicas() == 3)
            }
        })
        .await;
        eprintln!("{name}: {placement:?}");
    }
    for key in ConsumerKey::ALL {
        let stream = key.stream().name(stack.subjects());
        let placement = eventually(
            30,
            &format!("a leader and 3 replicas of consumer {}", key.durable_name()),
            || {
                let (js, stream) = (js.clone(), stream.clone());
                async move {
                    consumer_placement(&js, &stream, key.durable_name())
                        .await
                        .ok()
                        .filter(|p| p.leader.is_some() && p.replicas() == 3)
                }
            },
        )
        .await;
        eprintln!("{stream}/{}: {placement:?}", key.durable_name());
    }

    let people = items::people(INSTANCE, "heron", N);
    let mesh = stack.mesh().clone();
    let (killed, after_kill) = tokio::sync::oneshot::channel::<Instant>();
    let publisher = tokio::spawn(async move {
        mesh.publish_items(&people[..BEFORE_KILL]).await;
        let killed_at = after_kill.await.unwrap();
        // The first item after the kill alone, to time how soon the stream takes one again.
        mesh.publish_items(&people[BEFORE_KILL..=BEFORE_KILL]).await;
        let first_stored = killed_at.elapsed();
        mesh.publish_items(&people[BEFORE_KILL + 1..]).await;
        first_stored
    });

    let rows = format!("SELECT count(*) FROM source_record WHERE instance_id = '{INSTANCE}'");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while stack.count(&rows).await < KILL_AT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {KILL_AT} rows committed in 90 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The node that leads the item stream, the harder case: its followers must elect another
    // while the ETL pulls and acks and the publisher publishes.
    let items_stream = StreamKey::ConnectorItems.name(stack.subjects());
    let before = stream_placement(&js, &items_stream).await.unwrap();
    let victim = before.leader.clone().expect("the item stream has a leader");
    let etl_consumer = consumer_placement(&js, &items_stream, ConsumerKey::EtlItems.durable_name())
        .await
        .map(|p| p.leader)
        .unwrap_or_default();
    let committed = stack.count(&rows).await;
    cluster.kill(&victim);
    let killed_at = Instant::now();
    eprintln!(
        "Killed {victim} (leader of {items_stream}; the etl-items consumer's leader was {etl_consumer:?}; the meta leader {meta}) with {committed} of {N} rows committed."
    );
    let _ = killed.send(killed_at);

    // Watched from the nodes left, asking every 50 ms with a short timeout, so the failover
    // is timed by the cluster, not by a client still finding out its server is gone.
    let mut watcher = async_nats::jetstream::new(
        async_nats::connect(tributary_kit::nats::server_urls(&cluster.running_url()))
            .await
            .unwrap(),
    );
    watcher.set_timeout(Duration::from_millis(500));
    let after: Placement = eventually(60, &format!("a new leader of {items_stream}"), || {
        let (js, name, victim) = (watcher.clone(), items_stream.clone(), victim.clone());
        async move {
            stream_placement(&js, &name)
                .await
                .ok()
                .filter(|p| p.leader.as_ref().is_some_and(|l| *l != victim))
        }
    })
    .await;
    let failover = killed_at.elapsed();
    let meta_after = cluster.wait_meta_leader(Duration::from_secs(60)).await;
    eprintln!(
        "{items_stream} led by {:?} {:.2} s after the kill (followers {:?}); meta leader {meta_after}.",
        after.leader,
        failover.as_secs_f64(),
        after.followers
    );
    let first_stored = publisher.await.unwrap();
    eprintln!(
        "The first item published after the kill was stored {:.2} s after it.",
        first_stored.as_secs_f64()
    );

    stack.assert_persons_once(INSTANCE, N, 180).await;
    let settled = killed_at.elapsed();

    // Counted: each item once on the item stream (a publish retried across the failover is
    // dropped by its Nats-Msg-Id), once in PostgreSQL, announced once.
    let on_items_stream = stack
        .stream_messages(StreamKey::ConnectorItems)
        .await
        .iter()
        .filter(|m| m.json["instance_id"] == INSTANCE)
        .count();
    assert_eq!(on_items_stream, N, "each item once on the item stream");
    let source_rows = stack.count(&rows).await;
    let persons = stack
        .count(&format!(
            "SELECT count(*) FROM person p JOIN source_record s ON s.entity_id = p.id \
             AND s.entity_type = 'person' WHERE s.instance_id = '{INSTANCE}'"
        ))
        .await;
    let events = stack
        .stream_messages(StreamKey::DataEvents)
        .await
        .iter()
        .filter(|e| e.json["source"]["instance"] == INSTANCE)
        .count();
    let indexed = stack.search(&[("source", INSTANCE)]).await["total"]
        .as_u64()
        .unwrap_or_default();
    eprintln!(
        "Counted: {N} published, {on_items_stream} on the item stream, {source_rows} source rows, {persons} persons, {events} data events, {indexed} indexed; leader failover {:.2} s, first item stored {:.2} s and every item settled {:.1} s after the kill; {:.1} s in all.",
        failover.as_secs_f64(),
        first_stored.as_secs_f64(),
        settled.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );

    // Every service lived through it; those connected to the killed node moved to another.
    stack.assert_all_running();
    let moved: Vec<ServiceName> = ServiceName::ALL
        .into_iter()
        .filter(|s| {
            stack
                .log_text(*s)
                .contains("Disconnected from NATS; reconnecting.")
        })
        .collect();
    for service in ServiceName::ALL {
        assert_eq!(
            stack
                .log_text(service)
                .matches("\"Service started.\"")
                .count(),
            1,
            "{service} was not restarted"
        );
    }
    eprintln!("Services that lost their server and reconnected to another: {moved:?}.");
}
