//! What a person decides about people: split a merged person apart, merge two, or keep two
//! apart. Each decision is remembered by the source records it names, and applied in one
//! transaction with the re-resolution it causes, so its events are written to the outbox like
//! a batch's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use tributary_proto::model::PersonFields;
use uuid::Uuid;

use super::identity::resolve::{RecordKey, Verdict};
use super::{sql, StoreError};

/// A decision about people, as the admin API and `tributary people` take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeopleDecision {
    /// Split `person` back into the people its sources describe: every source record its own
    /// person, or, with `instance`, only the records of that plugin instance split off
    /// (together). Remembered: later syncs never merge them again unless a person says so.
    Unmerge {
        /// The person to split.
        person: Uuid,
        /// Only this instance's records split off.
        instance: Option<String>,
    },
    /// Merge two people who share nothing (or whose names do not match): a person says they
    /// are one. Remembered: later syncs keep them together.
    Merge {
        /// One of them.
        a: Uuid,
        /// The other.
        b: Uuid,
    },
    /// Keep two people apart (a rejected suggestion): later syncs never merge them.
    KeepApart {
        /// One of them.
        a: Uuid,
        /// The other.
        b: Uuid,
    },
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionReport {
    /// The people the decision's records belong to afterwards, smallest id first.
    pub people: Vec<Uuid>,
    /// Events written to the outbox.
    pub events: usize,
}

/// A decision that cannot be applied, named.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// No person has this id.
    #[error("no person has the id {0}")]
    UnknownPerson(Uuid),
    /// The person was merged into another; decide about that one.
    #[error("person {person} was merged into {into}: use that id")]
    MergedInto {
        /// The id asked about.
        person: Uuid,
        /// The person it lives on in.
        into: Uuid,
    },
    /// The person was deleted: every source removed her.
    #[error("person {0} was deleted")]
    Deleted(Uuid),
    /// The person has one source record: there is nothing to split.
    #[error("person {0} comes from one source record: there is nothing to split")]
    NothingToSplit(Uuid),
    /// `--source` names an instance the person has no record from, or all of them.
    #[error("person {person} {problem}")]
    NoSuchSource {
        /// The person.
        person: Uuid,
        /// What is wrong (`has no record from instance \`crm\``).
        problem: String,
    },
    /// Both ids are the same person.
    #[error("{0} and {1} are the same person")]
    SamePerson(Uuid, Uuid),
    /// The database refused or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DecisionError {
    /// Whether trying again unchanged can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecisionError::Store(e) if e.is_transient())
    }
}

impl super::BatchWriter {
    /// Applies `decision`, made by `actor` (the admin token's name, `cli`), in one
    /// transaction: the decision is remembered, the people it names are resolved again, and
    /// the events of what changed are written to the outbox.
    pub async fn decide(
        &self,
        decision: &PeopleDecision,
        actor: &str,
    ) -> Result<DecisionReport, DecisionError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        sqlx::query(sql::KEYED_PLANS_ONLY)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let now = super::now_micros();
        let named: Vec<Uuid> = match decision {
            PeopleDecision::Unmerge { person, .. } => vec![*person],
            PeopleDecision::Merge { a, b } | PeopleDecision::KeepApart { a, b } => {
                if a == b {
                    return Err(DecisionError::SamePerson(*a, *b));
                }
                vec![*a, *b]
            }
        };
        for id in &named {
            live_person(&mut tx, *id).await?;
        }
        let records = records_of(&mut tx, &named).await?;
        // The same locks a batch with these people's addresses takes, so a batch in flight
        // with one of them either committed before this reads, or waits for it.
        let (emails, phones) =
            records
                .values()
                .flatten()
                .fold((Vec::new(), Vec::new()), |(mut e, mut p), r| {
                    e.extend(r.emails.iter().map(String::as_str));
                    p.extend(r.phones.iter().map(String::as_str));
                    (e, p)
                });
        super::locks::lock_addresses(&mut tx, &emails, &phones).await?;
        if let Some(a) = named.first() {
            if records.get(a).is_none_or(Vec::is_empty) {
                return Err(DecisionError::UnknownPerson(*a));
            }
        }

        let keys = |id: &Uuid| -> Vec<RecordKey> {
            records
                .get(id)
                .map(|r| r.iter().map(|r| r.key.clone()).collect())
                .unwrap_or_default()
        };
        let (pairs, verdict, reason) = match decision {
            PeopleDecision::Unmerge { person, instance } => {
                let all = keys(person);
                if all.len() < 2 {
                    return Err(DecisionError::NothingToSplit(*person));
                }
                let pairs = match instance {
                    None => all_pairs(&all),
                    Some(instance) => {
                        let (off, rest): (Vec<RecordKey>, Vec<RecordKey>) =
                            all.into_iter().partition(|k| &k.instance_id == instance);
                        if off.is_empty() {
                            return Err(DecisionError::NoSuchSource {
                                person: *person,
                                problem: format!("has no record from instance `{instance}`"),
                            });
                        }
                        if rest.is_empty() {
                            return Err(DecisionError::NoSuchSource {
                                person: *person,
                                problem: format!(
                                    "comes from instance `{instance}` only: unmerge without --source splits its records"
                                ),
                            });
                        }
                        cross_pairs(&off, &rest)
                    }
                };
                (pairs, Verdict::Apart, "unmerged")
            }
            PeopleDecision::Merge { a, b } => (
                cross_pairs(&keys(a), &keys(b)),
                Verdict::Together,
                "unmerged",
            ),
            PeopleDecision::KeepApart { a, b } => (
                cross_pairs(&keys(a), &keys(b)),
                Verdict::Apart,
                "decided_apart",
            ),
        };
        remember(&mut tx, &pairs, verdict, actor, now).await?;

        let context = super::people::Context {
            actor: Some(actor.to_owned()),
            split_reason: Some(reason),
        };
        let mut changes = super::BatchChanges::default();
        let finals =
            super::people::resolve_region(&mut tx, &[], named.clone(), &context, now, &mut changes)
                .await?;
        let events = self.apply(&mut tx, &[], &[], changes, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let mut people: Vec<Uuid> = records
            .values()
            .flatten()
            .filter_map(|r| finals.person_of.get(&r.key).copied())
            .collect();
        people.sort();
        people.dedup();
        Ok(DecisionReport { people, events })
    }
}

/// A live person record's key and identifiers.
struct NamedRecord {
    key: RecordKey,
    emails: Vec<String>,
    phones: Vec<String>,
}

/// Checks `id` names a live person.
async fn live_person(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
) -> Result<(), DecisionError> {
    let row = sqlx::query(sql::PERSON_STATE)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let Some(row) = row else {
        return Err(DecisionError::UnknownPerson(id));
    };
    let merged_into: Option<Uuid> = row.try_get("merged_into").map_err(StoreError::from)?;
    if let Some(into) = merged_into {
        return Err(DecisionError::MergedInto { person: id, into });
    }
    let deleted: Option<DateTime<Utc>> = row.try_get("deleted_at").map_err(StoreError::from)?;
    if deleted.is_some() {
        return Err(DecisionError::Deleted(id));
    }
    Ok(())
}

/// The live records of each person of `ids`, in key order.
async fn records_of(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<NamedRecord>>, DecisionError> {
    let rows = sqlx::query(sql::SOURCES_OF_PEOPLE)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let mut out: HashMap<Uuid, Vec<NamedRecord>> = HashMap::new();
    for row in rows {
        let person: Uuid = row.try_get("entity_id").map_err(StoreError::from)?;
        let data: serde_json::Value = row.try_get("data").map_err(StoreError::from)?;
        let fields: PersonFields = serde_json::from_value(data).unwrap_or_default();
        out.entry(person).or_default().push(NamedRecord {
            key: RecordKey::new(
                row.try_get::<String, _>("instance_id")
                    .map_err(StoreError::from)?,
                row.try_get::<String, _>("external_id")
                    .map_err(StoreError::from)?,
            ),
            emails: fields.emails,
            phones: fields.phones,
        });
    }
    for records in out.values_mut() {
        records.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(out)
}

/// Every pair of `keys`, each in key order.
fn all_pairs(keys: &[RecordKey]) -> Vec<(RecordKey, RecordKey)> {
    let mut out = Vec::new();
    for (n, a) in keys.iter().enumerate() {
        for b in &keys[n + 1..] {
            out.push(ordered(a, b));
        }
    }
    out
}

/// Every pair of one of `a` and one of `b`, each in key order.
fn cross_pairs(a: &[RecordKey], b: &[RecordKey]) -> Vec<(RecordKey, RecordKey)> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| ordered(x, y)))
        .collect()
}

fn ordered(a: &RecordKey, b: &RecordKey) -> (RecordKey, RecordKey) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// Records the verdict about each pair, replacing any earlier one.
async fn remember(
    tx: &mut Transaction<'static, Postgres>,
    pairs: &[(RecordKey, RecordKey)],
    verdict: Verdict,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), DecisionError> {
    let verdict = match verdict {
        Verdict::Apart => "apart",
        Verdict::Together => "together",
    };
    let column =
        |f: fn(&(RecordKey, RecordKey)) -> &str| -> Vec<&str> { pairs.iter().map(f).collect() };
    sqlx::query(sql::UPSERT_DECISIONS)
        .bind(column(|p| &p.0.instance_id))
        .bind(column(|p| &p.0.external_id))
        .bind(column(|p| &p.1.instance_id))
        .bind(column(|p| &p.1.external_id))
        .bind(vec![verdict; pairs.len()])
        .bind(actor)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}
