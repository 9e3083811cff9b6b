//! What the `etl.people.*` reads show, read from PostgreSQL: a person with her source records,
//! the merges that built her, the decisions and suggestions about her records and her messages
//! and calendar events; the open suggestions; the shared identifiers.
//!
//! Decisions and suggestions name source records by their keys, so a person's are those
//! naming one of the records whose `entity_id` is hers now. Her messages and events are found
//! by address: those sent by or to (organised by, attended by) one of the addresses and
//! numbers on her row. An address another live person carries too (a family mailbox) counts
//! only for messages and events from an instance one of her own records comes from, so the
//! other person's mail from elsewhere does not show as hers.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tributary_proto::model::{EntityType, Person, PersonFields, Record};
use tributary_proto::requests::etl::{
    DecisionView, IdentifierKind, LinkedEvent, LinkedMessage, MergeKind, MergeView, Page,
    PersonDetail, PersonShown, PersonSource, RecordRef, SharedIdentifierView, SharedPage,
    SuggestedSide, SuggestionPage, SuggestionView, Verdict, LINKED_LIMIT,
};
use uuid::Uuid;

/// How far `merged_into` pointers are followed: a longer chain is a cycle.
const MAX_CHAIN: i32 = 1000;

const PERSON: &str = "SELECT id, display_name, given_name, family_name, emails, phones, \
    organization, title, extra, created_at, updated_at, deleted_at, merged_into \
    FROM person WHERE id = $1";

/// The live end of the chain of `merged_into` pointers from a person.
const MERGED_END: &str = "WITH RECURSIVE chain (id, merged_into, depth) AS ( \
        SELECT id, merged_into, 0 FROM person WHERE id = $1 \
        UNION ALL \
        SELECT p.id, p.merged_into, c.depth + 1 FROM person p JOIN chain c ON p.id = c.merged_into \
        WHERE c.depth < $2) \
    SELECT id FROM chain WHERE merged_into IS NULL LIMIT 1";

const SOURCES: &str = "SELECT instance_id, external_id, data, source_modified_at, deleted \
    FROM source_record WHERE entity_type = 'person' AND entity_id = $1 \
    ORDER BY instance_id, external_id";

/// The merges into a person and, transitively, into each person merged into her; `UNION`
/// drops a row met twice, so a cycle ends.
const MERGES: &str = "WITH RECURSIVE built AS ( \
        SELECT * FROM person_merge WHERE kept_id = $1 AND undone_at IS NULL \
        UNION \
        SELECT m.* FROM person_merge m JOIN built b ON m.kept_id = b.merged_id \
        WHERE m.undone_at IS NULL) \
    SELECT id, kept_id, merged_id, rule, identifier, evidence, actor, merged_at FROM built \
    ORDER BY merged_at, id";

/// The decisions naming one of a person's records.
const DECISIONS: &str = "SELECT d.a_instance_id, d.a_external_id, d.b_instance_id, \
        d.b_external_id, d.verdict, d.actor, d.decided_at \
    FROM person_decision d \
    WHERE EXISTS (SELECT 1 FROM source_record r \
        WHERE r.entity_type = 'person' AND r.entity_id = $1 \
          AND ((r.instance_id = d.a_instance_id COLLATE \"C\" \
                AND r.external_id = d.a_external_id COLLATE \"C\") \
            OR (r.instance_id = d.b_instance_id COLLATE \"C\" \
                AND r.external_id = d.b_external_id COLLATE \"C\"))) \
    ORDER BY d.decided_at DESC, d.a_instance_id, d.a_external_id, d.b_instance_id, d.b_external_id";

/// The open suggestions: each side's record and its person now, pairs that are one person by
/// now, or whose record is gone or deleted, left out. `$1` narrows to one person's (or NULL).
const SUGGESTIONS_FROM: &str = "FROM person_suggestion s \
    JOIN source_record ra ON ra.entity_type = 'person' \
        AND ra.instance_id = s.a_instance_id COLLATE \"C\" \
        AND ra.external_id = s.a_external_id COLLATE \"C\" \
    JOIN source_record rb ON rb.entity_type = 'person' \
        AND rb.instance_id = s.b_instance_id COLLATE \"C\" \
        AND rb.external_id = s.b_external_id COLLATE \"C\" \
    WHERE ra.entity_id <> rb.entity_id AND NOT ra.deleted AND NOT rb.deleted \
      AND ($1::uuid IS NULL OR ra.entity_id = $1 OR rb.entity_id = $1)";

const SUGGESTION_COLUMNS: &str = "SELECT s.a_instance_id, s.a_external_id, \
    ra.entity_id AS a_person, s.a_name, s.b_instance_id, s.b_external_id, \
    rb.entity_id AS b_person, s.b_name, s.kind, s.identifier, s.score, s.created_at ";

const SUGGESTIONS_ORDER: &str = " ORDER BY s.score DESC, s.created_at, s.a_instance_id, \
    s.a_external_id, s.b_instance_id, s.b_external_id, s.identifier LIMIT $2 OFFSET $3";

const SHARED: &str = "SELECT kind, identifier, carriers, names, updated_at \
    FROM shared_identifier ORDER BY carriers DESC, kind, identifier LIMIT $1 OFFSET $2";

const SHARED_COUNT: &str = "SELECT count(*) FROM shared_identifier";

/// Of `$1`, the addresses and numbers another live person than `$2` carries too.
const CONTESTED: &str = "SELECT a.address FROM unnest($1::text[]) AS a(address) \
    WHERE EXISTS (SELECT 1 FROM person p \
        WHERE p.id <> $2 AND p.merged_into IS NULL AND p.deleted_at IS NULL \
          AND (p.emails @> ARRAY[a.address] OR p.phones @> ARRAY[a.address]))";

/// A person's messages: by an address only she carries (`$1`), or by one others carry too
/// (`$2`) from an instance one of her records comes from (`$3`).
const MESSAGES: &str = "SELECT m.id, m.subject, m.sender, m.recipients, m.sent_at, \
        COALESCE((SELECT min(s.instance_id) FROM source_record s \
            WHERE s.entity_type = 'message' AND s.entity_id = m.id), '') AS source \
    FROM message m \
    WHERE m.deleted_at IS NULL \
      AND (m.sender = ANY($1) OR m.recipients && $1 \
        OR ((m.sender = ANY($2) OR m.recipients && $2) \
            AND EXISTS (SELECT 1 FROM source_record s WHERE s.entity_type = 'message' \
                AND s.entity_id = m.id AND s.instance_id = ANY($3)))) \
    ORDER BY m.sent_at DESC, m.id LIMIT $4";

/// A person's calendar events, with the rule of [`MESSAGES`].
const EVENTS: &str = "SELECT e.id, e.title, e.starts_at, e.organizer, e.attendees, \
        COALESCE((SELECT min(s.instance_id) FROM source_record s \
            WHERE s.entity_type = 'calendar_event' AND s.entity_id = e.id), '') AS source \
    FROM calendar_event e \
    WHERE e.deleted_at IS NULL \
      AND (e.organizer = ANY($1) OR e.attendees && $1 \
        OR ((e.organizer = ANY($2) OR e.attendees && $2) \
            AND EXISTS (SELECT 1 FROM source_record s WHERE s.entity_type = 'calendar_event' \
                AND s.entity_id = e.id AND s.instance_id = ANY($3)))) \
    ORDER BY e.starts_at DESC, e.id LIMIT $4";

/// `etl.people.show`: the person with `id`, where she lives on when she was merged, or `None`
/// when no person ever had the id.
pub async fn show(pool: &PgPool, id: Uuid) -> Result<Option<PersonShown>, sqlx::Error> {
    let Some(row) = sqlx::query(PERSON).bind(id).fetch_optional(pool).await? else {
        return Ok(None);
    };
    if row.try_get::<Option<Uuid>, _>("merged_into")?.is_some() {
        let end: Option<Uuid> = sqlx::query_scalar(MERGED_END)
            .bind(id)
            .bind(MAX_CHAIN)
            .fetch_optional(pool)
            .await?;
        // A chain with no live end (a cycle) points at the first hop.
        let merged_into = match end {
            Some(end) => end,
            None => row.try_get::<Option<Uuid>, _>("merged_into")?.unwrap_or(id),
        };
        return Ok(Some(PersonShown::Merged { id, merged_into }));
    }
    let person = person_of(&row)?;
    let sources = sqlx::query(SOURCES)
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(source_of)
        .collect::<Result<Vec<_>, _>>()?;
    let merges = sqlx::query(MERGES)
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(merge_of)
        .collect::<Result<Vec<_>, _>>()?;
    let decisions = sqlx::query(DECISIONS)
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .filter_map(|r| decision_of(r).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let suggestions = suggestions_where(
        pool,
        Some(id),
        Page {
            limit: tributary_proto::requests::etl::MAX_PAGE,
            offset: 0,
        },
    )
    .await?;

    let mut addresses: Vec<String> = person
        .fields
        .emails
        .iter()
        .chain(&person.fields.phones)
        .cloned()
        .collect();
    addresses.sort();
    addresses.dedup();
    let contested: Vec<String> = sqlx::query_scalar(CONTESTED)
        .bind(&addresses)
        .bind(id)
        .fetch_all(pool)
        .await?;
    let own: Vec<String> = addresses
        .iter()
        .filter(|a| !contested.contains(a))
        .cloned()
        .collect();
    let mut instances: Vec<String> = sources
        .iter()
        .filter(|s| !s.deleted)
        .map(|s| s.instance_id.clone())
        .collect();
    instances.dedup();
    let limit = i64::try_from(LINKED_LIMIT).unwrap_or(i64::MAX);
    let messages = sqlx::query(MESSAGES)
        .bind(&own)
        .bind(&contested)
        .bind(&instances)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(LinkedMessage {
                id: r.try_get("id")?,
                subject: r.try_get("subject")?,
                sender: r.try_get("sender")?,
                recipients: r.try_get("recipients")?,
                sent_at: r.try_get("sent_at")?,
                source: r.try_get("source")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let events = sqlx::query(EVENTS)
        .bind(&own)
        .bind(&contested)
        .bind(&instances)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(LinkedEvent {
                id: r.try_get("id")?,
                title: r.try_get("title")?,
                starts_at: r.try_get("starts_at")?,
                organizer: r.try_get("organizer")?,
                attendees: r.try_get("attendees")?,
                source: r.try_get("source")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(PersonShown::Found(Box::new(PersonDetail {
        person,
        sources,
        merges,
        decisions,
        suggestions,
        messages,
        events,
    }))))
}

/// `etl.people.suggestions`: a page of the open suggestions, best score first.
pub async fn suggestions(pool: &PgPool, page: Page) -> Result<SuggestionPage, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {SUGGESTIONS_FROM}"))
        .bind(None::<Uuid>)
        .fetch_one(pool)
        .await?;
    Ok(SuggestionPage {
        suggestions: suggestions_where(pool, None, page).await?,
        total: u64::try_from(total).unwrap_or(0),
        limit: page.limit,
        offset: page.offset,
    })
}

async fn suggestions_where(
    pool: &PgPool,
    person: Option<Uuid>,
    page: Page,
) -> Result<Vec<SuggestionView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SUGGESTION_COLUMNS}{SUGGESTIONS_FROM}{SUGGESTIONS_ORDER}"
    ))
    .bind(person)
    .bind(i64::from(page.limit))
    .bind(i64::from(page.offset))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let Some(kind) = IdentifierKind::parse(&kind) else {
            continue;
        };
        out.push(SuggestionView {
            a: SuggestedSide {
                person_id: row.try_get("a_person")?,
                record: record_ref(row, "a")?,
                name: row.try_get("a_name")?,
            },
            b: SuggestedSide {
                person_id: row.try_get("b_person")?,
                record: record_ref(row, "b")?,
                name: row.try_get("b_name")?,
            },
            kind,
            identifier: row.try_get("identifier")?,
            score: row.try_get("score")?,
            created_at: row.try_get("created_at")?,
        });
    }
    Ok(out)
}

/// `etl.people.shared`: a page of the shared identifiers, most carriers first.
pub async fn shared(pool: &PgPool, page: Page) -> Result<SharedPage, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(SHARED_COUNT).fetch_one(pool).await?;
    let rows = sqlx::query(SHARED)
        .bind(i64::from(page.limit))
        .bind(i64::from(page.offset))
        .fetch_all(pool)
        .await?;
    let mut shared = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let Some(kind) = IdentifierKind::parse(&kind) else {
            continue;
        };
        let carriers: i32 = row.try_get("carriers")?;
        shared.push(SharedIdentifierView {
            kind,
            identifier: row.try_get("identifier")?,
            carriers: u32::try_from(carriers).unwrap_or(0),
            names: row.try_get("names")?,
            updated_at: row.try_get("updated_at")?,
        });
    }
    Ok(SharedPage {
        shared,
        total: u64::try_from(total).unwrap_or(0),
        limit: page.limit,
        offset: page.offset,
    })
}

fn person_of(row: &PgRow) -> Result<Person, sqlx::Error> {
    let extra: serde_json::Value = row.try_get("extra")?;
    Ok(Record {
        id: row.try_get("id")?,
        fields: PersonFields {
            display_name: row.try_get("display_name")?,
            given_name: row.try_get("given_name")?,
            family_name: row.try_get("family_name")?,
            emails: row.try_get("emails")?,
            phones: row.try_get("phones")?,
            organization: row.try_get("organization")?,
            title: row.try_get("title")?,
            extra: match extra {
                serde_json::Value::Object(map) => map,
                _ => Default::default(),
            },
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        sources: None,
    })
}

fn source_of(row: &PgRow) -> Result<PersonSource, sqlx::Error> {
    // A tombstone keeps no fields: its names and identifiers are empty.
    let data: Option<serde_json::Value> = row.try_get("data")?;
    let fields: PersonFields = data
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default();
    Ok(PersonSource {
        instance_id: row.try_get("instance_id")?,
        external_id: row.try_get("external_id")?,
        entity_type: EntityType::Person,
        display_name: fields.display_name,
        given_name: fields.given_name,
        family_name: fields.family_name,
        emails: fields.emails,
        phones: fields.phones,
        version: row.try_get::<DateTime<Utc>, _>("source_modified_at")?,
        deleted: row.try_get("deleted")?,
    })
}

/// `person_merge.evidence`: the records on each side.
#[derive(Deserialize, Default)]
struct Evidence {
    #[serde(default)]
    kept_sources: Vec<RecordRef>,
    #[serde(default)]
    merged_sources: Vec<RecordRef>,
}

fn merge_of(row: &PgRow) -> Result<MergeView, sqlx::Error> {
    let rule: String = row.try_get("rule")?;
    let evidence: serde_json::Value = row.try_get("evidence")?;
    let evidence: Evidence = serde_json::from_value(evidence).unwrap_or_default();
    Ok(MergeView {
        id: row.try_get("id")?,
        kept_id: row.try_get("kept_id")?,
        merged_id: row.try_get("merged_id")?,
        // The table's CHECK allows only these three.
        rule: MergeKind::parse(&rule).unwrap_or(MergeKind::Manual),
        identifier: row.try_get("identifier")?,
        kept_sources: evidence.kept_sources,
        merged_sources: evidence.merged_sources,
        actor: row.try_get("actor")?,
        merged_at: row.try_get("merged_at")?,
    })
}

fn decision_of(row: &PgRow) -> Result<Option<DecisionView>, sqlx::Error> {
    let verdict: String = row.try_get("verdict")?;
    let Some(verdict) = Verdict::parse(&verdict) else {
        return Ok(None);
    };
    Ok(Some(DecisionView {
        a: record_ref(row, "a")?,
        b: record_ref(row, "b")?,
        verdict,
        actor: row.try_get("actor")?,
        decided_at: row.try_get("decided_at")?,
    }))
}

/// The record of side `side` (`a`, `b`) of a pair row.
fn record_ref(row: &PgRow, side: &str) -> Result<RecordRef, sqlx::Error> {
    Ok(RecordRef {
        instance_id: row.try_get(format!("{side}_instance_id").as_str())?,
        external_id: row.try_get(format!("{side}_external_id").as_str())?,
    })
}
