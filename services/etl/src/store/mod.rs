//! Batched, idempotent writes: a batch of normalised items becomes entity rows, source
//! records and outbox events in one transaction: per table, one `COPY` of the rows known to
//! be new and one upsert of the rest, and one outbox row for all the batch's events.

pub mod copy;
pub mod decisions;
mod error;
pub mod identity;
mod locks;
mod people;
pub mod plan;
mod sources;
pub mod sql;
mod tables;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tributary_kit::outbox::OutboxEvent;
use tributary_proto::events::{
    DataChange, EntityDeleted, EventKind, MergeEvidence, PersonUnmerged, SourceRef,
};
use tributary_proto::model::EntityType;
use tributary_proto::{Envelope, EventSource, ServiceName, Subjects};
use uuid::Uuid;

pub use self::decisions::{DecisionError, DecisionReport, PeopleDecision};
pub use self::error::StoreError;
use self::identity::resolve::RecordKey;
use self::plan::{Action, ItemOutcome};
pub use self::tables::copy_source_row;
use crate::normalise::{EntityFields, NormalisedItem};

/// An item on its way to the database, with the trace context of the message it came in.
#[derive(Debug, Clone)]
pub struct PendingItem {
    /// The normalised item.
    pub item: NormalisedItem,
    /// The W3C `traceparent` of its message, carried on to the events it causes.
    pub traceparent: Option<String>,
}

/// What a committed batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport {
    /// What became of each item, in batch order.
    pub outcomes: Vec<ItemOutcome>,
    /// Events written to the outbox.
    pub events: usize,
}

/// Writes batches of items to PostgreSQL.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    pool: PgPool,
    subjects: Subjects,
}

/// An event decided on before the rows it describes are written.
#[derive(Debug)]
enum PlannedEvent {
    Upserted {
        entity: EntityType,
        id: Uuid,
        change: DataChange,
        cause: usize,
    },
    Deleted {
        entity: EntityType,
        id: Uuid,
        cause: usize,
    },
    Merged {
        kept: Uuid,
        merged: Uuid,
        evidence: MergeEvidence,
        cause: usize,
    },
    Unmerged {
        person: Uuid,
        split: Uuid,
        moved: Vec<SourceRef>,
        reason: &'static str,
        actor: Option<String>,
        cause: usize,
    },
}

impl PlannedEvent {
    /// The person whose row this event carries, if it carries one.
    fn person_announced(&self) -> Option<Uuid> {
        match *self {
            PlannedEvent::Upserted {
                entity: EntityType::Person,
                id,
                ..
            } => Some(id),
            PlannedEvent::Merged { kept, .. } => Some(kept),
            _ => None,
        }
    }
}

/// The source record an item writes.
#[derive(Debug)]
struct SourceChange<'a> {
    item: &'a NormalisedItem,
    /// The entity it maps to (nil for a tombstone of something never stored).
    entity_id: Uuid,
    /// Whether no record of its key was stored before this batch.
    new: bool,
}

/// The rows of one entity type a batch writes.
#[derive(Debug, Default)]
struct EntityRows {
    /// Rows with an id fresh from this batch: nothing can conflict with them.
    new: Vec<Value>,
    /// Rows that may exist already.
    existing: Vec<Value>,
}

/// Everything one batch writes, gathered before any statement runs.
#[derive(Debug, Default)]
struct BatchChanges<'a> {
    sources: Vec<SourceChange<'a>>,
    rows: HashMap<EntityType, EntityRows>,
    deletes: HashMap<EntityType, Vec<Uuid>>,
    /// Stored people folded into others: (merged, kept).
    merges: Vec<(Uuid, Uuid)>,
    /// The `person_merge` rows of every merge, with its evidence.
    merge_rows: Vec<Value>,
    /// Person records that move to another person without an item of their own.
    moves: Vec<(RecordKey, Uuid)>,
    /// Records split off a person (and who split them): the merges that brought them in
    /// are undone.
    undone: Vec<(Uuid, Vec<SourceRef>, Option<String>)>,
    /// Suggestions and shared identifiers, as the people resolved say them now.
    identity: people::IdentityNotes,
    events: Vec<PlannedEvent>,
}

impl<'a> BatchChanges<'a> {
    fn source(&mut self, item: &'a NormalisedItem, entity_id: Uuid, new: bool) {
        self.sources.push(SourceChange {
            item,
            entity_id,
            new,
        });
    }

    /// Adds a whole row; `new` when its id was made by this batch.
    fn row(&mut self, entity: EntityType, row: Value, new: bool) {
        let rows = self.rows.entry(entity).or_default();
        if new {
            rows.new.push(row);
        } else {
            rows.existing.push(row);
        }
    }
}

/// A whole row: the fields of `fields` (a JSON object) with id and timestamps; `now` is the
/// batch's time as JSON, written once for all its rows.
pub fn entity_row(fields: Value, id: Uuid, now: &Value) -> Value {
    let mut row = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    row.insert("id".into(), json!(id));
    row.insert("created_at".into(), now.clone());
    row.insert("updated_at".into(), now.clone());
    row.insert("deleted_at".into(), Value::Null);
    Value::Object(row)
}

/// Now, to the microsecond PostgreSQL keeps.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

impl BatchWriter {
    /// A writer on `pool`, announcing events under `subjects`.
    pub fn new(pool: PgPool, subjects: Subjects) -> Self {
        Self { pool, subjects }
    }

    /// Writes a batch in one transaction: rows, source records and events all commit, or
    /// none does.
    pub async fn write(&self, batch: &[PendingItem]) -> Result<BatchReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::KEYED_PLANS_ONLY).execute(&mut *tx).await?;
        let report = self.write_in(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn write_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        batch: &[PendingItem],
    ) -> Result<BatchReport, StoreError> {
        let items: Vec<&NormalisedItem> = batch.iter().map(|p| &p.item).collect();
        let mut outcomes = vec![ItemOutcome::Duplicate; items.len()];
        let (kept, dropped) = plan::newest_per_key(&items);
        for (i, outcome) in dropped {
            outcomes[i] = outcome;
        }
        locks::lock_batch(tx, &items).await?;
        let stored = tables::lock_sources(tx, kept.iter().map(|&i| &items[i].key)).await?;
        let now = now_micros();
        let now_json = json!(now);
        let mut changes = BatchChanges::default();
        let mut people = Vec::new();

        for &i in &kept {
            let item = items[i];
            let action = plan::decide(item, stored.get(&item.key));
            let entity = item.key.entity_type;
            match action {
                Action::Skip(outcome) => outcomes[i] = outcome,
                Action::Touch { entity_id } => {
                    outcomes[i] = ItemOutcome::Unchanged;
                    changes.source(item, entity_id, false);
                }
                Action::Forget => {
                    outcomes[i] = ItemOutcome::Forgotten;
                    changes.source(item, Uuid::nil(), false);
                }
                _ if entity == EntityType::Person => people.push((i, action)),
                Action::Write {
                    entity_id,
                    new_source,
                    row_exists,
                } => {
                    changes.source(item, entity_id, new_source);
                    let change = if row_exists {
                        DataChange::Updated
                    } else {
                        DataChange::Created
                    };
                    outcomes[i] = if row_exists {
                        ItemOutcome::Updated
                    } else {
                        ItemOutcome::Created
                    };
                    let row = entity_row(item.json.clone(), entity_id, &now_json);
                    changes.row(entity, row, !row_exists);
                    changes.events.push(PlannedEvent::Upserted {
                        entity,
                        id: entity_id,
                        change,
                        cause: i,
                    });
                }
                Action::Tombstone {
                    entity_id,
                    new_source,
                } => {
                    changes.source(item, entity_id, new_source);
                    if entity_id.is_nil() {
                        outcomes[i] = ItemOutcome::TombstoneRecorded;
                    } else {
                        outcomes[i] = ItemOutcome::Deleted;
                        changes.deletes.entry(entity).or_default().push(entity_id);
                        changes.events.push(PlannedEvent::Deleted {
                            entity,
                            id: entity_id,
                            cause: i,
                        });
                    }
                }
            }
        }
        if !people.is_empty() {
            people::resolve_batch(tx, &items, &people, now, &mut changes, &mut outcomes).await?;
        }
        if changes.rows.contains_key(&EntityType::Message) {
            tables::resolve_conversations(tx, &mut changes).await?;
        }
        let events = self.apply(tx, batch, &items, changes, now).await?;
        Ok(BatchReport { outcomes, events })
    }

    /// Writes what a batch (or a person's decision, with an empty `batch`) planned: source
    /// records, entity rows, merges and splits, deletions, and the outbox rows of its events;
    /// returns how many events.
    async fn apply(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        batch: &[PendingItem],
        items: &[&NormalisedItem],
        mut changes: BatchChanges<'_>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        tables::write_sources(tx, &changes).await?;
        let mut rows_by_id: HashMap<Uuid, Value> = HashMap::new();
        for entity in EntityType::ALL {
            let Some(rows) = changes.rows.remove(&entity) else {
                continue;
            };
            let created = tables::write_entities(tx, entity, &rows).await?;
            for mut row in rows.new.into_iter().chain(rows.existing) {
                let Some(id) = row
                    .get("id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse().ok())
                else {
                    continue;
                };
                if let Value::Object(map) = &mut row {
                    if let Some(created_at) = created.get(&id) {
                        map.insert("created_at".into(), json!(created_at));
                    }
                    map.remove("merged_into");
                }
                rows_by_id.insert(id, row);
            }
        }
        self.link_waiting_messages(tx, items, &mut changes.events, &mut rows_by_id, now)
            .await?;
        if !changes.merges.is_empty() {
            let (merged, kept): (Vec<Uuid>, Vec<Uuid>) = changes.merges.iter().copied().unzip();
            for statement in sql::MERGE_PEOPLE {
                sqlx::query(statement)
                    .bind(&merged)
                    .bind(&kept)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        people::write_identity(tx, &changes, now).await?;
        let mut deleted: HashSet<Uuid> = HashSet::new();
        for (entity, ids) in &changes.deletes {
            let rows = sqlx::query(&sql::delete_entities(*entity))
                .bind(ids)
                .bind(now)
                .fetch_all(&mut **tx)
                .await?;
            for row in rows {
                deleted.insert(row.try_get("id")?);
            }
        }

        let people: Vec<Uuid> = changes
            .events
            .iter()
            .filter_map(PlannedEvent::person_announced)
            .collect();
        sources::set_person_sources(tx, &people, &mut rows_by_id).await?;
        let events = self.events(batch, &changes.events, &rows_by_id, &deleted, now)?;
        let count = events.len();
        tributary_kit::outbox::enqueue_all(tx, ServiceName::Etl, &events).await?;
        Ok(count)
    }

    /// Links the stored messages that were waiting for the conversations this batch wrote,
    /// and plans a `MessageUpdated` for each, caused by its conversation's item.
    async fn link_waiting_messages(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        items: &[&NormalisedItem],
        events: &mut Vec<PlannedEvent>,
        rows: &mut HashMap<Uuid, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut causes = HashMap::new();
        let mut conversations = Vec::new();
        for event in events.iter() {
            if let PlannedEvent::Upserted {
                entity: EntityType::Conversation,
                id,
                cause,
                ..
            } = *event
            {
                let key = &items[cause].key;
                causes.insert(id, cause);
                conversations.push(tables::WrittenConversation {
                    instance_id: &key.instance_id,
                    external_id: &key.external_id,
                    id,
                });
            }
        }
        if conversations.is_empty() {
            return Ok(());
        }
        for (conversation, message) in
            tables::link_waiting_messages(tx, &conversations, now).await?
        {
            let Some(&cause) = causes.get(&conversation) else {
                continue;
            };
            let row =
                serde_json::to_value(&message).map_err(|e| StoreError::Encode(e.to_string()))?;
            rows.insert(message.id, row);
            events.push(PlannedEvent::Upserted {
                entity: EntityType::Message,
                id: message.id,
                change: DataChange::Updated,
                cause,
            });
        }
        Ok(())
    }

    /// The outbox rows of the planned events, with the entities as they were written.
    fn events(
        &self,
        batch: &[PendingItem],
        planned: &[PlannedEvent],
        rows: &HashMap<Uuid, Value>,
        deleted: &HashSet<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut out = Vec::with_capacity(planned.len());
        // A batch's events are of a few kinds; each kind's subject is formatted once.
        let mut subjects: HashMap<EventKind, String> = HashMap::new();
        for event in planned {
            let (kind, entity_id, data, cause) = match *event {
                PlannedEvent::Upserted {
                    entity,
                    id,
                    change,
                    cause,
                } => {
                    let Some(row) = rows.get(&id) else { continue };
                    (
                        EventKind::Data { entity, change },
                        id,
                        Cow::Borrowed(row),
                        cause,
                    )
                }
                PlannedEvent::Deleted { entity, id, cause } => {
                    if !deleted.contains(&id) {
                        continue;
                    }
                    let data = EntityDeleted {
                        id,
                        entity_type: entity,
                        deleted_at: now,
                    };
                    let data = serde_json::to_value(data)
                        .map_err(|e| StoreError::Encode(e.to_string()))?;
                    (
                        EventKind::Data {
                            entity,
                            change: DataChange::Deleted,
                        },
                        id,
                        Cow::Owned(data),
                        cause,
                    )
                }
                PlannedEvent::Merged {
                    kept,
                    merged,
                    ref evidence,
                    cause,
                } => {
                    let Some(person) = rows.get(&kept) else {
                        continue;
                    };
                    let data = json!({
                        "kept_id": kept, "merged_id": merged, "person": person,
                        "evidence": evidence,
                    });
                    (EventKind::PersonMerged, kept, Cow::Owned(data), cause)
                }
                PlannedEvent::Unmerged {
                    person,
                    split,
                    ref moved,
                    reason,
                    ref actor,
                    cause,
                } => {
                    let data = PersonUnmerged {
                        person_id: person,
                        split_id: split,
                        moved_sources: moved.clone(),
                        reason: reason.to_owned(),
                        actor: actor.clone(),
                        unmerged_at: now,
                    };
                    let data = serde_json::to_value(data)
                        .map_err(|e| StoreError::Encode(e.to_string()))?;
                    (EventKind::PersonUnmerged, person, Cow::Owned(data), cause)
                }
            };
            // An event a person's decision caused has no item: no instance, no trace.
            let pending = batch.get(cause);
            let source = EventSource::new(
                ServiceName::Etl.as_str(),
                pending.map(|p| p.item.key.instance_id.clone()),
            );
            let envelope = Envelope::new(kind, source, Some(entity_id), data);
            let subject = subjects
                .entry(kind)
                .or_insert_with(|| self.subjects.event(kind))
                .clone();
            let traceparent = pending.and_then(|p| p.traceparent.clone());
            let event = OutboxEvent::new(subject, &envelope, traceparent)
                .map_err(|e| StoreError::Encode(e.to_string()))?;
            out.push(event);
        }
        Ok(out)
    }
}

/// The typed fields of a person item.
fn person_fields(item: &NormalisedItem) -> Option<&tributary_proto::model::PersonFields> {
    match &item.fields {
        Some(EntityFields::Person(p)) => Some(p),
        _ => None,
    }
}
