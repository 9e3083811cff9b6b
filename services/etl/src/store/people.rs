//! The person part of a batch: identity resolution, merges, and each person's fields as the
//! merge of everything its sources say.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{json, Value};
use sqlx::{Postgres, Row, Transaction};
use tributary_proto::events::DataChange;
use tributary_proto::model::{EntityType, PersonFields};
use uuid::Uuid;

use super::identity::{group_by_shared_address, kept_of, merge_sources, SourceView};
use super::plan::{Action, ItemOutcome};
use super::{entity_row, person_fields, sql, BatchChanges, PlannedEvent, StoreError};
use crate::normalise::NormalisedItem;

/// A person item that writes or deletes.
struct PersonChange<'a> {
    index: usize,
    item: &'a NormalisedItem,
    entity_id: Uuid,
    new_source: bool,
}

/// Resolves the batch's person items (`people`: index and action) into rows, merges and
/// events, added to `changes`; `now` is the batch's time as JSON.
pub(super) async fn resolve<'a>(
    tx: &mut Transaction<'static, Postgres>,
    items: &[&'a NormalisedItem],
    people: &[(usize, Action)],
    now: &Value,
    changes: &mut BatchChanges<'a>,
    outcomes: &mut [ItemOutcome],
) -> Result<(), StoreError> {
    let mut stored: HashSet<Uuid> = HashSet::new();
    let mut person_changes = Vec::with_capacity(people.len());
    for &(index, action) in people {
        let (entity_id, new_source) = match action {
            Action::Write {
                entity_id,
                new_source,
                row_exists,
            } => {
                if row_exists {
                    stored.insert(entity_id);
                }
                (entity_id, new_source)
            }
            Action::Tombstone {
                entity_id,
                new_source,
            } => {
                if !entity_id.is_nil() {
                    stored.insert(entity_id);
                }
                (entity_id, new_source)
            }
            Action::Skip(_) | Action::Touch { .. } | Action::Forget => continue,
        };
        person_changes.push(PersonChange {
            index,
            item: items[index],
            entity_id,
            new_source,
        });
    }

    // Who already stored shares an address with the incoming people. The batch holds the
    // locks of these addresses (`locks::lock_batch`, taken before anything was read, not here:
    // here would be after the source-record locks, in an order other batches do not follow),
    // so another batch with a person at one of them has either committed, and is seen here,
    // or waits until this one has.
    let (mut emails, mut phones) = (Vec::new(), Vec::new());
    for change in &person_changes {
        if let Some(p) = person_fields(change.item) {
            emails.extend(p.emails.iter().map(String::as_str));
            phones.extend(p.phones.iter().map(String::as_str));
        }
    }
    let mut candidates: Vec<(Uuid, Vec<String>)> = Vec::new();
    if !emails.is_empty() || !phones.is_empty() {
        let rows = sqlx::query(sql::PEOPLE_WITH_ADDRESSES)
            .bind(&emails)
            .bind(&phones)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let id: Uuid = row.try_get("id")?;
            let mut addresses: Vec<String> = row.try_get("emails")?;
            addresses.extend(row.try_get::<Vec<String>, _>("phones")?);
            stored.insert(id);
            candidates.push((id, addresses));
        }
    }
    let groups = group_by_shared_address(
        candidates
            .iter()
            .map(|(id, a)| (*id, a.iter().map(String::as_str).collect()))
            .chain(person_changes.iter().filter_map(|c| {
                let p = person_fields(c.item)?;
                Some((
                    c.entity_id,
                    p.emails
                        .iter()
                        .chain(&p.phones)
                        .map(String::as_str)
                        .collect(),
                ))
            })),
    );
    let mut merged_into: HashMap<Uuid, Uuid> = HashMap::new();
    let mut kept_ids = Vec::new();
    for group in &groups {
        let Some(kept) = kept_of(group, |id| stored.contains(id)) else {
            continue;
        };
        kept_ids.push(kept);
        for id in group.iter().filter(|id| **id != kept) {
            merged_into.insert(*id, kept);
        }
    }
    let final_of = |id: Uuid| merged_into.get(&id).copied().unwrap_or(id);

    // Everyone whose fields are recomputed, and the item each event is credited to.
    let mut recomputed: BTreeSet<Uuid> = BTreeSet::new();
    let mut cause: HashMap<Uuid, usize> = HashMap::new();
    for change in &person_changes {
        if change.entity_id.is_nil() {
            continue;
        }
        let f = final_of(change.entity_id);
        recomputed.insert(f);
        cause.entry(f).or_insert(change.index);
        cause.entry(change.entity_id).or_insert(change.index);
    }
    for group in &groups {
        let first = group.iter().find_map(|id| cause.get(id).copied());
        for id in group {
            if let Some(first) = first {
                cause.entry(*id).or_insert(first);
            }
        }
    }
    recomputed.extend(kept_ids.iter().copied());

    // What every source of those people says: stored, then this batch on top.
    let mut views: HashMap<Uuid, HashMap<(String, String), SourceView>> = HashMap::new();
    let lookup: Vec<Uuid> = recomputed
        .iter()
        .chain(merged_into.keys())
        .filter(|id| stored.contains(id))
        .copied()
        .collect();
    if !lookup.is_empty() {
        let rows = sqlx::query(sql::SOURCES_OF_PEOPLE)
            .bind(&lookup)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let Ok(fields) = serde_json::from_value::<PersonFields>(row.try_get("data")?) else {
                continue;
            };
            let entity_id: Uuid = row.try_get("entity_id")?;
            views.entry(final_of(entity_id)).or_default().insert(
                (row.try_get("instance_id")?, row.try_get("external_id")?),
                SourceView {
                    version: row.try_get("source_modified_at")?,
                    fields,
                },
            );
        }
    }
    for change in &person_changes {
        let key = (
            change.item.key.instance_id.clone(),
            change.item.key.external_id.clone(),
        );
        let f = final_of(change.entity_id);
        match person_fields(change.item) {
            Some(fields) => {
                views.entry(f).or_default().insert(
                    key,
                    SourceView {
                        version: change.item.version,
                        fields: fields.clone(),
                    },
                );
            }
            None => {
                if let Some(v) = views.get_mut(&f) {
                    v.remove(&key);
                }
            }
        }
    }

    let mut created = HashSet::new();
    for f in &recomputed {
        let Some(&index) = cause.get(f) else { continue };
        let sources = views
            .remove(f)
            .map(|v| v.into_values().collect())
            .unwrap_or_default();
        match merge_sources(sources) {
            Some(fields) => {
                let json =
                    serde_json::to_value(&fields).map_err(|e| StoreError::Encode(e.to_string()))?;
                let mut row = entity_row(json, *f, now);
                row["merged_into"] = Value::Null;
                changes.row(EntityType::Person, row, !stored.contains(f));
                let change = if stored.contains(f) {
                    DataChange::Updated
                } else {
                    created.insert(*f);
                    DataChange::Created
                };
                changes.events.push(PlannedEvent::Upserted {
                    entity: EntityType::Person,
                    id: *f,
                    change,
                    cause: index,
                });
            }
            None if stored.contains(f) => {
                changes
                    .deletes
                    .entry(EntityType::Person)
                    .or_default()
                    .push(*f);
                changes.events.push(PlannedEvent::Deleted {
                    entity: EntityType::Person,
                    id: *f,
                    cause: index,
                });
            }
            None => {}
        }
    }

    // The people folded into others: stored ones are marked, new ones are stored already
    // merged, so their ids still say where they went.
    let mut pairs: Vec<(Uuid, Uuid)> = merged_into.iter().map(|(m, k)| (*m, *k)).collect();
    pairs.sort();
    for (merged, kept) in pairs {
        let Some(&index) = cause.get(&merged) else {
            continue;
        };
        if stored.contains(&merged) {
            changes.merges.push((merged, kept));
        } else if let Some(change) = person_changes.iter().find(|c| c.entity_id == merged) {
            if let Some(fields) = person_fields(change.item) {
                let json =
                    serde_json::to_value(fields).map_err(|e| StoreError::Encode(e.to_string()))?;
                let mut row = entity_row(json, merged, now);
                row["merged_into"] = json!(kept);
                row["deleted_at"] = now.clone();
                changes.row(EntityType::Person, row, true);
            }
        }
        changes.events.push(PlannedEvent::Merged {
            kept,
            merged,
            cause: index,
        });
    }

    for change in &person_changes {
        let f = if change.entity_id.is_nil() {
            change.entity_id
        } else {
            final_of(change.entity_id)
        };
        changes.source(change.item, f, change.new_source);
        outcomes[change.index] = if change.entity_id.is_nil() {
            ItemOutcome::TombstoneRecorded
        } else if change.item.fields.is_none() {
            ItemOutcome::Deleted
        } else if merged_into.contains_key(&change.entity_id) {
            ItemOutcome::Merged
        } else if created.contains(&f) {
            ItemOutcome::Created
        } else {
            ItemOutcome::Updated
        };
    }
    Ok(())
}
