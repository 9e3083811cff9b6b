//! A temporary folder to sync, and a sync run collected into what it yielded.

use std::fs::{File, FileTimes};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tributary_connector_folder::FolderConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, ItemOperation, PluginError, SyncRequest, SyncStep,
};
use tributary_proto::model::DocumentFields;

/// How long a sync of a test folder may take.
const SYNC_DEADLINE: Duration = Duration::from_secs(30);

/// A date in 2024, at `hour`: test files get explicit, distinct modification times.
pub fn at(day: u32, hour: u32) -> DateTime<Utc> {
    match Utc.with_ymd_and_hms(2024, 3, day, hour, 0, 0).single() {
        Some(t) => t,
        None => panic!("bad test date 2024-03-{day} {hour}:00"),
    }
}

/// The value of a test set-up step that must work.
fn or_panic<T>(result: std::io::Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("cannot {what}: {e}"),
    }
}

/// A temporary folder, removed when dropped.
pub struct TestFolder {
    dir: TempDir,
}

impl TestFolder {
    pub fn new() -> Self {
        TestFolder {
            dir: or_panic(tempfile::tempdir(), "create a temporary directory"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Writes `content` to `relative` (creating directories) and sets its mtime.
    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>, mtime: DateTime<Utc>) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            or_panic(std::fs::create_dir_all(parent), "create directories");
        }
        or_panic(std::fs::write(&path, content), "write a file");
        self.set_mtime(relative, mtime);
    }

    pub fn set_mtime(&self, relative: &str, mtime: DateTime<Utc>) {
        let file = or_panic(
            File::options().write(true).open(self.path(relative)),
            "open a file",
        );
        or_panic(
            file.set_times(FileTimes::new().set_modified(mtime.into())),
            "set a file's mtime",
        );
    }

    pub fn remove(&self, relative: &str) {
        or_panic(std::fs::remove_file(self.path(relative)), "remove a file");
    }

    /// The config syncing this folder, with `extra` fields merged in.
    pub fn config(&self, extra: Value) -> Value {
        let mut config = json!({ "path": self.root() });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        config
    }
}

pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// Everything one sync yielded.
#[derive(Debug)]
pub struct SyncOutcome {
    pub items: Vec<ConnectorItem>,
    pub checkpoints: Vec<Cursor>,
    /// Whether the last step was a checkpoint.
    pub ended_with_checkpoint: bool,
}

impl SyncOutcome {
    /// The cursor to hand the next sync.
    pub fn final_cursor(&self) -> Cursor {
        match self.checkpoints.last() {
            Some(cursor) => cursor.clone(),
            None => panic!("the sync yielded no checkpoint"),
        }
    }

    /// External ids of the upserts, in the order yielded.
    pub fn upserted(&self) -> Vec<&str> {
        self.ids(ItemOperation::Upsert)
    }

    /// External ids of the tombstones, in the order yielded.
    pub fn deleted(&self) -> Vec<&str> {
        self.ids(ItemOperation::Delete)
    }

    fn ids(&self, operation: ItemOperation) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| i.operation == operation)
            .map(|i| i.external_id.as_str())
            .collect()
    }

    pub fn item(&self, external_id: &str) -> &ConnectorItem {
        match self.items.iter().find(|i| i.external_id == external_id) {
            Some(item) => item,
            None => panic!("no item `{external_id}` among {:?}", self.upserted()),
        }
    }

    /// The document an upsert carries.
    pub fn document(&self, external_id: &str) -> DocumentFields {
        serde_json::from_value(self.item(external_id).data.clone())
            .unwrap_or_else(|e| panic!("`{external_id}` does not carry DocumentFields: {e}"))
    }
}

/// Runs a whole sync with `connector` and collects it; panics if it fails.
pub async fn sync_with(
    connector: &FolderConnector,
    config: Value,
    cursor: Option<Cursor>,
    request: SyncRequest,
) -> SyncOutcome {
    match try_sync_with(connector, config, cursor, request).await {
        Ok(outcome) => outcome,
        Err(e) => panic!("the sync failed: {e}"),
    }
}

/// Runs a whole sync with the default connector.
pub async fn sync(config: Value, cursor: Option<Cursor>, request: SyncRequest) -> SyncOutcome {
    sync_with(&FolderConnector::new(), config, cursor, request).await
}

/// Runs a whole sync and collects it, or the error that ended it.
pub async fn try_sync_with(
    connector: &FolderConnector,
    config: Value,
    cursor: Option<Cursor>,
    request: SyncRequest,
) -> Result<SyncOutcome, PluginError> {
    let test = TestContext::new(&["data:write:documents"], config);
    try_sync_in(connector, &test, cursor, request).await
}

/// Runs a whole sync in `test`'s context and collects it, or the error that ended it.
pub async fn try_sync_in(
    connector: &FolderConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
    request: SyncRequest,
) -> Result<SyncOutcome, PluginError> {
    let mut steps = connector.sync(test.ctx(), cursor, request);
    let mut outcome = SyncOutcome {
        items: Vec::new(),
        checkpoints: Vec::new(),
        ended_with_checkpoint: false,
    };
    let collect = async {
        while let Some(step) = steps.next().await {
            match step? {
                SyncStep::Item(item) => {
                    outcome.items.push(item);
                    outcome.ended_with_checkpoint = false;
                }
                SyncStep::Checkpoint(cursor) => {
                    outcome.checkpoints.push(cursor);
                    outcome.ended_with_checkpoint = true;
                }
            }
        }
        Ok::<_, PluginError>(())
    };
    match tokio::time::timeout(SYNC_DEADLINE, collect).await {
        Ok(result) => result?,
        Err(_) => panic!("the sync did not end within {SYNC_DEADLINE:?}"),
    }
    Ok(outcome)
}

/// Runs a sync until its first checkpoint, then drops it, as a process killed right after
/// the service stored that checkpoint would: the items before it, and the checkpoint.
pub async fn sync_until_first_checkpoint(
    connector: &FolderConnector,
    config: Value,
    cursor: Option<Cursor>,
    request: SyncRequest,
) -> (Vec<ConnectorItem>, Cursor) {
    let test = TestContext::new(&["data:write:documents"], config);
    let mut steps = connector.sync(test.ctx(), cursor, request);
    let mut items = Vec::new();
    let first_checkpoint = async {
        loop {
            match steps.next().await {
                Some(Ok(SyncStep::Item(item))) => items.push(item),
                Some(Ok(SyncStep::Checkpoint(cursor))) => return cursor,
                Some(Err(e)) => panic!("the sync failed: {e}"),
                None => panic!("the sync ended without a checkpoint"),
            }
        }
    };
    let cursor = match tokio::time::timeout(SYNC_DEADLINE, first_checkpoint).await {
        Ok(cursor) => cursor,
        Err(_) => panic!("no checkpoint within {SYNC_DEADLINE:?}"),
    };
    drop(steps);
    (items, cursor)
}

/// The config error a sync with `config` ends with: `(field, message)`.
pub async fn config_error(config: Value) -> (String, String) {
    let result = try_sync_with(
        &FolderConnector::new(),
        config,
        None,
        SyncRequest::incremental(),
    )
    .await;
    match result {
        Err(PluginError::Config { field, message }) => (field, message),
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(outcome) => panic!("expected a config error, the sync yielded {outcome:?}"),
    }
}

/// The Markdown note with front matter in [`notes_folder`].
pub const ALPHA_MD: &str =
    "---\ntitle: Alpha from front matter\ntags: [x]\n---\n\n# Alpha heading\n\nSome **bold** words and a [link](https://example.com).\n";
/// The Markdown note with a heading in [`notes_folder`].
pub const BETA_MD: &str = "Intro.\n\n# Beta heading\n\n- one\n- two\n";
/// The plain text note in [`notes_folder`].
pub const GAMMA_TXT: &str = "Plain *text* stays as it is.\n";

/// A folder with four synced files (`alpha.md`, `notes/beta.md`, `notes/gamma.txt`,
/// `untitled.markdown`) and others that must be left out: another extension, hidden files
/// and directories, an excluded directory, an oversized file. Synced with [`notes_config`].
pub fn notes_folder() -> TestFolder {
    let folder = TestFolder::new();
    folder.write("alpha.md", ALPHA_MD, at(1, 10));
    folder.write("notes/beta.md", BETA_MD, at(2, 10));
    folder.write("notes/gamma.txt", GAMMA_TXT, at(3, 10));
    folder.write("untitled.markdown", "no heading here\n", at(4, 10));
    folder.write("image.png", [0x89, b'P', b'N', b'G'], at(1, 10));
    folder.write("notes/script.sh", "echo hi\n", at(1, 10));
    folder.write(".hidden.md", "# Hidden\n", at(1, 10));
    folder.write(".obsidian/workspace.md", "# Settings\n", at(1, 10));
    folder.write("drafts/wip.md", "# Draft\n", at(1, 10));
    folder.write("notes/big.txt", "x".repeat(300), at(1, 10));
    folder
}

/// The config for [`notes_folder`]: `drafts/**` excluded, files over 200 bytes skipped.
pub fn notes_config(folder: &TestFolder) -> Value {
    folder.config(json!({ "exclude": ["drafts/**"], "maxFileBytes": 200 }))
}

/// The relative paths [`notes_folder`] syncs, in path order.
pub const NOTES: [&str; 4] = [
    "alpha.md",
    "notes/beta.md",
    "notes/gamma.txt",
    "untitled.markdown",
];
