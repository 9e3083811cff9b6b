//! The indexer on the Meilisearch backend (the local server answering as its API documents),
//! with batches in flight: a refused document is dead-lettered with its reason while the events
//! around it, updates of one entity among them, are indexed at their newest versions.

use std::time::Duration;

use secrecy::ExposeSecret;
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

/// Writes `key` where the search service reads its Meilisearch key, 0600.
fn key_file(env: &tributary_kit::testing::TestEnv, key: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.config.data_dir.join("meilisearch-key");
    std::fs::create_dir_all(&env.config.data_dir).unwrap();
    std::fs::write(&path, key).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test]
async fn the_service_refuses_a_key_that_may_read_meilisearchs_keys_and_runs_on_its_own() {
    const MASTER: &str = "the-master-key-of-this-meilisearch";
    let mock = MockMeili::start_with_master(MASTER).await;
    let mut env = env().await;
    env.config.search.meilisearch_url = mock.url.clone();

    // The attack: whoever takes the search service's key holds Meilisearch's master key (or
    // an all-actions key), with which it reads every key and may do anything.
    let all_actions: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/keys", mock.url))
        .bearer_auth(MASTER)
        .json(&json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in [MASTER, all_actions["key"].as_str().unwrap()] {
        env.config.search.meilisearch_api_key = key.to_owned().into();
        let Err(err) = tributary_search::build(env.config.clone()).await else {
            panic!("the search service started with a key that may read Meilisearch's keys");
        };
        let text = err.to_string();
        assert!(
            text.contains("search.meilisearch_api_key")
                && text.contains("tributary meili provision"),
            "the refusal names the key and the step: {text}"
        );
        assert!(!text.contains(key), "the key is not repeated: {text}");
    }
    assert!(mock.index_uids().is_empty(), "nothing was done with them");

    // The key provisioning makes, from the file it writes: the service runs and indexes.
    let made = tributary_search::backend::meilisearch::keys::provision_key(
        &mock.url,
        &MASTER.to_owned().into(),
        &env.config.search.index_name,
    )
    .await
    .unwrap();
    // Provisioning itself asks with the master key (the keys and the server's version); from
    // here on only the running service's requests count.
    mock.clear();
    env.config.search.meilisearch_api_key = String::new().into();
    env.config.search.meilisearch_api_key_file = key_file(&env, made.key.expose_secret());
    let mesh = Harness::start_in(env).await;
    let id = Uuid::now_v7();
    mesh.publish_event(
        EventKind::Data {
            entity: EntityType::Document,
            change: DataChange::Created,
        },
        "files",
        document(id, "Scoped", "2026-01-01T00:00:01Z"),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !mock.documents("tributary").contains_key(&id.to_string()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "indexed with the scoped key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let used: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.headers.get("authorization").cloned())
        .collect();
    assert!(
        !used.is_empty() && used.iter().all(|h| !h.contains(MASTER)),
        "the running service never sent the master key"
    );
}
