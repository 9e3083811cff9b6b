//! Which files a sync looks at: extensions, hidden paths, exclusions, size, links.

use serde_json::json;
use tributary_plugin_sdk::SyncRequest;

use crate::helpers::{at, notes_config, notes_folder, sync, TestFolder};

#[tokio::test]
async fn configured_extensions_replace_the_default_ones_and_match_without_case() {
    // Proves that `extensions` selects files, with or without a dot, in any case.
    let folder = TestFolder::new();
    folder.write("a.md", "# A\n", at(1, 1));
    folder.write("b.ORG", "* heading\n", at(1, 1));
    folder.write("c.rst", "title\n", at(1, 1));

    let outcome = sync(
        folder.config(json!({ "extensions": ["org", ".rst"] })),
        None,
        SyncRequest::incremental(),
    )
    .await;

    assert_eq!(outcome.upserted(), ["b.ORG", "c.rst"]);
    assert_eq!(
        outcome.document("b.ORG").mime_type.as_deref(),
        Some("text/plain")
    );
}

#[tokio::test]
async fn a_file_that_becomes_excluded_or_too_large_is_deleted() {
    // Proves that the documents follow the selection: what leaves it is a deletion.
    let folder = notes_folder();
    let first = sync(notes_config(&folder), None, SyncRequest::incremental()).await;
    folder.write("alpha.md", "y".repeat(250), at(9, 9));

    let second = sync(
        folder.config(json!({ "exclude": ["notes/**"], "maxFileBytes": 200 })),
        Some(first.final_cursor()),
        SyncRequest::incremental(),
    )
    .await;

    assert_eq!(
        second.deleted(),
        ["alpha.md", "notes/beta.md", "notes/gamma.txt"]
    );
    // drafts/ is no longer excluded.
    assert_eq!(second.upserted(), ["drafts/wip.md"]);
}

#[cfg(unix)]
#[tokio::test]
async fn symbolic_links_are_not_followed() {
    // Proves that a link to a file or directory, inside or outside the folder, is skipped.
    let outside = TestFolder::new();
    outside.write("secret.md", "# Outside\n", at(1, 1));
    outside.write("dir/also.md", "# Outside too\n", at(1, 1));
    let folder = TestFolder::new();
    folder.write("real.md", "# Real\n", at(1, 1));
    std::os::unix::fs::symlink(outside.path("secret.md"), folder.path("link.md")).unwrap();
    std::os::unix::fs::symlink(outside.path("dir"), folder.path("linked-dir")).unwrap();
    std::os::unix::fs::symlink(folder.path("real.md"), folder.path("alias.md")).unwrap();

    let outcome = sync(folder.config(json!({})), None, SyncRequest::incremental()).await;

    assert_eq!(outcome.upserted(), ["real.md"]);
}

#[tokio::test]
async fn text_that_is_not_utf8_is_decoded_lossily_not_skipped() {
    // Proves the choice for invalid UTF-8: replaced, flagged, hashed as the bytes on disk.
    let folder = TestFolder::new();
    folder.write("latin1.txt", b"caf\xe9 cr\xe8me", at(1, 1));

    let outcome = sync(folder.config(json!({})), None, SyncRequest::incremental()).await;

    let document = outcome.document("latin1.txt");
    assert_eq!(document.content, "caf\u{fffd} cr\u{fffd}me");
    assert_eq!(document.extra["lossy_utf8"], json!(true));
    assert_eq!(
        document.content_hash,
        Some(crate::helpers::sha256_hex(b"caf\xe9 cr\xe8me"))
    );
}
