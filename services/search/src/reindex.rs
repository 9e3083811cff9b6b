//! Rebuilding the index from PostgreSQL while the old one keeps answering.
//!
//! `search.reindex` starts a job and answers at once with its id. The job asks the backend
//! for a new index beside the live one (live data events now go to both), reads every entity
//! of the unified model table by table in id order, tombstones included, writes them into the
//! new index with the usual version rule (so a live event newer than the row read wins), then
//! swaps the new index in. Progress is published on `search.reindex.progress` as it goes.
//!
//! The search service reads PostgreSQL only here, with a small pool opened for the job, so it
//! runs and answers without a database otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use tributary_kit::config::DatabaseConfig;
use tributary_proto::model::EntityType;
use tributary_proto::{ServiceName, Subjects};
use uuid::Uuid;

use crate::backend::{SearchBackend, SearchError};
use crate::document::{change_from_entity, IndexChange};

/// Rows read and written per round.
const CHUNK: i64 = 1000;

pub use tributary_proto::requests::search::ReindexStarted;

/// Where a reindex job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReindexPhase {
    /// Entities are being read and written into the new index.
    Indexing,
    /// The new index replaced the old one.
    Done,
    /// The job stopped; the old index is untouched.
    Failed,
}

/// One progress message of a reindex job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReindexProgress {
    /// The job.
    pub job_id: Uuid,
    /// Where it is.
    pub phase: ReindexPhase,
    /// The table being read, while indexing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<EntityType>,
    /// Entities written so far.
    pub indexed: u64,
    /// Entities to write in all (rows of every table when the job started).
    pub total: u64,
    /// Seconds since the job started.
    pub elapsed_secs: f64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The subject reindex progress is published on.
pub fn progress_subject(subjects: &Subjects) -> String {
    subjects.request(ServiceName::Search, "reindex.progress")
}

/// Starts reindex jobs, one at a time.
#[derive(Clone)]
pub struct Reindexer {
    backend: Arc<dyn SearchBackend>,
    database: DatabaseConfig,
    nats: async_nats::Client,
    progress_subject: String,
    running: Arc<AtomicBool>,
    tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Reindexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reindexer")
            .field("backend", &self.backend.name())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

/// Clears the running flag when a job ends, however it ends.
struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Reindexer {
    /// A reindexer rebuilding `backend` from the database of `database`, publishing progress
    /// on `nats`, its jobs tracked by `tasks` (so shutdown waits for them).
    pub fn new(
        backend: Arc<dyn SearchBackend>,
        database: DatabaseConfig,
        nats: async_nats::Client,
        subjects: &Subjects,
        tasks: tokio_util::task::TaskTracker,
    ) -> Self {
        Self {
            backend,
            database,
            nats,
            progress_subject: progress_subject(subjects),
            running: Arc::new(AtomicBool::new(false)),
            tasks,
        }
    }

    /// Whether a job is running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Starts a job: opens the new index and connects to PostgreSQL, then lets the job run in
    /// the background. Fails at once when a job is running or PostgreSQL cannot be reached.
    pub async fn start(&self) -> Result<ReindexStarted, ReindexError> {
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(ReindexError::Busy);
        }
        let guard = RunningGuard(self.running.clone());
        let options = tributary_kit::db::connect_options(&self.database, &self.database.name);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await?;
        self.backend.begin_rebuild().await?;
        let job_id = Uuid::now_v7();
        let job = Job {
            id: job_id,
            backend: self.backend.clone(),
            pool,
            nats: self.nats.clone(),
            subject: self.progress_subject.clone(),
            started: Instant::now(),
        };
        self.tasks.spawn(async move {
            let _guard = guard;
            job.run().await;
        });
        Ok(ReindexStarted {
            job_id,
            backend: self.backend.name().to_owned(),
            progress_subject: self.progress_subject.clone(),
        })
    }
}

struct Job {
    id: Uuid,
    backend: Arc<dyn SearchBackend>,
    pool: PgPool,
    nats: async_nats::Client,
    subject: String,
    started: Instant,
}

impl Job {
    async fn run(self) {
        match self.rebuild().await {
            Ok(indexed) => {
                tracing::info!(job = %self.id, indexed, "Reindex finished; the new index is live.");
                self.publish(ReindexPhase::Done, None, indexed, indexed, None)
                    .await;
            }
            Err(e) => {
                tracing::warn!(job = %self.id, error = %e, "Reindex failed; the old index stays.");
                self.backend.abandon_rebuild().await;
                self.publish(ReindexPhase::Failed, None, 0, 0, Some(e.to_string()))
                    .await;
            }
        }
        self.pool.close().await;
    }

    async fn publish(
        &self,
        phase: ReindexPhase,
        entity_type: Option<EntityType>,
        indexed: u64,
        total: u64,
        error: Option<String>,
    ) {
        let progress = ReindexProgress {
            job_id: self.id,
            phase,
            entity_type,
            indexed,
            total,
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            error,
        };
        if let Ok(body) = serde_json::to_vec(&progress) {
            if let Err(e) = self.nats.publish(self.subject.clone(), body.into()).await {
                tracing::debug!(error = %e, "Cannot publish reindex progress.");
            }
        }
    }

    async fn rebuild(&self) -> Result<u64, ReindexError> {
        let mut total = 0u64;
        for entity in EntityType::ALL {
            let count: i64 =
                sqlx::query_scalar(&format!("SELECT count(*) FROM {}", entity.as_str()))
                    .fetch_one(&self.pool)
                    .await?;
            total += count.max(0) as u64;
        }
        let mut indexed = 0u64;
        self.publish(ReindexPhase::Indexing, None, 0, total, None)
            .await;
        for entity in EntityType::ALL {
            let mut after = Uuid::nil();
            loop {
                let rows = sqlx::query(&rows_sql(entity))
                    .bind(after)
                    .bind(entity.as_str())
                    .bind(CHUNK)
                    .fetch_all(&self.pool)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("id")?;
                let mut changes: Vec<IndexChange> = Vec::with_capacity(rows.len());
                for row in &rows {
                    let entity_json: serde_json::Value = row.try_get("entity")?;
                    let sources: Vec<String> = row.try_get("sources")?;
                    changes.push(
                        change_from_entity(entity, entity_json, sources)
                            .map_err(|e| ReindexError::Row(entity, e))?,
                    );
                }
                indexed += changes.len() as u64;
                self.backend.rebuild_apply(changes).await?;
                self.publish(
                    ReindexPhase::Indexing,
                    Some(entity),
                    indexed,
                    total.max(indexed),
                    None,
                )
                .await;
            }
        }
        self.backend.finish_rebuild().await?;
        Ok(indexed)
    }
}

/// One page of a table in id order, each row as the JSON a data event carries, with the
/// plugin instances it came from.
fn rows_sql(entity: EntityType) -> String {
    format!(
        "SELECT t.id, to_jsonb(t) - 'merged_into' AS entity, \
                COALESCE((SELECT array_agg(DISTINCT s.instance_id ORDER BY s.instance_id) \
                          FROM source_record s \
                          WHERE s.entity_type = $2 AND s.entity_id = t.id AND NOT s.deleted), '{{}}') AS sources \
         FROM {table} t WHERE t.id > $1 ORDER BY t.id LIMIT $3",
        table = entity.as_str()
    )
}

/// A reindex job could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    /// Another job is running.
    #[error("a reindex is already running; wait for it to finish")]
    Busy,
    /// PostgreSQL could not be reached or read.
    #[error("cannot read the unified model from PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// A row does not have the shape of its entity.
    #[error("a {0} row cannot be read as an entity: {1}")]
    Row(EntityType, #[source] serde_json::Error),
    /// The index refused the rebuild.
    #[error(transparent)]
    Index(#[from] SearchError),
}
