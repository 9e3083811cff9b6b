//! What every built-in spec's suite shares: the spec validated against its own manifest and
//! pointed at a local server, a test context whose token broker always hands out
//! [`TOKEN`], and running a sync to its end.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tributary_declarative::testing::TOKEN;
use tributary_declarative::{builtin_spec, validate, DeclarativeConnector};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    AccessTokens, ConnectorItem, ConnectorPlugin, Cursor, ItemOperation, PluginError,
    PluginManifest, SyncRequest, SyncStep,
};

/// The token broker, as the host stands it in: always the same token.
pub struct FixedToken;

#[async_trait]
impl AccessTokens for FixedToken {
    async fn access_token(&self, _rejected: Option<&str>) -> Result<SecretString, PluginError> {
        Ok(SecretString::from(TOKEN))
    }
}

/// The built-in spec of `plugin_id`, validated against its own manifest, pointed at
/// `base_url`.
pub fn builtin(plugin_id: &str, base_url: &str) -> DeclarativeConnector {
    let builtin = builtin_spec(plugin_id).unwrap();
    let manifest = PluginManifest::parse(builtin.manifest).unwrap();
    let spec = validate(builtin.spec, &manifest).unwrap_or_else(|e| panic!("{e}"));
    DeclarativeConnector::new(spec).with_base_url(base_url)
}

/// An instance granted `permissions`, configured with `config`, with the broker's token and
/// fast retries.
pub fn oauth_context(permissions: &[&str], config: serde_json::Value) -> TestContext {
    TestContext::new(permissions, config).with_http(|http| {
        http.retry_policy(tributary_plugin_sdk::testing::fast_retry_policy())
            .access_tokens(Arc::new(FixedToken))
    })
}

/// Runs a sync to its end: its items, and the last checkpoint; or the error it stopped on.
pub async fn run(
    connector: &DeclarativeConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
) -> Result<(Vec<ConnectorItem>, Option<Cursor>), PluginError> {
    let mut steps = connector.sync(test.ctx(), cursor, SyncRequest::incremental());
    let mut items = Vec::new();
    let mut last = None;
    while let Some(step) = steps.next().await {
        match step? {
            SyncStep::Item(item) => items.push(item),
            SyncStep::Checkpoint(cursor) => last = Some(cursor),
        }
    }
    Ok((items, last))
}

/// Starts a sync and drops it once `stop` is true of a step, as a kill or a cancel does:
/// the items it sent by then, and the last checkpoint it reached.
pub async fn killed(
    connector: &DeclarativeConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
    stop: impl Fn(&SyncStep) -> bool,
) -> (Vec<ConnectorItem>, Option<Cursor>) {
    let mut steps = connector.sync(test.ctx(), cursor, SyncRequest::incremental());
    let mut items = Vec::new();
    let mut last = None;
    while let Some(step) = steps.next().await {
        let step = step.unwrap_or_else(|e| panic!("the sync failed: {e}"));
        let stopped = stop(&step);
        match step {
            SyncStep::Item(item) => items.push(item),
            SyncStep::Checkpoint(cursor) => last = Some(cursor),
        }
        if stopped {
            break;
        }
    }
    (items, last)
}

/// How many times each external id was sent, across `runs`.
pub fn times_sent<'a>(
    runs: impl IntoIterator<Item = &'a [ConnectorItem]>,
) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for item in runs.into_iter().flatten() {
        *seen.entry(item.external_id.clone()).or_default() += 1;
    }
    seen
}

/// [`run`], which must succeed.
pub async fn sync(
    connector: &DeclarativeConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
) -> (Vec<ConnectorItem>, Option<Cursor>) {
    run(connector, test, cursor)
        .await
        .unwrap_or_else(|e| panic!("the sync failed: {e}"))
}

/// The external ids of the items of `operation`, sorted.
pub fn ids(items: &[ConnectorItem], operation: ItemOperation) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .filter(|i| i.operation == operation)
        .map(|i| i.external_id.clone())
        .collect();
    ids.sort();
    ids
}
