//! The indexer on the Meilisearch backend (the local server answering as its API documents),
//! with batches in flight: a refused document is dead-lettered with its reason while the events
//! around it, updates of one entity among them, are indexed at their newest versions.

use std::time::Duration;

use serde_json::json;
use tributary_proto::dead_letter::REASON_HEADER;
use tributary_proto::events::{DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::Subjects;
use uuid::Uuid;

use crate::meili_mock::MockMeili;
use crate::support::*;

fn document(id: Uuid, title: &str, updated_at: &str) -> serde_json::Value {
    json!({
        "id": id, "title": title, "content": "", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated_at,
    })
}

#[tokio::test]
async fn a_refused_document_is_dead_lettered_and_the_batches_in_flight_around_it_are_indexed() {
    let mock = MockMeili::start(None).await;
    mock.refuse_word("poison");
    let mut env = env().await;
    env.config.search.meilisearch_url = mock.url.clone();
    env.config.search.batch_size = 5;
    env.config.search.meilisearch_tasks_in_flight = 4;
    let mesh = Harness::start_in(env).await;
    let kind = EventKind::Data {
        entity: EntityType::Document,
        change: DataChange::Updated,
    };
    let (poisoned, updated) = (Uuid::now_v7(), Uuid::now_v7());
    let mut others = Vec::new();
    for i in 0..40 {
        let (id, title, version) = match i {
            17 => (poisoned, "A poison pill".to_owned(), 1),
            10 | 20 | 30 => (updated, format!("Updated {i}"), i),
            _ => {
                others.push(Uuid::now_v7());
                (*others.last().unwrap(), format!("Document {i}"), 1)
            }
        };
        let at = format!("2026-01-01T00:00:{version:02}Z");
        mesh.publish_event(kind, "files", document(id, &title, &at))
            .await;
    }

    let dead = Subjects::default().dead_letter(ConsumerKey::SearchIndexer.durable_name());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while mesh.env.stored_on(&dead).await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "one dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stream = mesh
        .jetstream()
        .get_stream(StreamKey::DeadLetters.name(mesh.subjects()))
        .await
        .unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    let reason = message.headers.get(REASON_HEADER).unwrap().to_string();
    assert!(
        reason.contains("invalid_document_fields") && reason.contains("poison"),
        "{reason}"
    );
    assert!(String::from_utf8_lossy(&message.payload).contains(&poisoned.to_string()));

    let held = mock.documents("tributary");
    for id in &others {
        assert!(held.contains_key(&id.to_string()), "{id} is indexed");
    }
    assert!(!held.contains_key(&poisoned.to_string()));
    assert_eq!(held[&updated.to_string()]["title"], "Updated 30");
    assert_eq!(mesh.env.stored_on(&dead).await, 1, "only the refused one");
}
