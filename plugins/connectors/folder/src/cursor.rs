//! The connector's cursor: what it knows of the folder, and where an interrupted scan got to.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tributary_plugin_sdk::{Cursor, PluginError, SyncMode, SyncRequest};

/// The cursor's shape; a cursor of another version is not read.
const CURSOR_VERSION: u32 = 1;

/// The cursor, as JSON:
///
/// ```json
/// { "version": 1,
///   "files": { "notes/a.md": { "mtime": "…", "size": 12, "sha256": "…" } },
///   "scan": { "mode": "full", "after": "notes/a.md" } }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FolderCursor {
    /// [`CURSOR_VERSION`].
    pub version: u32,
    /// Every file synced, by relative path, in path order.
    pub files: BTreeMap<String, FileState>,
    /// The scan in progress when the cursor was stored; `None` once a sync completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanProgress>,
}

/// What was last seen of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileState {
    /// Its modification time when it was last read.
    pub mtime: DateTime<Utc>,
    /// Its size then, in bytes: a change of size within the mtime's resolution is a change.
    pub size: u64,
    /// The SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The `source_modified_at` last sent for it, when that is not its `mtime` to the
    /// microsecond (it was advanced past an earlier version, see [`FileState::version_after`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_version: Option<DateTime<Utc>>,
}

impl FileState {
    /// The `source_modified_at` last sent for the file.
    pub fn last_sent_version(&self) -> DateTime<Utc> {
        self.sent_version.unwrap_or_else(|| to_micros(self.mtime))
    }

    /// The `source_modified_at` to send for a file at `mtime`, given what was sent before:
    /// the mtime, unless changed content would then not be newer than the version last sent
    /// (an edit within the mtime's resolution, a file replaced by an older copy), which would
    /// make the ETL ignore it: then one microsecond past the version last sent. Unchanged
    /// content is never sent with a version older than the last one.
    pub fn version_after(
        previous: Option<&FileState>,
        mtime: DateTime<Utc>,
        content_changed: bool,
    ) -> DateTime<Utc> {
        let version = to_micros(mtime);
        match previous.map(FileState::last_sent_version) {
            Some(last) if version <= last && content_changed => last + TimeDelta::microseconds(1),
            Some(last) if version < last => last,
            _ => version,
        }
    }
}

/// `at` truncated to microseconds, the precision versions are stored with.
pub(crate) fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// How far a scan got, so that a sync stopped part-way resumes where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanProgress {
    /// The mode of the scan.
    pub mode: SyncMode,
    /// For a backfill: how far back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The last relative path completed, in path order; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl FolderCursor {
    /// Reads the stored cursor. A missing cursor is an empty one. One that cannot be read
    /// (another version, a corrupt value) fails an incremental sync or a backfill, which
    /// would otherwise send every file again and miss the deletions; a full sync starts from
    /// an empty one, which is how to recover.
    pub fn load(cursor: Option<&Cursor>, mode: SyncMode) -> Result<Self, PluginError> {
        let Some(cursor) = cursor.filter(|c| !c.0.is_null()) else {
            return Ok(FolderCursor::empty());
        };
        let parsed = cursor.parse::<FolderCursor>().and_then(|c| {
            if c.version == CURSOR_VERSION {
                Ok(c)
            } else {
                Err(PluginError::Other(format!(
                    "unreadable cursor: version {} where {CURSOR_VERSION} is expected",
                    c.version
                )))
            }
        });
        match parsed {
            Ok(c) => Ok(c),
            Err(_) if mode == SyncMode::Full => Ok(FolderCursor::empty()),
            Err(e) => Err(PluginError::Other(format!(
                "{e}; a full sync rebuilds the cursor"
            ))),
        }
    }

    /// A cursor that knows no file.
    pub fn empty() -> Self {
        FolderCursor {
            version: CURSOR_VERSION,
            files: BTreeMap::new(),
            scan: None,
        }
    }

    /// The scan this sync runs. An interrupted scan is resumed when the request is the same
    /// (mode and date) or incremental (so the next scheduled sync finishes an interrupted
    /// full sync or backfill); any other request starts its own scan from the beginning.
    pub fn plan(&self, request: SyncRequest) -> ScanProgress {
        let since = match request.mode {
            SyncMode::Backfill => request.since,
            SyncMode::Incremental | SyncMode::Full => None,
        };
        match &self.scan {
            Some(progress)
                if request.mode == SyncMode::Incremental
                    || (progress.mode == request.mode && progress.since == since) =>
            {
                progress.clone()
            }
            _ => ScanProgress {
                mode: request.mode,
                since,
                after: None,
            },
        }
    }

    /// The cursor as handed to the service.
    pub fn to_cursor(&self) -> Result<Cursor, PluginError> {
        Cursor::new(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    fn state(mtime: DateTime<Utc>, sent: Option<DateTime<Utc>>) -> FileState {
        FileState {
            mtime,
            size: 1,
            sha256: String::new(),
            sent_version: sent,
        }
    }

    #[test]
    fn changed_content_is_sent_newer_than_the_last_version() {
        let previous = state(at(1_000), None);
        assert_eq!(
            FileState::version_after(Some(&previous), at(1_000), true),
            at(1_001)
        );
        assert_eq!(
            FileState::version_after(Some(&previous), at(500), true),
            at(1_001)
        );
        assert_eq!(
            FileState::version_after(Some(&previous), at(2_000), true),
            at(2_000)
        );
        assert_eq!(FileState::version_after(None, at(7), true), at(7));
    }

    #[test]
    fn unchanged_content_never_goes_back_in_version() {
        let previous = state(at(1_000), Some(at(1_001)));
        assert_eq!(
            FileState::version_after(Some(&previous), at(1_000), false),
            at(1_001)
        );
        assert_eq!(
            FileState::version_after(Some(&previous), at(3_000), false),
            at(3_000)
        );
    }

    #[test]
    fn an_interrupted_full_scan_is_resumed_by_an_incremental_sync_but_not_by_a_backfill() {
        let mut cursor = FolderCursor::empty();
        cursor.scan = Some(ScanProgress {
            mode: SyncMode::Full,
            since: None,
            after: Some("b.md".into()),
        });
        assert_eq!(
            cursor.plan(SyncRequest::incremental()).after.as_deref(),
            Some("b.md")
        );
        assert_eq!(
            cursor.plan(SyncRequest::full()).after.as_deref(),
            Some("b.md")
        );
        let backfill = cursor.plan(SyncRequest::backfill(at(0)));
        assert_eq!(backfill.mode, SyncMode::Backfill);
        assert_eq!(backfill.after, None);
    }

    #[test]
    fn an_unreadable_cursor_fails_all_but_a_full_sync() {
        let foreign = Cursor(json!({ "deltaLink": "x" }));
        assert!(FolderCursor::load(Some(&foreign), SyncMode::Incremental).is_err());
        assert_eq!(
            FolderCursor::load(Some(&foreign), SyncMode::Full).unwrap(),
            FolderCursor::empty()
        );
    }
}
