//! The instances' timelines ([`tributary_proto::timeline`]): the `timeline` consumer stores
//! the lines the connector and channel services publish ([`store_lines`]), the admin API and
//! the console read them with the instance's audit entries, newest first ([`page`]), and lines
//! past `plugin_manager.timeline_retention_days` are deleted every hour ([`trim`]).
//!
//! A line is trusted for what its subject says: the service is the subject's second token,
//! which nats-server lets only that service publish, and its instance must be the subject's
//! last. Anything else is dead-lettered with the reason, never stored.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::{AckKind, Message};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;
use tributary_kit::backoff::Backoff;
use tributary_kit::consume::{consume_in_batches, Batching};
use tributary_kit::dead_letter::DeadLetters;
use tributary_proto::timeline::{
    TimelineEntry, TimelineKind, TimelineLine, TimelinePage, TimelineQuery, TimelineStatus,
    MAX_ENTRY_BYTES,
};
use tributary_proto::{ServiceName, Subjects};

use crate::error::RegistryError;

/// How many entries a timeline page may hold.
pub const TIMELINE_LIMITS: RangeInclusive<i64> = 1..=200;

/// Entries on a page when the request says nothing.
pub const DEFAULT_TIMELINE_LIMIT: i64 = 50;

/// The services that may record timeline lines, by their subject token.
const RECORDERS: [ServiceName; 2] = [ServiceName::Connector, ServiceName::Channel];

/// 9999-12-31T23:59:59.999999Z in microseconds since 1970: the latest cursor accepted.
const LATEST_MICROS: i64 = 253_402_300_799_999_999;

/// Where a page ends: the time, table (`a` audit, `t` timeline) and row of its last entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    micros: i64,
    table: char,
    seq: i64,
}

impl Cursor {
    fn parse(text: &str) -> Option<Self> {
        let (micros, rest) = text.split_once('-')?;
        let mut chars = rest.chars();
        let table = chars.next().filter(|c| matches!(c, 'a' | 't'))?;
        let seq = chars.as_str();
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(micros) || !digits(seq) {
            return None;
        }
        let micros: i64 = micros.parse().ok()?;
        // No line is later than the year 9999; beyond it PostgreSQL's timestamps end.
        if micros > LATEST_MICROS {
            return None;
        }
        Some(Self {
            micros,
            table,
            seq: seq.parse().ok()?,
        })
    }

    fn text(self) -> String {
        format!("{}-{}{}", self.micros, self.table, self.seq)
    }
}

/// A line as it arrived, checked against its subject: the service that recorded it and the
/// entry, or why it cannot be stored.
pub fn checked_line(
    subjects: &Subjects,
    subject: &str,
    payload: &[u8],
) -> Result<(ServiceName, TimelineEntry), String> {
    let tokens: Vec<&str> = subjects.unqualify(subject).split('.').collect();
    let [_, service, instance] = tokens[..] else {
        return Err(format!(
            "`{subject}` is not `timeline.<service>.<instance>`"
        ));
    };
    let Some(service) = RECORDERS.into_iter().find(|s| s.as_str() == service) else {
        return Err(format!("`{service}` records no timeline lines"));
    };
    if payload.len() > MAX_ENTRY_BYTES {
        return Err(format!(
            "a timeline line of {} bytes is over the {MAX_ENTRY_BYTES} allowed",
            payload.len()
        ));
    }
    let entry: TimelineEntry =
        serde_json::from_slice(payload).map_err(|e| format!("not a timeline entry: {e}"))?;
    if entry.instance_id != instance {
        return Err(format!(
            "the line is about `{}` but was published on `{instance}`'s subject",
            entry.instance_id
        ));
    }
    if entry.kind == TimelineKind::Audit {
        return Err("audit lines come from the audit log, not from a service".into());
    }
    Ok((service, entry))
}

/// Stores `lines`; a line already stored (the same id, delivered again) is left as it is.
pub async fn store_lines(
    pool: &PgPool,
    lines: &[(ServiceName, TimelineEntry)],
) -> Result<(), sqlx::Error> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(lines.len());
    let mut instances = Vec::with_capacity(lines.len());
    let mut ats = Vec::with_capacity(lines.len());
    let mut services = Vec::with_capacity(lines.len());
    let mut kinds = Vec::with_capacity(lines.len());
    let mut statuses = Vec::with_capacity(lines.len());
    let mut summaries = Vec::with_capacity(lines.len());
    let mut details = Vec::with_capacity(lines.len());
    let mut suppressed = Vec::with_capacity(lines.len());
    for (service, entry) in lines {
        ids.push(entry.id);
        instances.push(entry.instance_id.replace('\0', ""));
        ats.push(entry.at);
        services.push(service.as_str());
        kinds.push(entry.kind.as_str());
        statuses.push(entry.status.as_str());
        summaries.push(entry.summary.replace('\0', ""));
        details.push(without_nul(Value::Object(entry.detail.clone())));
        suppressed.push(i64::try_from(entry.suppressed).unwrap_or(i64::MAX));
    }
    sqlx::query(
        "INSERT INTO instance_timeline \
         (entry_id, instance_id, at, service, kind, status, summary, detail, suppressed) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::jsonb[], $9::bigint[]) \
         ON CONFLICT (entry_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&instances)
    .bind(&ats)
    .bind(&services)
    .bind(&kinds)
    .bind(&statuses)
    .bind(&summaries)
    .bind(&details)
    .bind(&suppressed)
    .execute(pool)
    .await?;
    Ok(())
}

/// `value` without NUL characters, which `jsonb` cannot store.
fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', ""), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A page of `instance_id`'s timeline: its stored lines and its audit entries, newest first,
/// filtered by `query`'s kind and status, older than its `before`.
pub async fn page(
    pool: &PgPool,
    instance_id: &str,
    query: &TimelineQuery,
) -> Result<TimelinePage, RegistryError> {
    let limit = query.limit.unwrap_or(DEFAULT_TIMELINE_LIMIT);
    if !TIMELINE_LIMITS.contains(&limit) {
        return Err(RegistryError::TimelineLimit(limit));
    }
    let before = match query
        .before
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        None => None,
        Some(text) => Some(
            Cursor::parse(text).ok_or_else(|| RegistryError::TimelineCursor(text.to_owned()))?,
        ),
    };
    // An audit entry is an `audit` line whose status says whether it was a refusal.
    let rows = sqlx::query(
        "WITH lines AS ( \
           SELECT at, 't' AS tbl, seq, service, kind, status, summary, detail, suppressed \
             FROM instance_timeline WHERE instance_id = $1 \
           UNION ALL \
           SELECT at, 'a', seq, 'plugin-manager', 'audit', \
                  CASE WHEN action LIKE '%failed%' OR action LIKE '%refused%' \
                       THEN 'error' ELSE 'ok' END, \
                  action || ' by ' || actor, \
                  jsonb_build_object('action', action, 'actor', actor, \
                                     'plugin_id', plugin_id, 'detail', detail), \
                  0 \
             FROM plugin_audit WHERE instance_id = $1 \
         ) \
         SELECT * FROM lines \
         WHERE ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR status = $3) \
           AND ($4::bigint IS NULL OR (at, tbl, seq) < \
                (timestamptz 'epoch' + $4::bigint * interval '1 microsecond', $5::text, $6::bigint)) \
         ORDER BY at DESC, tbl DESC, seq DESC LIMIT $7",
    )
    .bind(instance_id)
    .bind(query.kind.map(TimelineKind::as_str))
    .bind(query.status.map(TimelineStatus::as_str))
    .bind(before.map(|c| c.micros))
    .bind(before.map(|c| c.table.to_string()))
    .bind(before.map(|c| c.seq))
    .bind(limit + 1)
    .fetch_all(pool)
    .await
    .map_err(crate::store::StoreError::from)?;
    let more = rows.len() as i64 > limit;
    let mut entries = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        let (line, cursor) = line_of(row).map_err(crate::store::StoreError::from)?;
        entries.push(line);
        last = Some(cursor);
    }
    Ok(TimelinePage {
        instance_id: instance_id.to_owned(),
        entries,
        next: last.filter(|_| more).map(Cursor::text),
    })
}

fn line_of(row: &sqlx::postgres::PgRow) -> Result<(TimelineLine, Cursor), sqlx::Error> {
    let at: DateTime<Utc> = row.try_get("at")?;
    let table: String = row.try_get("tbl")?;
    let seq: i64 = row.try_get("seq")?;
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let detail = match row.try_get::<Value, _>("detail")? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let line = TimelineLine {
        at,
        kind: TimelineKind::from_name(&kind).unwrap_or(TimelineKind::Log),
        status: TimelineStatus::from_name(&status).unwrap_or(TimelineStatus::Warning),
        service: row.try_get("service")?,
        summary: row.try_get("summary")?,
        detail,
        suppressed: row.try_get::<i64, _>("suppressed")?.max(0) as u64,
    };
    let cursor = Cursor {
        micros: at.timestamp_micros(),
        table: if table == "a" { 'a' } else { 't' },
        seq,
    };
    Ok((line, cursor))
}

/// Deletes the lines older than `retention`; answers how many went.
pub async fn trim(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let done = sqlx::query("DELETE FROM instance_timeline WHERE at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Stores `consumer`'s lines until `shutdown`, in batches; a line that cannot be stored as it
/// is goes to `dead_letters` with the reason, a batch the database refuses comes again.
pub async fn consume(
    consumer: Consumer<pull::Config>,
    pool: PgPool,
    subjects: Subjects,
    dead_letters: DeadLetters,
    shutdown: CancellationToken,
) {
    let batching = Batching {
        batch_size: 500,
        batch_wait: Duration::from_millis(200),
        concurrent_batches: 1,
        cut_when_idle: true,
    };
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    consume_in_batches(
        consumer,
        "timeline lines",
        batching,
        backoff,
        shutdown,
        |batch| store_batch(&pool, &subjects, &dead_letters, batch),
    )
    .await;
}

async fn store_batch(
    pool: &PgPool,
    subjects: &Subjects,
    dead_letters: &DeadLetters,
    batch: Vec<Message>,
) {
    let mut lines = Vec::with_capacity(batch.len());
    let mut stored = Vec::with_capacity(batch.len());
    for message in dead_letters.screen(batch).await {
        match checked_line(subjects, &message.subject, &message.payload) {
            Ok(line) => {
                lines.push(line);
                stored.push(message);
            }
            Err(reason) => dead_letters.send(&message, &reason).await,
        }
    }
    match store_lines(pool, &lines).await {
        Ok(()) => {
            for message in stored {
                if let Err(e) = message.ack().await {
                    tracing::debug!(error = %e, "Cannot ack a timeline line; it will be stored once again.");
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, lines = lines.len(), "Cannot store timeline lines; they will come again.");
            for message in stored {
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nothing_else_does() {
        let cursor = Cursor {
            micros: 1_764_000_000_000_000,
            table: 't',
            seq: 42,
        };
        assert_eq!(Cursor::parse(&cursor.text()), Some(cursor));
        for bad in [
            "", "12", "12-", "12-x3", "-t3", "12-t", "1a-t3", "12-t3x", "12-a-3",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
        assert_eq!(Cursor::parse(&format!("1-a{}", "9".repeat(20))), None);
        assert_eq!(
            Cursor::parse("9000000000000000000-t1"),
            None,
            "past the year 9999"
        );
        assert!(Cursor::parse(&format!("{LATEST_MICROS}-t1")).is_some());
    }

    #[test]
    fn a_line_is_trusted_for_what_its_subject_says() {
        let subjects = Subjects::new("t1");
        let entry = TimelineEntry::now("crm", TimelineKind::Webhook, TimelineStatus::Error, "x");
        let payload = serde_json::to_vec(&entry).unwrap();
        let (service, got) = checked_line(&subjects, "t1.timeline.channel.crm", &payload).unwrap();
        assert_eq!((service, got), (ServiceName::Channel, entry.clone()));
        let refused =
            |subject: &str, payload: &[u8]| checked_line(&subjects, subject, payload).unwrap_err();
        assert!(refused("t1.timeline.channel.other", &payload).contains("`crm`"));
        assert!(refused("t1.timeline.etl.crm", &payload).contains("`etl` records no"));
        assert!(refused("t1.timeline.channel", &payload).contains("is not"));
        assert!(refused("t1.timeline.channel.crm", b"{}").contains("not a timeline entry"));
        let audit = TimelineEntry::now("crm", TimelineKind::Audit, TimelineStatus::Ok, "x");
        let audit = serde_json::to_vec(&audit).unwrap();
        assert!(refused("t1.timeline.connector.crm", &audit).contains("audit log"));
        let huge = vec![b' '; MAX_ENTRY_BYTES + 1];
        assert!(refused("t1.timeline.connector.crm", &huge).contains("over the"));
    }
}
