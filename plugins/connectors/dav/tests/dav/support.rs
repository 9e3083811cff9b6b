//! A real Radicale server per test (the crate's `testing` feature), and helpers to run the
//! connector.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tributary_connector_dav::DavConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, ItemOperation, PluginError, RetryPolicy, SyncRequest,
    SyncStep,
};

pub use tributary_connector_dav::testing::{Radicale, PASSWORD, USER};
/// The grant that lets the connector reach a test server.
pub const LOCAL: &str = "network:outbound:127.0.0.1";

/// A context for the connector with `permissions` and `config`, retrying fast.
pub fn context(permissions: &[&str], config: Value) -> TestContext {
    TestContext::new(permissions, config).with_http(|http| {
        http.retry_policy(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(1),
        })
        .timeout(Duration::from_secs(20))
    })
}

/// Runs a sync to its end.
pub async fn sync(
    connector: DavConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
    request: SyncRequest,
) -> Result<Vec<SyncStep>, PluginError> {
    let mut stream = connector.sync(test.ctx(), cursor, request);
    let mut steps = Vec::new();
    while let Some(step) = stream.next().await {
        steps.push(step?);
    }
    Ok(steps)
}

/// Runs a sync until its first checkpoint, and drops it there, as a crash would.
pub async fn sync_until_first_checkpoint(
    connector: DavConnector,
    test: &TestContext,
    request: SyncRequest,
) -> (Vec<ConnectorItem>, Cursor) {
    let mut stream = connector.sync(test.ctx(), None, request);
    let mut items = Vec::new();
    while let Some(step) = stream.next().await {
        match step.expect("a step") {
            SyncStep::Item(item) => items.push(item),
            SyncStep::Checkpoint(cursor) => return (items, cursor),
        }
    }
    panic!("the sync ended without a checkpoint")
}

/// The items of `steps`.
pub fn items(steps: &[SyncStep]) -> Vec<ConnectorItem> {
    steps
        .iter()
        .filter_map(|s| match s {
            SyncStep::Item(item) => Some(item.clone()),
            SyncStep::Checkpoint(_) => None,
        })
        .collect()
}

/// The cursor of the last step, which must be a checkpoint.
pub fn final_cursor(steps: &[SyncStep]) -> Cursor {
    match steps.last() {
        Some(SyncStep::Checkpoint(cursor)) => cursor.clone(),
        other => panic!("the last step is not a checkpoint: {other:?}"),
    }
}

/// The upsert with external id ending in `suffix`.
pub fn upsert<'a>(items: &'a [ConnectorItem], suffix: &str) -> &'a ConnectorItem {
    items
        .iter()
        .find(|i| i.operation == ItemOperation::Upsert && i.external_id.ends_with(suffix))
        .unwrap_or_else(|| panic!("no upsert of `{suffix}` among {:#?}", ids(items)))
}

/// `(operation, external id)` of each item, sorted.
pub fn ids(items: &[ConnectorItem]) -> Vec<(ItemOperation, String)> {
    let mut ids: Vec<_> = items
        .iter()
        .map(|i| (i.operation, i.external_id.clone()))
        .collect();
    ids.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then(format!("{:?}", a.0).cmp(&format!("{:?}", b.0)))
    });
    ids
}
