//! Loading the region of person records a batch or a decision touches: the records of the
//! people it names, and of everyone who shares an identifier with them, round after round
//! until nobody new turns up. One statement per round to find the people and one to read
//! their records, however many items the batch holds; a batch of people who share nothing
//! with anyone stored costs one round.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use tributary_proto::model::PersonFields;
use uuid::Uuid;

use super::super::identity::resolve::{Decision, RecordKey, Verdict};
use super::super::{sql, StoreError};

/// Rounds of loading before the region is taken as it is. Each round follows identifiers one
/// step further; real address books settle in two or three.
const MAX_ROUNDS: usize = 12;

/// A stored person record, as the region holds it.
#[derive(Debug, Clone)]
pub(super) struct StoredRecord {
    /// The person it belongs to.
    pub person: Uuid,
    /// Its version.
    pub version: DateTime<Utc>,
    /// What it says.
    pub fields: PersonFields,
}

/// The stored part of a region.
#[derive(Debug, Default)]
pub(super) struct StoredRegion {
    /// Its live records.
    pub records: BTreeMap<RecordKey, StoredRecord>,
    /// The live people they belong to.
    pub people: BTreeSet<Uuid>,
    /// The identifiers whose every live carrier is in `records`.
    pub complete: HashSet<String>,
}

/// Loads the region of the people of `people` and of everyone carrying one of `emails` or
/// `phones`, locking the people.
pub(super) async fn load(
    tx: &mut Transaction<'static, Postgres>,
    mut people: Vec<Uuid>,
    mut emails: Vec<String>,
    mut phones: Vec<String>,
) -> Result<StoredRegion, StoreError> {
    let mut region = StoredRegion::default();
    let mut asked: HashSet<String> = HashSet::new();
    for round in 0.. {
        emails.retain(|e| asked.insert(e.clone()));
        phones.retain(|p| asked.insert(p.clone()));
        if emails.is_empty() && phones.is_empty() && people.is_empty() {
            break;
        }
        if round == MAX_ROUNDS {
            tracing::warn!(
                rounds = MAX_ROUNDS,
                records = region.records.len(),
                "the people sharing identifiers reach further than the rounds the ETL follows; the rest are resolved when their own records change"
            );
            break;
        }
        region.complete.extend(emails.iter().cloned());
        region.complete.extend(phones.iter().cloned());
        let found: Vec<Uuid> = sqlx::query_scalar(sql::PEOPLE_IN_REGION)
            .bind(&emails)
            .bind(&phones)
            .bind(&people)
            .fetch_all(&mut **tx)
            .await?;
        let new: Vec<Uuid> = found
            .into_iter()
            .filter(|id| region.people.insert(*id))
            .collect();
        (emails, phones, people) = (Vec::new(), Vec::new(), Vec::new());
        if new.is_empty() {
            break;
        }
        let rows = sqlx::query(sql::SOURCES_OF_PEOPLE)
            .bind(&new)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let Ok(fields) = serde_json::from_value::<PersonFields>(row.try_get("data")?) else {
                continue;
            };
            emails.extend(fields.emails.iter().cloned());
            phones.extend(fields.phones.iter().cloned());
            let key = RecordKey::new(
                row.try_get::<String, _>("instance_id")?,
                row.try_get::<String, _>("external_id")?,
            );
            region.records.insert(
                key,
                StoredRecord {
                    person: row.try_get("entity_id")?,
                    version: row.try_get("source_modified_at")?,
                    fields,
                },
            );
        }
    }
    Ok(region)
}

/// A decision as stored, with who made it.
#[derive(Debug, Clone)]
pub(super) struct StoredDecision {
    /// The decision.
    pub decision: Decision,
    /// Who made it.
    pub actor: String,
}

/// The decisions about the records of `keys`.
pub(super) async fn decisions(
    tx: &mut Transaction<'static, Postgres>,
    keys: &[&RecordKey],
) -> Result<Vec<StoredDecision>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let instances: Vec<&str> = keys.iter().map(|k| k.instance_id.as_str()).collect();
    let externals: Vec<&str> = keys.iter().map(|k| k.external_id.as_str()).collect();
    let rows = sqlx::query(sql::DECISIONS_OF_RECORDS)
        .bind(&instances)
        .bind(&externals)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let verdict = match row.try_get::<String, _>("verdict")?.as_str() {
            "together" => Verdict::Together,
            _ => Verdict::Apart,
        };
        out.push(StoredDecision {
            decision: Decision {
                a: RecordKey::new(
                    row.try_get::<String, _>("a_instance_id")?,
                    row.try_get::<String, _>("a_external_id")?,
                ),
                b: RecordKey::new(
                    row.try_get::<String, _>("b_instance_id")?,
                    row.try_get::<String, _>("b_external_id")?,
                ),
                verdict,
            },
            actor: row.try_get("actor")?,
        });
    }
    Ok(out)
}
