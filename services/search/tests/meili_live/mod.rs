//! Opt-in: the pipeline against a real Meilisearch, when `MEILISEARCH_URL` (and
//! `MEILISEARCH_API_KEY`, if it has one) names a server; each test says it is skipped
//! otherwise. Every test works in a fresh index of its own.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};
use tributary_search::backend::meilisearch::MeilisearchBackend;
use tributary_search::backend::SearchBackend;
use tributary_search::document::IndexChange;
use uuid::Uuid;

use super::{config, micros, upsert};

/// The server's URL and key, or `None` (the test is skipped).
fn server() -> Option<(String, String)> {
    let url = std::env::var("MEILISEARCH_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: MEILISEARCH_URL is not set");
    }
    Some((
        url?,
        std::env::var("MEILISEARCH_API_KEY").unwrap_or_default(),
    ))
}

/// Every document of `index`, by id.
async fn documents(url: &str, key: &str, index: &str) -> HashMap<String, Value> {
    let answer: Value = reqwest::Client::new()
        .post(format!("{url}/indexes/{index}/documents/fetch"))
        .bearer_auth(key)
        .json(&json!({"limit": 10_000, "fields": ["id", "version", "sources"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_owned(), d.clone()))
        .collect()
}

#[tokio::test]
async fn a_real_server_ends_at_the_newest_version_with_batches_in_flight() {
    // 60 batches of 40 changes over 300 documents, each document changed 8 times in an order
    // of versions of its own, sent 8 batches at a time: each ends at its newest version.
    let Some((url, key)) = server() else { return };
    let mut settings = config(&url, &key, 60);
    settings.index_name = format!("pipeline_{}", Uuid::new_v4().simple());
    let backend = Arc::new(MeilisearchBackend::new(&settings).unwrap());
    backend.prepare().await.unwrap();
    let ids: Vec<Uuid> = (0..300).map(|_| Uuid::now_v7()).collect();
    let mut changes = Vec::new();
    for round in 0..8u64 {
        for (i, id) in ids.iter().enumerate() {
            // A version order that differs per document: newest first for some, last for others.
            let version = (round * 7 + i as u64 * 3) % 8 + 1;
            let at = format!("2026-01-01T00:00:{version:02}Z");
            changes.push(upsert(*id, &at, &[&format!("s{version}")]));
        }
    }
    let batches: Vec<Vec<IndexChange>> = changes.chunks(40).map(<[_]>::to_vec).collect();
    futures::stream::iter(batches)
        .for_each_concurrent(8, |batch| {
            let backend = backend.clone();
            async move {
                // A batch answered with a transient error is applied again, as the indexer does.
                loop {
                    match backend.apply(batch.clone()).await {
                        Ok(_) => break,
                        Err(e) if e.is_transient() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        })
        .await;

    let held = documents(&url, &key, &settings.index_name).await;
    assert_eq!(held.len(), ids.len());
    for id in &ids {
        let doc = &held[&id.to_string()];
        assert_eq!(doc["version"], micros("2026-01-01T00:00:08Z"), "{doc}");
    }
    assert_eq!(backend.document_count().await.unwrap(), ids.len() as u64);
}

#[tokio::test]
async fn a_real_server_runs_the_backend_on_the_provisioned_key_and_refuses_the_master_key() {
    // MEILISEARCH_API_KEY is the master key here: it provisions the scoped key, which must be
    // enough for everything the backend does (index, settings, writes, search, a rebuild).
    use tributary_search::backend::meilisearch::keys;
    let Some((url, master)) = server() else {
        return;
    };
    let index = format!("scoped_{}", Uuid::new_v4().simple());
    let made = keys::provision_key(&url, &master.clone().into(), &index)
        .await
        .unwrap();
    let again = keys::provision_key(&url, &master.clone().into(), &index)
        .await
        .unwrap();
    assert!(made.created && !again.created);
    use secrecy::ExposeSecret;
    let scoped = made.key.expose_secret().to_owned();
    assert_eq!(again.key.expose_secret(), scoped);
    keys::refuse_key_manager(&url, Some(&scoped)).await.unwrap();
    keys::refuse_key_manager(&url, Some(&master))
        .await
        .expect_err("the master key is refused");

    let mut settings = config(&url, &scoped, 60);
    settings.index_name = index.clone();
    let backend = MeilisearchBackend::new(&settings).unwrap();
    backend.prepare().await.unwrap();
    let id = Uuid::now_v7();
    backend
        .apply(vec![upsert(id, "2026-01-01T00:00:01Z", &["s"])])
        .await
        .unwrap();
    backend.begin_rebuild().await.unwrap();
    backend
        .rebuild_apply(vec![upsert(id, "2026-01-01T00:00:02Z", &["s"])])
        .await
        .unwrap();
    backend.finish_rebuild().await.unwrap();
    assert_eq!(backend.document_count().await.unwrap(), 1);
    let query = tributary_search::query::SearchQuery {
        q: "Subject".into(),
        types: vec![],
        source: None,
        from: None,
        to: None,
        limit: 10,
        offset: 0,
    };
    assert_eq!(backend.search(&query).await.unwrap().hits.len(), 1);

    // Another index is out of the key's reach.
    let other = reqwest::Client::new()
        .post(format!("{url}/indexes"))
        .bearer_auth(&scoped)
        .json(&json!({"uid": format!("{index}_other")}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403, "the key reaches no other index");
    for uid in [index.clone(), format!("{index}_rebuild")] {
        let _ = reqwest::Client::new()
            .delete(format!("{url}/indexes/{uid}"))
            .bearer_auth(&master)
            .send()
            .await;
    }
    let _ = reqwest::Client::new()
        .delete(format!("{url}/keys/{}", made.uid))
        .bearer_auth(&master)
        .send()
        .await;
}

#[tokio::test]
async fn a_real_server_filters_by_type_source_and_date_with_the_index_settings() {
    // The settings ask for equality filters only, but for `date`, and no facet search: every
    // filter the backend writes must still be accepted and answer right.
    use tributary_proto::model::EntityType;
    use tributary_search::document::SearchDocument;
    use tributary_search::query::SearchQuery;
    let Some((url, key)) = server() else {
        return;
    };
    let mut settings = config(&url, &key, 60);
    settings.index_name = format!("filters_{}", Uuid::new_v4().simple());
    let backend = MeilisearchBackend::new(&settings).unwrap();
    backend.prepare().await.unwrap();
    let document = |entity_type, date: &str, source: &str| SearchDocument {
        id: Uuid::now_v7(),
        entity_type,
        title: format!("Marigold {source}"),
        text: "the marigold meeting".into(),
        sources: vec![source.to_owned()],
        sources_complete: true,
        date: date.parse().unwrap(),
        version: "2026-01-01T00:00:00Z".parse().unwrap(),
    };
    let mail = document(EntityType::Message, "2026-03-01T09:00:00Z", "mail");
    let chat = document(EntityType::Message, "2026-05-01T09:00:00Z", "chat");
    let person = document(EntityType::Person, "2026-04-01T09:00:00Z", "crm");
    let gone = document(EntityType::Message, "2026-04-01T09:00:00Z", "mail");
    backend
        .apply(
            [&mail, &chat, &person, &gone]
                .into_iter()
                .map(|d| IndexChange::Upsert(d.clone()))
                .collect(),
        )
        .await
        .unwrap();
    backend
        .apply(vec![IndexChange::Delete {
            id: gone.id,
            entity_type: EntityType::Message,
            version: "2026-01-02T00:00:00Z".parse().unwrap(),
        }])
        .await
        .unwrap();
    let found = |query: SearchQuery| {
        let backend = &backend;
        async move {
            let mut ids: Vec<Uuid> = backend
                .search(&SearchQuery {
                    q: "marigold".into(),
                    ..query
                })
                .await
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };
    assert_eq!(
        found(SearchQuery::default()).await,
        sorted(vec![mail.id, chat.id, person.id]),
        "a deleted document is never found"
    );
    assert_eq!(
        found(SearchQuery {
            types: vec![EntityType::Person],
            ..SearchQuery::default()
        })
        .await,
        vec![person.id]
    );
    assert_eq!(
        found(SearchQuery {
            source: Some("chat".into()),
            ..SearchQuery::default()
        })
        .await,
        vec![chat.id]
    );
    assert_eq!(
        found(SearchQuery {
            from: Some("2026-03-15T00:00:00Z".parse().unwrap()),
            to: Some("2026-04-15T00:00:00Z".parse().unwrap()),
            ..SearchQuery::default()
        })
        .await,
        vec![person.id],
        "a date range compares"
    );
}
