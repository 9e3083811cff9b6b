//! Syncs stopped part-way and resumed from their last checkpoint.

use std::collections::HashSet;

use tributary_connector_folder::FolderConnector;
use tributary_plugin_sdk::SyncRequest;

use crate::helpers::{at, sync_until_first_checkpoint, sync_with, TestFolder};

const FIVE: [&str; 5] = ["a.md", "b.md", "c/d.md", "c/e.txt", "f.txt"];

fn five_files() -> TestFolder {
    let folder = TestFolder::new();
    for (day, relative) in (1..).zip(FIVE) {
        folder.write(relative, format!("# File {relative}\n"), at(day, 8));
    }
    folder
}

#[tokio::test]
async fn a_first_sync_stopped_after_its_first_checkpoint_resumes_with_the_remaining_files() {
    // Proves resumption: every file once overall, the rest after the checkpoint.
    let folder = five_files();
    let config = folder.config(serde_json::json!({}));
    let connector = FolderConnector::with_checkpoint_every(2);

    let (before, checkpoint) =
        sync_until_first_checkpoint(&connector, config.clone(), None, SyncRequest::incremental())
            .await;
    let rest = sync_with(
        &connector,
        config,
        Some(checkpoint.clone()),
        SyncRequest::incremental(),
    )
    .await;

    let before: Vec<&str> = before.iter().map(|i| i.external_id.as_str()).collect();
    assert_eq!(before, ["a.md", "b.md"]);
    assert_eq!(checkpoint.0["scan"]["after"], "b.md");
    assert_eq!(rest.upserted(), ["c/d.md", "c/e.txt", "f.txt"]);
    assert!(rest.ended_with_checkpoint);
    assert!(rest.final_cursor().0.get("scan").is_none());
}

#[tokio::test]
async fn an_interrupted_full_sync_is_finished_by_the_next_incremental_one() {
    // Proves that the scan mode is part of the resume state: the files after the checkpoint
    // are sent as a full sync sends them, those before it are not sent twice.
    let folder = five_files();
    let config = folder.config(serde_json::json!({}));
    let connector = FolderConnector::with_checkpoint_every(2);
    let first = sync_with(&connector, config.clone(), None, SyncRequest::incremental()).await;

    let (before, checkpoint) = sync_until_first_checkpoint(
        &connector,
        config.clone(),
        Some(first.final_cursor()),
        SyncRequest::full(),
    )
    .await;
    let rest = sync_with(
        &connector,
        config,
        Some(checkpoint),
        SyncRequest::incremental(),
    )
    .await;

    let mut seen = HashSet::new();
    for id in before
        .iter()
        .map(|i| i.external_id.as_str())
        .chain(rest.upserted())
    {
        assert!(seen.insert(id), "`{id}` was sent twice");
    }
    assert_eq!(seen, HashSet::from(FIVE));
}

#[tokio::test]
async fn checkpoints_come_every_n_changed_files_and_not_for_unchanged_ones() {
    // Proves the checkpoint cadence: after every 2 files sent, none while nothing changes.
    let folder = five_files();
    let config = folder.config(serde_json::json!({}));
    let connector = FolderConnector::with_checkpoint_every(2);

    let first = sync_with(&connector, config.clone(), None, SyncRequest::incremental()).await;
    let second = sync_with(
        &connector,
        config,
        Some(first.final_cursor()),
        SyncRequest::incremental(),
    )
    .await;

    // After b.md, after c/e.txt, and the final one.
    assert_eq!(first.checkpoints.len(), 3);
    assert_eq!(second.checkpoints.len(), 1);
}
