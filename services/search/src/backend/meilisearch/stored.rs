//! What a Meilisearch index holds for an entity, and which documents a batch of changes writes
//! given the versions the index already holds.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tributary_proto::model::EntityType;
use uuid::Uuid;

use super::translate::{HIGHLIGHT_POST, HIGHLIGHT_PRE};
use crate::backend::ApplyReport;
use crate::document::{IndexChange, SearchDocument};

/// The fields fetched to decide what a batch writes.
pub(super) const HELD_FIELDS: [&str; 4] = ["id", "version", "deleted", "sources"];

/// One document as stored (primary key `id`). `date` is in Unix seconds so it can be filtered
/// and sorted on; `date_rfc3339` keeps the exact time for results; `version` is in Unix
/// microseconds, the precision of PostgreSQL's timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredDocument {
    pub id: Uuid,
    pub entity_type: EntityType,
    pub title: String,
    pub text: String,
    pub sources: Vec<String>,
    pub date: i64,
    pub date_rfc3339: String,
    pub version: i64,
    pub deleted: bool,
}

/// What the index holds for an entity, as far as the version rule needs.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Held {
    pub id: Uuid,
    pub version: i64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub sources: Vec<String>,
}

/// What the index will hold once the tasks in flight have run: `fetched`, with each document
/// written by a task in flight replaced by that write (`in_flight`).
pub(super) fn overlaid(fetched: Vec<Held>, in_flight: Vec<Held>) -> Vec<Held> {
    let mut held: HashMap<Uuid, Held> = fetched.into_iter().map(|h| (h.id, h)).collect();
    held.extend(in_flight.into_iter().map(|h| (h.id, h)));
    held.into_values().collect()
}

/// Removes the two characters the backend asks Meilisearch to mark matches with, so a
/// document's own text can never open or close a highlight.
fn without_highlight_tags(text: &str) -> String {
    text.chars()
        .filter(|c| !HIGHLIGHT_PRE.contains(*c) && !HIGHLIGHT_POST.contains(*c))
        .collect()
}

fn stored(doc: &SearchDocument, sources: Vec<String>) -> StoredDocument {
    StoredDocument {
        id: doc.id,
        entity_type: doc.entity_type,
        title: without_highlight_tags(&doc.title),
        text: without_highlight_tags(&doc.text),
        sources,
        date: doc.date.timestamp(),
        date_rfc3339: doc.date.to_rfc3339(),
        version: doc.version.timestamp_micros(),
        deleted: false,
    }
}

/// The union of the sources held and the new ones, held ones first, without repeats.
fn union(held: &[String], new: &[String]) -> Vec<String> {
    let mut sources = held.to_vec();
    for source in new {
        if !sources.contains(source) {
            sources.push(source.clone());
        }
    }
    sources
}

/// The documents to write for `changes` (already reduced to the newest per entity) and what
/// that does: a change older than the version held is stale and skipped; a deletion becomes a
/// tombstone keeping its version; an upsert onto a live document keeps the sources held, unless
/// its own are complete.
pub(super) fn plan(changes: &[IndexChange], held: Vec<Held>) -> (Vec<StoredDocument>, ApplyReport) {
    let held: HashMap<Uuid, Held> = held.into_iter().map(|h| (h.id, h)).collect();
    let mut report = ApplyReport::default();
    let mut writes = Vec::with_capacity(changes.len());
    for change in changes {
        let current = held.get(&change.id());
        if current.is_some_and(|h| change.version().timestamp_micros() < h.version) {
            report.stale += 1;
            continue;
        }
        report.applied += 1;
        writes.push(match change {
            IndexChange::Upsert(doc) => {
                let sources = match current {
                    Some(h) if !h.deleted && !doc.sources_complete => {
                        union(&h.sources, &doc.sources)
                    }
                    _ => union(&[], &doc.sources),
                };
                stored(doc, sources)
            }
            IndexChange::Delete {
                id,
                entity_type,
                version,
            } => StoredDocument {
                id: *id,
                entity_type: *entity_type,
                title: String::new(),
                text: String::new(),
                sources: Vec::new(),
                date: version.timestamp(),
                date_rfc3339: version.to_rfc3339(),
                version: version.timestamp_micros(),
                deleted: true,
            },
        });
    }
    (writes, report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn upsert(id: Uuid, version: &str, sources: &[&str]) -> IndexChange {
        IndexChange::Upsert(SearchDocument {
            id,
            entity_type: EntityType::Message,
            title: "a \u{1}title\u{2}".into(),
            text: "text".into(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            sources_complete: false,
            date: at("2026-03-01T09:00:00.5Z"),
            version: at(version),
        })
    }

    fn held(id: Uuid, version: &str, deleted: bool, sources: &[&str]) -> Held {
        Held {
            id,
            version: at(version).timestamp_micros(),
            deleted,
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn complete_sources_replace_those_held() {
        let id = Uuid::now_v7();
        let mut change = upsert(id, "2026-01-02T00:00:00Z", &["crm"]);
        if let IndexChange::Upsert(doc) = &mut change {
            doc.sources_complete = true;
        }
        let held = vec![held(id, "2026-01-01T00:00:00Z", false, &["crm", "phone"])];
        let (writes, _) = plan(&[change], held);
        assert_eq!(writes[0].sources, ["crm"]);
    }

    #[test]
    fn the_version_rule_decides_and_sources_are_kept_for_live_documents() {
        let (stale, live, dead, new, gone) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let changes = [
            upsert(stale, "2026-01-01T00:00:00Z", &["mail"]),
            upsert(live, "2026-01-02T00:00:00Z", &["chat", "mail"]),
            upsert(dead, "2026-01-02T00:00:00Z", &["chat"]),
            upsert(new, "2026-01-02T00:00:00Z", &["chat", "chat"]),
            IndexChange::Delete {
                id: gone,
                entity_type: EntityType::Person,
                version: at("2026-01-02T00:00:00Z"),
            },
        ];
        let (writes, report) = plan(
            &changes,
            vec![
                held(stale, "2026-01-01T00:00:00.000001Z", false, &["x"]),
                held(live, "2026-01-02T00:00:00Z", false, &["mail", "contacts"]),
                held(dead, "2026-01-01T00:00:00Z", true, &["old"]),
                held(gone, "2026-01-01T00:00:00Z", false, &["mail"]),
            ],
        );
        assert_eq!(
            report,
            ApplyReport {
                applied: 4,
                stale: 1
            }
        );
        let sources: Vec<_> = writes.iter().map(|w| w.sources.join(",")).collect();
        assert_eq!(sources, ["mail,contacts,chat", "chat", "chat", ""]);
        assert_eq!(writes[0].title, "a title");
        assert_eq!(writes[0].date, at("2026-03-01T09:00:00Z").timestamp());
        assert_eq!(writes[0].date_rfc3339, "2026-03-01T09:00:00.500+00:00");
        let tombstone = &writes[3];
        assert!(tombstone.deleted && tombstone.title.is_empty() && tombstone.text.is_empty());
        assert_eq!(
            tombstone.version,
            at("2026-01-02T00:00:00Z").timestamp_micros()
        );
    }
}
