//! The built-in Zendesk connector, run by the engine against a local incremental ticket
//! export.

use serde_json::json;
use tributary_declarative::testing::{ZendeskServer, TOKEN, ZENDESK_AGENT};
use tributary_declarative::DeclarativeConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{ConnectorItem, ItemOperation, SyncStep};
use tributary_proto::model::ConversationFields;

use crate::support::{builtin, ids, killed, run, sync, times_sent};

fn connector(zendesk: &ZendeskServer) -> DeclarativeConnector {
    builtin("tributary.zendesk", &zendesk.base_url())
}

fn context_with(zendesk: &ZendeskServer, token: &str, page_size: u32) -> TestContext {
    TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:conversations"],
        json!({
            "url": format!("{}/", zendesk.base_url()),
            "email": ZENDESK_AGENT,
            "apiToken": token,
            "pageSize": page_size,
        }),
    )
    .with_http(|http| http.retry_policy(tributary_plugin_sdk::testing::fast_retry_policy()))
}

fn context(zendesk: &ZendeskServer) -> TestContext {
    context_with(zendesk, TOKEN, 2)
}

fn fields(item: &ConnectorItem) -> ConversationFields {
    serde_json::from_value(item.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", item.data))
}

/// Three tickets, the first with a description, tags and a collaborator.
async fn three_tickets() -> ZendeskServer {
    let zendesk = ZendeskServer::start().await;
    zendesk.put(
        35436,
        "Help, my printer is on fire!",
        json!({
            "description": "The fire is very colorful.",
            "priority": "high",
            "tags": ["enterprise", "printer"],
            "collaborator_ids": [35334],
        }),
    );
    zendesk.put(35437, "Password reset", json!({}));
    zendesk.put(35438, "", json!({"raw_subject": ""}));
    zendesk
}

#[tokio::test]
async fn a_first_sync_exports_every_ticket_across_pages_as_conversations() {
    let zendesk = three_tickets().await;
    let (items, _) = sync(&connector(&zendesk), &context(&zendesk), None).await;

    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["35436", "35437", "35438"]
    );
    let fire = fields(&items[0]);
    assert_eq!(fire.title.as_deref(), Some("Help, my printer is on fire!"));
    assert_eq!(fire.channel, "zendesk");
    assert_eq!(fire.participants, ["20978392", "235323", "35334"]);
    assert_eq!(fire.extra["description"], "The fire is very colorful.");
    assert_eq!(fire.extra["tags"], json!(["enterprise", "printer"]));
    assert_eq!(fire.extra["status"], "open");
    assert_eq!(
        fields(&items[2]).title.as_deref(),
        Some("Zendesk ticket #35438")
    );
    assert_eq!(items[0].raw["via"]["channel"], "web");

    // `start_time=0` with the page size, then the `after_url` Zendesk named; every request
    // with the agent's token as basic credentials.
    let requests = zendesk.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|(_, authorized)| *authorized));
    assert_eq!(requests[0].0, "per_page=2&start_time=0");
    assert!(requests[1].0.starts_with("cursor="), "{requests:?}");
}

#[tokio::test]
async fn a_later_sync_sends_only_the_changes_and_deleted_tickets_as_deletions() {
    let zendesk = three_tickets().await;
    let connector = connector(&zendesk);
    let test = context(&zendesk);
    let (_, cursor) = sync(&connector, &test, None).await;

    zendesk.put(35437, "Password reset (done)", json!({"status": "solved"}));
    zendesk.delete(35438);
    zendesk.put(35439, "New laptop", json!({}));
    let (items, cursor) = sync(&connector, &test, cursor).await;

    assert_eq!(ids(&items, ItemOperation::Upsert), ["35437", "35439"]);
    assert_eq!(ids(&items, ItemOperation::Delete), ["35438"]);
    let solved = items.iter().find(|i| i.external_id == "35437").unwrap();
    assert_eq!(fields(solved).extra["status"], "solved");
    let deleted = items.iter().find(|i| i.external_id == "35438").unwrap();
    assert_eq!(deleted.data, serde_json::Value::Null);
    assert_eq!(deleted.raw["status"], "deleted");
    // The later sync started from the cursor the first one ended on, not from start_time.
    let requests = zendesk.requests();
    assert!(requests[2].0.starts_with("cursor="), "{requests:?}");

    let (items, _) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn a_cursor_zendesk_no_longer_reads_makes_a_full_export_that_sends_each_ticket_once() {
    let zendesk = three_tickets().await;
    let connector = connector(&zendesk);
    let test = context(&zendesk);
    let (_, cursor) = sync(&connector, &test, None).await;

    zendesk.put(35437, "Password reset (done)", json!({}));
    zendesk.expire_cursors();
    let (items, cursor) = sync(&connector, &test, cursor).await;

    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["35436", "35437", "35438"]
    );
    assert!(times_sent([&items[..]]).values().all(|n| *n == 1));
    // The refused cursor, then `start_time` again.
    let requests = zendesk.requests();
    assert!(requests[2].0.starts_with("cursor="), "{requests:?}");
    assert_eq!(requests[3].0, "per_page=2&start_time=0");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn a_sync_killed_after_a_checkpoint_resumes_there_and_sends_every_ticket_once() {
    let zendesk = three_tickets().await;
    let connector = connector(&zendesk);
    let test = context_with(&zendesk, TOKEN, 1);

    let (first, checkpoint) = killed(&connector, &test, None, |step| {
        matches!(step, SyncStep::Checkpoint(_))
    })
    .await;
    assert_eq!(first.len(), 1);

    let (rest, _) = sync(&connector, &test, checkpoint).await;
    let seen = times_sent([&first[..], &rest[..]]);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    // The resumed sync went on from the first page's `after_url`.
    let requests = zendesk.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].0.starts_with("cursor="), "{requests:?}");
}

#[tokio::test]
async fn a_throttled_export_is_asked_again_after_retry_after() {
    let zendesk = three_tickets().await;
    zendesk.throttle(1);
    let (items, _) = sync(&connector(&zendesk), &context(&zendesk), None).await;
    assert_eq!(items.len(), 3);
    assert_eq!(zendesk.requests().len(), 3);
}

#[tokio::test]
async fn refused_credentials_fail_the_sync_naming_the_email_and_api_token_settings() {
    let zendesk = three_tickets().await;
    let failure = run(
        &connector(&zendesk),
        &context_with(&zendesk, "not-the-token", 2),
        None,
    )
    .await
    .expect_err("refused credentials fail the sync")
    .to_string();
    assert!(
        failure.contains("Zendesk refused the credentials: Couldn't authenticate you"),
        "{failure}"
    );
    assert!(failure.contains("check email and apiToken"), "{failure}");
}
