//! The two search backends behind one trait: the embedded tantivy index (the default) and
//! Meilisearch. Both answer with the same [`SearchResults`], apply the same versioned
//! [`IndexChange`]s and rebuild the same way: a new index is filled beside the live one, which
//! keeps answering (and keeps receiving live changes, as does the new one), then the two are
//! swapped.

pub mod embedded;
pub mod meilisearch;

use async_trait::async_trait;

use crate::document::IndexChange;
use crate::query::{SearchQuery, SearchResults};

/// What applying a batch of changes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changes written to the index.
    pub applied: usize,
    /// Changes skipped because the index already held a version at least as new.
    pub stale: usize,
}

/// A backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The embedded index failed (disk, corruption, a lock held by another process).
    #[error("the embedded index failed: {0}")]
    Embedded(String),
    /// Meilisearch could not be reached or refused a request.
    #[error("Meilisearch {operation} failed: {message}")]
    Meilisearch {
        /// What was being done (`add documents`, `search`).
        operation: &'static str,
        /// What went wrong, as Meilisearch or the client said.
        message: String,
    },
    /// A Meilisearch task ended in failure (or was cancelled).
    #[error("Meilisearch task {task_uid} on index `{index}` failed: {message} ({code})")]
    TaskFailed {
        /// The task's uid.
        task_uid: u32,
        /// The index it worked on.
        index: String,
        /// Meilisearch's error code (`invalid_document_id`).
        code: String,
        /// Meilisearch's error message.
        message: String,
    },
    /// A Meilisearch task did not finish in time.
    #[error("Meilisearch task {task_uid} on index `{index}` did not finish within {secs} s")]
    TaskTimedOut {
        /// The task's uid.
        task_uid: u32,
        /// The index it worked on.
        index: String,
        /// How long it was waited for.
        secs: u64,
    },
    /// A Meilisearch task enqueued before this batch's failed while the batch counted on its
    /// writes (a change judged stale against them, sources merged with theirs): the batch must
    /// be applied again, planned anew.
    #[error("an earlier Meilisearch task on index `{index}` failed while this batch counted on its writes")]
    EarlierTaskFailed {
        /// The index both tasks wrote to.
        index: String,
    },
    /// A rebuild was asked for while one is running, or finished when none is.
    #[error("{0}")]
    Rebuild(&'static str),
}

impl SearchError {
    /// Whether trying again later may succeed: the index unreachable or busy, as opposed to
    /// refusing what it was given.
    pub fn is_transient(&self) -> bool {
        match self {
            SearchError::Embedded(_)
            | SearchError::Meilisearch { .. }
            | SearchError::TaskTimedOut { .. }
            | SearchError::EarlierTaskFailed { .. } => true,
            SearchError::TaskFailed { .. } | SearchError::Rebuild(_) => false,
        }
    }
}

/// A search index Tributary can keep: versioned changes in, searches out, rebuilt beside itself.
#[async_trait]
pub trait SearchBackend: Send + Sync + 'static {
    /// `embedded` or `meilisearch`, as results and logs name it.
    fn name(&self) -> &'static str;

    /// How many batches the indexer may hand over at once: 1, unless the backend keeps the
    /// version rule across batches applied at the same time itself (Meilisearch does, with
    /// its writes in flight: `search.meilisearch_tasks_in_flight`).
    fn concurrent_batches(&self) -> usize {
        1
    }

    /// Makes the index ready at start-up: creates it if needed and applies its settings.
    async fn prepare(&self) -> Result<(), SearchError>;

    /// Whether the index can be reached, for `/readyz`.
    async fn check(&self) -> Result<(), SearchError>;

    /// Applies a batch: each change only when it is at least as new as the version held for
    /// its entity. While a rebuild runs, the batch goes to the new index too.
    async fn apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError>;

    /// One page of results for `query` (already validated).
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError>;

    /// Documents searchable now (tombstones not counted).
    async fn document_count(&self) -> Result<u64, SearchError>;

    /// Starts a rebuild: an empty new index beside the live one, which keeps answering.
    async fn begin_rebuild(&self) -> Result<(), SearchError>;

    /// Writes changes into the index being rebuilt only, with the same version rule.
    async fn rebuild_apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError>;

    /// Makes the rebuilt index the live one and drops the old one.
    async fn finish_rebuild(&self) -> Result<(), SearchError>;

    /// Drops the index being rebuilt; the live one stays as it was.
    async fn abandon_rebuild(&self);
}
