//! The built-in Todoist connector, run by the engine against a local Todoist API v1.

use serde_json::json;
use tributary_declarative::testing::{TodoistServer, TOKEN};
use tributary_declarative::DeclarativeConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{ConnectorItem, ItemOperation, SyncStep};
use tributary_proto::model::DocumentFields;

use crate::support::{builtin, ids, killed, run, sync, times_sent};

fn connector(todoist: &TodoistServer) -> DeclarativeConnector {
    builtin("tributary.todoist", &todoist.base_url())
}

fn context(token: &str) -> TestContext {
    TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:documents"],
        json!({ "apiToken": token }),
    )
    .with_http(|http| http.retry_policy(tributary_plugin_sdk::testing::fast_retry_policy()))
}

fn fields(item: &ConnectorItem) -> DocumentFields {
    serde_json::from_value(item.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", item.data))
}

/// The `sync_token` a request's form sent.
fn sent_token(form: &str) -> &str {
    form.split('&')
        .find_map(|field| field.strip_prefix("sync_token="))
        .unwrap_or("")
}

/// Three open tasks, one with a description, a due date, labels and a priority.
async fn three_tasks() -> TodoistServer {
    let todoist = TodoistServer::start().await;
    todoist.put(
        "6Xt1",
        "Write the **launch** notes",
        json!({
            "description": "Numbers from the Q4 review",
            "due": {"date": "2026-12-01", "timezone": null, "string": "Dec 1", "lang": "en", "is_recurring": false},
            "labels": ["work"],
            "priority": 4,
        }),
    );
    todoist.put("6Xt2", "Buy milk", json!({}));
    todoist.put("6Xt3", "Call Bob", json!({}));
    todoist
}

#[tokio::test]
async fn a_first_sync_sends_every_open_task_as_a_document_from_one_full_sync() {
    let todoist = three_tasks().await;
    let (items, _) = sync(&connector(&todoist), &context(TOKEN), None).await;

    assert_eq!(ids(&items, ItemOperation::Upsert), ["6Xt1", "6Xt2", "6Xt3"]);
    let launch = items.iter().find(|i| i.external_id == "6Xt1").unwrap();
    let doc = fields(launch);
    assert_eq!(doc.title, "Write the **launch** notes");
    assert_eq!(doc.content, "Numbers from the Q4 review");
    assert_eq!(doc.mime_type.as_deref(), Some("text/markdown"));
    assert_eq!(
        doc.path.as_deref(),
        Some("https://app.todoist.com/app/task/6Xt1")
    );
    assert!(doc.modified_at.is_some());
    assert_eq!(doc.extra["due"]["date"], "2026-12-01");
    assert_eq!(doc.extra["priority"], 4);
    assert_eq!(doc.extra["labels"], json!(["work"]));
    assert_eq!(launch.raw["project_id"], "6Jf8VQXxpwv56VQ7");
    // A task without a description has an empty content, not a missing document.
    let milk = items.iter().find(|i| i.external_id == "6Xt2").unwrap();
    assert_eq!(fields(milk).content, "");

    // One form-encoded POST, with the token, asking for the tasks only from `*`.
    let requests = todoist.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].1, "{requests:?}");
    assert_eq!(sent_token(&requests[0].0), "*");
    assert!(
        requests[0].0.contains(r#"resource_types=["items"]"#),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_later_sync_sends_only_the_changes_with_completed_tasks_kept_and_deleted_ones_as_deletions(
) {
    let todoist = three_tasks().await;
    let connector = connector(&todoist);
    let test = context(TOKEN);
    let (_, cursor) = sync(&connector, &test, None).await;

    todoist.put("6Xt2", "Buy oat milk", json!({}));
    todoist.complete("6Xt3");
    todoist.delete("6Xt1");
    todoist.put("6Xt4", "Book the room", json!({}));
    let (items, cursor) = sync(&connector, &test, cursor).await;

    assert_eq!(ids(&items, ItemOperation::Upsert), ["6Xt2", "6Xt3", "6Xt4"]);
    assert_eq!(ids(&items, ItemOperation::Delete), ["6Xt1"]);
    let completed = items.iter().find(|i| i.external_id == "6Xt3").unwrap();
    assert_eq!(fields(completed).extra["checked"], true);
    let deleted = items.iter().find(|i| i.external_id == "6Xt1").unwrap();
    assert_eq!(deleted.data, serde_json::Value::Null);
    assert_eq!(deleted.raw["is_deleted"], true);
    // The second sync sent the token the first one was answered.
    let requests = todoist.requests();
    assert_ne!(sent_token(&requests[1].0), "*", "{requests:?}");

    // Nothing changed: nothing sent.
    let (items, _) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn a_refused_sync_token_makes_a_full_resync_that_sends_each_open_task_once() {
    let todoist = three_tasks().await;
    let connector = connector(&todoist);
    let test = context(TOKEN);
    let (_, cursor) = sync(&connector, &test, None).await;

    todoist.complete("6Xt3");
    todoist.expire_tokens();
    let (items, cursor) = sync(&connector, &test, cursor).await;

    // The refused token, then `*`: the open tasks, each once.
    assert_eq!(ids(&items, ItemOperation::Upsert), ["6Xt1", "6Xt2"]);
    assert!(times_sent([&items[..]]).values().all(|n| *n == 1));
    let tokens: Vec<String> = todoist
        .requests()
        .iter()
        .map(|(form, _)| sent_token(form).to_owned())
        .collect();
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert_ne!(tokens[1], "*");
    assert_eq!(tokens[2], "*");
    // The new token works.
    let (items, _) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn a_full_sync_todoist_answers_a_token_with_sends_every_open_task_once() {
    let todoist = three_tasks().await;
    let connector = connector(&todoist);
    let test = context(TOKEN);
    let (_, cursor) = sync(&connector, &test, None).await;

    todoist.full_sync_next();
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Upsert), ["6Xt1", "6Xt2", "6Xt3"]);
    assert_eq!(todoist.requests().len(), 2);
}

#[tokio::test]
async fn a_sync_killed_before_its_checkpoint_asks_again_with_the_kept_token_and_sends_every_change_once(
) {
    let todoist = three_tasks().await;
    let connector = connector(&todoist);
    let test = context(TOKEN);
    let (_, kept) = sync(&connector, &test, None).await;
    todoist.put("6Xt2", "Buy oat milk", json!({}));
    todoist.put("6Xt4", "Book the room", json!({}));

    // The answer is one page: killed after its first item, the sync checkpointed nothing.
    let (sent, checkpoint) = killed(&connector, &test, kept.clone(), |step| {
        matches!(step, SyncStep::Item(_))
    })
    .await;
    assert_eq!(sent.len(), 1);
    assert!(checkpoint.is_none());

    // Resumed from the last checkpoint (the first sync's), every change comes once.
    let (resumed, _) = sync(&connector, &test, kept).await;
    assert_eq!(ids(&resumed, ItemOperation::Upsert), ["6Xt2", "6Xt4"]);
    let requests = todoist.requests();
    assert_eq!(sent_token(&requests[1].0), sent_token(&requests[2].0));
}

#[tokio::test]
async fn a_throttled_sync_is_sent_again_after_retry_after() {
    let todoist = three_tasks().await;
    todoist.throttle(2);
    let (items, _) = sync(&connector(&todoist), &context(TOKEN), None).await;
    assert_eq!(items.len(), 3);
    assert_eq!(todoist.requests().len(), 3);
}

#[tokio::test]
async fn a_refused_api_token_fails_the_sync_naming_the_api_token_setting() {
    let todoist = three_tasks().await;
    let failure = run(&connector(&todoist), &context("not-the-token"), None)
        .await
        .expect_err("a refused token fails the sync")
        .to_string();
    assert!(
        failure.contains("Todoist refused the API token: Invalid token"),
        "{failure}"
    );
    assert!(failure.contains("check apiToken"), "{failure}");
}
