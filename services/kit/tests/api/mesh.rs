//! The suites' one handle on the mesh (`testing::Mesh`) against the real NATS and
//! PostgreSQL: what it publishes, what it watches, how it waits for rows.

use std::time::Duration;

use serde_json::json;
use tributary_kit::testing::{Mesh, TestEnv};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{EventKind, SyncEvent, SyncLifecycle, SyncMode};
use tributary_proto::model::EntityType;
use tributary_proto::{ConnectorItem, ItemOperation};

use crate::provisioning::provisioned;

fn person(instance: &str, external_id: &str) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance.to_owned(),
        entity_type: EntityType::Person,
        external_id: external_id.to_owned(),
        operation: ItemOperation::Upsert,
        source_modified_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        data: json!({ "display_name": external_id }),
        raw: json!({}),
    }
}

#[tokio::test]
async fn a_typed_item_published_twice_is_stored_once_and_json_as_often_as_it_is_sent() {
    // Proves the handle publishes a typed item as a connector does, with its message id
    // (JetStream drops the repeat), and JSON as it is, with no header to drop it by.
    let env = TestEnv::new().await;
    provisioned(&env).await;
    let mesh = Mesh::of(&env).await;
    let typed = person("crm", "p-1");
    let loose = json!({ "instance_id": "sheet", "entity_type": "person" });

    mesh.publish_items(&[typed.clone(), typed]).await;
    mesh.publish_items(&[loose.clone(), loose]).await;

    assert_eq!(mesh.stored_on("connector.items.crm").await, 1);
    assert_eq!(mesh.stored_on("connector.items.sheet").await, 2);
}

fn sync_completed(instance: &str, items: u64) -> Envelope<SyncLifecycle> {
    Envelope::new(
        EventKind::Sync(SyncEvent::Completed),
        EventSource::new("connector", Some(instance.to_owned())),
        None,
        SyncLifecycle {
            instance_id: instance.to_owned(),
            sync_id: uuid::Uuid::now_v7(),
            mode: SyncMode::Incremental,
            items,
            rate: 0.0,
            errors: 0,
            error: None,
        },
    )
}

#[tokio::test]
async fn a_watched_event_is_read_as_its_envelope_and_next_of_passes_over_other_instances() {
    // Proves `watch` subscribes on the test's prefixed event subject before it returns, and
    // `next_of` skips events of other instances rather than handing the first one back.
    let env = TestEnv::new().await;
    let mesh = Mesh::of(&env).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let subject = mesh.subjects().event(EventKind::Sync(SyncEvent::Completed));
    for event in [sync_completed("left", 1), sync_completed("right", 2)] {
        mesh.nats()
            .publish(subject.clone(), event.to_bytes().unwrap().into())
            .await
            .unwrap();
    }

    let right = completed.next_of("right", Duration::from_secs(5)).await;

    assert_eq!(right.event_type, "connector.SyncCompleted");
    assert_eq!(right.data["items"], 2);
    assert!(
        completed
            .try_next(Duration::from_millis(200))
            .await
            .is_none(),
        "left's event was passed over, not kept"
    );
}

#[tokio::test]
async fn watching_as_a_type_reads_each_event_data_as_that_type() {
    let env = TestEnv::new().await;
    let mesh = Mesh::of(&env).await;
    let mut completed = mesh
        .watch_as::<SyncLifecycle>(EventKind::Sync(SyncEvent::Completed))
        .await;
    let sent = sync_completed("typed", 7);
    mesh.nats()
        .publish(
            mesh.subjects().event(EventKind::Sync(SyncEvent::Completed)),
            sent.to_bytes().unwrap().into(),
        )
        .await
        .unwrap();

    let got = completed.next(Duration::from_secs(5)).await;

    assert_eq!(got.id, sent.id);
    assert_eq!(got.data, sent.data);
}

/// A mesh handle on a fresh database holding an empty table `probe`.
async fn with_probe_table() -> (TestEnv, Mesh) {
    let env = TestEnv::new().await;
    let mesh = Mesh::of(&env).await;
    sqlx::query("CREATE TABLE probe (n int)")
        .execute(mesh.pool())
        .await
        .unwrap();
    (env, mesh)
}

#[tokio::test]
async fn waiting_for_rows_returns_once_they_are_there() {
    let (_env, mesh) = with_probe_table().await;
    let writer = {
        let pool = mesh.pool().clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("INSERT INTO probe VALUES (1), (2)")
                .execute(&pool)
                .await
                .unwrap();
        })
    };

    mesh.wait_for_rows("SELECT count(*) FROM probe", 2, Duration::from_secs(10))
        .await;

    writer.await.unwrap();
    assert_eq!(mesh.count("SELECT count(*) FROM probe").await, 2);
}

#[tokio::test]
#[should_panic(expected = "`SELECT count(*) FROM probe` gave 0, not 1")]
async fn waiting_for_rows_that_never_come_fails_naming_the_query_and_its_answer() {
    let (_env, mesh) = with_probe_table().await;

    mesh.wait_for_rows("SELECT count(*) FROM probe", 1, Duration::from_millis(300))
        .await;
}
