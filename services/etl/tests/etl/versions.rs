use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn duplicates_unchanged_changed_late_and_deleted_items_each_do_the_right_thing() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let org = |version: &str, name: &str| {
        item("crm", "organization", "o1", version, json!({"name": name}))
    };
    let name = || async {
        sqlx::query_as::<_, (String, Option<chrono::DateTime<chrono::Utc>>)>(
            "SELECT name, deleted_at FROM organization",
        )
        .fetch_all(mesh.pool())
        .await
        .unwrap()
    };

    // The same item twice (in one batch and again later): one row, one Created.
    mesh.publish_items(&[
        org("2026-01-01T00:00:00Z", "Acme"),
        org("2026-01-01T00:00:00Z", "Acme"),
    ])
    .await;
    barrier(&mesh, "b1").await;
    mesh.publish_items(&[org("2026-01-01T00:00:00Z", "Acme")])
        .await;
    barrier(&mesh, "b2").await;
    let events = data_events(&mesh, 1).await;
    assert_eq!(events[0].event_type(), "data.OrganizationCreated");
    let id = events[0].json()["entity_id"].clone();

    // A newer version with the same content: nothing announced, the version is recorded.
    mesh.publish_items(&[org("2026-01-02T00:00:00Z", " Acme ")])
        .await;
    barrier(&mesh, "b3").await;
    data_events(&mesh, 1).await;
    let version: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT source_modified_at FROM source_record WHERE external_id = 'o1'")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(version.to_rfc3339(), "2026-01-02T00:00:00+00:00");

    // A change: Updated, same id, whole entity in the event.
    mesh.publish_items(&[org("2026-01-03T00:00:00Z", "Acme Corp")])
        .await;
    let events = data_events(&mesh, 2).await;
    assert_eq!(events[1].event_type(), "data.OrganizationUpdated");
    assert_eq!(events[1].json()["entity_id"], id);
    assert_eq!(events[1].json()["data"]["name"], "Acme Corp");
    assert_matches_schema(&events[1].json());

    // An older version arriving late never wins.
    mesh.publish_items(&[org("2026-01-02T12:00:00Z", "Acme Old")])
        .await;
    barrier(&mesh, "b4").await;
    data_events(&mesh, 2).await;
    assert_eq!(name().await, vec![("Acme Corp".to_owned(), None)]);

    // A tombstone sets deleted_at and announces Deleted; an older upsert does not revive it.
    mesh.publish_items(&[tombstone(
        "crm",
        "organization",
        "o1",
        "2026-01-04T00:00:00Z",
    )])
    .await;
    let events = data_events(&mesh, 3).await;
    assert_eq!(events[2].event_type(), "data.OrganizationDeleted");
    assert_eq!(events[2].json()["data"]["id"], id);
    mesh.publish_items(&[org("2026-01-03T12:00:00Z", "Acme Zombie")])
        .await;
    barrier(&mesh, "b5").await;
    data_events(&mesh, 3).await;
    let rows = name().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "Acme Corp");
    assert!(rows[0].1.is_some(), "deleted_at is set");

    // A tombstone for something never seen is remembered, so its late older version stays out.
    mesh.publish_items(&[tombstone(
        "crm",
        "organization",
        "o2",
        "2026-01-05T00:00:00Z",
    )])
    .await;
    // Stored before the older version comes: in one batch with it, or in a batch in flight
    // beside its batch, the tombstone would not be remembered yet.
    barrier(&mesh, "b6").await;
    mesh.publish_items(&[item(
        "crm",
        "organization",
        "o2",
        "2026-01-01T00:00:00Z",
        json!({"name": "Ghost"}),
    )])
    .await;
    barrier(&mesh, "b7").await;
    data_events(&mesh, 3).await;
    assert_eq!(name().await.len(), 1);
    etl.stop().await;
}
