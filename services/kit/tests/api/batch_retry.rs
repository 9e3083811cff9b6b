//! The batch retry policy against the real JetStream: a batch refused because of one message
//! is applied in halves, so the others are acked after a few tries, and the message at fault
//! goes to the dead-letter stream after its last delivery; a batch that takes longer to
//! apply than the consumer's ack wait is not delivered again meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tributary_kit::batch_retry::{BatchRetry, BatchTarget};
use tributary_kit::dead_letter::DeadLetters;
use tributary_kit::testing::TestEnv;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits};

use crate::provisioning::provisioned;

/// Publishes `payloads` on instance `i1`'s item subject and fetches them from `consumer` as
/// one batch: the payloads as text, and their messages.
async fn publish_and_fetch(
    js: &async_nats::jetstream::Context,
    subjects: &tributary_proto::Subjects,
    consumer: &async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
    payloads: &[String],
) -> (Vec<String>, Vec<async_nats::jetstream::Message>) {
    for payload in payloads {
        js.publish(subjects.connector_items("i1"), payload.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut batch = consumer
        .fetch()
        .max_messages(payloads.len())
        .messages()
        .await
        .unwrap();
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message.unwrap());
    }
    assert_eq!(messages.len(), payloads.len());
    let items = messages
        .iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect();
    (items, messages)
}

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
    let (items, messages) = publish_and_fetch(&js, &subjects, &consumer, &payloads).await;

    let policy = BatchRetry {
        dead_letters: DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::EtlItems),
        max_deliver: 1,
        failure: "A test item could not be applied",
        what: "test items",
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        keep_alive: Duration::from_secs(1),
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

/// Takes `takes` to apply any batch.
struct Slow {
    takes: Duration,
}

#[async_trait::async_trait]
impl BatchTarget<String> for Slow {
    type Report = usize;
    type Error = Refused;

    async fn apply(&self, items: &[String]) -> Result<usize, Refused> {
        tokio::time::sleep(self.takes).await;
        Ok(items.len())
    }

    fn is_transient(_: &Refused) -> bool {
        false
    }
}

#[tokio::test]
async fn a_batch_applied_for_longer_than_the_ack_wait_is_not_delivered_again_meanwhile() {
    // As the soak bench found: 500 events took longer than the search consumer's 30 s ack
    // wait to apply, so JetStream delivered them again while the first delivery was still
    // being written. Here the ack wait is 1 s and the batch takes 3.
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    let ack_wait = Duration::from_secs(1);
    let limits = DeliveryLimits {
        ack_wait,
        ..DeliveryLimits::default()
    };
    let consumer =
        tributary_kit::nats::provision_consumer(&js, &subjects, ConsumerKey::EtlItems, limits)
            .await
            .unwrap();
    let payloads: Vec<String> = (0..20).map(|i| format!("item-{i}")).collect();
    let (items, messages) = publish_and_fetch(&js, &subjects, &consumer, &payloads).await;
    let policy = BatchRetry {
        dead_letters: DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::EtlItems),
        max_deliver: 5,
        failure: "A test item could not be applied",
        what: "test items",
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        keep_alive: BatchRetry::keep_alive_for(ack_wait),
    };
    let target = Slow {
        takes: 3 * ack_wait,
    };
    // Another process of the service pulls meanwhile, as a service's own loop does: whatever
    // JetStream delivers again goes to it.
    let other = consumer.clone();
    let pulling = tokio::spawn(async move {
        let mut got = 0;
        let mut batch = other
            .fetch()
            .max_messages(20)
            .expires(4 * ack_wait)
            .messages()
            .await
            .unwrap();
        while let Some(message) = batch.next().await {
            if message.is_ok() {
                got += 1;
            }
        }
        got
    });
    let applied = policy
        .apply(&target, items, messages, &CancellationToken::new())
        .await;
    assert_eq!(applied.reports, [20]);
    let delivered_again = pulling.await.unwrap();
    assert_eq!(
        delivered_again, 0,
        "nothing may be delivered again while the batch is applied"
    );

    let mut consumer = consumer;
    let info = consumer.info().await.unwrap().clone();
    assert_eq!(info.delivered.consumer_sequence, 20, "{info:?}");
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
}
