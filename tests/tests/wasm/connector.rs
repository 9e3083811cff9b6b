//! `com.example.js-tasks`, a connector in JavaScript, through the connector, ETL and search
//! processes: its tasks become documents in PostgreSQL, announced once and found through
//! `GET /search`; an incremental sync right after changes nothing; with `baseUrl` it reads a
//! tasks API with `fetch()`, which reaches exactly what its `network:outbound:${baseUrl}`
//! grant covers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tributary_e2e::{eventually, Stack};
use tributary_proto::events::{DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_proto::requests::connector::StateQuery;
use tributary_proto::streams::ConsumerKey;
use uuid::Uuid;

use crate::support::{self, task, SyncEnds, TasksApi, FIRST_LOAD};

const PLUGIN: &str = "com.example.js-tasks";

/// One stored document of an instance, with what a sync that changes nothing keeps as it is.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct StoredDocument {
    id: Uuid,
    external_id: String,
    title: String,
    content: String,
    path: Option<String>,
    modified_at: Option<DateTime<Utc>>,
    content_hash: String,
    updated_at: DateTime<Utc>,
}

/// The documents of `instance`, by external id.
async fn documents(stack: &Stack, instance: &str) -> Vec<StoredDocument> {
    sqlx::query_as(
        "SELECT d.id, s.external_id, d.title, d.content, d.path, d.modified_at, \
         s.content_hash, d.updated_at \
         FROM document d JOIN source_record s ON s.entity_id = d.id AND s.entity_type = 'document' \
         WHERE s.instance_id = $1 ORDER BY s.external_id",
    )
    .bind(instance)
    .fetch_all(stack.pool())
    .await
    .unwrap()
}

/// Waits until `instance` has `n` documents; then they are.
async fn wait_for_documents(stack: &Stack, instance: &str, n: i64) -> Vec<StoredDocument> {
    stack
        .wait_for_rows(
            &format!(
                "SELECT count(*) FROM document d JOIN source_record s ON s.entity_id = d.id \
                 AND s.entity_type = 'document' WHERE s.instance_id = '{instance}'"
            ),
            n,
            Duration::from_secs(60),
        )
        .await;
    documents(stack, instance).await
}

/// How many data events of documents the test's data stream holds: created, updated,
/// deleted.
async fn document_events(stack: &Stack) -> [u64; 3] {
    let mut counts = [0; 3];
    for (count, change) in counts.iter_mut().zip(["Created", "Updated", "Deleted"]) {
        *count = stack.stored_on(&format!("data.Document{change}")).await;
    }
    counts
}

/// Waits until the ETL has written every item published so far and its outbox has been
/// published: from then on, the rows and events of what was synced are all there.
async fn wait_until_written(stack: &Stack) {
    stack.wait_consumer_settled(ConsumerKey::EtlItems, 60).await;
    stack
        .wait_for_rows("SELECT count(*) FROM outbox", 0, Duration::from_secs(60))
        .await;
}

/// Asserts that an incremental sync of `instance` now ends with `items` items and changes
/// nothing: the same documents, byte for byte and timestamp for timestamp, no data event, the
/// same documents in the index.
async fn assert_incremental_sync_changes_nothing(
    stack: &Stack,
    ends: &mut SyncEnds,
    instance: &str,
    items: u64,
) {
    wait_until_written(stack).await;
    let before = documents(stack, instance).await;
    let events = document_events(stack).await;
    support::sync_now(stack, instance).await;
    let done = ends.completed(instance, Duration::from_secs(60)).await;
    assert_eq!(done.data["mode"], "incremental", "{:?}", done.data);
    assert_eq!(done.data["items"], items, "{:?}", done.data);
    wait_until_written(stack).await;
    assert_eq!(documents(stack, instance).await, before);
    assert_eq!(
        document_events(stack).await,
        events,
        "created, updated, deleted"
    );
    let found = stack.search(&[("source", instance)]).await;
    assert_eq!(found["total"], before.len(), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_connector_syncs_its_tasks_into_searchable_documents_once() {
    let mut stack = support::stack().await;
    let instance = "js-tasks-synthetic";
    let mut ends = SyncEnds::watch(&stack).await;
    let mut created = stack
        .watch(EventKind::Data {
            entity: EntityType::Document,
            change: DataChange::Created,
        })
        .await;

    // An instance that never synced syncs as soon as it is enabled: 25 tasks, 3 pages.
    let enabled = support::install_and_enable(
        &stack,
        PLUGIN,
        instance,
        json!({"count": 25, "pageSize": 10}),
    )
    .await;
    let done = ends.completed(instance, FIRST_LOAD).await;
    eprintln!(
        "{PLUGIN}: the first sync ended {:.1?} after the instance was enabled (component load included)",
        enabled.elapsed()
    );
    assert_eq!(done.data["items"], 25, "{:?}", done.data);

    // Documents in PostgreSQL, each the task the README describes: task i modified at
    // 2026-01-01T00:00:00Z plus i minutes.
    let stored = wait_for_documents(&stack, instance, 25).await;
    let externals: Vec<String> = stored.iter().map(|d| d.external_id.clone()).collect();
    let mut expected: Vec<String> = (0..25).map(|i| format!("task-{i}")).collect();
    expected.sort();
    assert_eq!(externals, expected);
    let base: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    for doc in &stored {
        let i: i64 = doc.external_id["task-".len()..].parse().unwrap();
        assert_eq!(
            doc.path.as_deref(),
            Some(format!("tasks/task-{i}").as_str())
        );
        assert_eq!(doc.modified_at, Some(base + chrono::Duration::minutes(i)));
        assert!(doc.title.ends_with(&format!("(task {i})")), "{doc:?}");
        assert!(
            doc.content
                .starts_with(&format!("Synthetic task number {i},")),
            "{doc:?}"
        );
    }

    // Each announced once, by the ETL.
    let events = created
        .collect(25, Duration::from_secs(60), |e| {
            e.source.instance.as_deref() == Some(instance)
        })
        .await;
    let mut announced: Vec<Uuid> = events.iter().map(|e| e.entity_id.unwrap()).collect();
    announced.sort();
    let mut ids: Vec<Uuid> = stored.iter().map(|d| d.id).collect();
    ids.sort();
    assert_eq!(announced, ids, "one DocumentCreated per document");
    wait_until_written(&stack).await;
    assert_eq!(
        document_events(&stack).await,
        [25, 0, 0],
        "none announced twice"
    );

    // Searchable through the search process: all 25, and one by a word only its title has
    // (task 24 is the only one about the onboarding flow).
    let all = stack
        .wait_search_total(&[("source", instance), ("type", "document")], 25, 60)
        .await;
    assert_eq!(all["hits"][0]["sources"], json!([instance]), "{all}");
    let found = stack
        .wait_search_total(&[("q", "onboarding"), ("type", "document")], 1, 30)
        .await;
    let onboarding = stored.iter().find(|d| d.external_id == "task-24").unwrap();
    assert_eq!(found["hits"][0]["id"], onboarding.id.to_string(), "{found}");
    assert_eq!(found["hits"][0]["title"], onboarding.title.as_str());

    // The cursor says every task was handed over: the next incremental sync has none.
    assert_incremental_sync_changes_nothing(&stack, &mut ends, instance, 0).await;
    let state = stack
        .ask(&StateQuery {
            instance_id: instance.to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(state["status"], "succeeded", "{state}");
    assert_eq!(state["total_items"], 25, "{state}");
    stack.assert_all_running();
}

/// The tasks of the API: five, an hour apart, each with a word of its own.
fn api_tasks() -> Vec<Value> {
    vec![
        task(
            "t-1",
            "Calibrate the orrery",
            "Check its gears against the ephemeris.",
            "2026-03-01T08:00:00Z",
        ),
        task(
            "t-2",
            "Wind the chronometer",
            "Every morning before the tide table.",
            "2026-03-01T09:00:00Z",
        ),
        task(
            "t-3",
            "Polish the astrolabe",
            "Brass only, no solvents.",
            "2026-03-01T10:00:00Z",
        ),
        task(
            "t-4",
            "Oil the difference engine",
            "Column three squeaks.",
            "2026-03-01T11:00:00Z",
        ),
        task(
            "t-5",
            "Catalogue the star charts",
            "Both hemispheres, by declination.",
            "2026-03-01T12:00:00Z",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_connector_reads_a_tasks_api_with_fetch_under_its_base_url_grant() {
    let api = TasksApi::start(api_tasks(), 2).await;
    let mut stack = support::stack().await;
    let instance = "js-tasks-api";
    let mut ends = SyncEnds::watch(&stack).await;

    let enabled =
        support::install_and_enable(&stack, PLUGIN, instance, json!({"baseUrl": api.base_url()}))
            .await;
    let view = stack.admin_instance(instance).await;
    assert!(
        view["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("network:outbound:${baseUrl}")),
        "the grant that lets it reach its baseUrl was accepted: {view}"
    );
    let done = ends.completed(instance, FIRST_LOAD).await;
    eprintln!(
        "{PLUGIN} (tasks API): the first sync ended {:.1?} after the instance was enabled",
        enabled.elapsed()
    );
    assert_eq!(done.data["items"], 5, "{:?}", done.data);

    // Every page asked of the API by fetch() through the host, from the first, with no `since`
    // (nothing was handed over before).
    assert_eq!(api.queries(), ["page=1", "page=2", "page=3"]);

    // The documents are the API's tasks.
    let stored = wait_for_documents(&stack, instance, 5).await;
    for (doc, task) in stored.iter().zip(api_tasks()) {
        assert_eq!(doc.external_id, task["id"].as_str().unwrap());
        assert_eq!(doc.title, task["title"].as_str().unwrap());
        assert_eq!(doc.content, task["description"].as_str().unwrap());
        let updated: DateTime<Utc> = task["updated_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(doc.modified_at, Some(updated));
    }
    let found = stack
        .wait_search_total(&[("q", "astrolabe"), ("type", "document")], 1, 60)
        .await;
    let astrolabe = stored.iter().find(|d| d.external_id == "t-3").unwrap();
    assert_eq!(found["hits"][0]["id"], astrolabe.id.to_string(), "{found}");
    stack
        .wait_search_total(&[("source", instance), ("type", "document")], 5, 30)
        .await;

    // The next incremental sync asks from the newest task handed over (inclusive, as the
    // README says), gets that one task again, and changes nothing.
    assert_incremental_sync_changes_nothing(&stack, &mut ends, instance, 1).await;
    let asked: Vec<Vec<(String, String)>> = api.queries()[3..]
        .iter()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .collect();
    let since = ("since".to_owned(), "2026-03-01T12:00:00Z".to_owned());
    assert_eq!(asked, [vec![("page".to_owned(), "1".to_owned()), since]]);
    stack.assert_all_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_outside_the_base_url_grant_fails_the_sync_naming_the_permission() {
    // The same tasks served on two ports of 127.0.0.1; the instance's baseUrl is the first,
    // which redirects every request to the second under the name `localhost`. The grant
    // `network:outbound:${baseUrl}` covers 127.0.0.1 and nothing else, so the redirect is
    // refused before anything connects to the second.
    let granted = TasksApi::start(api_tasks(), 2).await;
    let elsewhere = TasksApi::start(api_tasks(), 2).await;
    granted.redirect_to(format!("http://localhost:{}", elsewhere.port()));
    let mut stack = support::stack().await;
    let instance = "js-tasks-redirected";
    let mut ends = SyncEnds::watch(&stack).await;

    support::install_and_enable(
        &stack,
        PLUGIN,
        instance,
        json!({"baseUrl": granted.base_url()}),
    )
    .await;
    let failed = ends.failed(instance, FIRST_LOAD).await;
    let error = failed.data["error"].as_str().unwrap_or_default().to_owned();
    // Another port of another name: the grant a redirect there would need names both.
    let denial = format!(
        "permission `network:outbound:localhost:{}` is not granted",
        elsewhere.port()
    );
    assert!(
        error.contains(&denial),
        "SyncFailed names the permission: {error}"
    );
    assert_eq!(granted.queries(), ["page=1"], "the granted host was asked");
    assert!(
        elsewhere.queries().is_empty(),
        "the redirect was never followed"
    );

    // Visible in the sync state and as the instance's last error in the plugin manager.
    let state = stack
        .ask(&StateQuery {
            instance_id: instance.to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(state["status"], "failed", "{state}");
    assert!(
        state["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains(&denial),
        "{state}"
    );
    eventually(
        10,
        "the instance's last error to name the permission",
        || async {
            let view = stack.admin_instance(instance).await;
            view["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(&denial))
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM source_record WHERE instance_id = '{instance}'"
            ))
            .await,
        0,
        "nothing was stored"
    );
    stack.assert_all_running();
}
