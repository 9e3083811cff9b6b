//! What to do with each item of a batch, decided from what is already stored. Pure: no I/O.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::normalise::{NormalisedItem, SourceKey};

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemOutcome {
    /// A new entity was stored.
    Created,
    /// A stored entity changed.
    Updated,
    /// A stored entity was deleted.
    Deleted,
    /// The item's person turned out to be someone already known, and was merged into them.
    Merged,
    /// A newer version with the same content: the version is recorded, nothing is announced.
    Unchanged,
    /// The same version of the same item again.
    Duplicate,
    /// An older version than the one stored: ignored.
    Stale,
    /// A newer version of the same item came in the same batch.
    Superseded,
    /// A tombstone for something never stored: recorded, so an older version arriving late
    /// does not bring it back.
    TombstoneRecorded,
    /// A purge's tombstone for something already deleted or never stored: its source record,
    /// if any, is forgotten.
    Forgotten,
}

impl ItemOutcome {
    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Created => "created",
            ItemOutcome::Updated => "updated",
            ItemOutcome::Deleted => "deleted",
            ItemOutcome::Merged => "merged",
            ItemOutcome::Unchanged => "unchanged",
            ItemOutcome::Duplicate => "duplicate",
            ItemOutcome::Stale => "stale",
            ItemOutcome::Superseded => "superseded",
            ItemOutcome::TombstoneRecorded => "tombstone_recorded",
            ItemOutcome::Forgotten => "forgotten",
        }
    }
}

/// A source record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSource {
    /// The entity it maps to; nil for a tombstone of something never stored.
    pub entity_id: Uuid,
    /// The newest version seen.
    pub version: DateTime<Utc>,
    /// Hash of that version's content.
    pub content_hash: String,
    /// Whether the source deleted it.
    pub deleted: bool,
}

/// What a batch does with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to write.
    Skip(ItemOutcome),
    /// Record the newer version; the content is the same.
    Touch {
        /// The entity it maps to.
        entity_id: Uuid,
    },
    /// Write the item's content.
    Write {
        /// The entity it maps to (fresh for a new one).
        entity_id: Uuid,
        /// Whether its source record is new.
        new_source: bool,
        /// Whether the entity row exists already (perhaps deleted).
        row_exists: bool,
    },
    /// Forget the source record (a purge's, of something not live).
    Forget,
    /// Delete the entity.
    Tombstone {
        /// The entity it maps to; nil when it was never stored.
        entity_id: Uuid,
        /// Whether its source record is new.
        new_source: bool,
    },
}

/// The newest item of each source key in the batch; the others are [`ItemOutcome::Superseded`]
/// or [`ItemOutcome::Duplicate`].
pub fn newest_per_key(items: &[&NormalisedItem]) -> (Vec<usize>, HashMap<usize, ItemOutcome>) {
    let mut newest: HashMap<&SourceKey, usize> = HashMap::new();
    let mut dropped = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        match newest.get(&item.key).copied() {
            None => {
                newest.insert(&item.key, i);
            }
            Some(j) => {
                let kept = items[j];
                let newer = item.version > kept.version
                    || (item.version == kept.version && item.content_hash != kept.content_hash);
                let (winner, loser) = if newer { (i, j) } else { (j, i) };
                let same = items[winner].version == items[loser].version
                    && items[winner].content_hash == items[loser].content_hash;
                dropped.insert(
                    loser,
                    if same {
                        ItemOutcome::Duplicate
                    } else {
                        ItemOutcome::Superseded
                    },
                );
                newest.insert(&item.key, winner);
            }
        }
    }
    let mut kept: Vec<usize> = newest.into_values().collect();
    kept.sort_unstable();
    (kept, dropped)
}

/// Decides what to do with an item, given its stored source record.
pub fn decide(item: &NormalisedItem, stored: Option<&StoredSource>) -> Action {
    if item.forget {
        return decide_purge(stored);
    }
    let is_tombstone = item.fields.is_none();
    let Some(stored) = stored else {
        return if is_tombstone {
            Action::Tombstone {
                entity_id: Uuid::nil(),
                new_source: true,
            }
        } else {
            Action::Write {
                entity_id: Uuid::now_v7(),
                new_source: true,
                row_exists: false,
            }
        };
    };
    if item.version < stored.version {
        return Action::Skip(ItemOutcome::Stale);
    }
    let same_content = item.content_hash == stored.content_hash;
    if item.version == stored.version && same_content {
        return Action::Skip(ItemOutcome::Duplicate);
    }
    let row_exists = !stored.entity_id.is_nil();
    if is_tombstone {
        if stored.deleted || !row_exists {
            return Action::Touch {
                entity_id: stored.entity_id,
            };
        }
        return Action::Tombstone {
            entity_id: stored.entity_id,
            new_source: false,
        };
    }
    if same_content && !stored.deleted {
        return Action::Touch {
            entity_id: stored.entity_id,
        };
    }
    Action::Write {
        entity_id: if row_exists {
            stored.entity_id
        } else {
            Uuid::now_v7()
        },
        new_source: false,
        row_exists,
    }
}

/// A purge's tombstone: deletes the entity when it is live, whatever the versions say (the
/// purge is of everything the instance brought in), and forgets the record either way.
fn decide_purge(stored: Option<&StoredSource>) -> Action {
    match stored {
        None => Action::Skip(ItemOutcome::Forgotten),
        Some(s) if s.deleted || s.entity_id.is_nil() => Action::Forget,
        Some(s) => Action::Tombstone {
            entity_id: s.entity_id,
            new_source: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::{EntityFields, TOMBSTONE_HASH};
    use tributary_proto::model::{EntityType, OrganizationFields};

    fn item(external_id: &str, minute: u32, hash: &str) -> NormalisedItem {
        NormalisedItem {
            key: SourceKey {
                instance_id: "i".into(),
                entity_type: EntityType::Organization,
                external_id: external_id.into(),
            },
            version: format!("2026-01-01T00:{minute:02}:00Z").parse().unwrap(),
            fields: (hash != TOMBSTONE_HASH)
                .then(|| EntityFields::Organization(OrganizationFields::default())),
            json: serde_json::Value::Null,
            content_hash: hash.into(),
            raw: serde_json::Value::Null,
            forget: false,
        }
    }

    fn stored(minute: u32, hash: &str, deleted: bool) -> StoredSource {
        StoredSource {
            entity_id: Uuid::now_v7(),
            version: format!("2026-01-01T00:{minute:02}:00Z").parse().unwrap(),
            content_hash: hash.into(),
            deleted,
        }
    }

    #[test]
    fn versions_and_hashes_decide() {
        assert!(matches!(
            decide(&item("a", 1, "h"), None),
            Action::Write {
                new_source: true,
                row_exists: false,
                ..
            }
        ));
        assert_eq!(
            decide(&item("a", 1, "h"), Some(&stored(1, "h", false))),
            Action::Skip(ItemOutcome::Duplicate)
        );
        assert_eq!(
            decide(&item("a", 1, "h"), Some(&stored(2, "g", false))),
            Action::Skip(ItemOutcome::Stale)
        );
        assert!(matches!(
            decide(&item("a", 2, "h"), Some(&stored(1, "h", false))),
            Action::Touch { .. }
        ));
        assert!(matches!(
            decide(&item("a", 2, "g"), Some(&stored(1, "h", false))),
            Action::Write {
                new_source: false,
                row_exists: true,
                ..
            }
        ));
        assert!(matches!(
            decide(&item("a", 2, TOMBSTONE_HASH), Some(&stored(1, "h", false))),
            Action::Tombstone {
                new_source: false,
                ..
            }
        ));
        assert!(
            matches!(decide(&item("a", 2, TOMBSTONE_HASH), None), Action::Tombstone { new_source: true, entity_id } if entity_id.is_nil())
        );
        // Content again after a delete brings the entity back.
        assert!(matches!(
            decide(&item("a", 3, "h"), Some(&stored(2, TOMBSTONE_HASH, true))),
            Action::Write {
                row_exists: true,
                ..
            }
        ));
    }

    #[test]
    fn a_purge_deletes_what_is_live_and_forgets_whatever_its_version() {
        let mut purge = item("a", 1, TOMBSTONE_HASH);
        purge.forget = true;
        // Older than what is stored (a source clock ahead of ours): deleted all the same.
        let live = stored(9, "h", false);
        assert_eq!(
            decide(&purge, Some(&live)),
            Action::Tombstone {
                entity_id: live.entity_id,
                new_source: false
            }
        );
        assert_eq!(
            decide(&purge, Some(&stored(9, TOMBSTONE_HASH, true))),
            Action::Forget
        );
        assert_eq!(decide(&purge, None), Action::Skip(ItemOutcome::Forgotten));
    }

    #[test]
    fn the_newest_of_a_key_in_a_batch_wins() {
        let items = [
            item("a", 1, "h1"),
            item("b", 1, "h"),
            item("a", 3, "h3"),
            item("a", 2, "h2"),
            item("b", 1, "h"),
        ];
        let refs: Vec<&NormalisedItem> = items.iter().collect();
        let (kept, dropped) = newest_per_key(&refs);
        assert_eq!(kept, vec![1, 2]);
        assert_eq!(dropped[&0], ItemOutcome::Superseded);
        assert_eq!(dropped[&3], ItemOutcome::Superseded);
        assert_eq!(dropped[&4], ItemOutcome::Duplicate);
    }
}
