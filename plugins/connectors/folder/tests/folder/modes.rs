//! Full syncs and backfills.

use chrono::TimeDelta;
use tributary_plugin_sdk::SyncRequest;

use crate::helpers::{at, notes_config, notes_folder, sync, NOTES};

#[tokio::test]
async fn a_full_sync_yields_every_file_again() {
    // Proves that a full sync sends unchanged files, with their versions unchanged.
    let folder = notes_folder();
    let config = notes_config(&folder);
    let first = sync(config.clone(), None, SyncRequest::incremental()).await;

    let full = sync(config, Some(first.final_cursor()), SyncRequest::full()).await;

    assert_eq!(full.upserted(), NOTES);
    assert!(full.deleted().is_empty());
    assert_eq!(full.item("alpha.md").source_modified_at, at(1, 10));
    assert_eq!(full.final_cursor(), first.final_cursor());
}

#[tokio::test]
async fn a_full_sync_sends_a_change_the_mtime_missed_as_a_newer_version() {
    // Proves that content changed within the mtime's resolution (same mtime, same size) is
    // found by a full sync and sent with a version newer than the last one, so the ETL takes it.
    let folder = notes_folder();
    let config = notes_config(&folder);
    let first = sync(config.clone(), None, SyncRequest::incremental()).await;
    folder.write(
        "notes/gamma.txt",
        "Plain *TEXT* stays as it is.\n",
        at(3, 10),
    );

    let incremental = sync(
        config.clone(),
        Some(first.final_cursor()),
        SyncRequest::incremental(),
    )
    .await;
    let full = sync(
        config.clone(),
        Some(first.final_cursor()),
        SyncRequest::full(),
    )
    .await;

    assert!(
        incremental.items.is_empty(),
        "an unchanged mtime and size are trusted"
    );
    let gamma = full.item("notes/gamma.txt");
    assert_eq!(
        gamma.source_modified_at,
        at(3, 10) + TimeDelta::microseconds(1)
    );
    assert_eq!(
        full.document("notes/gamma.txt").content,
        "Plain *TEXT* stays as it is.\n"
    );
    // Unchanged files keep their versions.
    assert_eq!(full.item("alpha.md").source_modified_at, at(1, 10));

    // The newer version is remembered: a second full sync sends it again, not a newer one.
    let again = sync(config, Some(full.final_cursor()), SyncRequest::full()).await;
    assert_eq!(
        again.item("notes/gamma.txt").source_modified_at,
        gamma.source_modified_at
    );
}

#[tokio::test]
async fn a_backfill_yields_only_the_files_modified_since_its_date() {
    // Proves the backfill window: mtime at or after `since` (notes are dated March 1 to 4).
    let folder = notes_folder();
    let config = notes_config(&folder);
    let first = sync(config.clone(), None, SyncRequest::incremental()).await;

    let backfill = sync(
        config,
        Some(first.final_cursor()),
        SyncRequest::backfill(at(2, 10)),
    )
    .await;

    assert_eq!(
        backfill.upserted(),
        ["notes/beta.md", "notes/gamma.txt", "untitled.markdown"]
    );
    assert!(backfill.ended_with_checkpoint);
}

#[tokio::test]
async fn a_backfill_also_sends_what_changed_outside_its_window() {
    // Proves that a backfill leaves the index as complete as an incremental sync would.
    let folder = notes_folder();
    let config = notes_config(&folder);
    let first = sync(config.clone(), None, SyncRequest::incremental()).await;
    folder.write("old.txt", "new file, old date\n", at(1, 1));
    folder.remove("alpha.md");

    let backfill = sync(
        config,
        Some(first.final_cursor()),
        SyncRequest::backfill(at(4, 0)),
    )
    .await;

    assert_eq!(backfill.upserted(), ["old.txt", "untitled.markdown"]);
    assert_eq!(backfill.deleted(), ["alpha.md"]);
}
