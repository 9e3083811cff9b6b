use futures::StreamExt;
use tributary_kit::dead_letter::DeadLetters;
use tributary_kit::testing::TestEnv;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits, StreamKey};

/// JetStream for this test, with every stream provisioned once.
pub(crate) async fn provisioned(env: &TestEnv) -> async_nats::jetstream::Context {
    let js = async_nats::jetstream::new(env.nats().await);
    tributary_kit::nats::provision_streams(&js, &env.subjects(), &env.config.nats.max_bytes)
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

    tributary_kit::nats::provision_streams(&js, &subjects, &env.config.nats.max_bytes)
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

/// `CONNECTOR_ITEMS` made to capture `extra` too, as a user with stream rights would have
/// made it to read another user's inbox.
async fn widened_items(env: &TestEnv, js: &async_nats::jetstream::Context, extra: &str) {
    let mut config = StreamKey::ConnectorItems.config(&env.subjects());
    config.max_bytes = env
        .config
        .nats
        .max_bytes
        .max_bytes(StreamKey::ConnectorItems);
    config.subjects.push(extra.to_owned());
    js.update_stream(config).await.unwrap();
}

#[tokio::test]
async fn a_provisioned_consumer_takes_only_its_streams_subject() {
    // Issue 27, finding 2: a stream widened to capture another user's inbox still gives its
    // service's consumer nothing but its own subject.
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    let stray = format!("_INBOX_connector.{}.reply", env.prefix);
    widened_items(&env, &js, &stray).await;
    js.publish(stray, "secret".into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish(subjects.connector_items("inst-1"), "item".into())
        .await
        .unwrap()
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

    assert_eq!(
        consumer.cached_info().config.filter_subject,
        subjects.qualify("connector.items.>")
    );
    assert_eq!(consumer.cached_info().num_pending, 1, "only the item waits");
}

#[tokio::test]
async fn a_message_on_a_subject_its_consumer_is_not_for_is_refused_without_its_payload() {
    // Issue 27, finding 2: should a consumer deliver something else all the same (one made
    // unfiltered), the service refuses it unread: terminated, and dead-lettered empty, so the
    // dead letters (which admin reads) never hold another user's reply.
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    let stray = format!("_INBOX_connector.{}.reply", env.prefix);
    widened_items(&env, &js, &stray).await;
    js.publish(stray.clone(), "secret".into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish(subjects.connector_items("inst-1"), "item".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let unfiltered = js
        .create_consumer_on_stream(
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("unfiltered".into()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
            StreamKey::ConnectorItems.name(&subjects),
        )
        .await
        .unwrap();
    let messages: Vec<_> = unfiltered
        .fetch()
        .max_messages(2)
        .messages()
        .await
        .unwrap()
        .map(|m| m.unwrap())
        .collect()
        .await;
    assert_eq!(messages.len(), 2);

    let dead_letters = DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::EtlItems);
    let kept = dead_letters.screen(messages).await;

    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].subject.as_str(), subjects.connector_items("inst-1"));
    let stream = js
        .get_stream(StreamKey::DeadLetters.name(&subjects))
        .await
        .unwrap();
    let letter = stream
        .get_last_raw_message_by_subject(&subjects.dead_letter("etl-items"))
        .await
        .unwrap();
    assert!(letter.payload.is_empty(), "the stray payload was kept");
    let headers = letter.headers;
    assert_eq!(
        headers
            .get(tributary_proto::dead_letter::ORIGINAL_SUBJECT_HEADER)
            .map(|v| v.as_str()),
        Some(stray.as_str())
    );
}

#[tokio::test]
async fn a_service_refuses_a_consumer_that_is_missing_or_takes_other_subjects() {
    // Services create no consumer: a missing one, or one not filtered to its stream's
    // subject, stops start-up naming the provisioning step.
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    let open = || {
        tributary_kit::nats::open_consumer(
            &js,
            &subjects,
            ConsumerKey::EtlItems,
            DeliveryLimits::default(),
        )
    };
    let missing = open().await.unwrap_err().to_string();
    assert!(missing.contains("tributary nats provision"), "{missing}");

    js.create_consumer_on_stream(
        async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(ConsumerKey::EtlItems.durable_name().into()),
            ..Default::default()
        },
        StreamKey::ConnectorItems.name(&subjects),
    )
    .await
    .unwrap();
    let unfiltered = open().await.unwrap_err().to_string();
    assert!(
        unfiltered.contains("instead of only") && unfiltered.contains("tributary nats provision"),
        "{unfiltered}"
    );
}

#[tokio::test]
async fn replicated_streams_on_a_single_server_are_refused_naming_nats_replicas() {
    let env = TestEnv::new().await;
    let mut config = env.config.clone();
    // The machine's server is one server, not a cluster: three copies cannot be placed.
    config.nats.replicas = 3;
    let error = tributary_kit::provision::provision_all(&config)
        .await
        .expect_err("three replicas on one server");
    let message = error.to_string();
    assert!(
        message.contains("nats.replicas = 3 needs a JetStream cluster of at least 3 servers"),
        "{message}"
    );
}
