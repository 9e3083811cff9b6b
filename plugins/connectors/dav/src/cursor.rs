//! The cursor: per collection, the sync token of its last complete pass and the members
//! yielded so far with the etag of the version yielded.
//!
//! ```json
//! { "version": 1,
//!   "collections": {
//!     "/ada/contacts/": { "kind": "addressbook",
//!                         "sync_token": "http://radicale.org/ns/sync/4f…",
//!                         "members": { "a.vcf": "\"9c1e…\"", "b.vcf": "\"77d0…\"" } } } }
//! ```
//!
//! - `sync_token` moves only when a collection's pass completes; until then a checkpoint
//!   keeps the old one, so a resumed sync asks the server for the same changes again.
//! - `members` is updated after every batch. A change the server reports for a member whose
//!   stored etag matches was yielded before the sync was stopped, and is skipped: a resumed
//!   sync yields no item twice, and a member changed again since is fetched again.
//! - `members` is also what deletions are detected against when the whole collection is
//!   listed again (a full sync, or a token the server no longer accepts).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tributary_plugin_sdk::{Cursor, PluginError};

use crate::webdav::CollectionKind;

/// The cursor format this version writes and reads.
const VERSION: u32 = 1;

/// Where the sync of every collection got to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DavCursor {
    /// The format, for a later version to read an older cursor.
    pub version: u32,
    /// By collection key (its decoded path, ending in `/`).
    #[serde(default)]
    pub collections: BTreeMap<String, CollectionState>,
}

/// Where the sync of one collection got to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CollectionState {
    /// Address book or calendar: the entity type of its members' tombstones.
    pub kind: CollectionKind,
    /// The token of the last complete pass; `None` before the first completes, or when the
    /// server does not support `sync-collection`.
    #[serde(default)]
    pub sync_token: Option<String>,
    /// Members yielded, by name inside the collection, with the etag of the version
    /// yielded (empty when the server gave none).
    #[serde(default)]
    pub members: BTreeMap<String, String>,
}

impl CollectionState {
    /// A collection not synced before.
    pub fn new(kind: CollectionKind) -> Self {
        CollectionState {
            kind,
            sync_token: None,
            members: BTreeMap::new(),
        }
    }
}

impl DavCursor {
    /// The cursor the service handed back, or an empty one.
    pub fn read(cursor: Option<&Cursor>) -> Result<Self, PluginError> {
        let Some(cursor) = cursor else {
            return Ok(DavCursor {
                version: VERSION,
                collections: BTreeMap::new(),
            });
        };
        let parsed: DavCursor = cursor.parse()?;
        if parsed.version != VERSION {
            return Err(PluginError::Other(format!(
                "unreadable cursor: version {} is not {VERSION}; run a full sync without a cursor",
                parsed.version
            )));
        }
        Ok(parsed)
    }

    /// The cursor to hand the service.
    pub fn to_cursor(&self) -> Result<Cursor, PluginError> {
        Cursor::new(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_cursor_round_trips_through_json() {
        let mut cursor = DavCursor::read(None).unwrap();
        let mut state = CollectionState::new(CollectionKind::Calendar);
        state.sync_token = Some("t1".into());
        state.members.insert("a.ics".into(), "\"e\"".into());
        cursor.collections.insert("/ada/cal/".into(), state);
        let stored = cursor.to_cursor().unwrap();
        assert_eq!(stored.0["collections"]["/ada/cal/"]["kind"], "calendar");
        assert_eq!(DavCursor::read(Some(&stored)).unwrap(), cursor);
    }

    #[test]
    fn a_cursor_of_another_shape_is_refused() {
        assert!(DavCursor::read(Some(&Cursor(json!("page-2")))).is_err());
        assert!(DavCursor::read(Some(&Cursor(json!({ "version": 9 })))).is_err());
    }
}
