//! What the index holds: one [`SearchDocument`] per entity of the unified model, and the
//! [`IndexChange`]s that `data.*` events and PostgreSQL rows become.
//!
//! Every change carries the entity's version (its `updated_at`, or `deleted_at` for a
//! deletion). A backend applies a change only when it is at least as new as what it holds, so
//! an event applied twice is harmless and an older event never overwrites a newer document.
//! A deletion leaves a tombstone behind for the same reason: an update that arrives after it
//! but is older cannot bring the entity back.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{DataChange, EntityDeleted, EventKind, PersonMerged};
use tributary_proto::model::{
    CalendarEventFields, ConversationFields, DocumentFields, EntityType, MessageFields,
    OrganizationFields, PersonFields, Record,
};
use uuid::Uuid;

/// How many characters of a message body make its title when it has no subject.
const TITLE_FROM_TEXT_CHARS: usize = 80;

/// One entity as the index sees it: what is searched (title and text), what is filtered on
/// (type, sources, date) and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchDocument {
    /// The entity's id in the unified model.
    pub id: Uuid,
    /// Its type.
    pub entity_type: EntityType,
    /// What a result shows first: a name, a subject, a title.
    pub title: String,
    /// Everything else that is searched: bodies, addresses, descriptions, content.
    pub text: String,
    /// The plugin instances it came from.
    pub sources: Vec<String>,
    /// Whether `sources` is every instance it still comes from (a person's event says so),
    /// so that it replaces the sources the index holds instead of adding to them.
    #[serde(skip)]
    pub sources_complete: bool,
    /// The date `from` and `to` filter on: when a message was sent, an event starts, a
    /// document was modified; otherwise when the entity last changed.
    pub date: DateTime<Utc>,
    /// Its version: `updated_at` of the entity this document was made from.
    pub version: DateTime<Utc>,
}

/// One thing to do to the index.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexChange {
    /// Add or replace the document, unless the index holds a newer version. Its `sources`
    /// replace those the index knows for it when they are complete, and are added to them
    /// otherwise.
    Upsert(SearchDocument),
    /// Remove the entity from results, keeping a tombstone of `version`.
    Delete {
        /// The entity's id.
        id: Uuid,
        /// Its type.
        entity_type: EntityType,
        /// When it was deleted (or merged away).
        version: DateTime<Utc>,
    },
}

impl IndexChange {
    /// The id of the entity changed.
    pub fn id(&self) -> Uuid {
        match self {
            IndexChange::Upsert(doc) => doc.id,
            IndexChange::Delete { id, .. } => *id,
        }
    }

    /// The version the change brings.
    pub fn version(&self) -> DateTime<Utc> {
        match self {
            IndexChange::Upsert(doc) => doc.version,
            IndexChange::Delete { version, .. } => *version,
        }
    }
}

/// Keeps, for each entity, only the newest of the changes in `changes` (the later one on a
/// tie), in the order of first appearance. A backend applies a batch after this, so it never
/// compares a change with one that is not yet visible in its own index.
pub fn newest_per_entity(changes: Vec<IndexChange>) -> Vec<IndexChange> {
    let mut position = std::collections::HashMap::with_capacity(changes.len());
    let mut kept: Vec<IndexChange> = Vec::with_capacity(changes.len());
    for change in changes {
        match position.get(&change.id()) {
            Some(&at) => {
                let held: &mut IndexChange = &mut kept[at];
                if change.version() >= held.version() {
                    *held = change;
                }
            }
            None => {
                position.insert(change.id(), kept.len());
                kept.push(change);
            }
        }
    }
    kept
}

/// A data event or a row that cannot become a document.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The bytes are not a JSON event envelope.
    #[error("not a JSON event envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    /// The envelope's type is not a data event.
    #[error("`{0}` is not a data event")]
    NotADataEvent(String),
    /// The payload does not match the event's type.
    #[error("the payload of `{event}` does not match its schema: {source}")]
    Payload {
        /// The event type.
        event: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// The entity-specific part of making a document: title, text and date from the fields.
trait Searchable: DeserializeOwned {
    fn title(&self) -> String;
    fn text(&self) -> String;
    fn date(&self) -> Option<DateTime<Utc>>;
}

fn joined<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Searchable for PersonFields {
    fn title(&self) -> String {
        self.display_name.clone()
    }
    fn text(&self) -> String {
        joined(
            [self.given_name.as_deref(), self.family_name.as_deref()]
                .into_iter()
                .flatten()
                .chain(self.emails.iter().map(String::as_str))
                .chain(self.phones.iter().map(String::as_str))
                .chain(
                    [self.organization.as_deref(), self.title.as_deref()]
                        .into_iter()
                        .flatten(),
                ),
        )
    }
    fn date(&self) -> Option<DateTime<Utc>> {
        None
    }
}

impl Searchable for OrganizationFields {
    fn title(&self) -> String {
        self.name.clone()
    }
    fn text(&self) -> String {
        joined(self.domains.iter().map(String::as_str))
    }
    fn date(&self) -> Option<DateTime<Utc>> {
        None
    }
}

impl Searchable for ConversationFields {
    fn title(&self) -> String {
        match &self.title {
            Some(title) if !title.trim().is_empty() => title.clone(),
            _ => self.participants.join(", "),
        }
    }
    fn text(&self) -> String {
        joined(
            [self.channel.as_str()]
                .into_iter()
                .chain(self.participants.iter().map(String::as_str)),
        )
    }
    fn date(&self) -> Option<DateTime<Utc>> {
        None
    }
}

impl Searchable for MessageFields {
    fn title(&self) -> String {
        match &self.subject {
            Some(subject) if !subject.trim().is_empty() => subject.clone(),
            _ => {
                let body = self
                    .body_text
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                match body.char_indices().nth(TITLE_FROM_TEXT_CHARS) {
                    Some((cut, _)) => format!("{}…", &body[..cut]),
                    None => body,
                }
            }
        }
    }
    fn text(&self) -> String {
        joined(
            [self.body_text.as_str(), self.sender.as_str()]
                .into_iter()
                .chain(self.recipients.iter().map(String::as_str)),
        )
    }
    fn date(&self) -> Option<DateTime<Utc>> {
        Some(self.sent_at)
    }
}

impl Searchable for CalendarEventFields {
    fn title(&self) -> String {
        self.title.clone()
    }
    fn text(&self) -> String {
        joined(
            [
                self.description.as_deref(),
                self.location.as_deref(),
                self.organizer.as_deref(),
            ]
            .into_iter()
            .flatten()
            .chain(self.attendees.iter().map(String::as_str)),
        )
    }
    fn date(&self) -> Option<DateTime<Utc>> {
        Some(self.starts_at)
    }
}

impl Searchable for DocumentFields {
    fn title(&self) -> String {
        self.title.clone()
    }
    fn text(&self) -> String {
        joined(
            [self.content.as_str()]
                .into_iter()
                .chain(self.path.as_deref()),
        )
    }
    fn date(&self) -> Option<DateTime<Utc>> {
        self.modified_at
    }
}

fn document_of<F: Searchable>(
    entity_type: EntityType,
    entity: Value,
    sources: Vec<String>,
) -> Result<IndexChange, serde_json::Error> {
    let record: Record<F> = serde_json::from_value(entity)?;
    if let Some(deleted_at) = record.deleted_at {
        return Ok(IndexChange::Delete {
            id: record.id,
            entity_type,
            version: deleted_at.max(record.updated_at),
        });
    }
    // A person's event names every instance she still comes from; any other names only the
    // one that caused it.
    let (sources, sources_complete) = match record.sources {
        Some(all) => (all, true),
        None => (sources, false),
    };
    Ok(IndexChange::Upsert(SearchDocument {
        id: record.id,
        entity_type,
        title: record.fields.title(),
        text: record.fields.text(),
        sources,
        sources_complete,
        date: record.fields.date().unwrap_or(record.updated_at),
        version: record.updated_at,
    }))
}

/// The change a stored entity (as a data event carries it, or as PostgreSQL's `to_jsonb` of
/// its row gives it) makes: an upsert, or a deletion when it has `deleted_at`.
pub fn change_from_entity(
    entity_type: EntityType,
    entity: Value,
    sources: Vec<String>,
) -> Result<IndexChange, serde_json::Error> {
    match entity_type {
        EntityType::Person => document_of::<PersonFields>(entity_type, entity, sources),
        EntityType::Organization => document_of::<OrganizationFields>(entity_type, entity, sources),
        EntityType::Conversation => document_of::<ConversationFields>(entity_type, entity, sources),
        EntityType::Message => document_of::<MessageFields>(entity_type, entity, sources),
        EntityType::CalendarEvent => {
            document_of::<CalendarEventFields>(entity_type, entity, sources)
        }
        EntityType::Document => document_of::<DocumentFields>(entity_type, entity, sources),
    }
}

fn payload<T: DeserializeOwned>(event: &str, data: Value) -> Result<T, DocumentError> {
    serde_json::from_value(data).map_err(|source| DocumentError::Payload {
        event: event.to_owned(),
        source,
    })
}

/// The changes one `data.*` event makes: an upsert for a create or update, a deletion for a
/// delete, and for a merge the kept person's upsert plus the merged person's deletion.
pub fn changes_from_event(bytes: &[u8]) -> Result<Vec<IndexChange>, DocumentError> {
    let envelope: Envelope<Value> =
        serde_json::from_slice(bytes).map_err(DocumentError::Envelope)?;
    let sources: Vec<String> = envelope.source.instance.into_iter().collect();
    let event = envelope.event_type;
    match EventKind::parse(&event) {
        Some(EventKind::Data {
            change: DataChange::Deleted,
            ..
        }) => {
            let deleted: EntityDeleted = payload(&event, envelope.data)?;
            Ok(vec![IndexChange::Delete {
                id: deleted.id,
                entity_type: deleted.entity_type,
                version: deleted.deleted_at,
            }])
        }
        Some(EventKind::Data { entity, .. }) => {
            let change = change_from_entity(entity, envelope.data, sources)
                .map_err(|source| DocumentError::Payload { event, source })?;
            Ok(vec![change])
        }
        Some(EventKind::PersonMerged) => {
            let merged: PersonMerged = payload(&event, envelope.data)?;
            let version = merged.person.updated_at;
            let kept =
                serde_json::to_value(&merged.person).map_err(|source| DocumentError::Payload {
                    event: event.clone(),
                    source,
                })?;
            let kept = change_from_entity(EntityType::Person, kept, sources)
                .map_err(|source| DocumentError::Payload { event, source })?;
            Ok(vec![
                kept,
                IndexChange::Delete {
                    id: merged.merged_id,
                    entity_type: EntityType::Person,
                    version,
                },
            ])
        }
        // An unmerge changes no document by itself: the split person's `PersonUpdated` (or
        // `PersonDeleted`) and the new person's `PersonCreated` come with it.
        Some(EventKind::PersonUnmerged) => Ok(Vec::new()),
        _ => Err(DocumentError::NotADataEvent(event)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use tributary_proto::envelope::EventSource;

    fn event(kind: EventKind, data: Value) -> Vec<u8> {
        let envelope = Envelope::new(
            kind,
            EventSource::new("etl", Some("contacts".into())),
            None,
            data,
        );
        serde_json::to_vec(&envelope).unwrap()
    }

    fn message(id: Uuid, updated: &str) -> Value {
        json!({
            "id": id, "sender": "ada@example.com", "recipients": ["bob@example.com"],
            "body_text": "The  analytical\nengine weaves algebraic patterns just as the Jacquard loom weaves flowers and leaves",
            "sent_at": "2026-03-01T09:00:00Z",
            "created_at": "2026-03-01T09:00:01Z", "updated_at": updated,
        })
    }

    #[test]
    fn a_message_without_subject_is_titled_by_its_first_words() {
        let id = Uuid::now_v7();
        let kind = EventKind::Data {
            entity: EntityType::Message,
            change: DataChange::Created,
        };
        let changes =
            changes_from_event(&event(kind, message(id, "2026-03-01T09:00:01Z"))).unwrap();
        let [IndexChange::Upsert(doc)] = changes.as_slice() else {
            panic!("{changes:?}")
        };
        assert_eq!(doc.id, id);
        assert!(
            doc.title.starts_with("The analytical engine weaves"),
            "{}",
            doc.title
        );
        assert!(doc.title.ends_with('…'));
        assert!(doc.text.contains("bob@example.com"));
        assert_eq!(doc.sources, vec!["contacts".to_owned()]);
        assert_eq!(doc.date.to_rfc3339(), "2026-03-01T09:00:00+00:00");
    }

    #[test]
    fn a_merge_upserts_the_kept_person_and_deletes_the_other() {
        let (kept, merged) = (Uuid::now_v7(), Uuid::now_v7());
        let data = json!({
            "kept_id": kept, "merged_id": merged,
            "person": {"id": kept, "display_name": "Ada Lovelace", "emails": ["ada@example.com"],
                       "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z"}
        });
        let changes = changes_from_event(&event(EventKind::PersonMerged, data)).unwrap();
        assert_eq!(changes.len(), 2);
        assert!(
            matches!(&changes[0], IndexChange::Upsert(d) if d.id == kept && d.title == "Ada Lovelace")
        );
        assert!(matches!(&changes[1], IndexChange::Delete { id, .. } if *id == merged));
        assert_eq!(changes[1].version(), changes[0].version());
    }

    #[test]
    fn an_unmerge_changes_no_document_by_itself() {
        // The split person's PersonUpdated and the new person's PersonCreated carry the rows;
        // the unmerge itself must not be taken for a malformed event (a dead letter).
        let data = json!({
            "person_id": Uuid::now_v7(), "split_id": Uuid::now_v7(),
            "moved_sources": [{"instance_id": "phone", "external_id": "p-1"}],
            "reason": "unmerged", "actor": "admin", "unmerged_at": "2026-01-02T00:00:00Z"
        });
        let changes = changes_from_event(&event(EventKind::PersonUnmerged, data)).unwrap();
        assert!(changes.is_empty());
    }

    #[test]
    fn malformed_events_name_their_problem() {
        let kind = EventKind::Data {
            entity: EntityType::Person,
            change: DataChange::Updated,
        };
        let err = changes_from_event(&event(kind, json!({"id": 3}))).unwrap_err();
        assert!(err.to_string().contains("data.PersonUpdated"), "{err}");
        let err = changes_from_event(b"{not json").unwrap_err();
        assert!(err.to_string().contains("envelope"), "{err}");
        let other = event(
            EventKind::Plugin(tributary_proto::events::PluginEvent::Installed),
            json!({}),
        );
        let err = changes_from_event(&other).unwrap_err();
        assert!(err.to_string().contains("plugins.PluginInstalled"), "{err}");
    }

    #[test]
    fn only_the_newest_change_of_an_entity_survives_a_batch() {
        let id = Uuid::now_v7();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let upsert = |version: &str, title: &str| {
            IndexChange::Upsert(SearchDocument {
                id,
                entity_type: EntityType::Document,
                title: title.into(),
                text: String::new(),
                sources: vec![],
                sources_complete: false,
                date: at(version),
                version: at(version),
            })
        };
        let other = IndexChange::Delete {
            id: Uuid::now_v7(),
            entity_type: EntityType::Document,
            version: at("2026-01-01T00:00:00Z"),
        };
        let kept = newest_per_entity(vec![
            upsert("2026-01-02T00:00:00Z", "newer"),
            other.clone(),
            upsert("2026-01-01T00:00:00Z", "older, late"),
        ]);
        assert_eq!(kept, vec![upsert("2026-01-02T00:00:00Z", "newer"), other]);
    }
}
