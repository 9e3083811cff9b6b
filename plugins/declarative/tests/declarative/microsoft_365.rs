//! The built-in Microsoft 365 contacts connector, run by the engine against a local Graph.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tributary_declarative::{builtin_spec, validate, DeclarativeConnector};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    AccessTokens, ConnectorItem, ConnectorPlugin, Cursor, EntityType, ItemOperation, PluginError,
    PluginManifest, SyncRequest, SyncStep,
};

use tributary_declarative::testing::{GraphServer, TOKEN};

/// The token broker, as the host stands it in: always the same token.
struct FixedToken;

#[async_trait]
impl AccessTokens for FixedToken {
    async fn access_token(&self, _rejected: Option<&str>) -> Result<SecretString, PluginError> {
        Ok(SecretString::from(TOKEN))
    }
}

/// The built-in spec, validated against its own manifest, pointed at `graph`.
fn connector(graph: &GraphServer) -> DeclarativeConnector {
    let builtin = builtin_spec("tributary.microsoft-365").unwrap();
    let manifest = PluginManifest::parse(builtin.manifest).unwrap();
    let spec = validate(builtin.spec, &manifest).unwrap_or_else(|e| panic!("{e}"));
    DeclarativeConnector::new(spec).with_base_url(graph.base_url())
}

fn context() -> TestContext {
    TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:persons"],
        serde_json::json!({"tenantId": "common", "pageSize": 2}),
    )
    .with_http(|http| {
        http.retry_policy(tributary_plugin_sdk::testing::fast_retry_policy())
            .access_tokens(Arc::new(FixedToken))
    })
}

/// Runs a sync to its end: its items, and the last checkpoint.
async fn sync(
    connector: &DeclarativeConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
) -> (Vec<ConnectorItem>, Option<Cursor>) {
    let mut steps = connector.sync(test.ctx(), cursor, SyncRequest::incremental());
    let mut items = Vec::new();
    let mut last = None;
    while let Some(step) = steps.next().await {
        match step.unwrap_or_else(|e| panic!("the sync failed: {e}")) {
            SyncStep::Item(item) => items.push(item),
            SyncStep::Checkpoint(cursor) => last = Some(cursor),
        }
    }
    (items, last)
}

fn ids(items: &[ConnectorItem], operation: ItemOperation) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .filter(|i| i.operation == operation)
        .map(|i| i.external_id.clone())
        .collect();
    ids.sort();
    ids
}

async fn graph_with_five_contacts() -> GraphServer {
    let graph = GraphServer::start().await;
    for (id, given) in ["ada", "bob", "cy", "dee", "eve"].iter().enumerate() {
        graph.put(
            &format!("AAMk-{id}"),
            given,
            "Example",
            &format!("{given}@contoso.example"),
        );
    }
    graph
}

#[tokio::test]
async fn a_first_sync_lists_every_contact_across_pages_as_persons_with_the_raw_record() {
    let graph = graph_with_five_contacts().await;
    let (items, cursor) = sync(&connector(&graph), &context(), None).await;

    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["AAMk-0", "AAMk-1", "AAMk-2", "AAMk-3", "AAMk-4"]
    );
    let ada = &items[0];
    assert_eq!(ada.entity_type, EntityType::Person);
    assert_eq!(ada.instance_id, "test-instance");
    let fields: tributary_proto::model::PersonFields =
        serde_json::from_value(ada.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", ada.data));
    assert_eq!(fields.display_name, "ada Example");
    assert_eq!(fields.emails, ["ada@contoso.example"]);
    assert_eq!(fields.phones, ["+1 425 555 0000"]);
    assert_eq!(fields.organization.as_deref(), Some("Contoso"));
    assert_eq!(ada.raw["id"], "AAMk-0");
    assert_eq!(
        ada.source_modified_at.to_rfc3339(),
        "2026-11-01T10:00:00+00:00"
    );
    // Three pages of two, each with the broker's token; the cursor keeps the delta link.
    let requests = graph.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests.iter().all(|(_, authorized)| *authorized));
    assert!(
        requests[0].0.contains("$select=id,displayName"),
        "{requests:?}"
    );
    let cursor = cursor.unwrap().0.to_string();
    assert!(cursor.contains("$deltatoken=5"), "{cursor}");
}

#[tokio::test]
async fn a_later_sync_sends_only_the_changes_and_removed_contacts_as_deletions() {
    let graph = graph_with_five_contacts().await;
    let connector = connector(&graph);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;

    // Nothing changed: nothing sent, and the same delta link is kept.
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");

    graph.put("AAMk-1", "bob", "Changed", "bob@contoso.example");
    graph.put("AAMk-9", "new", "Person", "new@contoso.example");
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Upsert), ["AAMk-1", "AAMk-9"]);
    assert_eq!(items[0].data["family_name"], "Changed");

    graph.delete("AAMk-3");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Delete), ["AAMk-3"]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].data, serde_json::Value::Null);
    assert!(items[0].raw["@removed"].is_object());
}

#[tokio::test]
async fn an_expired_delta_token_makes_a_full_resync_that_sends_each_contact_once() {
    let graph = graph_with_five_contacts().await;
    let connector = connector(&graph);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;
    graph.delete("AAMk-0");
    graph.expire_tokens();

    let (items, cursor) = sync(&connector, &test, cursor).await;

    // Everything Graph holds now, once each; the removed contact is simply not listed.
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["AAMk-1", "AAMk-2", "AAMk-3", "AAMk-4"]
    );
    assert_eq!(items.len(), 4);
    let requests = graph.requests();
    assert!(requests[3].0.starts_with("$deltatoken="), "{requests:?}");
    assert!(
        requests[4].0.contains("$select="),
        "a fresh listing: {requests:?}"
    );
    // And the new delta link works.
    graph.put("AAMk-2", "cy", "Again", "cy@contoso.example");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Upsert), ["AAMk-2"]);
}

#[tokio::test]
async fn a_throttled_request_is_sent_again_after_retry_after() {
    let graph = graph_with_five_contacts().await;
    graph.throttle(1);
    let started = std::time::Instant::now();
    let (items, _) = sync(&connector(&graph), &context(), None).await;
    assert_eq!(items.len(), 5);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(graph.requests().len(), 4);
}

#[tokio::test]
async fn a_sync_stopped_after_a_checkpoint_resumes_there_and_sends_every_contact_once() {
    let graph = graph_with_five_contacts().await;
    let connector = connector(&graph);
    let test = context();
    // The first page, then the sync is dropped, as a kill or a cancel does.
    let mut steps = connector.sync(test.ctx(), None, SyncRequest::incremental());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let checkpoint = loop {
        match steps.next().await.unwrap().unwrap() {
            SyncStep::Item(item) => *seen.entry(item.external_id).or_default() += 1,
            SyncStep::Checkpoint(cursor) => break cursor,
        }
    };
    drop(steps);
    assert_eq!(seen.len(), 2);

    let (items, _) = sync(&connector, &test, Some(checkpoint)).await;
    for item in items {
        *seen.entry(item.external_id).or_default() += 1;
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    // The resumed sync went on from the second page's skip token.
    assert!(graph.requests()[1].0.starts_with("$skiptoken="));
}

#[tokio::test]
async fn a_next_link_to_a_host_no_permission_grants_is_refused_by_the_client() {
    let graph = graph_with_five_contacts().await;
    graph.send_next_links_to("https://exfiltrate.example/v1.0");
    let mut steps = connector(&graph).sync(context().ctx(), None, SyncRequest::incremental());
    let mut failure = None;
    while let Some(step) = steps.next().await {
        if let Err(e) = step {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("the sync must fail");
    assert!(
        matches!(failure, PluginError::PermissionDenied(_)),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains("exfiltrate.example"),
        "{failure}"
    );
    assert_eq!(graph.requests().len(), 1);
}
