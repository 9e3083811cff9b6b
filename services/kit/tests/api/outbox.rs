//! The outbox: a transaction's events are one row, each service's publisher drains only its
//! own rows, in order, and rows written by the version before batches are still published.

use std::sync::Arc;

use serde_json::json;
use sqlx::Connection;
use tokio::sync::Notify;
use tributary_kit::outbox::{enqueue, enqueue_all, OutboxEvent, OutboxPublisher};
use tributary_kit::testing::TestEnv;
use tributary_proto::events::{EventKind, PluginEvent, SyncEvent};
use tributary_proto::streams::StreamKey;
use tributary_proto::{Envelope, EventSource, ServiceName, Subjects};

use crate::provisioning::provisioned;

/// An environment with its streams provisioned and its database migrated.
async fn migrated() -> (
    TestEnv,
    Subjects,
    async_nats::jetstream::Context,
    sqlx::PgPool,
) {
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database)
        .await
        .unwrap();
    (env, subjects, js, pool)
}

fn publisher(
    env: &TestEnv,
    pool: &sqlx::PgPool,
    js: &async_nats::jetstream::Context,
    service: ServiceName,
    batch_size: usize,
) -> OutboxPublisher {
    OutboxPublisher::new(
        pool.clone(),
        js.clone(),
        env.subjects(),
        service,
        batch_size,
        Arc::new(Notify::new()),
    )
}

fn envelope(kind: EventKind, n: u32) -> Envelope<serde_json::Value> {
    Envelope::new(
        kind,
        EventSource::new(kind.emitter().as_str(), None),
        None,
        json!({"n": n}),
    )
}

/// (subject, Nats-Msg-Id, payload `n`) of every message in `stream`, in order.
async fn stored(
    js: &async_nats::jetstream::Context,
    subjects: &Subjects,
    stream: StreamKey,
) -> Vec<(String, String, serde_json::Value)> {
    let mut stream = js.get_stream(stream.name(subjects)).await.unwrap();
    let count = stream.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    for seq in 1..=count {
        let message = stream.get_raw_message(seq).await.unwrap();
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let payload: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        out.push((message.subject.to_string(), id, payload["data"].clone()));
    }
    out
}

async fn outbox_rows(pool: &sqlx::PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT emitter, event_count FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_is_one_row_and_each_service_publishes_only_its_own_in_order() {
    let (env, subjects, js, pool) = migrated().await;

    let created = EventKind::parse("data.PersonCreated").unwrap();
    let batch: Vec<Envelope<serde_json::Value>> = (0..5).map(|n| envelope(created, n)).collect();
    let sync = envelope(EventKind::Sync(SyncEvent::Started), 100);
    let mut tx = pool.begin().await.unwrap();
    let events: Vec<OutboxEvent> = batch
        .iter()
        .map(|e| OutboxEvent::new(subjects.event(created), e, None).unwrap())
        .collect();
    enqueue_all(&mut tx, ServiceName::Etl, &events)
        .await
        .unwrap();
    enqueue(
        &mut tx,
        &subjects,
        EventKind::Sync(SyncEvent::Started),
        &sync,
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        outbox_rows(&pool).await,
        vec![("etl".to_owned(), 5), ("connector".to_owned(), 1)],
        "five events of one transaction are one row"
    );

    // A round takes whole rows: a batch size of 2 still publishes the row of five at once.
    let etl = publisher(&env, &pool, &js, ServiceName::Etl, 2);
    assert_eq!(etl.publish_round().await.unwrap(), 5);
    assert_eq!(
        etl.publish_round().await.unwrap(),
        0,
        "the connector's row is not the ETL's"
    );
    assert_eq!(outbox_rows(&pool).await, vec![("connector".to_owned(), 1)]);
    let published = stored(&js, &subjects, StreamKey::DataEvents).await;
    let expected: Vec<(String, String, serde_json::Value)> = batch
        .iter()
        .map(|e| (subjects.event(created), e.id.to_string(), e.data.clone()))
        .collect();
    assert_eq!(
        published, expected,
        "in order, with the event id as Nats-Msg-Id"
    );

    let connector = publisher(&env, &pool, &js, ServiceName::Connector, 100);
    assert_eq!(connector.publish_round().await.unwrap(), 1);
    let stream = js
        .get_stream(StreamKey::ConnectorEvents.name(&subjects))
        .await
        .unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        message
            .headers
            .get("traceparent")
            .map(|v| v.to_string())
            .as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert!(outbox_rows(&pool).await.is_empty());
    pool.close().await;
}

#[tokio::test]
async fn events_left_in_the_outbox_by_the_version_before_batches_are_published_after_upgrading() {
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = provisioned(&env).await;
    // The schema as the version before left it: migrations up to 0005.
    let mut conn = env.migrated_up_to(5).await;
    let legacy = [
        (EventKind::parse("data.PersonCreated").unwrap(), 1),
        (EventKind::Plugin(PluginEvent::Installed), 2),
        (EventKind::Sync(SyncEvent::Completed), 3),
        (
            EventKind::parse("communication.MessageReceived").unwrap(),
            4,
        ),
        (EventKind::parse("data.PersonMerged").unwrap(), 5),
    ];
    let mut ids = Vec::new();
    for (kind, n) in legacy {
        let e = envelope(kind, n);
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, payload, traceparent) VALUES ($1, $2, $3, NULL)",
        )
        .bind(e.id)
        .bind(subjects.event(kind))
        .bind(serde_json::to_value(&e).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
        ids.push((kind, e.id));
    }
    tributary_kit::db::MIGRATOR.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let pool = env.pool().await;
    assert_eq!(
        outbox_rows(&pool).await,
        vec![
            ("etl".to_owned(), 1),
            ("plugin-manager".to_owned(), 1),
            ("connector".to_owned(), 1),
            ("channel".to_owned(), 1),
            ("etl".to_owned(), 1),
        ]
    );
    for service in [
        ServiceName::Etl,
        ServiceName::PluginManager,
        ServiceName::Connector,
        ServiceName::Channel,
    ] {
        publisher(&env, &pool, &js, service, 100)
            .publish_round()
            .await
            .unwrap();
    }
    assert!(outbox_rows(&pool).await.is_empty());
    for (kind, id) in ids {
        let published = stored(&js, &subjects, kind.stream()).await;
        let found = published
            .iter()
            .find(|(_, msg_id, _)| *msg_id == id.to_string())
            .unwrap_or_else(|| panic!("{} was not published", kind.subject()));
        assert_eq!(found.0, subjects.event(kind));
    }
    pool.close().await;
}

#[tokio::test]
async fn a_row_that_is_not_a_batch_of_events_is_named_and_kept() {
    let (env, _, js, pool) = migrated().await;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (emitter, event_count, events) VALUES ('etl', 1, 'not json') RETURNING seq",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let error = publisher(&env, &pool, &js, ServiceName::Etl, 10)
        .publish_round()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(&format!("outbox row {seq}")),
        "{error}"
    );
    assert_eq!(outbox_rows(&pool).await.len(), 1);
    pool.close().await;
}

#[tokio::test]
async fn a_large_batch_is_stored_compressed_and_published_whole() {
    let (env, subjects, js, pool) = migrated().await;
    let created = EventKind::parse("data.PersonCreated").unwrap();
    let events: Vec<OutboxEvent> = (0..1000)
        .map(|n| OutboxEvent::new(subjects.event(created), &envelope(created, n), None).unwrap())
        .collect();
    let mut tx = pool.begin().await.unwrap();
    enqueue_all(&mut tx, ServiceName::Etl, &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // This machine's PostgreSQL has lz4; a build without it keeps the events uncompressed.
    let (compression, stored_size, length): (Option<String>, i32, i32) = sqlx::query_as(
        "SELECT pg_column_compression(events), pg_column_size(events), octet_length(events) \
         FROM outbox",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(compression.as_deref(), Some("lz4"));
    assert!(
        stored_size * 3 < length,
        "{length} bytes of events take {stored_size} bytes stored"
    );

    publisher(&env, &pool, &js, ServiceName::Etl, 1000)
        .publish_round()
        .await
        .unwrap();
    let published = stored(&js, &subjects, StreamKey::DataEvents).await;
    assert_eq!(published.len(), 1000);
    for (n, (_, id, data)) in published.iter().enumerate() {
        assert_eq!(id, &events[n].event_id.to_string());
        assert_eq!(data["n"], n);
    }
    assert!(outbox_rows(&pool).await.is_empty());
    pool.close().await;
}
