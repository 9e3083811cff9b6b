//! The Meilisearch backend: one index (`search.index_name`, primary key `id`) holding a
//! document per entity, tombstones included, written through `meilisearch-sdk`.
//!
//! Meilisearch applies every write as an asynchronous task. A batch is applied by reading the
//! versions the index holds for its entities (one documents fetch) and those its batches in
//! flight are writing, deciding what to write and writing it with one add-or-replace request;
//! the batch is then answered once its task succeeded, and only after every task enqueued
//! before it, without holding up the batches behind it ([`pipeline`]: one poller follows all
//! of them). Anything but success, or no answer within `meilisearch_task_timeout`, is an
//! error. Other tasks (settings, index creation, swap) are awaited one by one, polling
//! `GET /tasks/{uid}`. A rebuild fills `<index_name>_rebuild` beside the live index and then
//! swaps the two with `POST /swap-indexes`.

pub mod keys;
mod pipeline;
mod stored;
mod tasks;
mod translate;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use meilisearch_sdk::client::{Client, SwapIndexes};
use meilisearch_sdk::documents::{DocumentsQuery, DocumentsResults};
use meilisearch_sdk::errors::{Error as SdkError, ErrorType};
use meilisearch_sdk::request::{HttpClient, Method};
use meilisearch_sdk::reqwest::ReqwestClient;
use meilisearch_sdk::search::{SearchResults as SdkResults, Selectors};
use meilisearch_sdk::task_info::TaskInfo;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tributary_kit::config::SearchConfig;

use crate::backend::{ApplyReport, SearchBackend, SearchError};
use crate::document::{newest_per_entity, IndexChange};
use crate::query::{SearchQuery, SearchResults};
use pipeline::{Pipeline, Ticket};
use stored::{Held, HELD_FIELDS};
use tasks::{describe, failed, Outcome};
use translate::{Hit, Page, CROP_WORDS, HIGHLIGHT_POST, HIGHLIGHT_PRE};

/// Hits Meilisearch counts and pages through for one search. Its default (1000) would cap
/// `total` at 1000 and leave every page past the thousandth hit empty; 100 000 keeps totals
/// exact and deep pages reachable for any realistic personal index, at some cost to searches
/// that match most of it.
const MAX_TOTAL_HITS: usize = 100_000;
/// The first pause between two polls of a task; it doubles up to [`MAX_POLL_INTERVAL`].
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The longest pause between two polls of a task.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Attributes words are searched in, most important first.
const SEARCHABLE: [&str; 2] = ["title", "text"];
/// Attributes filters compare for equality only (`=`, `IN`): `id` for fetching held versions,
/// the rest for queries.
const FILTERED_FOR_EQUALITY: [&str; 4] = ["id", "entity_type", "sources", "deleted"];
/// Attributes filters also compare by range (`>=`, `<=`).
const FILTERED_BY_RANGE: [&str; 1] = ["date"];
/// Attributes a hit is read from.
const RETRIEVED: &[&str] = &[
    "id",
    "entity_type",
    "title",
    "text",
    "sources",
    "date",
    "date_rfc3339",
];
/// Attributes highlighted in `_formatted`.
const HIGHLIGHTED: &[&str] = &["title", "text"];
/// Attributes cropped around their matches in `_formatted`.
const CROPPED: &[(&str, Option<usize>)] = &[("text", None)];

/// A batch's task in the pipeline (none when the batch wrote nothing), and its answer.
struct Enqueued {
    task: Option<u32>,
    ticket: Ticket,
}

/// The Meilisearch search backend.
pub struct MeilisearchBackend {
    client: Client,
    http: ReqwestClient,
    host: String,
    api_key: Option<secrecy::SecretString>,
    index: String,
    rebuild_index: String,
    task_timeout: Duration,
    /// Batches the indexer may have in flight (`search.meilisearch_tasks_in_flight`).
    tasks_in_flight: usize,
    /// Whether a rebuild is filling `rebuild_index`. Writers hold it shared for a whole
    /// batch, so a rebuild cannot begin, finish or be abandoned halfway through one.
    rebuilding: RwLock<bool>,
    /// Held while a batch is planned and enqueued, so each plan sees the writes of every
    /// batch enqueued before it.
    planning: Mutex<()>,
    /// The document tasks in flight and their writes.
    pipeline: Arc<Pipeline>,
    /// Stops the pipeline's poller when the backend is dropped; started with the first batch.
    poller: OnceLock<DropGuard>,
}

impl std::fmt::Debug for MeilisearchBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeilisearchBackend")
            .field("url", &self.host)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// The settings every index has. Filters need no facet search (the backend never asks for
/// facet values) and, but for `date`, no range comparisons: Meilisearch then skips building
/// the facet-search and facet-level structures on every indexing run, which took about a
/// fifth of each run's time (docs/bench/2026-12-06-meilisearch-indexing.md). Granular
/// filterable attributes and `facetSearch` need Meilisearch 1.14 or later.
fn index_settings() -> Value {
    let filter = |comparison: bool| {
        serde_json::json!({
            "facetSearch": false,
            "filter": {"equality": true, "comparison": comparison},
        })
    };
    serde_json::json!({
        "searchableAttributes": SEARCHABLE,
        "filterableAttributes": [
            {"attributePatterns": FILTERED_FOR_EQUALITY, "features": filter(false)},
            {"attributePatterns": FILTERED_BY_RANGE, "features": filter(true)},
        ],
        "sortableAttributes": ["date"],
        "displayedAttributes": ["*"],
        "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
        "facetSearch": false,
    })
}

impl MeilisearchBackend {
    /// A backend for `config`'s Meilisearch URL, API key (sent as `Authorization: Bearer`,
    /// none when empty) and index. Nothing is sent until [`SearchBackend::prepare`].
    pub fn new(config: &SearchConfig) -> Result<Self, SearchError> {
        config
            .validate()
            .map_err(|e| failed("connect", e.to_string()))?;
        let host = config
            .meilisearch_url
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let index = config.index_name.clone();
        let key = config.meilisearch_api_key.expose_secret().trim();
        let key = Some(key.to_owned()).filter(|k| !k.is_empty());
        let http = ReqwestClient::new(key.as_deref())
            .map_err(|e| failed("connect", describe(&e, key.as_deref())))?;
        Ok(Self {
            client: Client::new_with_client(host.clone(), key.clone(), http.clone()),
            http,
            host,
            api_key: key.map(secrecy::SecretString::from),
            rebuild_index: format!("{index}_rebuild"),
            index,
            task_timeout: config.meilisearch_task_timeout(),
            tasks_in_flight: config.meilisearch_tasks_in_flight.max(1),
            rebuilding: RwLock::new(false),
            planning: Mutex::new(()),
            pipeline: Arc::default(),
            poller: OnceLock::new(),
        })
    }

    /// Starts the poller of the pipeline's tasks, once.
    fn start_poller(&self) {
        self.poller.get_or_init(|| {
            let stop = CancellationToken::new();
            let poll =
                self.pipeline
                    .clone()
                    .poll(self.http.clone(), self.host.clone(), stop.clone());
            tokio::spawn(poll);
            stop.drop_guard()
        });
    }

    fn key(&self) -> Option<&str> {
        self.api_key.as_ref().map(|k| k.expose_secret())
    }

    /// Runs one request, within the task timeout, naming `operation` if it fails.
    async fn call<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, SdkError>>,
    ) -> Result<T, SearchError> {
        match tokio::time::timeout(self.task_timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(failed(operation, describe(&err, self.key()))),
            Err(_) => Err(failed(
                operation,
                format!("no answer within {} s", self.task_timeout.as_secs()),
            )),
        }
    }

    /// Sends a request that enqueues a task on `index` and waits until the task is done.
    async fn task(
        &self,
        operation: &'static str,
        index: &str,
        request: impl Future<Output = Result<TaskInfo, SdkError>>,
    ) -> Result<(), SearchError> {
        let task_uid = self.call(operation, request).await?.task_uid;
        self.await_task(operation, index, task_uid).await
    }

    /// Waits until the task `task_uid` on `index` is done.
    async fn await_task(
        &self,
        operation: &'static str,
        index: &str,
        task_uid: u32,
    ) -> Result<(), SearchError> {
        let url = format!("{}/tasks/{task_uid}", self.host);
        let deadline = Instant::now() + self.task_timeout;
        let mut interval = FIRST_POLL_INTERVAL;
        loop {
            let get = self
                .http
                .request::<(), (), Value>(&url, Method::Get { query: () }, 200);
            let task = self.call(operation, get).await?;
            match tasks::outcome(&task).map_err(|message| failed(operation, message))? {
                Outcome::Succeeded => return Ok(()),
                Outcome::Failed { code, message } => {
                    return Err(SearchError::TaskFailed {
                        task_uid,
                        index: index.to_owned(),
                        code,
                        message,
                    })
                }
                Outcome::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SearchError::TaskTimedOut {
                    task_uid,
                    index: index.to_owned(),
                    secs: self.task_timeout.as_secs(),
                });
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
            interval = (interval * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// Refuses a Meilisearch older than [`tasks::MINIMUM_VERSION`], whose settings could not
    /// be applied, naming the version found. A key scoped to the index may not read the
    /// version (Meilisearch allows no global action on such a key): then `tributary meili
    /// provision` has checked it with the master key.
    async fn check_version(&self) -> Result<(), SearchError> {
        let asked = tokio::time::timeout(self.task_timeout, self.client.get_version()).await;
        let Ok(answer) = asked else {
            return Err(failed(
                "read version",
                format!("no answer within {} s", self.task_timeout.as_secs()),
            ));
        };
        match answer {
            Ok(version) => {
                tasks::require_version(&version.pkg_version).map_err(|m| failed("read version", m))
            }
            Err(SdkError::Meilisearch(refused)) if refused.error_type == ErrorType::Auth => Ok(()),
            Err(other) => Err(failed("read version", describe(&other, self.key()))),
        }
    }

    /// Creates `index` with primary key `id` and applies the settings every index has.
    async fn create_index(&self, index: &str, may_exist: bool) -> Result<(), SearchError> {
        let created = self
            .task(
                "create index",
                index,
                self.client.create_index(index, Some("id")),
            )
            .await;
        match created {
            Err(SearchError::TaskFailed { code, .. })
                if may_exist && code == "index_already_exists" => {}
            other => other?,
        }
        let url = format!("{}/indexes/{index}/settings", self.host);
        let update = self.http.request::<(), Value, TaskInfo>(
            &url,
            Method::Patch {
                query: (),
                body: index_settings(),
            },
            202,
        );
        self.task("update settings", index, update).await
    }

    /// Deletes `index`; one that does not exist is no error.
    async fn delete_index(&self, index: &str) -> Result<(), SearchError> {
        match self
            .task("delete index", index, self.client.delete_index(index))
            .await
        {
            Err(SearchError::TaskFailed { code, .. }) if code == "index_not_found" => Ok(()),
            other => other,
        }
    }

    /// Plans `changes` (newest per entity) for `index` under the version rule, counting the
    /// writes of the batches in flight, and enqueues the writes; the ticket answers once the
    /// task (and every one enqueued before it) is known to have succeeded.
    async fn enqueue(
        &self,
        index: &str,
        changes: &[IndexChange],
    ) -> Result<(ApplyReport, Option<Enqueued>), SearchError> {
        if changes.is_empty() {
            return Ok((ApplyReport::default(), None));
        }
        let _planning = self.planning.lock().await;
        let in_flight = self
            .pipeline
            .snapshot(index, changes.iter().map(IndexChange::id));
        let handle = self.client.index(index);
        let filter = translate::ids_filter(changes.iter().map(IndexChange::id));
        let mut query = DocumentsQuery::new(&handle);
        query
            .with_filter(&filter)
            .with_fields(HELD_FIELDS)
            .with_limit(changes.len());
        let fetched: DocumentsResults<Held> = self
            .call("fetch documents", handle.get_documents_with(&query))
            .await?;
        let held = stored::overlaid(fetched.results, in_flight.held.clone());
        let (writes, report) = stored::plan(changes, held);
        let task = if writes.is_empty() {
            None
        } else {
            let enqueued = self
                .call("add documents", handle.add_or_replace(&writes, Some("id")))
                .await?;
            Some(enqueued.task_uid)
        };
        self.start_poller();
        let ticket = self.pipeline.register(index, task, &writes, &in_flight);
        Ok((report, Some(Enqueued { task, ticket })))
    }

    /// Waits for a ticket of `index`, up to the task timeout.
    async fn settled(&self, index: &str, enqueued: Option<Enqueued>) -> Result<(), SearchError> {
        let Some(Enqueued { task, ticket }) = enqueued else {
            return Ok(());
        };
        let secs = self.task_timeout.as_secs();
        match (tokio::time::timeout(self.task_timeout, ticket).await, task) {
            (Ok(Ok(answer)), _) => answer,
            (Ok(Err(_)), _) => Err(failed("add documents", "the task poller stopped")),
            (Err(_), Some(task_uid)) => Err(SearchError::TaskTimedOut {
                task_uid,
                index: index.to_owned(),
                secs,
            }),
            (Err(_), None) => Err(failed(
                "add documents",
                format!("the tasks enqueued before this batch did not finish within {secs} s"),
            )),
        }
    }

    /// When `index` was created, as Meilisearch says (`createdAt`, which moves with a swap).
    async fn created_at(&self, index: &str) -> Result<chrono::DateTime<chrono::Utc>, SearchError> {
        let url = format!("{}/indexes/{index}", self.host);
        let get = self
            .http
            .request::<(), (), Value>(&url, Method::Get { query: () }, 200);
        let shown = self.call("get index", get).await?;
        shown["createdAt"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&chrono::Utc))
            .ok_or_else(|| failed("get index", format!("index `{index}` has no createdAt")))
    }

    /// Waits, up to the task timeout, until the live index is the one rebuilt: the rebuild
    /// index is made after the live one, so the swap is done once the live index is the newer.
    async fn await_swapped_in(&self, task_uid: u32) -> Result<(), SearchError> {
        let deadline = Instant::now() + self.task_timeout;
        let mut interval = FIRST_POLL_INTERVAL;
        loop {
            if self.created_at(&self.index).await? > self.created_at(&self.rebuild_index).await? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SearchError::TaskTimedOut {
                    task_uid,
                    index: self.index.clone(),
                    secs: self.task_timeout.as_secs(),
                });
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
            interval = (interval * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// Waits (up to the task timeout) until no batch is in flight, then forgets what was
    /// in flight on `index`: before it is deleted or swapped, with writers kept out.
    async fn drain(&self, index: &str) {
        let deadline = Instant::now() + self.task_timeout;
        while !self.pipeline.is_idle() && Instant::now() < deadline {
            tokio::time::sleep(FIRST_POLL_INTERVAL).await;
        }
        self.pipeline.forget(index);
    }
}

#[async_trait]
impl SearchBackend for MeilisearchBackend {
    fn name(&self) -> &'static str {
        "meilisearch"
    }

    async fn prepare(&self) -> Result<(), SearchError> {
        self.check_version().await?;
        self.create_index(&self.index, true).await
    }

    async fn check(&self) -> Result<(), SearchError> {
        let health = self.call("health check", self.client.health()).await?;
        match health.status.as_str() {
            "available" => Ok(()),
            other => Err(failed("health check", format!("status is `{other}`"))),
        }
    }

    fn concurrent_batches(&self) -> usize {
        self.tasks_in_flight
    }

    /// Applies the batch to the live index and, during a rebuild, to the new one too; the
    /// report is the live index's. Both tasks are enqueued before either is waited for.
    async fn apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError> {
        let changes = newest_per_entity(changes);
        let rebuilding = self.rebuilding.read().await;
        let (report, live) = self.enqueue(&self.index, &changes).await?;
        let rebuilt = match *rebuilding {
            true => self.enqueue(&self.rebuild_index, &changes).await?.1,
            false => None,
        };
        self.settled(&self.index, live).await?;
        self.settled(&self.rebuild_index, rebuilt).await?;
        Ok(report)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        let handle = self.client.index(&self.index);
        let filter = translate::filter(query);
        let mut search = handle.search();
        search
            .with_query(query.q.trim())
            .with_filter(&filter)
            .with_attributes_to_retrieve(Selectors::Some(RETRIEVED))
            .with_attributes_to_highlight(Selectors::Some(HIGHLIGHTED))
            .with_highlight_pre_tag(HIGHLIGHT_PRE)
            .with_highlight_post_tag(HIGHLIGHT_POST)
            .with_attributes_to_crop(Selectors::Some(CROPPED))
            .with_crop_length(CROP_WORDS)
            .with_crop_marker("…")
            .with_show_ranking_score(true);
        if query.q.trim().is_empty() {
            search.with_sort(&["date:desc"]);
        }
        match Page::of(query.limit, query.offset) {
            Page::Numbered {
                page,
                hits_per_page,
            } => search.with_page(page).with_hits_per_page(hits_per_page),
            Page::Offset { offset, limit } => search.with_offset(offset).with_limit(limit),
        };
        let results: SdkResults<Hit> = self.call("search", search.execute()).await?;
        let total = results
            .total_hits
            .or(results.estimated_total_hits)
            .unwrap_or(query.offset + results.hits.len());
        let hits = results
            .hits
            .into_iter()
            .map(translate::hit)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| failed("search", message))?;
        Ok(SearchResults {
            hits,
            total,
            limit: query.limit,
            offset: query.offset,
            backend: self.name().to_owned(),
        })
    }

    /// Counted with a documents fetch filtered on `deleted = false`: its `total` is exact and,
    /// unlike a search's, not capped by `maxTotalHits`.
    async fn document_count(&self) -> Result<u64, SearchError> {
        let handle = self.client.index(&self.index);
        let mut query = DocumentsQuery::new(&handle);
        query
            .with_filter("deleted = false")
            .with_fields(["id"])
            .with_limit(0);
        let live: DocumentsResults<Value> = self
            .call("count documents", handle.get_documents_with(&query))
            .await?;
        Ok(u64::from(live.total))
    }

    /// Drops a leftover `<index_name>_rebuild` first, then creates it with the same settings.
    async fn begin_rebuild(&self) -> Result<(), SearchError> {
        let mut rebuilding = self.rebuilding.write().await;
        if *rebuilding {
            return Err(SearchError::Rebuild("a rebuild is already running"));
        }
        self.drain(&self.rebuild_index).await;
        self.delete_index(&self.rebuild_index).await?;
        self.create_index(&self.rebuild_index, false).await?;
        *rebuilding = true;
        Ok(())
    }

    async fn rebuild_apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError> {
        let changes = newest_per_entity(changes);
        let rebuilding = self.rebuilding.read().await;
        if !*rebuilding {
            return Err(SearchError::Rebuild("no rebuild is running"));
        }
        let (report, ticket) = self.enqueue(&self.rebuild_index, &changes).await?;
        self.settled(&self.rebuild_index, ticket).await?;
        Ok(report)
    }

    /// Swaps the two indexes, then deletes the old one (now `<index_name>_rebuild`). If the
    /// swap fails the rebuild is still running; once it succeeded the rebuild is over even if
    /// the delete fails (the next rebuild drops the leftover).
    async fn finish_rebuild(&self) -> Result<(), SearchError> {
        let mut rebuilding = self.rebuilding.write().await;
        if !*rebuilding {
            return Err(SearchError::Rebuild("no rebuild is running"));
        }
        let swap = SwapIndexes {
            indexes: (self.index.clone(), self.rebuild_index.clone()),
            rename: None,
        };
        self.drain(&self.index).await;
        self.pipeline.forget(&self.rebuild_index);
        let task_uid = self
            .call("swap indexes", self.client.swap_indexes([&swap]))
            .await?
            .task_uid;
        match self.await_task("swap indexes", &self.index, task_uid).await {
            // A key allowed only some indexes is not shown a swap's task (it has no index
            // uid): the swap is over once the live index is the one rebuilt.
            Err(SearchError::Meilisearch { message, .. }) if message.contains("task_not_found") => {
                self.await_swapped_in(task_uid).await?
            }
            other => other?,
        }
        *rebuilding = false;
        self.task(
            "delete index",
            &self.rebuild_index,
            self.client.delete_index(&self.rebuild_index),
        )
        .await
    }

    async fn abandon_rebuild(&self) {
        let mut rebuilding = self.rebuilding.write().await;
        *rebuilding = false;
        self.drain(&self.rebuild_index).await;
        if let Err(err) = self.delete_index(&self.rebuild_index).await {
            tracing::warn!(
                index = %self.rebuild_index,
                error = %err,
                "could not delete the abandoned rebuild index; the next rebuild deletes it"
            );
        }
    }
}
