//! The service's data directory (its keys and NATS passwords, under `secrets/`) is out of
//! every folder instance's reach: a folder in it is refused, a folder holding it is synced
//! without it.

use serde_json::json;
use tributary_connector_folder::FolderConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{PluginError, SyncRequest};

use crate::helpers::{at, try_sync_in, TestFolder};

/// A folder laid out as a service's: `data/secrets/master.key.txt`, `data/secrets/nats/
/// connector.txt` (extensions a config could ask for), and `notes/a.md` beside `data`.
fn service_folder() -> TestFolder {
    let folder = TestFolder::new();
    folder.write("data/secrets/master.key.txt", "MASTER-KEY", at(1, 1));
    folder.write("data/secrets/nats/connector.txt", "NATS-PASSWORD", at(1, 1));
    folder.write("data/plugins/x/plugin.md", "# a plugin", at(1, 1));
    folder.write("notes/a.md", "# A\n", at(1, 1));
    folder
}

/// A sync of `path` by an instance of a connector service whose `data_dir` is `data_dir`.
async fn sync_as_service(
    folder: &TestFolder,
    path: std::path::PathBuf,
) -> Result<crate::helpers::SyncOutcome, PluginError> {
    let config = json!({ "path": path, "extensions": ["md", "txt"] });
    let test = TestContext::new(&["data:write:documents"], config)
        .with_protected_paths(vec![folder.path("data")]);
    try_sync_in(
        &FolderConnector::new(),
        &test,
        None,
        SyncRequest::incremental(),
    )
    .await
}

#[tokio::test]
async fn a_folder_in_the_services_data_directory_is_refused_naming_path() {
    // The attack: whoever may configure an instance points it at the secrets directory (or
    // the data directory, or a link to either) and reads the master key from the index.
    let folder = service_folder();
    std::os::unix::fs::symlink(folder.path("data/secrets"), folder.path("innocent")).unwrap();
    for path in [
        folder.path("data/secrets"),
        folder.path("data/secrets/nats"),
        folder.path("data"),
        folder.path("data/../data/secrets"),
        folder.path("innocent"),
    ] {
        match sync_as_service(&folder, path.clone()).await {
            Err(PluginError::Config { field, message }) => {
                assert_eq!(field, "path", "{message}");
                assert!(message.contains("data directory"), "{message}");
                assert!(message.contains("secrets/"), "{message}");
            }
            other => panic!("{}: expected a config error, got {other:?}", path.display()),
        }
    }
}

#[tokio::test]
async fn a_folder_that_holds_the_data_directory_is_synced_without_it() {
    let folder = service_folder();
    let outcome = sync_as_service(&folder, folder.root().to_owned())
        .await
        .unwrap();
    assert_eq!(outcome.upserted(), ["notes/a.md"]);
}
