//! The built-in connectors run by the real service, their items stored by the real ETL.

use std::time::Duration;

use serde_json::json;
use tributary_kit::testing::Accept;
use tributary_proto::events::{EventKind, SyncEvent};

use crate::support::{Harness, TempDir};

const DOCUMENTS: &str = "SELECT count(*) FROM document WHERE deleted_at IS NULL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_connector_syncs_notes_then_their_changes_and_deletions() {
    let mesh = Harness::start(true).await;
    let notes = TempDir::new("folder-notes");
    std::fs::write(
        notes.0.join("alpha.md"),
        "# Alpha plan\n\nShip the *first* part.\n",
    )
    .unwrap();
    std::fs::write(notes.0.join("beta.txt"), "Beta notes in plain text.\n").unwrap();
    std::fs::create_dir_all(notes.0.join("sub")).unwrap();
    std::fs::write(notes.0.join("sub/gamma.md"), "# Gamma\n\nNested.\n").unwrap();
    std::fs::write(notes.0.join("image.png"), [0u8, 1, 2]).unwrap();
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(
        "tributary.folder",
        "notes",
        json!({ "path": notes.0.display().to_string() }),
        Accept::Requested,
    )
    .await;
    mesh.enable("notes").await;
    let done = completed.next_of("notes", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 3);
    mesh.wait_for_rows(DOCUMENTS, 3, Duration::from_secs(30))
        .await;
    let pool = mesh.env.pool().await;
    let (title, content): (String, String) = sqlx::query_as(
        "SELECT d.title, d.content FROM document d JOIN source_record s ON s.entity_id = d.id \
         WHERE s.instance_id = 'notes' AND s.external_id = 'alpha.md'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(title, "Alpha plan");
    assert!(content.contains("Ship the first part"), "{content}");

    // One edit, one deletion: only those travel.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(
        notes.0.join("alpha.md"),
        "# Alpha plan\n\nShip the second part.\n",
    )
    .unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(notes.0.join("alpha.md"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::fs::remove_file(notes.0.join("beta.txt")).unwrap();
    mesh.sync_now(json!({ "instance_id": "notes" })).await;
    let done = completed.next_of("notes", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 2, "{done:?}");
    mesh.wait_for_rows(DOCUMENTS, 2, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM document WHERE content LIKE '%second part%'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.stop().await;
}
