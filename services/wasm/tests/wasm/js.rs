//! The JavaScript guests (componentize-js output) through the host: a connector's pages,
//! checkpoints and modes, and a channel's verify, handle and send.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use tributary_plugin_sdk::{ConnectorPlugin, Cursor, SyncRequest, SyncStep};
use tributary_wasm::WasmConnector;

use crate::guests::{context, guest, runtime};

#[tokio::test]
async fn the_javascript_connector_syncs_pages_with_a_checkpoint_each_and_resumes() {
    let runtime = runtime();
    let tasks = guest("com.example.js-tasks");
    let started = Instant::now();
    let component = runtime.load(&tasks.source).await.unwrap();
    eprintln!(
        "loaded in {:?} (compile {:?})",
        started.elapsed(),
        component.compile_time
    );
    let connector = Arc::new(WasmConnector::new(
        runtime.clone(),
        component,
        runtime.limits_for(&Default::default()),
        vec![],
    ));
    let ctx = context(
        "js-tasks-1",
        &["data:write:documents"],
        json!({"count": 250, "pageSize": 100}),
    );
    let steps: Vec<SyncStep> = connector
        .sync(ctx.clone(), None, SyncRequest::full())
        .map(Result::unwrap)
        .collect()
        .await;
    let items: Vec<_> = steps
        .iter()
        .filter_map(|s| match s {
            SyncStep::Item(item) => Some(item),
            SyncStep::Checkpoint(_) => None,
        })
        .collect();
    let checkpoints: Vec<&Cursor> = steps
        .iter()
        .filter_map(|s| match s {
            SyncStep::Checkpoint(c) => Some(c),
            SyncStep::Item(_) => None,
        })
        .collect();
    assert_eq!(items.len(), 250);
    assert_eq!(checkpoints.len(), 3, "{checkpoints:?}");
    assert_eq!(items[0].instance_id, "js-tasks-1");
    assert_eq!(items[0].external_id, "task-0");
    assert!(
        matches!(steps[100], SyncStep::Checkpoint(_)),
        "a checkpoint after each page"
    );

    // Resumed from the second checkpoint, only the last page is left.
    let resumed: Vec<SyncStep> = connector
        .sync(
            ctx,
            Some(checkpoints[1].clone()),
            SyncRequest::incremental(),
        )
        .map(Result::unwrap)
        .collect()
        .await;
    let resumed_items = resumed
        .iter()
        .filter(|s| matches!(s, SyncStep::Item(_)))
        .count();
    assert_eq!(resumed_items, 50);
}
