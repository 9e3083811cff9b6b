use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tributary_etl::normalise::Normaliser;
use tributary_etl::store::BatchWriter;
use tributary_proto::streams::ConsumerKey;

use crate::support::*;

fn people(n: usize, instance: &str) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| item(instance, "person", &format!("p{i}"), "2026-01-01T00:00:00Z",
            json!({"display_name": format!("Person {i}"), "emails": [format!("{instance}.{i}@example.org")]})))
        .collect()
}

#[tokio::test]
async fn an_etl_stopped_between_commit_and_ack_stores_and_announces_each_item_once() {
    let env = env().await;
    let (subjects, js) = (env.subjects(), async_nats::jetstream::new(env.nats().await));
    let mesh = Mesh::of(&env).await;
    tributary_kit::nats::provision_streams(&js, &subjects, &env.config.nats.max_bytes)
        .await
        .unwrap();
    mesh.publish_items(&people(50, "crm")).await;

    // A first process pulls the items, commits them, and dies before it acks.
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database)
        .await
        .unwrap();
    let consumer = tributary_kit::nats::provision_consumer(
        &js,
        &subjects,
        ConsumerKey::EtlItems,
        tributary_etl::delivery_limits(&env.config),
    )
    .await
    .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(50)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let normaliser = Normaliser::new(subjects.clone(), phonenumber::country::Id::US);
    let mut batch = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        batch.push(pending_item(
            &normaliser,
            &message.subject,
            &message.payload,
        ));
    }
    assert_eq!(batch.len(), 50);
    let report = BatchWriter::new(pool.clone(), subjects.clone())
        .write(&batch)
        .await
        .unwrap();
    assert_eq!(report.events, 50);
    drop(messages);

    // It had also published the first ten events, but not yet cleared them from the outbox.
    let batch: Vec<u8> = sqlx::query_scalar("SELECT events FROM outbox ORDER BY seq LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let batch: Vec<tributary_kit::outbox::OutboxEvent> = serde_json::from_slice(&batch).unwrap();
    assert_eq!(batch.len(), 50, "the batch's events are one outbox row");
    for event in batch.into_iter().take(10) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
        js.publish_with_headers(
            event.subject,
            headers,
            event.payload.get().to_owned().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }

    // The restarted ETL publishes the rest once, and the items delivered again change nothing.
    let etl = RunningEtl::start(env.config.clone()).await;
    data_events(&mesh, 50).await;
    let info = items_settled(&mesh, 100).await;
    assert!(
        info.delivered.consumer_sequence >= 100,
        "the 50 items were delivered again"
    );
    assert_people_stored_and_announced_once(&mesh, 50).await;
    etl.stop().await;
    pool.close().await;
}

#[tokio::test]
async fn two_etl_processes_share_the_items_and_store_each_once() {
    let env = env().await;
    let mesh = Mesh::of(&env).await;
    let first = RunningEtl::start(env.config.clone()).await;
    let second = RunningEtl::start(env.config.clone()).await;
    mesh.publish_items(&people(400, "crm")).await;
    let events = data_events(&mesh, 400).await;
    assert!(events
        .iter()
        .all(|e| e.event_type() == "data.PersonCreated"));
    assert_eq!(count(&env.pool().await, "person").await, 400);
    first.stop().await;
    second.stop().await;
}
