//! Batches from a durable pull consumer on the real JetStream: they fill under load, and a
//! lone message is handed over at once rather than after `batch_wait`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tributary_kit::backoff::Backoff;
use tributary_kit::consume::{consume_in_batches, Batching};
use tributary_kit::testing::TestEnv;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits};

use crate::provisioning::provisioned;

/// Runs `consume_in_batches` on the `etl-items` consumer with `batch_size` and a `batch_wait`
/// far longer than any test waits, recording each batch's size; acks every message.
async fn consume(env: &TestEnv, batch_size: usize) -> (Arc<Mutex<Vec<usize>>>, CancellationToken) {
    let js = provisioned(env).await;
    let consumer = tributary_kit::nats::provision_consumer(
        &js,
        &env.subjects(),
        ConsumerKey::EtlItems,
        DeliveryLimits::default(),
    )
    .await
    .unwrap();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let (recorded, shutdown) = (sizes.clone(), stop.clone());
    tokio::spawn(async move {
        let batching = Batching {
            batch_size,
            batch_wait: Duration::from_secs(60),
            concurrent_batches: 1,
            cut_when_idle: true,
        };
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        consume_in_batches(
            consumer,
            "test items",
            batching,
            backoff,
            shutdown,
            |batch| {
                let recorded = recorded.clone();
                async move {
                    recorded.lock().unwrap().push(batch.len());
                    for message in batch {
                        message.ack().await.unwrap();
                    }
                }
            },
        )
        .await;
    });
    (sizes, stop)
}

async fn publish(env: &TestEnv, n: usize) {
    let js = async_nats::jetstream::new(env.nats().await);
    for i in 0..n {
        js.publish(env.subjects().connector_items("i1"), format!("{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Waits until the batches recorded hold `n` messages in all; their sizes.
async fn batches_holding(sizes: &Mutex<Vec<usize>>, n: usize, secs: u64) -> Vec<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = sizes.lock().unwrap().clone();
        if seen.iter().sum::<usize>() >= n {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {seen:?} within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_lone_message_is_handed_over_without_waiting_for_its_batch_to_fill() {
    // batch_wait is a minute: before, a lone message waited all of it.
    let env = TestEnv::new().await;
    let (sizes, stop) = consume(&env, 100).await;
    publish(&env, 1).await;
    assert_eq!(batches_holding(&sizes, 1, 10).await, [1]);
    stop.cancel();
}

#[tokio::test]
async fn a_backlog_is_handed_over_in_full_batches_and_the_rest_at_once() {
    let env = TestEnv::new().await;
    provisioned(&env).await;
    publish(&env, 50).await;
    let (sizes, stop) = consume(&env, 20).await;
    assert_eq!(batches_holding(&sizes, 50, 10).await, [20, 20, 10]);
    stop.cancel();
}
