//! Storing a sync's checkpoints without stopping its stream.
//!
//! A checkpoint the plugin yields is due once every item published before it is acknowledged
//! ([`Checkpoints::acknowledged`]); the items after it keep flowing meanwhile, so the window of
//! unacknowledged publishes never drains to store one. A due checkpoint is written by a task
//! of the sync's own ([`CheckpointWriter`]), in the order they fell due, one write at a time:
//! when several fall due during one write, only the newest is written next (each one
//! supersedes those before it). The runner flushes the writer before it records the sync's
//! end, so the end is always written after the last checkpoint.

use std::collections::VecDeque;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_plugin_sdk::Cursor;
use uuid::Uuid;

use crate::state::{SyncCounts, SyncStore};

/// Why a checkpoint could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// PostgreSQL refused or could not be reached.
    #[error("cannot store the checkpoint: {0}")]
    Store(#[from] sqlx::Error),
    /// The writer task ended without saying why (it panicked or was aborted).
    #[error("the checkpoint writer stopped: {0}")]
    Writer(#[from] tokio::task::JoinError),
}

/// The checkpoints of one sync yielded and not yet due, oldest first.
#[derive(Debug, Default)]
pub struct Checkpoints {
    /// Each cursor with the number of acknowledged items at which it falls due: the items
    /// published before the plugin yielded it.
    waiting: VecDeque<(u64, Cursor)>,
}

impl Checkpoints {
    /// Keeps `cursor`, due once `published` items are acknowledged.
    pub fn yielded(&mut self, published: u64, cursor: Cursor) {
        self.waiting.push_back((published, cursor));
    }

    /// The newest checkpoint due now that `acknowledged` items are, if any, forgetting it and
    /// every older one.
    pub fn acknowledged(&mut self, acknowledged: u64) -> Option<Cursor> {
        let mut due = None;
        while self
            .waiting
            .front()
            .is_some_and(|(published, _)| *published <= acknowledged)
        {
            due = self.waiting.pop_front().map(|(_, cursor)| cursor);
        }
        due
    }
}

/// Writes one sync's due checkpoints in the background, in order, the newest waiting one
/// after each write.
#[derive(Debug)]
pub struct CheckpointWriter {
    /// The newest due checkpoint with the sync's counts when it fell due; the task writes
    /// each value it has not seen yet.
    due: watch::Sender<Option<(Cursor, SyncCounts)>>,
    /// The task: it ends when `due` is dropped and everything sent is written, or at the
    /// first write that fails. `None` once its end was awaited.
    task: Option<JoinHandle<Result<(), sqlx::Error>>>,
}

impl CheckpointWriter {
    /// A writer storing `sync_id`'s checkpoints of `instance_id` in `store`.
    pub fn spawn(store: SyncStore, instance_id: String, sync_id: Uuid) -> Self {
        let (due, mut rx) = watch::channel(None::<(Cursor, SyncCounts)>);
        let task = tokio::spawn(async move {
            // `changed` answers a value not yet seen even once the sender is gone, so a flush
            // writes the last checkpoint before the task ends.
            while rx.changed().await.is_ok() {
                let next = rx.borrow_and_update().clone();
                if let Some((cursor, counts)) = next {
                    store
                        .checkpoint(&instance_id, sync_id, &cursor, counts)
                        .await?;
                }
            }
            Ok(())
        });
        Self {
            due,
            task: Some(task),
        }
    }

    /// Hands `cursor`, due with `counts`, to the task. An error when the task has stopped:
    /// an earlier write failed.
    pub async fn store(
        &mut self,
        cursor: Cursor,
        counts: SyncCounts,
    ) -> Result<(), CheckpointError> {
        if self.due.send(Some((cursor, counts))).is_ok() {
            return Ok(());
        }
        // The receiver is gone only when the task ended: its result says why.
        Self::ended(self.task.take()).await
    }

    /// Waits until every checkpoint handed over is written; the first write's error if one
    /// failed and was not returned by [`Self::store`] already.
    pub async fn flush(self) -> Result<(), CheckpointError> {
        let Self { due, task } = self;
        drop(due);
        Self::ended(task).await
    }

    /// What `task` ended with; nothing when it was awaited before.
    async fn ended(
        task: Option<JoinHandle<Result<(), sqlx::Error>>>,
    ) -> Result<(), CheckpointError> {
        match task {
            Some(task) => Ok(task.await??),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_checkpoint_falls_due_only_once_every_item_before_it_is_acknowledged() {
        let mut checkpoints = Checkpoints::default();
        checkpoints.yielded(3, Cursor(json!({ "next": 3 })));
        checkpoints.yielded(5, Cursor(json!({ "next": 5 })));
        assert_eq!(
            checkpoints.acknowledged(2),
            None,
            "one item before it is unacked"
        );
        assert_eq!(
            checkpoints.acknowledged(3).map(|c| c.0),
            Some(json!({ "next": 3 }))
        );
        assert_eq!(
            checkpoints.acknowledged(4),
            None,
            "each is handed over once"
        );
        // Several due at once: only the newest is worth writing.
        checkpoints.yielded(6, Cursor(json!({ "next": 6 })));
        assert_eq!(
            checkpoints.acknowledged(6).map(|c| c.0),
            Some(json!({ "next": 6 }))
        );
        assert_eq!(checkpoints.acknowledged(100), None);
    }
}
