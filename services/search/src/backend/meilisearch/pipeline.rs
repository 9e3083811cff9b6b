//! Document tasks in flight: a batch's documents are sent to Meilisearch without waiting for
//! the tasks before it to finish, and each batch learns its task's outcome in the order the
//! tasks were enqueued, from one poller that asks `GET /tasks?uids=…` about every unfinished
//! task at once.
//!
//! **Versions while tasks overlap.** A batch is planned (which documents it writes, under the
//! version rule) from what the index holds *and* from the writes of tasks still in flight, the
//! overlay: Meilisearch applies the tasks of one index in the order they were enqueued, so once
//! they have run the index holds, for each document, the last write enqueued. Plans are made
//! one at a time and each registers its writes before the next begins, so every plan sees all
//! the writes enqueued before it, applied or not. The overlay is read before the index is, so a
//! task that finishes in between is counted once either way.
//!
//! **A failed task.** Plans made while its writes were in the overlay counted on writes that
//! never happened (a change judged stale against them, sources merged with theirs). Every
//! batch queued behind it, and any plan whose overlay was read before the failure was seen, is
//! *tainted*: whatever its own task did, it is answered with [`SearchError::EarlierTaskFailed`],
//! a transient error, so the indexer applies it again, planned anew against what the index
//! then holds. Writing a document again at the version it already has changes nothing, so the
//! tasks that did run are harmless to repeat. The failed batch itself goes the usual way
//! (halves, then one event at a time, then the dead-letter stream). Nothing is acked before
//! the outcome of every task enqueued before it is known.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use meilisearch_sdk::request::{HttpClient, Method};
use meilisearch_sdk::reqwest::ReqwestClient;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::stored::{Held, StoredDocument};
use super::tasks::{self, Outcome};
use crate::backend::SearchError;

/// The first pause between two polls while tasks are unfinished; it doubles, up to
/// [`MAX_POLL_INTERVAL`], while nothing finishes, and starts again when something does.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(3);
/// The longest pause between two polls.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The pause after a poll that failed (Meilisearch unreachable).
const POLL_RETRY: Duration = Duration::from_millis(500);

/// What a batch waits on: its task's outcome, once every task before it is known.
pub(super) type Ticket = oneshot::Receiver<Result<(), SearchError>>;

/// The writes of unfinished tasks, per index, and who waits for them.
#[derive(Default)]
pub(super) struct Pipeline {
    state: Mutex<State>,
    /// Wakes the poller when a task is registered.
    added: Notify,
}

#[derive(Default)]
struct State {
    /// Per index uid.
    queues: HashMap<String, Queue>,
}

/// One index's batches, in the order their tasks were enqueued.
#[derive(Default)]
struct Queue {
    /// Batches whose outcome has not been answered yet, oldest first.
    entries: VecDeque<Entry>,
    /// What the index will hold for each document once the tasks in `entries` have run: the
    /// last write enqueued, with its task's uid.
    overlay: HashMap<Uuid, (u32, Held)>,
    /// Failed tasks seen on this index so far: a plan that read the overlay before one of them
    /// was seen is tainted.
    failures: u64,
}

/// One batch in the queue.
struct Entry {
    /// Its task; `None` for a batch that wrote nothing (every change stale), which still
    /// waits for the tasks before it, since its decisions may rest on their writes.
    task: Option<u32>,
    /// Known once the task finished (at once for a batch without a task).
    outcome: Option<Outcome>,
    /// Whether its plan counted on writes of a task that failed.
    tainted: bool,
    /// Where the outcome goes; gone when the batch stopped waiting (timed out).
    reply: Option<oneshot::Sender<Result<(), SearchError>>>,
}

/// What a plan reads of the pipeline before it reads the index.
pub(super) struct Snapshot {
    /// The writes in flight for the batch's documents.
    pub held: Vec<Held>,
    /// [`Queue::failures`] when it was read.
    failures: u64,
}

impl Pipeline {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writes in flight to `index` for `ids`.
    pub(super) fn snapshot(&self, index: &str, ids: impl Iterator<Item = Uuid>) -> Snapshot {
        let state = self.state();
        let Some(queue) = state.queues.get(index) else {
            return Snapshot {
                held: Vec::new(),
                failures: 0,
            };
        };
        Snapshot {
            held: ids
                .filter_map(|id| queue.overlay.get(&id).map(|(_, held)| held.clone()))
                .collect(),
            failures: queue.failures,
        }
    }

    /// Queues a batch planned from `snapshot` that enqueued `task` (none when it wrote
    /// nothing) with `writes`; the ticket answers once its outcome and every earlier one is
    /// known.
    pub(super) fn register(
        &self,
        index: &str,
        task: Option<u32>,
        writes: &[StoredDocument],
        snapshot: &Snapshot,
    ) -> Ticket {
        let (reply, ticket) = oneshot::channel();
        let mut state = self.state();
        let queue = state.queues.entry(index.to_owned()).or_default();
        if let Some(uid) = task {
            for write in writes {
                let held = Held {
                    id: write.id,
                    version: write.version,
                    deleted: write.deleted,
                    sources: write.sources.clone(),
                };
                queue.overlay.insert(write.id, (uid, held));
            }
        }
        queue.entries.push_back(Entry {
            task,
            outcome: task.is_none().then_some(Outcome::Succeeded),
            tainted: queue.failures != snapshot.failures,
            reply: Some(reply),
        });
        release(index, queue);
        drop(state);
        if task.is_some() {
            self.added.notify_one();
        }
        ticket
    }

    /// The tasks whose outcome is not known yet.
    fn unfinished(&self) -> Vec<u32> {
        let state = self.state();
        let mut uids: Vec<u32> = state
            .queues
            .values()
            .flat_map(|q| q.entries.iter())
            .filter(|e| e.outcome.is_none())
            .filter_map(|e| e.task)
            .collect();
        uids.sort_unstable();
        uids
    }

    /// Records what the poller learnt and answers every batch now due; whether anything
    /// finished.
    fn finished(&self, outcomes: &HashMap<u32, Outcome>) -> bool {
        let mut state = self.state();
        let mut any = false;
        for (index, queue) in &mut state.queues {
            for entry in queue.entries.iter_mut().filter(|e| e.outcome.is_none()) {
                if let Some(outcome) = entry.task.and_then(|uid| outcomes.get(&uid)) {
                    entry.outcome = Some(outcome.clone());
                    any = true;
                }
            }
            release(index, queue);
        }
        any
    }

    /// Whether no batch of any index waits (every task's outcome answered).
    pub(super) fn is_idle(&self) -> bool {
        self.state().queues.values().all(|q| q.entries.is_empty())
    }

    /// Forgets everything in flight on `index`: for an index deleted or swapped while no batch
    /// is being written to it.
    pub(super) fn forget(&self, index: &str) {
        self.state().queues.remove(index);
    }

    /// Polls Meilisearch for the unfinished tasks until `stop`.
    pub(super) async fn poll(
        self: Arc<Self>,
        http: ReqwestClient,
        host: String,
        stop: CancellationToken,
    ) {
        let mut interval = FIRST_POLL_INTERVAL;
        loop {
            let uids = self.unfinished();
            if uids.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.added.notified() => {}
                }
                interval = FIRST_POLL_INTERVAL;
                continue;
            }
            let pause = match fetch(&http, &host, &uids).await {
                Ok(outcomes) => {
                    if self.finished(&outcomes) {
                        interval = FIRST_POLL_INTERVAL;
                    } else {
                        interval = (interval * 2).min(MAX_POLL_INTERVAL);
                    }
                    interval
                }
                Err(message) => {
                    tracing::warn!(error = %message, tasks = uids.len(), "Cannot poll Meilisearch's tasks; trying again.");
                    POLL_RETRY
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
                _ = self.added.notified() => {}
            }
        }
    }
}

/// The outcome of each of `uids` that is finished. A uid Meilisearch no longer knows counts
/// as failed: its batch is applied again, which is always safe.
async fn fetch(
    http: &ReqwestClient,
    host: &str,
    uids: &[u32],
) -> Result<HashMap<u32, Outcome>, String> {
    let list: Vec<String> = uids.iter().map(u32::to_string).collect();
    let url = format!("{host}/tasks?uids={}&limit={}", list.join(","), uids.len());
    let answer: Value = http
        .request::<(), (), Value>(&url, Method::Get { query: () }, 200)
        .await
        .map_err(|e| e.to_string())?;
    let results = answer["results"]
        .as_array()
        .ok_or_else(|| format!("not a list of tasks: {answer}"))?;
    let mut outcomes = HashMap::new();
    for task in results {
        let Some(uid) = task["uid"].as_u64().and_then(|u| u32::try_from(u).ok()) else {
            continue;
        };
        match tasks::outcome(task)? {
            Outcome::Pending => {}
            finished => {
                outcomes.insert(uid, finished);
            }
        }
    }
    let known: Vec<u64> = results.iter().filter_map(|t| t["uid"].as_u64()).collect();
    for uid in uids {
        if !known.contains(&u64::from(*uid)) {
            outcomes.insert(
                *uid,
                Outcome::Failed {
                    code: "task_not_found".to_owned(),
                    message: format!("Meilisearch no longer knows task {uid}"),
                },
            );
        }
    }
    Ok(outcomes)
}

/// Answers the batches at the head of `queue` whose outcome is known, oldest first; a failure
/// taints every batch behind it.
fn release(index: &str, queue: &mut Queue) {
    while queue.entries.front().is_some_and(|e| e.outcome.is_some()) {
        let Some(mut entry) = queue.entries.pop_front() else {
            break;
        };
        if let Some(uid) = entry.task {
            queue.overlay.retain(|_, (writer, _)| *writer != uid);
        }
        let answer = match (entry.outcome.take(), entry.task) {
            (Some(Outcome::Failed { code, message }), Some(task_uid)) => {
                queue.failures += 1;
                for later in &mut queue.entries {
                    later.tainted = true;
                }
                Err(SearchError::TaskFailed {
                    task_uid,
                    index: index.to_owned(),
                    code,
                    message,
                })
            }
            _ if entry.tainted => Err(SearchError::EarlierTaskFailed {
                index: index.to_owned(),
            }),
            _ => Ok(()),
        };
        if let Some(reply) = entry.reply.take() {
            // A batch that stopped waiting (timed out) is applied again anyway.
            let _ = reply.send(answer);
        }
    }
}
