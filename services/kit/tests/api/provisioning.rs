use tributary_kit::testing::TestEnv;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits, StreamKey};

/// JetStream for this test, with every stream provisioned once.
pub(crate) async fn provisioned(env: &TestEnv) -> async_nats::jetstream::Context {
    let js = async_nats::jetstream::new(env.nats().await);
    tributary_kit::nats::provision_streams(&js, &env.subjects())
        .await
        .unwrap();
    js
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;

    tributary_kit::nats::provision_consumer(
        &js,
        &subjects,
        ConsumerKey::EtlItems,
        DeliveryLimits::default(),
    )
    .await
    .unwrap();
    // A message already in a stream must survive the second provisioning.
    js.publish(subjects.connector_items("inst-1"), "item".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let mut before = Vec::new();
    for key in StreamKey::ALL {
        let mut stream = js.get_stream(key.name(&subjects)).await.unwrap();
        let info = stream.info().await.unwrap();
        before.push((info.config.clone(), info.created, info.state.messages));
    }

    tributary_kit::nats::provision_streams(&js, &subjects)
        .await
        .unwrap();
    let consumer = tributary_kit::nats::provision_consumer(
        &js,
        &subjects,
        ConsumerKey::EtlItems,
        DeliveryLimits::default(),
    )
    .await
    .unwrap();

    for (key, (config, created, messages)) in StreamKey::ALL.into_iter().zip(before) {
        let mut stream = js.get_stream(key.name(&subjects)).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.subjects, config.subjects, "{key:?}");
        assert_eq!(info.config.max_age, config.max_age, "{key:?}");
        assert_eq!(
            info.config.duplicate_window, config.duplicate_window,
            "{key:?}"
        );
        assert_eq!(info.created, created, "{key:?} was recreated");
        assert_eq!(info.state.messages, messages, "{key:?} lost messages");
    }
    let items = js
        .get_stream(StreamKey::ConnectorItems.name(&subjects))
        .await
        .unwrap();
    assert_eq!(items.cached_info().state.messages, 1);
    assert_eq!(
        consumer.cached_info().config.durable_name.as_deref(),
        Some("etl-items")
    );
    assert_eq!(
        consumer.cached_info().num_pending,
        1,
        "the consumer kept its position"
    );
}

#[tokio::test]
async fn a_repeated_message_id_is_dropped_by_the_stream() {
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;

    let envelope = tributary_proto::Envelope::new(
        tributary_proto::EventKind::PersonMerged,
        tributary_proto::EventSource::new("etl", None),
        None,
        serde_json::json!({}),
    );
    for _ in 0..2 {
        let ack = js
            .publish_with_headers(
                subjects.event(tributary_proto::EventKind::PersonMerged),
                envelope.headers(),
                envelope.to_bytes().unwrap().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(
            ack.sequence, 1,
            "the second publish must be recognised as a duplicate"
        );
    }
}
