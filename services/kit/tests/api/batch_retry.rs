//! The batch retry policy against the real JetStream: a batch refused because of one message
//! is applied in halves, so the others are acked after a few tries, and the message at fault
//! goes to the dead-letter stream after its last delivery.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tributary_kit::batch_retry::{BatchRetry, BatchTarget};
use tributary_kit::dead_letter::DeadLetters;
use tributary_kit::testing::TestEnv;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits};

use crate::provisioning::provisioned;

/// Refuses any batch that holds `"bad"`; counts its tries.
struct RefusesBad {
    tries: AtomicUsize,
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused: holds `bad`")
    }
}

#[async_trait::async_trait]
impl BatchTarget<String> for RefusesBad {
    type Report = usize;
    type Error = Refused;

    async fn apply(&self, items: &[String]) -> Result<usize, Refused> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        if items.iter().any(|i| i == "bad") {
            Err(Refused)
        } else {
            Ok(items.len())
        }
    }

    fn is_transient(_: &Refused) -> bool {
        false
    }
}

#[tokio::test]
async fn a_batch_refused_for_one_message_is_applied_in_halves_and_that_one_dead_lettered() {
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    let consumer = tributary_kit::nats::provision_consumer(
        &js,
        &subjects,
        ConsumerKey::EtlItems,
        DeliveryLimits::default(),
    )
    .await
    .unwrap();
    let mut payloads: Vec<String> = (0..64).map(|i| format!("item-{i}")).collect();
    payloads[37] = "bad".to_owned();
    for payload in &payloads {
        js.publish(subjects.connector_items("i1"), payload.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut batch = consumer.fetch().max_messages(64).messages().await.unwrap();
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message.unwrap());
    }
    assert_eq!(messages.len(), 64);
    let items: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect();

    let policy = BatchRetry {
        dead_letters: DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::EtlItems),
        max_deliver: 1,
        failure: "A test item could not be applied",
        what: "test items",
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
    };
    let target = RefusesBad {
        tries: AtomicUsize::new(0),
    };
    let applied = policy
        .apply(&target, items, messages, &CancellationToken::new())
        .await;

    assert_eq!(
        applied.reports.iter().sum::<usize>(),
        63,
        "all but one applied"
    );
    assert_eq!(applied.gave_up, 1);
    let tries = target.tries.load(Ordering::SeqCst);
    // The whole batch, then two halves at each of six levels: 13, not 65.
    assert_eq!(tries, 13, "halving, not one by one");
    // Everything acked or terminated, and the one at fault kept with its reason.
    let mut consumer = consumer;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = consumer.info().await.unwrap().clone();
        if info.num_ack_pending == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.stored_on("deadletter.etl-items").await, 1);
}
