//! The built-in local folder connector (`tributary.folder`): the text and Markdown files
//! under a folder, as documents.
//!
//! Each synced file becomes one [`EntityType::Document`](tributary_plugin_sdk::EntityType)
//! item whose external id is its path relative to the folder, `/`-separated (`notes/a.md`):
//! a renamed file is a deletion of the old path and a new document at the new one. Its data
//! is a `DocumentFields`: the title (Markdown: the front matter's `title`, else the first
//! level-1 heading; else the file stem), the path, the media type (`text/markdown`,
//! `text/plain`), the searchable text (Markdown without its markup; plain text as is;
//! invalid UTF-8 replaced, never skipped), the modification time, the SHA-256 of the bytes
//! and `extra.size`.
//!
//! The cursor holds an index of every file synced (mtime, size, hash) and, while a scan is
//! under way, the last path it completed, so that a sync stopped part-way resumes after its
//! last checkpoint. An incremental sync reads only files whose mtime or size changed and
//! sends only those whose bytes changed; files gone from the folder are sent as deletions.
//! A full sync sends every file, a backfill every file modified since its date, and both
//! also do what an incremental sync does. See `docs/connectors/folder.md`.
//!
//! Symbolic links inside the folder are skipped, never followed: nothing outside the folder
//! is read. Hidden files and directories are skipped too.

// Reading files is this connector's whole job, so it is the one connector allowed the file
// APIs the other built-in plugins may not use (plugins/connectors/clippy.toml). What it may read is held
// to its configured folder by its own checks (scan.rs), not by the lint.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod config;
mod cursor;
mod document;
mod markdown;
mod scan;
mod sync;

use futures::stream::BoxStream;
use tributary_plugin_sdk::{
    ConnectorPlugin, Cursor, PluginContext, PluginError, SyncRequest, SyncStep,
};

pub use config::{FolderConfig, DEFAULT_EXTENSIONS, DEFAULT_MAX_FILE_BYTES};

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The manifest's entrypoint, by which the connector service finds this connector.
pub const ENTRYPOINT: &str = "builtin:folder";

/// The local folder connector; see the [crate] documentation.
///
/// ```
/// use tributary_connector_folder::FolderConnector;
///
/// let connector = FolderConnector::new();
/// let for_tests = FolderConnector::with_checkpoint_every(2);
/// # let _ = (connector, for_tests);
/// ```
#[derive(Debug, Clone)]
pub struct FolderConnector {
    /// A checkpoint after this many files sent, deleted or re-indexed.
    checkpoint_every: usize,
}

impl FolderConnector {
    /// How many files a sync sends, deletes or re-indexes between two checkpoints.
    pub const DEFAULT_CHECKPOINT_EVERY: usize = 100;

    /// A connector checkpointing every [`FolderConnector::DEFAULT_CHECKPOINT_EVERY`] files.
    pub fn new() -> Self {
        FolderConnector {
            checkpoint_every: Self::DEFAULT_CHECKPOINT_EVERY,
        }
    }

    /// A connector checkpointing every `files` files sent, deleted or re-indexed (at least
    /// one); files unchanged since the last sync do not count.
    pub fn with_checkpoint_every(files: usize) -> Self {
        FolderConnector {
            checkpoint_every: files.max(1),
        }
    }
}

impl Default for FolderConnector {
    fn default() -> Self {
        FolderConnector::new()
    }
}

impl ConnectorPlugin for FolderConnector {
    /// Scans the folder on tokio's blocking pool, yielding items and checkpoints as it goes;
    /// the last step of a successful sync is a checkpoint. A bad config is
    /// [`PluginError::Config`] naming the field (`path`, `exclude[1]`); an unreadable cursor
    /// fails every mode but a full sync, which rebuilds it.
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        sync::SyncJob {
            ctx,
            cursor,
            request,
            checkpoint_every: self.checkpoint_every,
            #[cfg(test)]
            before_read: None,
        }
        .into_stream()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tributary_plugin_sdk::{validate_manifest, PluginType};

    use super::*;

    #[test]
    fn the_manifest_is_valid_and_names_the_entrypoint() {
        let manifest = validate_manifest(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(manifest.id, "tributary.folder");
        assert_eq!(manifest.plugin_type, PluginType::Connector);
        assert_eq!(manifest.entrypoint, ENTRYPOINT);
        let permissions: Vec<String> = manifest.permissions.iter().map(|p| p.to_string()).collect();
        assert_eq!(permissions, ["data:write:documents"]);
        assert_eq!(
            manifest.config_schema["required"],
            serde_json::json!(["path"])
        );
        assert_eq!(
            manifest.config_schema["additionalProperties"],
            serde_json::json!(false)
        );
    }

    #[test]
    fn the_schema_defaults_match_the_code() {
        let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        let properties = &manifest["configSchema"]["properties"];
        assert_eq!(
            properties["extensions"]["default"],
            serde_json::json!(DEFAULT_EXTENSIONS)
        );
        assert_eq!(
            properties["maxFileBytes"]["default"],
            serde_json::json!(DEFAULT_MAX_FILE_BYTES)
        );
    }
}
