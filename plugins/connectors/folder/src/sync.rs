//! One sync: the folder compared with the cursor's index, on a blocking thread, its steps
//! handed to the async stream through a small channel.

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;
use tributary_plugin_sdk::{
    ConnectorItem, Cursor, EntityType, ItemOperation, PluginContext, PluginError, SyncMode,
    SyncRequest, SyncStep,
};

use crate::config::{ExcludeRules, FolderConfig};
use crate::cursor::{to_micros, FileState, FolderCursor, ScanProgress};
use crate::document;
use crate::scan::{self, ListedFile};

/// Steps waiting to be taken by the stream. Small: an item may carry a whole file, and a
/// slow consumer should hold the scan back, not let it read ahead.
const STEP_BUFFER: usize = 1;

type StepResult = Result<SyncStep, PluginError>;

/// A test's change to the folder between the listing and a file's read.
#[cfg(test)]
pub(crate) type BeforeRead = Box<dyn Fn(&ListedFile) + Send + Sync>;

/// Everything one sync needs, moved onto the blocking thread that runs it.
pub(crate) struct SyncJob {
    /// The instance's context: its config, id and log span.
    pub ctx: PluginContext,
    /// The last cursor the service stored.
    pub cursor: Option<Cursor>,
    /// What was asked.
    pub request: SyncRequest,
    /// A checkpoint after this many files sent, deleted or re-indexed.
    pub checkpoint_every: usize,
    /// Called with each file between the listing and its read: where a test changes the
    /// folder as someone racing the sync would.
    #[cfg(test)]
    pub before_read: Option<BeforeRead>,
}

/// Why a sync stopped before its end.
enum Halt {
    /// The stream was dropped: nobody is listening, so stop quietly.
    Stopped,
    /// It failed; the error is the stream's last step.
    Failed(PluginError),
}

impl From<PluginError> for Halt {
    fn from(error: PluginError) -> Self {
        Halt::Failed(error)
    }
}

/// Where the stream is: not started, running, or done.
enum Pump {
    Idle(SyncJob),
    Running {
        steps: mpsc::Receiver<StepResult>,
        worker: JoinHandle<()>,
    },
    Done,
}

impl SyncJob {
    /// The sync as a stream. The scan starts on the first poll, on tokio's blocking pool;
    /// dropping the stream stops it after the file it is on.
    pub fn into_stream(self) -> BoxStream<'static, StepResult> {
        stream::unfold(Pump::Idle(self), |pump| async move {
            let (mut steps, worker) = match pump {
                Pump::Idle(job) => {
                    let (sender, steps) = mpsc::channel(STEP_BUFFER);
                    let worker = tokio::task::spawn_blocking(move || job.run(&sender));
                    (steps, worker)
                }
                Pump::Running { steps, worker } => (steps, worker),
                Pump::Done => return None,
            };
            match steps.recv().await {
                Some(step) => Some((step, Pump::Running { steps, worker })),
                // The scan ended; a panic must not pass for a complete sync.
                None => match worker.await {
                    Ok(()) => None,
                    Err(e) => Some((
                        Err(PluginError::Other(format!(
                            "the folder scan stopped unexpectedly: {e}"
                        ))),
                        Pump::Done,
                    )),
                },
            }
        })
        .boxed()
    }

    /// Runs the sync, sending its steps; an error is sent as the last step.
    fn run(self, sender: &mpsc::Sender<StepResult>) {
        let span = self.ctx.span().clone();
        let _entered = span.enter();
        let mut run = SyncRun {
            job: &self,
            sender,
            since_checkpoint: 0,
        };
        if let Err(Halt::Failed(error)) = run.sync() {
            // Nobody may be listening any more; then there is no one to tell.
            let _ = sender.blocking_send(Err(error));
        }
    }
}

/// The state of a running sync.
struct SyncRun<'a> {
    job: &'a SyncJob,
    sender: &'a mpsc::Sender<StepResult>,
    /// Files sent, deleted or re-indexed since the last checkpoint.
    since_checkpoint: usize,
}

impl SyncRun<'_> {
    fn sync(&mut self) -> Result<(), Halt> {
        let config = FolderConfig::from_context(&self.job.ctx)?;
        let exclude = ExcludeRules::new(&config.exclude)?;
        let mut cursor = FolderCursor::load(self.job.cursor.as_ref(), self.job.request.mode)?;
        let mut progress = cursor.plan(self.job.request);
        let started_at = Utc::now();
        let listing =
            scan::list(&config, &exclude).map_err(|e| PluginError::Transient(e.to_string()))?;

        for file in &listing.files {
            if progress
                .after
                .as_ref()
                .is_some_and(|after| file.relative <= *after)
            {
                continue;
            }
            let changed = self.sync_file(file, &config, &progress, &mut cursor)?;
            progress.after = Some(file.relative.clone());
            if changed {
                self.after_change(&mut cursor, &progress)?;
            }
        }

        let gone: Vec<String> = cursor
            .files
            .keys()
            .filter(|known| {
                listing
                    .files
                    .binary_search_by(|f| f.relative.as_str().cmp(known.as_str()))
                    .is_err()
                    && !listing.is_unreadable(known)
            })
            .cloned()
            .collect();
        let noticed_at = to_micros(started_at);
        for relative in gone {
            if let Some(last) = cursor.files.remove(&relative) {
                // Newer than anything sent for it, even from a file dated in the future.
                let deleted_at =
                    noticed_at.max(last.last_sent_version() + TimeDelta::microseconds(1));
                self.send(SyncStep::Item(self.tombstone(&relative, deleted_at)))?;
            }
            self.after_change(&mut cursor, &progress)?;
        }

        cursor.scan = None;
        self.send(SyncStep::Checkpoint(cursor.to_cursor()?))
    }

    /// Compares one file with the index, sends it if the mode or a change asks for it, and
    /// updates the index; whether anything was sent or re-indexed.
    fn sync_file(
        &self,
        file: &ListedFile,
        config: &FolderConfig,
        progress: &ScanProgress,
        cursor: &mut FolderCursor,
    ) -> Result<bool, Halt> {
        let previous = cursor.files.get(&file.relative);
        let forced = match progress.mode {
            SyncMode::Incremental => false,
            SyncMode::Full => true,
            SyncMode::Backfill => progress.since.is_none_or(|since| file.mtime >= since),
        };
        let metadata_unchanged =
            previous.is_some_and(|p| p.mtime == file.mtime && p.size == file.size);
        if metadata_unchanged && !forced {
            return Ok(false);
        }

        #[cfg(test)]
        if let Some(before_read) = &self.job.before_read {
            before_read(file);
        }
        let content = match document::read(file, config.max_file_bytes) {
            Ok(content) => content,
            Err(error) => {
                // Kept in the index as it was: a file that cannot be read now is not deleted.
                warn!(path = %file.relative, error = %error, "Skipped a file that cannot be read.");
                return Ok(false);
            }
        };
        let sha256 = content.sha256.clone();
        let content_changed = previous.is_none_or(|p| p.sha256 != sha256);
        let send = forced || content_changed;
        let sent_version = if send {
            let version = FileState::version_after(previous, file.mtime, content_changed);
            let (fields, raw) = document::to_document(file, content);
            let data = serde_json::to_value(fields)
                .map_err(|e| PluginError::Other(format!("cannot serialize a document: {e}")))?;
            self.send(SyncStep::Item(ConnectorItem {
                instance_id: self.job.ctx.instance_id().to_owned(),
                entity_type: EntityType::Document,
                external_id: file.relative.clone(),
                operation: ItemOperation::Upsert,
                source_modified_at: version,
                data,
                raw,
            }))?;
            version
        } else {
            // Touched, not changed: the version the ETL holds is still the last one sent.
            previous.map_or_else(|| to_micros(file.mtime), FileState::last_sent_version)
        };

        let state = FileState {
            mtime: file.mtime,
            size: file.size,
            sha256,
            sent_version: (sent_version != to_micros(file.mtime)).then_some(sent_version),
        };
        let reindexed = previous != Some(&state);
        cursor.files.insert(file.relative.clone(), state);
        Ok(send || reindexed)
    }

    /// Counts a change, and checkpoints after every `checkpoint_every` of them.
    fn after_change(
        &mut self,
        cursor: &mut FolderCursor,
        progress: &ScanProgress,
    ) -> Result<(), Halt> {
        self.since_checkpoint += 1;
        if self.since_checkpoint < self.job.checkpoint_every {
            return Ok(());
        }
        self.since_checkpoint = 0;
        cursor.scan = Some(progress.clone());
        self.send(SyncStep::Checkpoint(cursor.to_cursor()?))
    }

    fn tombstone(&self, relative: &str, deleted_at: DateTime<Utc>) -> ConnectorItem {
        ConnectorItem {
            instance_id: self.job.ctx.instance_id().to_owned(),
            entity_type: EntityType::Document,
            external_id: relative.to_owned(),
            operation: ItemOperation::Delete,
            source_modified_at: deleted_at,
            data: serde_json::Value::Null,
            raw: serde_json::Value::Null,
        }
    }

    fn send(&self, step: SyncStep) -> Result<(), Halt> {
        self.sender
            .blocking_send(Ok(step))
            .map_err(|_| Halt::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use futures::StreamExt;
    use serde_json::json;
    use tributary_plugin_sdk::testing::TestContext;

    use super::*;

    /// Runs a sync of `root` with `before_read` called before each file is read, and returns
    /// the upserts' ids and contents.
    async fn sync_racing(
        root: &Path,
        before_read: impl Fn(&ListedFile) + Send + Sync + 'static,
    ) -> Vec<(String, String)> {
        let test = TestContext::new(&["data:write:documents"], json!({ "path": root }));
        let job = SyncJob {
            ctx: test.ctx(),
            cursor: None,
            request: SyncRequest::incremental(),
            checkpoint_every: 100,
            before_read: Some(Box::new(before_read)),
        };
        let mut steps = job.into_stream();
        let mut upserts = Vec::new();
        while let Some(step) = steps.next().await {
            if let SyncStep::Item(item) = step.expect("the sync fails") {
                let content = item.data["content"].as_str().unwrap_or_default().to_owned();
                upserts.push((item.external_id, content));
            }
        }
        upserts
    }

    #[tokio::test]
    async fn a_file_or_directory_swapped_for_a_link_after_the_listing_is_not_read() {
        // The attack: whoever may write in the folder replaces a listed file, or a directory
        // above one, by a link to a file outside it (the service's secrets) while the sync
        // runs, between the listing (which saw a plain file) and the read.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.md"), "TOP SECRET key").unwrap();
        std::fs::create_dir(outside.path().join("dir")).unwrap();
        std::fs::write(outside.path().join("dir/c.md"), "TOP SECRET too").unwrap();
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path().to_owned();
        std::fs::write(root.join("a.md"), "# A").unwrap();
        std::fs::write(root.join("b.md"), "# B").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/c.md"), "# C").unwrap();

        let secrets = outside.path().to_owned();
        let upserts = sync_racing(&root, move |file| match file.relative.as_str() {
            "b.md" => {
                std::fs::remove_file(&file.path).unwrap();
                symlink(secrets.join("secret.md"), &file.path).unwrap();
            }
            "sub/c.md" => {
                let sub = file.path.parent().unwrap();
                std::fs::rename(sub, sub.with_file_name("sub-before")).unwrap();
                symlink(secrets.join("dir"), sub).unwrap();
            }
            _ => {}
        })
        .await;

        let ids: Vec<&str> = upserts.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.md"], "{upserts:?}");
        assert!(
            upserts
                .iter()
                .all(|(_, content)| !content.contains("SECRET")),
            "{upserts:?}"
        );
    }
}
