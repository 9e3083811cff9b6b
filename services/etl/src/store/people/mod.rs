//! The person part of a batch, or of a person's decision: the region of person records it
//! touches is loaded ([`region`]), resolved again from what the records say
//! ([`identity::resolve`](super::identity::resolve)), and what changed becomes rows, merges
//! (with their evidence), splits, suggestions and events.
//!
//! Resolving the whole region, not only the batch's items, is what makes the outcome
//! independent of the order items arrive in: an identifier that a third person's record makes
//! contested splits the two it had joined, as if it had been contested from the start.

mod region;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use tributary_proto::events::{DataChange, MergeEvidence, MergeRule, SourceRef};
use tributary_proto::model::{EntityType, PersonFields};
use uuid::Uuid;

use super::identity::names::name_of;
use super::identity::resolve::{self, IdentifierKind, Reason, Record, RecordKey, Resolution};
use super::identity::{merge_sources, SourceView};
use super::plan::{Action, ItemOutcome};
use super::{entity_row, person_fields, sql, BatchChanges, PlannedEvent, StoreError};
use crate::normalise::NormalisedItem;

/// A person item of the batch that writes or deletes.
pub(super) struct PersonChange<'a> {
    /// Its index in the batch.
    pub index: usize,
    /// The item.
    pub item: &'a NormalisedItem,
    /// The person its plan names: stored, or fresh for a new record.
    pub entity_id: Uuid,
    /// Whether its source record is new.
    pub new_source: bool,
    /// Whether `entity_id`'s row exists (perhaps deleted).
    pub row_exists: bool,
}

impl PersonChange<'_> {
    fn key(&self) -> RecordKey {
        RecordKey::new(
            self.item.key.instance_id.clone(),
            self.item.key.external_id.clone(),
        )
    }
}

/// Who is resolving, for the evidence and the events of what a person decided.
#[derive(Debug, Clone, Default)]
pub(super) struct Context {
    /// The person who decided (None when items caused it).
    pub actor: Option<String>,
    /// Why records split, when a person's decision split them (`unmerged`, `decided_apart`).
    pub split_reason: Option<&'static str>,
}

/// Resolves the batch's person items (`people`: index and action) into rows, merges and
/// events, added to `changes`; `now` is the batch's time.
pub(super) async fn resolve_batch<'a>(
    tx: &mut Transaction<'static, Postgres>,
    items: &[&'a NormalisedItem],
    people: &[(usize, Action)],
    now: DateTime<Utc>,
    changes: &mut BatchChanges<'a>,
    outcomes: &mut [ItemOutcome],
) -> Result<(), StoreError> {
    let mut person_changes = Vec::with_capacity(people.len());
    for &(index, action) in people {
        let (entity_id, new_source, row_exists) = match action {
            Action::Write {
                entity_id,
                new_source,
                row_exists,
            } => (entity_id, new_source, row_exists),
            Action::Tombstone {
                entity_id,
                new_source,
            } => (entity_id, new_source, !entity_id.is_nil()),
            Action::Skip(_) | Action::Touch { .. } | Action::Forget => continue,
        };
        person_changes.push(PersonChange {
            index,
            item: items[index],
            entity_id,
            new_source,
            row_exists,
        });
    }
    let finals = resolve_region(
        tx,
        &person_changes,
        Vec::new(),
        &Context::default(),
        now,
        changes,
    )
    .await?;
    for change in &person_changes {
        let f = if change.entity_id.is_nil() || change.item.fields.is_none() {
            change.entity_id
        } else {
            finals
                .person_of
                .get(&change.key())
                .copied()
                .unwrap_or(change.entity_id)
        };
        changes.source(change.item, f, change.new_source);
        outcomes[change.index] = if change.entity_id.is_nil() {
            ItemOutcome::TombstoneRecorded
        } else if change.item.fields.is_none() {
            ItemOutcome::Deleted
        } else if finals.merged.contains(&change.entity_id) {
            ItemOutcome::Merged
        } else if finals.created.contains(&f) {
            ItemOutcome::Created
        } else {
            ItemOutcome::Updated
        };
    }
    Ok(())
}

/// What a region's resolution decided, for the caller's outcomes and report.
#[derive(Debug, Default)]
pub(super) struct Finals {
    /// The person of every live record of the region.
    pub person_of: HashMap<RecordKey, Uuid>,
    /// People folded into others.
    pub merged: HashSet<Uuid>,
    /// People created.
    pub created: HashSet<Uuid>,
}

/// One record of the region, stored or brought by the batch.
struct RegionRecord<'r> {
    key: RecordKey,
    /// Its person before: stored, or the fresh id planned for a new record.
    before: Uuid,
    /// Whether `before` is a stored person.
    stored_person: bool,
    version: DateTime<Utc>,
    fields: &'r PersonFields,
    /// The batch item that brings it, if any.
    cause: Option<usize>,
}

/// Resolves the region of `batch` (the batch's person items) and of the people of `seeds`,
/// and adds what changed to `changes`.
pub(super) async fn resolve_region<'a>(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[PersonChange<'a>],
    seeds: Vec<Uuid>,
    context: &Context,
    now: DateTime<Utc>,
    changes: &mut BatchChanges<'a>,
) -> Result<Finals, StoreError> {
    let mut people = seeds;
    let (mut emails, mut phones) = (Vec::new(), Vec::new());
    for change in batch {
        if change.row_exists && !change.entity_id.is_nil() {
            people.push(change.entity_id);
        }
        if let Some(p) = person_fields(change.item) {
            emails.extend(p.emails.iter().cloned());
            phones.extend(p.phones.iter().cloned());
        }
    }
    let stored = region::load(tx, people, emails, phones).await?;

    // The region's records: stored ones, with the batch's on top.
    let mut stored_people: BTreeSet<Uuid> = stored.people.clone();
    let mut members_before: HashMap<Uuid, BTreeSet<RecordKey>> = HashMap::new();
    let mut by_key: BTreeMap<RecordKey, RegionRecord> = BTreeMap::new();
    for (key, record) in &stored.records {
        members_before
            .entry(record.person)
            .or_default()
            .insert(key.clone());
        by_key.insert(
            key.clone(),
            RegionRecord {
                key: key.clone(),
                before: record.person,
                stored_person: true,
                version: record.version,
                fields: &record.fields,
                cause: None,
            },
        );
    }
    for change in batch {
        let key = change.key();
        if change.row_exists && !change.entity_id.is_nil() {
            stored_people.insert(change.entity_id);
        }
        match person_fields(change.item) {
            Some(fields) if !change.entity_id.is_nil() => {
                by_key.insert(
                    key.clone(),
                    RegionRecord {
                        key,
                        before: change.entity_id,
                        stored_person: change.row_exists,
                        version: change.item.version,
                        fields,
                        cause: Some(change.index),
                    },
                );
            }
            _ => {
                by_key.remove(&key);
            }
        }
    }
    let records: Vec<RegionRecord<'_>> = by_key.into_values().collect();
    let has_stored = !stored.records.is_empty();
    let decided = if has_stored {
        let keys: Vec<&RecordKey> = stored.records.keys().collect();
        region::decisions(tx, &keys).await?
    } else {
        Vec::new()
    };
    let decisions: Vec<resolve::Decision> = decided.iter().map(|d| d.decision.clone()).collect();
    let resolution = resolve::resolve(
        &records
            .iter()
            .map(|r| Record {
                key: r.key.clone(),
                name: name_of(r.fields),
                emails: r.fields.emails.clone(),
                phones: r.fields.phones.clone(),
            })
            .collect::<Vec<_>>(),
        &decisions,
    );
    let decided_by: HashMap<(&RecordKey, &RecordKey), &str> = decided
        .iter()
        .flat_map(|d| {
            [
                ((&d.decision.a, &d.decision.b), d.actor.as_str()),
                ((&d.decision.b, &d.decision.a), d.actor.as_str()),
            ]
        })
        .collect();

    // Which group keeps each stored person: the one holding most of her records (the first
    // of those on a tie). Every stored person with a live record is kept by one group.
    let group_of: HashMap<usize, usize> = resolution
        .groups
        .iter()
        .enumerate()
        .flat_map(|(g, members)| members.iter().map(move |&i| (i, g)))
        .collect();
    let mut counts: BTreeMap<Uuid, BTreeMap<usize, usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.stored_person {
            *counts
                .entry(r.before)
                .or_default()
                .entry(group_of[&i])
                .or_default() += 1;
        }
    }
    let keeper: HashMap<Uuid, usize> = counts
        .iter()
        .filter_map(|(person, per_group)| {
            let most = per_group.values().max()?;
            let g = per_group
                .iter()
                .find(|(_, n)| *n == most)
                .map(|(g, _)| *g)?;
            Some((*person, g))
        })
        .collect();

    let batch_cause = batch.first().map(|c| c.index);
    let mut finals = Finals::default();
    let now_json = json!(now);
    for (g, members) in resolution.groups.iter().enumerate() {
        let kept: BTreeSet<Uuid> = members
            .iter()
            .map(|&i| records[i].before)
            .filter(|p| keeper.get(p) == Some(&g))
            .collect();
        let fresh: BTreeSet<Uuid> = members
            .iter()
            .filter(|&&i| !records[i].stored_person)
            .map(|&i| records[i].before)
            .collect();
        let id = kept
            .first()
            .or_else(|| fresh.first())
            .copied()
            .unwrap_or_else(Uuid::now_v7);
        for &i in members {
            finals.person_of.insert(records[i].key.clone(), id);
        }
        let touched = members.iter().any(|&i| records[i].cause.is_some());
        if !touched && stored_people.contains(&id) {
            let keys: BTreeSet<RecordKey> =
                members.iter().map(|&i| records[i].key.clone()).collect();
            if members_before.get(&id) == Some(&keys) {
                continue; // the same records as before, none of them changed
            }
        }
        let cause = members
            .iter()
            .find_map(|&i| records[i].cause)
            .or(batch_cause)
            .unwrap_or(usize::MAX);

        let views = members
            .iter()
            .map(|&i| SourceView {
                version: records[i].version,
                fields: records[i].fields.clone(),
            })
            .collect();
        let Some(fields) = merge_sources(views) else {
            continue;
        };
        let json = serde_json::to_value(&fields).map_err(|e| StoreError::Encode(e.to_string()))?;
        let mut row = entity_row(json, id, &now_json);
        row["merged_into"] = Value::Null;
        let existed = stored_people.contains(&id);
        changes.row(EntityType::Person, row, !existed);
        if !existed {
            finals.created.insert(id);
        }
        changes.events.push(PlannedEvent::Upserted {
            entity: EntityType::Person,
            id,
            change: if existed {
                DataChange::Updated
            } else {
                DataChange::Created
            },
            cause,
        });

        // The people folded into this one: stored ones are marked, new ones are stored
        // already merged, so their ids still say where they went.
        for &merged in kept.iter().chain(fresh.iter()).filter(|p| **p != id) {
            let evidence = evidence_of(
                &resolution,
                &records,
                members,
                merged,
                &decided_by,
                context,
                now,
            );
            if stored_people.contains(&merged) {
                changes.merges.push((merged, id));
            } else if let Some(&i) = members.iter().find(|&&i| records[i].before == merged) {
                let json = serde_json::to_value(records[i].fields)
                    .map_err(|e| StoreError::Encode(e.to_string()))?;
                let mut row = entity_row(json, merged, &now_json);
                row["merged_into"] = json!(id);
                row["deleted_at"] = now_json.clone();
                changes.row(EntityType::Person, row, true);
            }
            finals.merged.insert(merged);
            changes.merge_rows.push(merge_row(id, merged, &evidence));
            changes.events.push(PlannedEvent::Merged {
                kept: id,
                merged,
                evidence,
                cause,
            });
        }

        // Records that leave a person who lives on elsewhere: a split.
        let mut moved_from: BTreeMap<Uuid, Vec<SourceRef>> = BTreeMap::new();
        for &i in members {
            let r = &records[i];
            if r.stored_person && r.before != id && !kept.contains(&r.before) {
                moved_from
                    .entry(r.before)
                    .or_default()
                    .push(source_ref(&r.key));
            }
            if r.cause.is_none() && r.before != id {
                changes.moves.push((r.key.clone(), id));
            }
        }
        for (from, moved) in moved_from {
            let reason = context.split_reason.unwrap_or_else(|| {
                if carries_shared(&resolution, &records, members) {
                    "shared_identifier"
                } else {
                    "names_differ"
                }
            });
            changes
                .undone
                .push((from, moved.clone(), context.actor.clone()));
            changes.events.push(PlannedEvent::Unmerged {
                person: from,
                split: id,
                moved,
                reason,
                actor: context.actor.clone(),
                cause,
            });
        }
    }

    // Stored people none of whose records lives on: deleted. (A person whose records could
    // not be read is left alone, not taken for one without records.)
    let batch_people: HashSet<Uuid> = batch.iter().map(|c| c.entity_id).collect();
    for person in &stored_people {
        let had_records = members_before.contains_key(person) || batch_people.contains(person);
        if keeper.contains_key(person) || !had_records {
            continue;
        }
        let cause = batch
            .iter()
            .find(|c| c.entity_id == *person)
            .map(|c| c.index)
            .or(batch_cause)
            .unwrap_or(usize::MAX);
        changes
            .deletes
            .entry(EntityType::Person)
            .or_default()
            .push(*person);
        changes.events.push(PlannedEvent::Deleted {
            entity: EntityType::Person,
            id: *person,
            cause,
        });
    }

    // With nothing stored in the region there are no stored notes to replace, only new ones.
    if has_stored || !resolution.suggestions.is_empty() || !resolution.shared.is_empty() {
        changes
            .identity
            .replace(&stored.complete, &resolution, &records, now);
    }
    Ok(finals)
}

/// Writes what the people part of a batch decided beyond rows and events: records moved
/// between people, the merges with their evidence, the merges undone by splits, and the
/// suggestions and shared identifiers. Runs after the merges are marked.
pub(super) async fn write_identity(
    tx: &mut Transaction<'static, Postgres>,
    changes: &BatchChanges<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !changes.moves.is_empty() {
        let instances: Vec<&str> = changes
            .moves
            .iter()
            .map(|(k, _)| k.instance_id.as_str())
            .collect();
        let externals: Vec<&str> = changes
            .moves
            .iter()
            .map(|(k, _)| k.external_id.as_str())
            .collect();
        let people: Vec<Uuid> = changes.moves.iter().map(|(_, p)| *p).collect();
        sqlx::query(sql::MOVE_SOURCES)
            .bind(&instances)
            .bind(&externals)
            .bind(&people)
            .execute(&mut **tx)
            .await?;
    }
    for (person, moved, actor) in &changes.undone {
        let moved = serde_json::to_value(moved).map_err(|e| StoreError::Encode(e.to_string()))?;
        sqlx::query(sql::UNDO_MERGES)
            .bind(person)
            .bind(moved)
            .bind(now)
            .bind(actor.as_deref().unwrap_or("etl"))
            .execute(&mut **tx)
            .await?;
    }
    if !changes.merge_rows.is_empty() {
        sqlx::query(sql::INSERT_MERGES)
            .bind(Value::Array(changes.merge_rows.clone()))
            .execute(&mut **tx)
            .await?;
    }
    let notes = &changes.identity;
    if !notes.replaced.is_empty() {
        sqlx::query(sql::FORGET_SUGGESTIONS)
            .bind(&notes.replaced)
            .execute(&mut **tx)
            .await?;
        sqlx::query(sql::FORGET_SHARED)
            .bind(&notes.replaced)
            .execute(&mut **tx)
            .await?;
    }
    if !notes.suggestions.is_empty() {
        sqlx::query(sql::INSERT_SUGGESTIONS)
            .bind(Value::Array(notes.suggestions.clone()))
            .execute(&mut **tx)
            .await?;
    }
    if !notes.shared.is_empty() {
        sqlx::query(sql::INSERT_SHARED)
            .bind(Value::Array(notes.shared.clone()))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn source_ref(key: &RecordKey) -> SourceRef {
    SourceRef {
        instance_id: key.instance_id.clone(),
        external_id: key.external_id.clone(),
    }
}

/// Why `merged` joined the group `members`: the first join that linked one of its records
/// with one of another person's.
fn evidence_of(
    resolution: &Resolution,
    records: &[RegionRecord],
    members: &[usize],
    merged: Uuid,
    decided_by: &HashMap<(&RecordKey, &RecordKey), &str>,
    context: &Context,
    now: DateTime<Utc>,
) -> MergeEvidence {
    let in_group: HashSet<usize> = members.iter().copied().collect();
    let link = resolution.links.iter().find(|l| {
        in_group.contains(&l.a)
            && in_group.contains(&l.b)
            && ((records[l.a].before == merged) != (records[l.b].before == merged))
    });
    let Some(link) = link else {
        return MergeEvidence {
            rule: MergeRule::Manual,
            identifier: None,
            kept_sources: Vec::new(),
            merged_sources: Vec::new(),
            actor: context.actor.clone(),
            merged_at: now,
        };
    };
    let (theirs, ours) = if records[link.a].before == merged {
        (link.a, link.b)
    } else {
        (link.b, link.a)
    };
    let (rule, identifier, actor) = match &link.reason {
        Reason::Decided => (
            MergeRule::Manual,
            None,
            decided_by
                .get(&(&records[link.a].key, &records[link.b].key))
                .map(|a| a.to_string())
                .or_else(|| context.actor.clone()),
        ),
        Reason::Shared(IdentifierKind::Email, id) => {
            (MergeRule::SharedEmail, Some(id.clone()), None)
        }
        Reason::Shared(IdentifierKind::Phone, id) => {
            (MergeRule::SharedPhone, Some(id.clone()), None)
        }
    };
    MergeEvidence {
        rule,
        identifier,
        kept_sources: vec![source_ref(&records[ours].key)],
        merged_sources: vec![source_ref(&records[theirs].key)],
        actor,
        merged_at: now,
    }
}

/// Whether a record of `members` carries an identifier shared by three or more people.
fn carries_shared(resolution: &Resolution, records: &[RegionRecord], members: &[usize]) -> bool {
    members.iter().any(|&i| {
        let f = &records[i].fields;
        f.emails
            .iter()
            .chain(&f.phones)
            .any(|id| resolution.shared.iter().any(|s| &s.identifier == id))
    })
}

/// A `person_merge` row.
fn merge_row(kept: Uuid, merged: Uuid, evidence: &MergeEvidence) -> Value {
    json!({
        "id": Uuid::now_v7(),
        "kept_id": kept,
        "merged_id": merged,
        "rule": evidence.rule.as_str(),
        "identifier": evidence.identifier,
        "evidence": {
            "kept_sources": evidence.kept_sources,
            "merged_sources": evidence.merged_sources,
        },
        "actor": evidence.actor,
        "merged_at": evidence.merged_at,
    })
}

/// What the region says of its identifiers: the suggestions and shared identifiers that
/// replace the stored ones of the identifiers whose carriers were all loaded.
#[derive(Debug, Default)]
pub(super) struct IdentityNotes {
    /// The identifiers whose rows are replaced.
    pub replaced: Vec<String>,
    /// `person_suggestion` rows.
    pub suggestions: Vec<Value>,
    /// `shared_identifier` rows.
    pub shared: Vec<Value>,
}

impl IdentityNotes {
    fn replace(
        &mut self,
        complete: &HashSet<String>,
        resolution: &Resolution,
        records: &[RegionRecord],
        now: DateTime<Utc>,
    ) {
        for (_, id) in &resolution.identifiers {
            if complete.contains(id) {
                self.replaced.push(id.clone());
            }
        }
        for s in &resolution.suggestions {
            if !complete.contains(&s.identifier) {
                continue;
            }
            let (a, b) = (&records[s.a], &records[s.b]);
            self.suggestions.push(json!({
                "a_instance_id": a.key.instance_id, "a_external_id": a.key.external_id,
                "b_instance_id": b.key.instance_id, "b_external_id": b.key.external_id,
                "kind": s.kind.as_str(), "identifier": s.identifier, "score": s.score,
                "a_name": name_of(a.fields).unwrap_or_default(),
                "b_name": name_of(b.fields).unwrap_or_default(),
                "created_at": now,
            }));
        }
        for s in &resolution.shared {
            if !complete.contains(&s.identifier) {
                continue;
            }
            self.shared.push(json!({
                "kind": s.kind.as_str(), "identifier": s.identifier, "carriers": s.carriers,
                "names": s.names, "updated_at": now,
            }));
        }
    }
}
