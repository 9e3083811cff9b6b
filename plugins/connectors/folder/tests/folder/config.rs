//! A bad config fails the sync with an error naming the field.

use serde_json::json;

use crate::helpers::{config_error, TestFolder};

#[tokio::test]
async fn a_missing_path_is_named() {
    let (field, message) = config_error(json!({ "extensions": ["md"] })).await;
    assert_eq!(field, "path", "{message}");
}

#[tokio::test]
async fn a_path_that_is_a_file_or_relative_or_missing_is_named() {
    let folder = TestFolder::new();
    folder.write("file.md", "x", crate::helpers::at(1, 1));

    for path in [
        folder.path("file.md"),
        "relative/notes".into(),
        folder.path("nowhere"),
    ] {
        let (field, message) = config_error(json!({ "path": path })).await;
        assert_eq!(field, "path", "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}

#[tokio::test]
async fn an_unknown_field_is_named() {
    let folder = TestFolder::new();
    let (field, message) = config_error(folder.config(json!({ "colour": "blue" }))).await;
    assert_eq!(field, "colour", "{message}");
}

#[tokio::test]
async fn a_mistyped_field_or_bad_pattern_is_named() {
    let folder = TestFolder::new();
    let (field, _) = config_error(folder.config(json!({ "maxFileBytes": "big" }))).await;
    assert_eq!(field, "maxFileBytes");
    let (field, _) = config_error(folder.config(json!({ "exclude": ["ok/**", "a/[b"] }))).await;
    assert_eq!(field, "exclude[1]");
    let (field, _) = config_error(folder.config(json!({ "extensions": [] }))).await;
    assert_eq!(field, "extensions");
}

#[tokio::test]
async fn the_schedule_is_accepted_and_ignored() {
    let folder = TestFolder::new();
    folder.write("a.md", "# A\n", crate::helpers::at(1, 1));
    let outcome = crate::helpers::sync(
        folder.config(json!({ "schedule": "15m" })),
        None,
        tributary_plugin_sdk::SyncRequest::incremental(),
    )
    .await;
    assert_eq!(outcome.upserted(), ["a.md"]);
}
