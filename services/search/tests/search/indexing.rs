//! Data events reach the index: every entity type through the real ETL, updates, deletions,
//! merges, replays, late events, malformed events and restarts.

use std::time::Duration;

use serde_json::json;
use tributary_proto::dead_letter::REASON_HEADER;
use tributary_proto::events::{DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::Subjects;
use uuid::Uuid;

use crate::support::*;

fn data(entity: EntityType, change: DataChange) -> EventKind {
    EventKind::Data { entity, change }
}

#[tokio::test]
async fn every_entity_type_and_change_through_the_etl_reaches_the_index() {
    let mesh = Harness::start().await;
    let v1 = "2026-03-01T10:00:00Z";
    mesh.publish_items_one_by_one(&[
        item("crm", "person", "p1", v1, json!({"display_name": "Grace Hopper", "emails": ["grace@navy.example"], "organization": "US Navy"})),
        item("crm", "organization", "o1", v1, json!({"name": "Analytical Engines", "domains": ["engines.example"]})),
        item("mail", "conversation", "c1", v1, json!({"title": "Compiler lunch", "channel": "email", "participants": ["grace@navy.example"]})),
        item("mail", "message", "m1", v1, json!({
            "conversation_external_id": "c1", "sender": "grace@navy.example", "recipients": ["ada@example.org"],
            "subject": "Lunch?", "body_html": "<p>Shall we discuss the <b>compiler</b> at noon?</p>",
            "sent_at": "2026-03-01T12:00:00+01:00"
        })),
        item("cal", "calendar_event", "e1", v1, json!({
            "title": "Compiler review", "starts_at": "2026-07-01T09:00:00Z", "location": "Room 101"
        })),
        item("files", "document", "d1", v1, json!({"title": "Nanosecond wire", "content": "A nanosecond is about thirty centimetres of wire."})),
    ])
    .await;
    let all = mesh.wait_hits(&[("q", "")], 6).await;
    let mut types: Vec<EntityType> = all.hits.iter().map(|h| h.entity_type).collect();
    types.sort();
    assert_eq!(types, EntityType::ALL.to_vec());

    // The message's HTML became text, marked where it matched; a typo still finds it.
    let found = mesh.search(&[("q", "compilr"), ("type", "message")]).await;
    assert_eq!(found.total, 1, "{found:#?}");
    assert_eq!(found.hits[0].title, "Lunch?");
    assert!(
        found.hits[0].snippet.contains("<mark>compiler</mark>"),
        "{found:#?}"
    );
    assert_eq!(found.hits[0].sources, vec!["mail".to_owned()]);
    assert_eq!(mesh.search(&[("q", "compiler")]).await.total, 3);

    // An update replaces the document; a tombstone removes it.
    mesh.publish_items_one_by_one(&[
        item(
            "files",
            "document",
            "d1",
            "2026-03-02T10:00:00Z",
            json!({"title": "Grace's nanosecond", "content": "Hand one out at every lecture."}),
        ),
        tombstone("mail", "message", "m1", "2026-03-02T10:00:00Z"),
    ])
    .await;
    mesh.wait_hits(&[("q", "lecture")], 1).await;
    assert!(mesh.titles("thirty centimetres").await.is_empty());
    mesh.wait_hits(&[("q", ""), ("type", "message")], 0).await;
    assert_eq!(mesh.search(&[("q", "")]).await.total, 5);
}

#[tokio::test]
async fn people_merged_across_sources_are_one_hit_from_both_sources() {
    let mesh = Harness::start().await;
    let v1 = "2026-03-01T10:00:00Z";
    mesh.publish_items_one_by_one(&[item(
        "crm",
        "person",
        "p1",
        v1,
        json!({"display_name": "Ada Lovelace", "emails": ["ada@example.org"]}),
    )])
    .await;
    mesh.wait_hits(&[("q", "lovelace")], 1).await;
    mesh.publish_items_one_by_one(&[item(
        "phone",
        "person",
        "x9",
        v1,
        json!({"display_name": "Ada", "emails": ["ADA@example.org"], "phones": ["+14155550132"]}),
    )])
    .await;
    // The merged person stays one hit; it now comes from both sources and has the phone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = mesh.search(&[("q", "ada"), ("type", "person")]).await;
        let sources = found
            .hits
            .first()
            .map(|h| h.sources.clone())
            .unwrap_or_default();
        if found.total == 1 && sources.len() == 2 {
            assert!(sources.contains(&"crm".to_owned()) && sources.contains(&"phone".to_owned()));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{found:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mesh.search(&[("q", "14155550132")]).await.total, 1);
    // A later item from either source lands on the same hit.
    mesh.publish_items_one_by_one(&[item(
        "crm",
        "person",
        "p1",
        "2026-03-03T10:00:00Z",
        json!({"display_name": "Ada Augusta King", "emails": ["ada@example.org"]}),
    )])
    .await;
    let found = mesh.wait_hits(&[("q", "augusta")], 1).await;
    assert_eq!(
        mesh.search(&[("q", ""), ("type", "person")]).await.total,
        1,
        "{found:#?}"
    );
}

/// A person met through two sources who is deleted at one of them lives on, and is no longer
/// found by that source.
#[tokio::test]
async fn a_person_no_longer_comes_from_a_source_whose_records_are_all_deleted() {
    let mesh = Harness::start().await;
    let v1 = "2026-03-01T10:00:00Z";
    let ada = |instance: &str, id: &str, name: &str| {
        item(
            instance,
            "person",
            id,
            v1,
            json!({"display_name": name, "emails": ["ada@example.org"]}),
        )
    };
    mesh.publish_items_one_by_one(&[ada("crm", "p1", "Ada Lovelace")])
        .await;
    mesh.wait_hits(&[("q", "ada"), ("source", "crm")], 1).await;
    mesh.publish_items_one_by_one(&[ada("phone", "x9", "Ada L.")])
        .await;
    mesh.wait_hits(&[("q", "ada"), ("source", "phone")], 1)
        .await;

    mesh.publish_items_one_by_one(&[tombstone("phone", "person", "x9", "2026-03-02T10:00:00Z")])
        .await;

    mesh.wait_hits(&[("q", "ada"), ("source", "phone")], 0)
        .await;
    let found = mesh.wait_hits(&[("q", "ada"), ("source", "crm")], 1).await;
    assert_eq!(found.hits[0].sources, vec!["crm".to_owned()]);
}

fn document(id: Uuid, title: &str, updated_at: &str) -> serde_json::Value {
    json!({
        "id": id, "title": title, "content": "", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated_at,
    })
}

#[tokio::test]
async fn replayed_and_late_events_change_nothing() {
    let mesh = Harness::start().await;
    let id = Uuid::now_v7();
    let created = data(EntityType::Document, DataChange::Created);
    let updated = data(EntityType::Document, DataChange::Updated);
    let newest = mesh
        .publish_event(
            updated,
            "files",
            document(id, "Roadmap final", "2026-01-03T00:00:00Z"),
        )
        .await;
    // Older versions arrive late; the newest is delivered a second time.
    mesh.publish_event(
        created,
        "files",
        document(id, "Roadmap draft", "2026-01-01T00:00:00Z"),
    )
    .await;
    mesh.publish_envelope(&newest).await;
    mesh.publish_event(
        updated,
        "files",
        document(id, "Roadmap second draft", "2026-01-02T00:00:00Z"),
    )
    .await;
    let marker = Uuid::now_v7();
    mesh.publish_event(
        created,
        "files",
        document(marker, "Marker", "2026-01-01T00:00:00Z"),
    )
    .await;
    mesh.wait_hits(&[("q", "marker")], 1).await;
    assert_eq!(mesh.titles("roadmap").await, vec!["Roadmap final"]);

    // A deletion stays deleted when an older update comes after it.
    let deleted = data(EntityType::Document, DataChange::Deleted);
    mesh.publish_event(
        deleted,
        "files",
        json!({"id": id, "entity_type": "document", "deleted_at": "2026-01-04T00:00:00Z"}),
    )
    .await;
    mesh.wait_hits(&[("q", "roadmap")], 0).await;
    mesh.publish_event(
        updated,
        "files",
        document(id, "Roadmap zombie", "2026-01-03T12:00:00Z"),
    )
    .await;
    let marker = Uuid::now_v7();
    mesh.publish_event(
        created,
        "files",
        document(marker, "Second marker", "2026-01-01T00:00:00Z"),
    )
    .await;
    mesh.wait_hits(&[("q", "second marker")], 1).await;
    assert!(mesh.titles("roadmap").await.is_empty());
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_with_its_reason_and_the_next_is_indexed() {
    let mesh = Harness::start().await;
    let subject = mesh.subjects().qualify("data.PersonCreated");
    mesh.publish_raw(&subject, b"{not json".to_vec()).await;
    let kind = data(EntityType::Person, DataChange::Created);
    mesh.publish_event(
        kind,
        "crm",
        json!({"id": Uuid::now_v7(), "emails": ["nobody@example.org"]}),
    )
    .await;
    mesh.publish_event(
        kind,
        "crm",
        json!({"id": Uuid::now_v7(), "display_name": "Next In Line", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    mesh.wait_hits(&[("q", "next in line")], 1).await;

    let dead = Subjects::default().dead_letter(ConsumerKey::SearchIndexer.durable_name());
    let stream = mesh
        .jetstream()
        .get_stream(StreamKey::DeadLetters.name(mesh.subjects()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mesh.env.stored_on(&dead).await < 2 {
        assert!(tokio::time::Instant::now() < deadline, "two dead letters");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut reasons = Vec::new();
    for sequence in 1..=2 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        reasons.push(message.headers.get(REASON_HEADER).unwrap().to_string());
        if sequence == 1 {
            assert_eq!(message.payload.as_ref(), b"{not json");
        }
    }
    assert!(
        reasons[0].contains("not a JSON event envelope"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("data.PersonCreated") && reasons[1].contains("missing field"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn the_index_survives_a_restart_and_catches_up_on_what_came_meanwhile() {
    let mut mesh = Harness::start().await;
    let kind = data(EntityType::Document, DataChange::Created);
    mesh.publish_event(
        kind,
        "files",
        document(Uuid::now_v7(), "Before the restart", "2026-01-01T00:00:00Z"),
    )
    .await;
    mesh.wait_hits(&[("q", "before")], 1).await;
    mesh.stop_search().await;
    mesh.publish_event(
        kind,
        "files",
        document(Uuid::now_v7(), "While it was down", "2026-01-01T00:00:00Z"),
    )
    .await;
    mesh.restart_search().await;
    assert_eq!(mesh.titles("before").await, vec!["Before the restart"]);
    mesh.wait_hits(&[("q", "while down")], 1).await;
}
