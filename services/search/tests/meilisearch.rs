#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Meilisearch backend against an in-memory Meilisearch serving its documented HTTP API
//! (`meili_mock`): the exact requests it sends, and what it makes of the answers; batches in
//! flight (`meili_pipeline`); and, opt-in with `MEILISEARCH_URL`, against a real server
//! (`meili_live`).

mod meili_live;
mod meili_mock;
mod meili_pipeline;

use chrono::{DateTime, Utc};
use meili_mock::{MockMeili, Recorded};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tributary_kit::config::SearchConfig;
use tributary_proto::model::EntityType;
use tributary_search::backend::meilisearch::MeilisearchBackend;
use tributary_search::backend::{ApplyReport, SearchBackend, SearchError};
use tributary_search::document::{IndexChange, SearchDocument};
use tributary_search::query::SearchQuery;
use uuid::Uuid;

const KEY: &str = "meili-master-key-0123456789";
const INDEX: &str = "tributary";

fn config(url: &str, key: &str, timeout_secs: u64) -> SearchConfig {
    SearchConfig {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        api_token: SecretString::from("search-token"),
        api_token_file: Default::default(),
        meilisearch_url: url.to_owned(),
        meilisearch_api_key: SecretString::from(key),
        meilisearch_api_key_file: Default::default(),
        meilisearch_task_timeout_secs: timeout_secs,
        meilisearch_tasks_in_flight: 8,
        index_name: INDEX.to_owned(),
        embedded_writer_memory_mb: 50,
        batch_size: 100,
        batch_wait_ms: 100,
        cut_when_idle: true,
        ack_wait_secs: 30,
        max_deliver: 5,
    }
}

fn backend(mock: &MockMeili) -> MeilisearchBackend {
    MeilisearchBackend::new(&config(&mock.url, KEY, 5)).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn micros(s: &str) -> i64 {
    at(s).timestamp_micros()
}

fn doc(id: Uuid, entity_type: EntityType, title: &str, text: &str) -> SearchDocument {
    SearchDocument {
        id,
        entity_type,
        title: title.into(),
        text: text.into(),
        sources: vec!["mail".into()],
        sources_complete: false,
        date: at("2026-03-01T09:00:00.250Z"),
        version: at("2026-03-01T10:00:00Z"),
    }
}

fn upsert(id: Uuid, version: &str, sources: &[&str]) -> IndexChange {
    IndexChange::Upsert(SearchDocument {
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        version: at(version),
        ..doc(id, EntityType::Message, "Subject", "Body")
    })
}

fn lines(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(Recorded::line).collect()
}

/// The settings every index gets: no facet search, and range comparisons for `date` only.
fn settings_payload() -> Value {
    let features = |comparison: bool| json!({"facetSearch": false, "filter": {"equality": true, "comparison": comparison}});
    json!({
        "searchableAttributes": ["title", "text"],
        "filterableAttributes": [
            {"attributePatterns": ["id", "entity_type", "sources", "deleted"], "features": features(false)},
            {"attributePatterns": ["date"], "features": features(true)},
        ],
        "sortableAttributes": ["date"],
        "displayedAttributes": ["*"],
        "pagination": {"maxTotalHits": 100000},
        "facetSearch": false,
    })
}

#[tokio::test]
async fn prepare_creates_the_index_and_sets_its_settings_awaiting_each_task() {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = backend(&mock);
    backend.prepare().await.unwrap();

    let requests = mock.requests();
    assert_eq!(
        lines(&requests),
        [
            "GET /version",
            "POST /indexes",
            "GET /tasks/0",
            "GET /tasks/0",
            "PATCH /indexes/tributary/settings",
            "GET /tasks/1",
            "GET /tasks/1",
        ],
        "the version is checked, then each task is polled until it is finished"
    );
    assert_eq!(requests[1].body, json!({"uid": INDEX, "primaryKey": "id"}));
    assert_eq!(requests[4].body, settings_payload());
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {KEY}").as_str()),
            "{}",
            request.line()
        );
    }
    assert_eq!(
        Value::Object(mock.settings(INDEX))["pagination"],
        json!({"maxTotalHits": 100000})
    );

    // Preparing again: the creation task fails with `index_already_exists`, which is fine.
    mock.clear();
    backend.prepare().await.unwrap();
    assert_eq!(
        lines(&mock.calls()),
        [
            "GET /version",
            "POST /indexes",
            "PATCH /indexes/tributary/settings"
        ]
    );
    backend.check().await.unwrap();
    assert_eq!(mock.calls().last().unwrap().line(), "GET /health");
    assert_eq!(backend.name(), "meilisearch");
}

#[tokio::test]
async fn a_meilisearch_too_old_for_the_settings_is_refused_naming_its_version() {
    let mock = MockMeili::start(Some(KEY)).await;
    mock.answer_version("1.11.3");
    let backend = backend(&mock);
    let err = backend.prepare().await.unwrap_err().to_string();
    assert!(
        err.contains("Meilisearch 1.11.3 is too old") && err.contains("1.14 or later"),
        "{err}"
    );
    assert_eq!(
        lines(&mock.calls()),
        ["GET /version"],
        "nothing is created on a server that could not take the settings"
    );
    assert!(mock.index_uids().is_empty());
}

#[tokio::test]
async fn failed_and_cancelled_tasks_surface_with_their_code_and_message() {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = backend(&mock);

    let message = "Unknown value `idx` at `.filterableAttributes[0]`";
    mock.fail_next(
        "settingsUpdate",
        "invalid_settings_filterable_attributes",
        message,
    );
    let err = backend.prepare().await.unwrap_err();
    match &err {
        SearchError::TaskFailed {
            task_uid,
            index,
            code,
            message: got,
        } => {
            assert_eq!(
                (*task_uid, index.as_str(), code.as_str(), got.as_str()),
                (1, INDEX, "invalid_settings_filterable_attributes", message)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(message), "{err}");

    backend.prepare().await.unwrap();
    let message = "Document identifier `\"a b\"` is invalid.";
    mock.fail_next("documentAdditionOrUpdate", "invalid_document_id", message);
    let err = backend
        .apply(vec![upsert(Uuid::now_v7(), "2026-01-01T00:00:00Z", &[])])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::TaskFailed { code, message: m, index, .. }
            if code == "invalid_document_id" && m == message && index == INDEX),
        "{err:?}"
    );
    assert!(mock.documents(INDEX).is_empty());

    mock.cancel_next("documentAdditionOrUpdate");
    let err = backend
        .apply(vec![upsert(Uuid::now_v7(), "2026-01-01T00:00:00Z", &[])])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::TaskFailed { code, message, .. }
            if code == "canceled" && message.contains("canceled by task")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_task_that_never_finishes_times_out() {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = MeilisearchBackend::new(&config(&mock.url, KEY, 1)).unwrap();
    mock.stall();
    let started = std::time::Instant::now();
    let err = backend.prepare().await.unwrap_err();
    assert!(
        matches!(&err, SearchError::TaskTimedOut { task_uid: 0, index, secs: 1 } if index == INDEX),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let polls = lines(&mock.requests())
        .iter()
        .filter(|l| *l == "GET /tasks/0")
        .count();
    assert!(polls > 3, "polled {polls} times");
}

#[tokio::test]
async fn apply_skips_stale_upserts_writes_tombstones_and_unions_sources() {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = backend(&mock);
    backend.prepare().await.unwrap();
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let first = backend
        .apply(vec![
            upsert(a, "2026-01-02T00:00:00Z", &["mail"]),
            upsert(b, "2026-01-01T00:00:00Z", &["contacts"]),
            upsert(c, "2026-01-01T00:00:00Z", &["mail"]),
        ])
        .await
        .unwrap();
    assert_eq!(
        first,
        ApplyReport {
            applied: 3,
            stale: 0
        }
    );

    mock.clear();
    let report = backend
        .apply(vec![
            upsert(a, "2026-01-01T00:00:00Z", &["chat"]),
            upsert(b, "2026-01-02T00:00:00Z", &["chat", "contacts"]),
            IndexChange::Delete {
                id: c,
                entity_type: EntityType::Message,
                version: at("2026-01-03T00:00:00Z"),
            },
            upsert(d, "2026-01-02T00:00:00Z", &["chat"]),
            upsert(d, "2026-01-01T00:00:00Z", &["older-in-the-same-batch"]),
        ])
        .await
        .unwrap();
    assert_eq!(
        report,
        ApplyReport {
            applied: 3,
            stale: 1
        }
    );

    let calls = mock.calls();
    assert_eq!(
        lines(&calls),
        [
            "POST /indexes/tributary/documents/fetch",
            "POST /indexes/tributary/documents?primaryKey=id",
        ]
    );
    assert_eq!(
        calls[0].body,
        json!({
            "filter": format!(r#"id IN ["{a}", "{b}", "{c}", "{d}"]"#),
            "fields": ["id", "version", "deleted", "sources"],
            "limit": 4,
        })
    );
    let stored = |id: Uuid, sources: &[&str], version: &str| {
        json!({
            "id": id, "entity_type": "message", "title": "Subject", "text": "Body",
            "sources": sources, "date": at("2026-03-01T09:00:00Z").timestamp(),
            "date_rfc3339": "2026-03-01T09:00:00.250+00:00", "version": micros(version),
            "deleted": false,
        })
    };
    let tombstone = json!({
        "id": c, "entity_type": "message", "title": "", "text": "", "sources": [],
        "date": at("2026-01-03T00:00:00Z").timestamp(), "date_rfc3339": "2026-01-03T00:00:00+00:00",
        "version": micros("2026-01-03T00:00:00Z"), "deleted": true,
    });
    assert_eq!(
        calls[1].body,
        json!([
            stored(b, &["contacts", "chat"], "2026-01-02T00:00:00Z"),
            tombstone,
            stored(d, &["chat"], "2026-01-02T00:00:00Z"),
        ])
    );
    let held = mock.documents(INDEX);
    assert_eq!(
        held[&a.to_string()]["version"],
        micros("2026-01-02T00:00:00Z")
    );
    assert_eq!(held[&a.to_string()]["sources"], json!(["mail"]));

    // A late, older update cannot bring the deleted entity back; nothing is written.
    mock.clear();
    let late = backend
        .apply(vec![upsert(c, "2026-01-02T00:00:00Z", &["mail"])])
        .await
        .unwrap();
    assert_eq!(
        late,
        ApplyReport {
            applied: 0,
            stale: 1
        }
    );
    assert_eq!(
        lines(&mock.calls()),
        ["POST /indexes/tributary/documents/fetch"]
    );
    assert_eq!(mock.documents(INDEX)[&c.to_string()]["deleted"], true);

    // A newer upsert revives it, without the tombstone's (empty) sources.
    backend
        .apply(vec![upsert(c, "2026-01-04T00:00:00Z", &["chat"])])
        .await
        .unwrap();
    let revived = &mock.documents(INDEX)[&c.to_string()];
    assert_eq!(
        (revived["deleted"].clone(), revived["sources"].clone()),
        (json!(false), json!(["chat"]))
    );

    mock.clear();
    assert_eq!(backend.document_count().await.unwrap(), 4);
    let count = &mock.calls()[0];
    assert_eq!(count.line(), "POST /indexes/tributary/documents/fetch");
    assert_eq!(
        count.body,
        json!({"filter": "deleted = false", "fields": ["id"], "limit": 0})
    );
    assert!(backend.apply(Vec::new()).await.unwrap() == ApplyReport::default());
}

fn search_body(extra: Value) -> Value {
    let mut body = json!({
        "attributesToRetrieve": ["id", "entity_type", "title", "text", "sources", "date", "date_rfc3339"],
        "attributesToHighlight": ["title", "text"],
        "highlightPreTag": "\u{1}",
        "highlightPostTag": "\u{2}",
        "attributesToCrop": ["text"],
        "cropLength": 30,
        "cropMarker": "…",
        "showRankingScore": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn search_maps_hits_and_translates_filters_exactly() {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = backend(&mock);
    backend.prepare().await.unwrap();
    let (message, document, deleted) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut older = doc(
        document,
        EntityType::Document,
        "Loom diagrams",
        "Sketches & <b>drafts</b>",
    );
    older.date = at("2026-02-01T08:00:00Z");
    backend
        .apply(vec![
            IndexChange::Upsert(doc(
                message,
                EntityType::Message,
                "Engine <notes>",
                "The <analytical> engine weaves like the loom",
            )),
            IndexChange::Upsert(older),
            IndexChange::Upsert(doc(deleted, EntityType::Message, "loom", "loom")),
            IndexChange::Delete {
                id: deleted,
                entity_type: EntityType::Message,
                version: at("2026-03-02T00:00:00Z"),
            },
        ])
        .await
        .unwrap();

    mock.clear();
    let query = SearchQuery {
        q: "loom".into(),
        types: vec![EntityType::Message, EntityType::CalendarEvent],
        source: Some(r#"my "mail" \box"#.into()),
        from: Some(at("2026-01-01T00:00:00Z")),
        to: Some(at("2026-03-31T23:59:59.999999Z")),
        limit: 10,
        offset: 0,
    };
    let results = backend.search(&query).await.unwrap();
    let calls = mock.calls();
    assert_eq!(lines(&calls), ["POST /indexes/tributary/search"]);
    let filter = format!(
        r#"deleted = false AND entity_type IN ["message", "calendar_event"] AND sources = "my \"mail\" \\box" AND date >= {} AND date <= {}"#,
        at("2026-01-01T00:00:00Z").timestamp(),
        at("2026-03-31T23:59:59Z").timestamp()
    );
    assert_eq!(
        calls[0].body,
        search_body(json!({"q": "loom", "filter": filter, "page": 1, "hitsPerPage": 10}))
    );

    assert_eq!((results.total, results.limit, results.offset), (2, 10, 0));
    assert_eq!(results.backend, "meilisearch");
    let [by_title, by_text] = results.hits.as_slice() else {
        panic!("{results:?}")
    };
    assert_eq!(by_title.id, document);
    assert_eq!(by_title.entity_type, EntityType::Document);
    assert_eq!(by_title.title, "Loom diagrams");
    assert_eq!(
        by_title.snippet, "Sketches &amp; &lt;b&gt;drafts&lt;/b&gt;",
        "no match in the text: its start, escaped"
    );
    assert_eq!(by_title.score, 1.0);
    assert_eq!(by_title.date, at("2026-02-01T08:00:00Z"));
    assert_eq!(by_text.id, message);
    assert_eq!(by_text.title, "Engine <notes>", "titles stay plain text");
    assert_eq!(
        by_text.snippet,
        "The &lt;analytical&gt; engine weaves like the <mark>loom</mark>"
    );
    assert_eq!(by_text.score, 0.5);
    assert_eq!(by_text.date, at("2026-03-01T09:00:00.250Z"));
    assert_eq!(by_text.sources, ["mail"]);

    // An empty query sorts by date; an offset off the page grid pages by offset and limit.
    mock.clear();
    let query = SearchQuery {
        limit: 2,
        offset: 1,
        ..SearchQuery::default()
    };
    let results = backend.search(&query).await.unwrap();
    assert_eq!(
        mock.calls()[0].body,
        search_body(
            json!({"q": "", "filter": "deleted = false", "sort": ["date:desc"],
            "offset": 1, "limit": 2})
        )
    );
    assert_eq!(results.total, 2, "estimatedTotalHits");
    let ids: Vec<Uuid> = results.hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, [document], "the older of the two live documents");
}

#[tokio::test]
async fn a_rebuild_fills_a_side_index_and_swaps_it_in() {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = backend(&mock);
    backend.prepare().await.unwrap();
    let (old, rebuilt, live) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    backend
        .apply(vec![upsert(old, "2026-01-01T00:00:00Z", &["mail"])])
        .await
        .unwrap();

    mock.clear();
    backend.begin_rebuild().await.unwrap();
    let calls = mock.calls();
    assert_eq!(
        lines(&calls),
        [
            "DELETE /indexes/tributary_rebuild",
            "POST /indexes",
            "PATCH /indexes/tributary_rebuild/settings",
        ],
        "a leftover is deleted first (none here: `index_not_found` is fine)"
    );
    assert_eq!(
        calls[1].body,
        json!({"uid": "tributary_rebuild", "primaryKey": "id"})
    );
    assert_eq!(calls[2].body, settings_payload());
    let second = backend.begin_rebuild().await.unwrap_err();
    assert!(matches!(second, SearchError::Rebuild(_)), "{second:?}");

    mock.clear();
    backend
        .rebuild_apply(vec![upsert(rebuilt, "2026-01-01T00:00:00Z", &["mail"])])
        .await
        .unwrap();
    assert_eq!(
        lines(&mock.calls()),
        [
            "POST /indexes/tributary_rebuild/documents/fetch",
            "POST /indexes/tributary_rebuild/documents?primaryKey=id",
        ]
    );

    mock.clear();
    backend
        .apply(vec![upsert(live, "2026-01-01T00:00:00Z", &["chat"])])
        .await
        .unwrap();
    assert_eq!(
        lines(&mock.calls()),
        [
            "POST /indexes/tributary/documents/fetch",
            "POST /indexes/tributary/documents?primaryKey=id",
            "POST /indexes/tributary_rebuild/documents/fetch",
            "POST /indexes/tributary_rebuild/documents?primaryKey=id",
        ]
    );

    mock.clear();
    backend.finish_rebuild().await.unwrap();
    let calls = mock.calls();
    assert_eq!(
        lines(&calls),
        ["POST /swap-indexes", "DELETE /indexes/tributary_rebuild"]
    );
    assert_eq!(
        calls[0].body,
        json!([{"indexes": ["tributary", "tributary_rebuild"]}])
    );
    assert_eq!(mock.index_uids(), [INDEX]);
    let ids: Vec<String> = mock.documents(INDEX).into_keys().collect();
    let mut expected = vec![rebuilt.to_string(), live.to_string()];
    expected.sort();
    assert_eq!(
        ids, expected,
        "the rebuilt index is live; the old one is gone"
    );

    let after = backend.rebuild_apply(Vec::new()).await.unwrap_err();
    assert!(matches!(after, SearchError::Rebuild(_)), "{after:?}");
    let finish = backend.finish_rebuild().await.unwrap_err();
    assert!(matches!(finish, SearchError::Rebuild(_)), "{finish:?}");

    // Abandoning drops the side index and leaves the live one alone.
    backend.begin_rebuild().await.unwrap();
    mock.clear();
    backend.abandon_rebuild().await;
    assert_eq!(lines(&mock.calls()), ["DELETE /indexes/tributary_rebuild"]);
    assert_eq!(mock.index_uids(), [INDEX]);
    mock.clear();
    backend
        .apply(vec![upsert(old, "2026-01-05T00:00:00Z", &["mail"])])
        .await
        .unwrap();
    assert!(lines(&mock.calls()).iter().all(|l| !l.contains("rebuild")));
}

#[tokio::test]
async fn an_unreachable_meilisearch_names_the_operation_without_the_key() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let backend =
        MeilisearchBackend::new(&config(&format!("http://127.0.0.1:{port}"), KEY, 5)).unwrap();
    for (err, operation) in [
        (backend.prepare().await.unwrap_err(), "read version"),
        (
            backend.search(&SearchQuery::default()).await.unwrap_err(),
            "search",
        ),
        (backend.check().await.unwrap_err(), "health check"),
        (
            backend
                .apply(vec![upsert(Uuid::now_v7(), "2026-01-01T00:00:00Z", &[])])
                .await
                .unwrap_err(),
            "fetch documents",
        ),
    ] {
        let SearchError::Meilisearch {
            operation: got,
            message,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*got, operation);
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(shown.contains(operation), "{shown}");
            assert!(!shown.contains(KEY), "{shown}");
        }
    }
    assert!(!format!("{backend:?}").contains(KEY));
}

#[tokio::test]
async fn the_key_is_optional_and_the_configuration_is_checked() {
    let mock = MockMeili::start(None).await;
    let backend = MeilisearchBackend::new(&config(&format!("{}/", mock.url), "", 5)).unwrap();
    backend.check().await.unwrap();
    let requests = mock.requests();
    assert_eq!(lines(&requests), ["GET /health"]);
    assert!(!requests[0].headers.contains_key("authorization"));

    for (url, key, index) in [
        ("localhost:7700", KEY, INDEX),
        (mock.url.as_str(), "bad\nkey", INDEX),
        (mock.url.as_str(), KEY, "a/b"),
    ] {
        let mut config = config(url, key, 5);
        config.index_name = index.to_owned();
        let err = MeilisearchBackend::new(&config).unwrap_err();
        assert!(
            matches!(
                &err,
                SearchError::Meilisearch {
                    operation: "connect",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("bad\nkey"), "{err}");
    }
}

#[tokio::test]
async fn provisioning_makes_one_key_allowed_only_what_the_backend_uses_on_its_indexes() {
    use tributary_search::backend::meilisearch::keys::{self, provision_key};
    let mock = MockMeili::start_with_master(KEY).await;
    let master = SecretString::from(KEY);
    let first = provision_key(&mock.url, &master, INDEX).await.unwrap();
    assert!(first.created);
    let made = mock.keys();
    assert_eq!(made.len(), 1, "{made:?}");
    let key = &made[0];
    assert_eq!(key["uid"], json!(first.uid.to_string()));
    assert_eq!(
        key["actions"],
        json!(keys::ACTIONS),
        "only what the backend uses"
    );
    assert!(
        !keys::ACTIONS
            .iter()
            .any(|a| *a == "*" || a.starts_with("keys")),
        "no key management"
    );
    assert_eq!(key["indexes"], json!([INDEX, format!("{INDEX}_rebuild")]));
    assert_eq!(key["expiresAt"], Value::Null);

    // Again: nothing changes, the same key is handed out.
    let again = provision_key(&mock.url, &master, INDEX).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.key.expose_secret(), first.key.expose_secret());
    assert_eq!(mock.keys().len(), 1);

    // A key of that uid with more rights (by hand, or an older version) is made again right,
    // with the same value, as Meilisearch derives it from the uid.
    let http = reqwest::Client::new();
    let uid = first.uid.to_string();
    http.delete(format!("{}/keys/{uid}", mock.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    http.post(format!("{}/keys", mock.url))
        .bearer_auth(KEY)
        .json(&json!({"uid": uid, "actions": ["*"], "indexes": ["*"], "expiresAt": null}))
        .send()
        .await
        .unwrap();
    let fixed = provision_key(&mock.url, &master, INDEX).await.unwrap();
    assert!(fixed.created);
    assert_eq!(fixed.key.expose_secret(), first.key.expose_secret());
    assert_eq!(mock.keys()[0]["actions"], json!(keys::ACTIONS));
    assert_eq!(mock.keys().len(), 1);

    // A server too old for the index settings is refused before any key is made.
    let old = MockMeili::start_with_master(KEY).await;
    old.answer_version("1.11.3");
    let err = provision_key(&old.url, &master, INDEX).await.unwrap_err();
    assert!(
        err.to_string().contains("Meilisearch 1.11.3 is too old"),
        "{err}"
    );
    assert!(old.keys().is_empty());

    // The scoped key itself cannot provision (nor read the keys).
    let err = provision_key(&mock.url, &first.key, INDEX)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("master key"), "{err}");
    keys::refuse_key_manager(&mock.url, Some(first.key.expose_secret()))
        .await
        .unwrap();
    let err = keys::refuse_key_manager(&mock.url, Some(KEY))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("search.meilisearch_api_key"),
        "{err}"
    );
}
