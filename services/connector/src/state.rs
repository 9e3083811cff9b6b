//! The persisted sync state of each instance (`connector_sync_state`), and the
//! `connector.Sync*` events that announce its changes, written in the same transaction
//! through the outbox so a state change is never left unannounced.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::Notify;
use tributary_plugin_sdk::{Cursor, SyncRequest};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{EventKind, SyncEvent, SyncLifecycle, SyncMode};
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use tributary_proto::{ServiceName, Subjects};
use uuid::Uuid;

use crate::api::{SyncStateView, SyncStatus};

/// The counts a sync reports in its heartbeats and its last event.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncCounts {
    /// Items published and acknowledged.
    pub items: u64,
    /// Errors met.
    pub errors: u64,
    /// Items per second since the sync began.
    pub rate: f64,
}

/// How a sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEnd {
    /// Every item was published and the final cursor stored.
    Succeeded,
    /// An error stopped it; the message names what failed.
    Failed(String),
    /// `connector.cancel` (or the instance being disabled) stopped it.
    Cancelled(String),
}

/// A sync that was allowed to begin: how it runs and where it resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct BegunSync {
    /// The request it runs with: the one asked for, or the interrupted sync's when a routine
    /// incremental sync finds one to resume.
    pub request: SyncRequest,
    /// The last stored checkpoint.
    pub cursor: Option<Cursor>,
    /// Whether an interrupted sync is being resumed.
    pub resumed: bool,
}

/// Reads and writes sync state; every change that others should hear of is announced.
#[derive(Debug, Clone)]
pub struct SyncStore {
    pool: PgPool,
    subjects: Subjects,
    /// Woken after each commit that enqueued an event, so the outbox publisher sends it now.
    wake: Arc<Notify>,
}

impl SyncStore {
    /// A store over `pool`, announcing on `subjects`, waking `wake` after each event.
    pub fn new(pool: PgPool, subjects: Subjects, wake: Arc<Notify>) -> Self {
        Self {
            pool,
            subjects,
            wake,
        }
    }

    /// The pool it writes to.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Marks a sync of `instance_id` as running and announces `connector.SyncStarted`. A row
    /// left `running` by a process that died is an interrupted sync: an incremental request
    /// resumes it with its own mode, and every request gets the last checkpoint.
    pub async fn begin(
        &self,
        instance_id: &str,
        sync_id: Uuid,
        requested: SyncRequest,
    ) -> Result<BegunSync, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO connector_sync_state (instance_id) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT status, cursor, mode, since FROM connector_sync_state \
             WHERE instance_id = $1 FOR UPDATE",
        )
        .bind(instance_id)
        .fetch_one(&mut *tx)
        .await?;
        let interrupted = row.try_get::<String, _>("status")? == SyncStatus::Running.as_str();
        let cursor = row.try_get::<Option<Value>, _>("cursor")?.map(Cursor);
        let stored_mode = row
            .try_get::<Option<String>, _>("mode")?
            .as_deref()
            .and_then(SyncMode::from_name);
        let request = match (interrupted, requested.mode, stored_mode) {
            (true, SyncMode::Incremental, Some(mode)) => SyncRequest {
                mode,
                since: row.try_get("since")?,
            },
            _ => requested,
        };
        sqlx::query(
            "UPDATE connector_sync_state SET status = 'running', sync_id = $2, mode = $3, \
             since = $4, started_at = now(), finished_at = NULL, items = 0, errors = 0, \
             cancel_requested = false, updated_at = now() WHERE instance_id = $1",
        )
        .bind(instance_id)
        .bind(sync_id)
        .bind(request.mode.as_str())
        .bind(request.since)
        .execute(&mut *tx)
        .await?;
        let event = lifecycle(
            instance_id,
            sync_id,
            request.mode,
            SyncCounts::default(),
            None,
        );
        self.announce(&mut tx, SyncEvent::Started, event).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(BegunSync {
            request,
            cursor,
            resumed: interrupted,
        })
    }

    /// Stores a checkpoint: every item before it has been acknowledged by JetStream.
    pub async fn checkpoint(
        &self,
        instance_id: &str,
        sync_id: Uuid,
        cursor: &Cursor,
        counts: SyncCounts,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connector_sync_state SET cursor = $3, items = $4, errors = $5, \
             updated_at = now() WHERE instance_id = $1 AND sync_id = $2",
        )
        .bind(instance_id)
        .bind(sync_id)
        .bind(&cursor.0)
        .bind(counts.items as i64)
        .bind(counts.errors as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a heartbeat and announces `connector.SyncProgress`; answers whether a cancel
    /// was asked for since.
    pub async fn heartbeat(
        &self,
        instance_id: &str,
        sync_id: Uuid,
        mode: SyncMode,
        counts: SyncCounts,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let cancel = sqlx::query(
            "UPDATE connector_sync_state SET items = $3, errors = $4, updated_at = now() \
             WHERE instance_id = $1 AND sync_id = $2 RETURNING cancel_requested",
        )
        .bind(instance_id)
        .bind(sync_id)
        .bind(counts.items as i64)
        .bind(counts.errors as i64)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get::<bool, _>("cancel_requested"))
        .transpose()?
        .unwrap_or(false);
        let event = lifecycle(instance_id, sync_id, mode, counts, None);
        self.announce(&mut tx, SyncEvent::Progress, event).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(cancel)
    }

    /// Records how a sync ended and announces `connector.SyncCompleted` or
    /// `connector.SyncFailed` (a cancelled sync is a failed one whose error says so).
    pub async fn finish(
        &self,
        instance_id: &str,
        sync_id: Uuid,
        mode: SyncMode,
        counts: SyncCounts,
        end: &SyncEnd,
    ) -> Result<(), sqlx::Error> {
        let (status, error, kind) = match end {
            SyncEnd::Succeeded => (SyncStatus::Succeeded, None, SyncEvent::Completed),
            SyncEnd::Failed(e) => (SyncStatus::Failed, Some(e.clone()), SyncEvent::Failed),
            SyncEnd::Cancelled(e) => (SyncStatus::Cancelled, Some(e.clone()), SyncEvent::Failed),
        };
        let mut tx = self.pool.begin().await?;
        let started: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE connector_sync_state SET status = $3, finished_at = now(), items = $4, \
             errors = $5, total_items = total_items + $4, cancel_requested = false, \
             last_success_at = CASE WHEN $3 = 'succeeded' THEN now() ELSE last_success_at END, \
             last_error = CASE WHEN $3 = 'succeeded' THEN last_error ELSE $6 END, \
             updated_at = now() WHERE instance_id = $1 AND sync_id = $2 RETURNING started_at",
        )
        .bind(instance_id)
        .bind(sync_id)
        .bind(status.as_str())
        .bind(counts.items as i64)
        .bind(counts.errors as i64)
        .bind(&error)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let line = timeline_line(instance_id, sync_id, mode, counts, end, started);
        let line =
            tributary_kit::timeline::outbox_event(&self.subjects, ServiceName::Connector, &line)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        tributary_kit::outbox::enqueue_all(&mut tx, ServiceName::Connector, &[line]).await?;
        let event = lifecycle(instance_id, sync_id, mode, counts, error);
        self.announce(&mut tx, kind, event).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Asks the running sync of `instance_id` to stop; its id, or `None` when none runs.
    pub async fn request_cancel(&self, instance_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query(
            "UPDATE connector_sync_state SET cancel_requested = true, updated_at = now() \
             WHERE instance_id = $1 AND status = 'running' RETURNING sync_id",
        )
        .bind(instance_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| row.try_get("sync_id"))
        .transpose()
        .map(Option::flatten)
    }

    /// When `instance_id` last finished a sync (`None`: never), and whether it has an
    /// interrupted one.
    pub async fn last_finished(
        &self,
        instance_id: &str,
    ) -> Result<(Option<DateTime<Utc>>, bool), sqlx::Error> {
        let row = sqlx::query(
            "SELECT finished_at, status FROM connector_sync_state WHERE instance_id = $1",
        )
        .bind(instance_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok((None, false)),
            Some(row) => Ok((
                row.try_get("finished_at")?,
                row.try_get::<String, _>("status")? == SyncStatus::Running.as_str(),
            )),
        }
    }

    /// Forgets an instance that was purged: its state and cursor go with it.
    pub async fn forget(&self, instance_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM connector_sync_state WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The state of every instance that has one, by id.
    pub async fn states(&self) -> Result<Vec<SyncStateView>, sqlx::Error> {
        let rows = sqlx::query(&format!("{SELECT_STATE} ORDER BY instance_id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(state_of_row).collect()
    }

    /// The state of one instance; `None` when it never synced.
    pub async fn state(&self, instance_id: &str) -> Result<Option<SyncStateView>, sqlx::Error> {
        let row = sqlx::query(&format!("{SELECT_STATE} WHERE instance_id = $1"))
            .bind(instance_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(state_of_row).transpose()
    }

    async fn announce(
        &self,
        tx: &mut PgConnection,
        event: SyncEvent,
        data: SyncLifecycle,
    ) -> Result<(), sqlx::Error> {
        let kind = EventKind::Sync(event);
        let source = EventSource::new("connector", Some(data.instance_id.clone()));
        let envelope = Envelope::new(kind, source, None, data);
        tributary_kit::outbox::enqueue(tx, &self.subjects, kind, &envelope, None).await
    }
}

const SELECT_STATE: &str = "SELECT instance_id, status, sync_id, mode, started_at, finished_at, \
     items, errors, total_items, last_success_at, last_error FROM connector_sync_state";

fn state_of_row(row: &sqlx::postgres::PgRow) -> Result<SyncStateView, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(SyncStateView {
        instance_id: row.try_get("instance_id")?,
        status: SyncStatus::from_name(&status).unwrap_or(SyncStatus::Idle),
        sync_id: row.try_get("sync_id")?,
        mode: row
            .try_get::<Option<String>, _>("mode")?
            .as_deref()
            .and_then(SyncMode::from_name),
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        items: row.try_get::<i64, _>("items")?.max(0) as u64,
        errors: row.try_get::<i64, _>("errors")?.max(0) as u64,
        total_items: row.try_get::<i64, _>("total_items")?.max(0) as u64,
        last_success_at: row.try_get("last_success_at")?,
        last_error: row.try_get("last_error")?,
        scheduled: false,
        next_sync_at: None,
    })
}

/// The timeline line of a sync that ended as `end`: how, in how long, with what counts.
fn timeline_line(
    instance_id: &str,
    sync_id: Uuid,
    mode: SyncMode,
    counts: SyncCounts,
    end: &SyncEnd,
    started: Option<DateTime<Utc>>,
) -> TimelineEntry {
    let now = Utc::now();
    let duration_ms = started.map(|s| (now - s).num_milliseconds().max(0));
    let took = duration_ms.map_or(String::new(), |ms| {
        format!(" in {:.1} s", ms as f64 / 1000.0)
    });
    let items = match counts.items {
        1 => "1 item".to_owned(),
        n => format!("{n} items"),
    };
    let (status, summary, error) = match end {
        SyncEnd::Succeeded => (
            TimelineStatus::Ok,
            format!("{} sync completed: {items}{took}", mode.as_str()),
            None,
        ),
        SyncEnd::Failed(e) => (
            TimelineStatus::Error,
            format!("{} sync failed after {items}{took}: {e}", mode.as_str()),
            Some(e),
        ),
        SyncEnd::Cancelled(e) => (
            TimelineStatus::Warning,
            format!("{} sync cancelled after {items}{took}: {e}", mode.as_str()),
            Some(e),
        ),
    };
    let mut line = TimelineEntry::now(instance_id, TimelineKind::Sync, status, summary)
        .with("sync_id", sync_id.to_string())
        .with("mode", mode.as_str())
        .with("items", counts.items)
        .with("errors", counts.errors)
        .with("rate", counts.rate);
    if let Some(ms) = duration_ms {
        line = line.with("duration_ms", ms);
    }
    if let Some(e) = error {
        line = line.with("error", e.as_str());
    }
    line
}

fn lifecycle(
    instance_id: &str,
    sync_id: Uuid,
    mode: SyncMode,
    counts: SyncCounts,
    error: Option<String>,
) -> SyncLifecycle {
    SyncLifecycle {
        instance_id: instance_id.to_owned(),
        sync_id,
        mode,
        items: counts.items,
        rate: counts.rate,
        errors: counts.errors,
        error,
    }
}
