//! A purge's items: what the instance brought in is deleted and announced, and then forgotten,
//! so the same items sent again by a new instance under the same id come back.

use serde_json::{json, Value};

use crate::support::*;

/// A purge item, as the plugin manager sends it (its version is the purge's time).
fn purge(instance: &str, entity: &str, external_id: &str) -> Value {
    json!({
        "instance_id": instance,
        "entity_type": entity,
        "external_id": external_id,
        "operation": "purge",
        "source_modified_at": "2026-12-01T00:00:00Z",
    })
}

fn contact(external_id: &str, name: &str, email: &str) -> Value {
    item(
        "dav1",
        "person",
        external_id,
        "2026-01-01T00:00:00Z",
        json!({"display_name": name, "emails": [email]}),
    )
}

fn document(external_id: &str) -> Value {
    item(
        "dav1",
        "document",
        external_id,
        "2026-01-01T00:00:00Z",
        json!({"title": format!("Notes {external_id}"), "content": "text"}),
    )
}

async fn live(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE deleted_at IS NULL"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn items_sent_again_after_a_purge_come_back_though_older_than_the_purge() {
    let Started {
        env: _env,
        mesh,
        etl: _etl,
    } = started().await;
    let items = [
        contact("c1", "Ada Lovelace", "ada@example.org"),
        contact("c2", "Grace Hopper", "grace@example.org"),
        document("d1"),
        // Deleted at the source before the purge: its tombstone is forgotten too.
        tombstone("dav1", "document", "d2", "2026-01-02T00:00:00Z"),
    ];
    mesh.publish_items(&items).await;
    barrier(&mesh, "b1").await;
    // The two contacts and the barrier's marker.
    assert_eq!(
        (
            live(mesh.pool(), "person").await,
            live(mesh.pool(), "document").await
        ),
        (3, 1)
    );

    mesh.publish_items(&[
        purge("dav1", "person", "c1"),
        purge("dav1", "person", "c2"),
        purge("dav1", "document", "d1"),
        purge("dav1", "document", "d2"),
    ])
    .await;
    barrier(&mesh, "b2").await;
    // Deleted (the markers stay), announced, and nothing of the instance's records left.
    assert_eq!(
        (
            live(mesh.pool(), "person").await,
            live(mesh.pool(), "document").await
        ),
        (2, 0)
    );
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM source_record WHERE instance_id = 'dav1'")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(
        left, 0,
        "a purge forgets every source record, tombstones too"
    );
    let events = data_events(&mesh, 3 + 3).await;
    let deleted: Vec<String> = events[3..].iter().map(Stored::event_type).collect();
    assert_eq!(
        deleted.iter().filter(|t| t.ends_with("Deleted")).count(),
        3,
        "{deleted:?}"
    );

    // The same items (same versions, older than the purge) from a new instance `dav1`.
    mesh.publish_items(&items).await;
    barrier(&mesh, "b3").await;
    // The two contacts and three barrier markers.
    assert_eq!(
        (
            live(mesh.pool(), "person").await,
            live(mesh.pool(), "document").await
        ),
        (5, 1)
    );
    let events = data_events(&mesh, 6 + 3).await;
    let back: Vec<String> = events[6..].iter().map(Stored::event_type).collect();
    assert!(
        back.iter().all(|t| t.ends_with("Created")),
        "announced as new: {back:?}"
    );
}

#[tokio::test]
async fn a_purge_deletes_a_person_only_where_no_other_source_knows_them() {
    let Started {
        env: _env,
        mesh,
        etl: _etl,
    } = started().await;
    // The same person from two instances: one person.
    mesh.publish_items(&[
            contact("c1", "Ada Lovelace", "ada@example.org"),
            item(
                "crm",
                "person",
                "p9",
                "2026-01-01T00:00:00Z",
                json!({"display_name": "Ada Lovelace", "emails": ["ada@example.org"], "phones": ["+44 20 7946 0000"]}),
            ),
        ])
    .await;
    barrier(&mesh, "b1").await;
    eventually(10, "one person from both sources", || async {
        (live(mesh.pool(), "person").await == 2).then_some(())
    })
    .await;

    mesh.publish_items(&[purge("dav1", "person", "c1")]).await;
    barrier(&mesh, "b2").await;
    let (name, phones): (String, Vec<String>) = sqlx::query_as(
        "SELECT p.display_name, p.phones FROM person p JOIN source_record s ON s.entity_id = p.id \
         WHERE s.instance_id = 'crm' AND p.deleted_at IS NULL",
    )
    .fetch_one(mesh.pool())
    .await
    .unwrap();
    assert_eq!(name, "Ada Lovelace");
    assert_eq!(phones.len(), 1, "the other source's fields stay");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM source_record WHERE instance_id = 'dav1'")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(left, 0);
}
