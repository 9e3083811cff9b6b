//! Incremental syncs: the first one, one with nothing new, one after changes.

use chrono::Utc;
use serde_json::json;
use tributary_plugin_sdk::{EntityType, ItemOperation, SyncRequest};

use crate::helpers::{
    at, notes_config, notes_folder, sha256_hex, sync, ALPHA_MD, BETA_MD, GAMMA_TXT, NOTES,
};

#[tokio::test]
async fn the_first_sync_yields_every_selected_file_as_a_document() {
    // Proves the mapping of a file onto DocumentFields, and which files are selected.
    let folder = notes_folder();

    let outcome = sync(notes_config(&folder), None, SyncRequest::incremental()).await;

    assert_eq!(outcome.upserted(), NOTES);
    for item in &outcome.items {
        assert_eq!(item.entity_type, EntityType::Document);
        assert_eq!(item.instance_id, "test-instance");
        assert_eq!(item.operation, ItemOperation::Upsert);
    }

    let alpha = outcome.document("alpha.md");
    assert_eq!(alpha.title, "Alpha from front matter");
    assert_eq!(alpha.path.as_deref(), Some("alpha.md"));
    assert_eq!(alpha.mime_type.as_deref(), Some("text/markdown"));
    assert_eq!(alpha.content, "Alpha heading\nSome bold words and a link.");
    assert_eq!(alpha.modified_at, Some(at(1, 10)));
    assert_eq!(alpha.content_hash, Some(sha256_hex(ALPHA_MD)));
    assert_eq!(alpha.extra["size"], json!(ALPHA_MD.len()));
    assert_eq!(outcome.item("alpha.md").source_modified_at, at(1, 10));
    assert_eq!(outcome.item("alpha.md").raw["source"], json!(ALPHA_MD));

    let beta = outcome.document("notes/beta.md");
    assert_eq!(beta.title, "Beta heading");
    assert_eq!(beta.path.as_deref(), Some("notes/beta.md"));
    assert_eq!(beta.content, "Intro.\nBeta heading\none\ntwo");
    assert_eq!(beta.content_hash, Some(sha256_hex(BETA_MD)));

    let gamma = outcome.document("notes/gamma.txt");
    assert_eq!(gamma.title, "gamma");
    assert_eq!(gamma.mime_type.as_deref(), Some("text/plain"));
    assert_eq!(gamma.content, GAMMA_TXT);
    assert_eq!(gamma.modified_at, Some(at(3, 10)));

    let untitled = outcome.document("untitled.markdown");
    assert_eq!(untitled.title, "untitled");
    assert_eq!(untitled.mime_type.as_deref(), Some("text/markdown"));
}

#[tokio::test]
async fn a_sync_ends_with_a_checkpoint_that_holds_no_scan_in_progress() {
    // Proves that the final cursor records a completed sync, with an entry per file.
    let folder = notes_folder();

    let outcome = sync(notes_config(&folder), None, SyncRequest::incremental()).await;

    assert!(outcome.ended_with_checkpoint);
    let cursor = outcome.final_cursor();
    assert!(cursor.0.get("scan").is_none(), "{}", cursor.0);
    let known: Vec<&String> = cursor.0["files"].as_object().unwrap().keys().collect();
    assert_eq!(known, NOTES);
}

#[tokio::test]
async fn a_second_incremental_sync_with_the_final_cursor_yields_nothing() {
    // Proves that unchanged files are neither sent again nor re-indexed.
    let folder = notes_folder();
    let config = notes_config(&folder);
    let first = sync(config.clone(), None, SyncRequest::incremental()).await;

    let second = sync(
        config,
        Some(first.final_cursor()),
        SyncRequest::incremental(),
    )
    .await;

    assert!(second.items.is_empty(), "{:?}", second.upserted());
    assert_eq!(second.final_cursor(), first.final_cursor());
}

#[tokio::test]
async fn after_an_edit_an_add_a_touch_and_a_delete_the_next_sync_yields_the_edit_the_add_and_a_tombstone(
) {
    // Proves change detection: by mtime first, then by content hash; and deletions.
    let folder = notes_folder();
    let config = notes_config(&folder);
    let first = sync(config.clone(), None, SyncRequest::incremental()).await;
    folder.write("notes/beta.md", "# Beta, edited\n", at(10, 10));
    folder.write("notes/new.txt", "a new note\n", at(10, 11));
    folder.set_mtime("notes/gamma.txt", at(10, 12));
    folder.remove("untitled.markdown");
    let before = Utc::now();

    let second = sync(
        config.clone(),
        Some(first.final_cursor()),
        SyncRequest::incremental(),
    )
    .await;

    assert_eq!(second.upserted(), ["notes/beta.md", "notes/new.txt"]);
    assert_eq!(second.deleted(), ["untitled.markdown"]);
    assert_eq!(second.document("notes/beta.md").title, "Beta, edited");
    assert_eq!(second.item("notes/beta.md").source_modified_at, at(10, 10));
    let tombstone = second.item("untitled.markdown");
    assert!(tombstone.source_modified_at >= before - chrono::TimeDelta::seconds(1));
    assert!(second.ended_with_checkpoint);

    // The touched file's new mtime is in the index: the next sync reads nothing again.
    let third = sync(
        config,
        Some(second.final_cursor()),
        SyncRequest::incremental(),
    )
    .await;
    assert!(third.items.is_empty(), "{:?}", third.items);
}
