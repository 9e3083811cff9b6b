//! One sync of one instance: the plugin's steps streamed to JetStream with a bounded number
//! of unacknowledged publishes, checkpoints stored once every item before them is
//! acknowledged (in the background, while the items after them flow: [`crate::checkpoint`]),
//! heartbeats while it runs, and its end recorded and announced.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::Subject;
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tributary_host::{InstanceContexts, InstanceHealth};
use tributary_kit::client::MeshClient;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, Grants, PluginContext, PluginError, SyncStep,
};
use tributary_proto::{ItemOperation, PluginType, Subjects};
use uuid::Uuid;

use crate::checkpoint::{CheckpointWriter, Checkpoints};
use crate::state::{BegunSync, SyncCounts, SyncEnd, SyncStore};

/// One enabled connector instance, as the plugin manager describes it, with its connector.
pub struct InstanceSpec {
    /// The instance.
    pub instance_id: String,
    /// Its plugin.
    pub plugin_id: String,
    /// Its plugin's version.
    pub version: String,
    /// Its configuration, secrets included; never logged.
    pub config: Value,
    /// What it may do, `${property}` hosts resolved against its config.
    pub grants: Grants,
    /// Whether its plugin's manifest has an `auth` section: its HTTP client then attaches
    /// the access token the plugin manager brokers.
    pub oauth: bool,
    /// The connector that runs it.
    pub connector: Arc<dyn ConnectorPlugin>,
}

impl std::fmt::Debug for InstanceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSpec")
            .field("instance_id", &self.instance_id)
            .field("plugin_id", &self.plugin_id)
            .field("version", &self.version)
            .field("grants", &self.grants)
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
}

/// Why a running sync is being stopped.
#[derive(Debug, Clone)]
pub struct StopSignal {
    token: CancellationToken,
    reason: Arc<std::sync::Mutex<Option<String>>>,
}

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            reason: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Stops the sync, saying why (the first reason given wins).
    pub fn stop(&self, reason: impl Into<String>) {
        self.held_reason().get_or_insert_with(|| reason.into());
        self.token.cancel();
    }

    fn reason(&self) -> String {
        self.held_reason()
            .clone()
            .unwrap_or_else(|| "cancelled".to_owned())
    }

    fn held_reason(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs syncs; one per instance at a time is the supervisor's business.
#[derive(Debug, Clone)]
pub struct SyncRunner {
    store: SyncStore,
    jetstream: async_nats::jetstream::Context,
    nats: async_nats::Client,
    subjects: Subjects,
    /// Where each sync's heartbeats and end are reported to the plugin manager.
    health: InstanceHealth,
    /// Makes each sync's plugin context (config, logger, HTTP, events, data), as the host
    /// makes every instance's.
    contexts: InstanceContexts,
    max_inflight: usize,
    heartbeat_every: Duration,
    /// The service stopping: a sync it stops is left `running`, to resume at the next start.
    shutdown: CancellationToken,
}

/// What [`SyncRunner::run`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// It ended, and its end was recorded and announced.
    Ended(SyncEnd),
    /// The service is stopping: the state stays `running` with its last checkpoint, and the
    /// next start of any connector process resumes it.
    Interrupted,
}

/// A publish's acknowledgement, as a future that can be polled in place.
type AckFuture = <PublishAckFuture as std::future::IntoFuture>::IntoFuture;

/// Where a sync stands while it runs.
struct Progress {
    counts: SyncCounts,
    started: Instant,
    /// The publishes not yet acknowledged, oldest first; the oldest is also awaited while
    /// the plugin is quiet, so counts and checkpoints keep up with a slow stream.
    inflight: VecDeque<AckFuture>,
    /// The checkpoints yielded whose items are not all acknowledged yet.
    checkpoints: Checkpoints,
    /// Stores each checkpoint once it is due; `None` once flushed.
    writer: Option<CheckpointWriter>,
}

impl Progress {
    fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.counts.items as f64 / secs
        } else {
            0.0
        }
    }

    fn counts(&self) -> SyncCounts {
        SyncCounts {
            rate: self.rate(),
            ..self.counts
        }
    }

    /// Items published (acknowledged or not), skipped ones left out.
    fn published(&self) -> u64 {
        self.counts.items + self.inflight.len() as u64
    }

    /// Waits for the oldest publish to be acknowledged, then hands over the checkpoint that
    /// became due, if one did.
    async fn ack_oldest(&mut self) -> Result<(), String> {
        let acked = Self::oldest_acked(&mut self.inflight).await;
        self.acked(acked).await
    }

    /// Waits for the oldest publish's acknowledgement and only then removes it, so a wait
    /// given up (another branch of the runner's `select!` won) loses nothing; pending while
    /// nothing is in flight.
    async fn oldest_acked(
        inflight: &mut VecDeque<AckFuture>,
    ) -> Result<(), async_nats::jetstream::context::PublishError> {
        let Some(oldest) = inflight.front_mut() else {
            return std::future::pending().await;
        };
        let acked = oldest.await.map(|_| ());
        inflight.pop_front();
        acked
    }

    /// Counts an acknowledgement [`Self::oldest_acked`] gave and hands over the checkpoint
    /// it made due.
    async fn acked(
        &mut self,
        acked: Result<(), async_nats::jetstream::context::PublishError>,
    ) -> Result<(), String> {
        acked.map_err(|e| format!("JetStream did not acknowledge an item: {e}"))?;
        self.counts.items += 1;
        self.release_due().await
    }

    /// Keeps `cursor`, to be stored once every item published so far is acknowledged (at
    /// once when they are).
    async fn checkpoint(&mut self, cursor: Cursor) -> Result<(), String> {
        self.checkpoints.yielded(self.published(), cursor);
        self.release_due().await
    }

    /// Hands the newest checkpoint whose items are all acknowledged to the writer.
    async fn release_due(&mut self) -> Result<(), String> {
        let Some(cursor) = self.checkpoints.acknowledged(self.counts.items) else {
            return Ok(());
        };
        let counts = self.counts();
        match self.writer.as_mut() {
            Some(writer) => writer
                .store(cursor, counts)
                .await
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Waits until every checkpoint handed over is stored.
    async fn flush_checkpoints(&mut self) -> Result<(), String> {
        match self.writer.take() {
            Some(writer) => writer.flush().await.map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Waits until every publish is acknowledged.
    async fn ack_all(&mut self) -> Result<(), String> {
        while !self.inflight.is_empty() {
            self.ack_oldest().await?;
        }
        Ok(())
    }
}

impl SyncRunner {
    /// A runner publishing through `jetstream`, recording in `store`, reporting health to the
    /// plugin manager through `plugins`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: SyncStore,
        jetstream: async_nats::jetstream::Context,
        nats: async_nats::Client,
        subjects: Subjects,
        plugins: MeshClient,
        max_inflight: usize,
        heartbeat_every: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let contexts = InstanceContexts::new(
            PluginType::Connector,
            nats.clone(),
            subjects.clone(),
            store.pool().clone(),
        );
        Self {
            store,
            jetstream,
            nats,
            subjects,
            health: InstanceHealth::new(tributary_proto::PluginType::Connector, plugins),
            contexts,
            max_inflight: max_inflight.max(1),
            heartbeat_every,
            shutdown,
        }
    }

    /// The same, with every instance's requests held to the operator's `[plugins]` settings
    /// (private targets, the most body bytes of one answer).
    pub fn with_egress(mut self, egress: tributary_kit::config::PluginsConfig) -> Self {
        self.contexts = self.contexts.with_egress(egress);
        self
    }

    /// The same, with `paths` (the service's `data_dir`) kept out of every instance's reach
    /// ([`tributary_plugin_sdk::PluginContext::protected_paths`]).
    pub fn with_protected_paths(mut self, paths: Vec<std::path::PathBuf>) -> Self {
        self.contexts = self.contexts.with_protected_paths(paths);
        self
    }

    /// The store it records in.
    pub fn store(&self) -> &SyncStore {
        &self.store
    }

    fn context(&self, spec: &InstanceSpec) -> Result<PluginContext, PluginError> {
        self.contexts.build(
            spec.plugin_id.clone(),
            spec.instance_id.clone(),
            spec.grants.clone(),
            spec.config.clone(),
            spec.oauth,
        )
    }

    /// Runs the sync `sync_id` of `spec` that [`SyncStore::begin`] allowed, until the plugin's
    /// stream ends, fails, or `stop` is given.
    pub async fn run(
        &self,
        spec: &InstanceSpec,
        sync_id: Uuid,
        begun: BegunSync,
        stop: StopSignal,
    ) -> RunOutcome {
        let instance_id = spec.instance_id.as_str();
        let mode = begun.request.mode;
        tracing::info!(instance = instance_id, %sync_id, ?mode, resumed = begun.resumed, "Sync started.");
        let mut progress = Progress {
            counts: SyncCounts::default(),
            started: Instant::now(),
            inflight: VecDeque::new(),
            checkpoints: Checkpoints::default(),
            writer: Some(CheckpointWriter::spawn(
                self.store.clone(),
                instance_id.to_owned(),
                sync_id,
            )),
        };
        let end = match self.context(spec) {
            Ok(ctx) => {
                self.stream(spec, ctx, sync_id, begun, &stop, &mut progress)
                    .await
            }
            Err(e) => Some(SyncEnd::Failed(format!(
                "cannot build the plugin context: {e}"
            ))),
        };
        let Some(end) = end else {
            // The checkpoints already due are stored: the next start resumes from the newest.
            if let Err(e) = progress.flush_checkpoints().await {
                tracing::warn!(instance = instance_id, %sync_id, error = %e, "Cannot store the last checkpoint of an interrupted sync.");
            }
            tracing::info!(instance = instance_id, %sync_id, "Sync interrupted by shutdown; it resumes at the next start.");
            return RunOutcome::Interrupted;
        };
        let counts = progress.counts();
        if let Err(e) = self
            .store
            .finish(instance_id, sync_id, mode, counts, &end)
            .await
        {
            tracing::error!(instance = instance_id, %sync_id, error = %e, "Cannot record the end of a sync.");
        }
        self.log_end(instance_id, sync_id, counts, &end);
        RunOutcome::Ended(end)
    }

    fn log_end(&self, instance_id: &str, sync_id: Uuid, counts: SyncCounts, end: &SyncEnd) {
        match end {
            SyncEnd::Succeeded => {
                tracing::info!(instance = instance_id, %sync_id, items = counts.items, rate = counts.rate, "Sync completed.");
            }
            SyncEnd::Failed(e) => {
                tracing::warn!(instance = instance_id, %sync_id, error = %e, "Sync failed.");
            }
            SyncEnd::Cancelled(reason) => {
                tracing::info!(instance = instance_id, %sync_id, reason, "Sync cancelled.");
            }
        }
    }

    /// Streams the plugin's steps; `None` when the service is stopping.
    async fn stream(
        &self,
        spec: &InstanceSpec,
        ctx: PluginContext,
        sync_id: Uuid,
        begun: BegunSync,
        stop: &StopSignal,
        progress: &mut Progress,
    ) -> Option<SyncEnd> {
        let instance_id = spec.instance_id.as_str();
        let mode = begun.request.mode;
        let mut steps = spec.connector.sync(ctx, begun.cursor, begun.request);
        // Made once per sync, not per item: the subject (cloned by reference count) and the
        // run part of every item's message id.
        let subject = Subject::from(self.subjects.connector_items(instance_id));
        let run = sync_id.to_string();
        // The server's limit, read once: an item over it is that item's error.
        let max_payload = self.nats.server_info().max_payload;
        let mut heartbeat = tokio::time::interval(self.heartbeat_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                _ = stop.token.cancelled() => {
                    return Some(self.settle(progress, SyncEnd::Cancelled(stop.reason())).await);
                }
                _ = heartbeat.tick() => {
                    match self.store.heartbeat(instance_id, sync_id, mode, progress.counts()).await {
                        Ok(true) => stop.stop("cancelled by connector.cancel"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(instance = instance_id, error = %e, "Cannot record a sync heartbeat."),
                    }
                    let health = self.health.clone();
                    let id = instance_id.to_owned();
                    tokio::spawn(async move { health.report_healthy(&id).await });
                }
                acked = Progress::oldest_acked(&mut progress.inflight), if !progress.inflight.is_empty() => {
                    if let Err(e) = progress.acked(acked).await {
                        progress.counts.errors += 1;
                        return Some(self.settle(progress, SyncEnd::Failed(e)).await);
                    }
                }
                step = steps.next() => match step {
                    None => {
                        return Some(self.settle(progress, SyncEnd::Succeeded).await);
                    }
                    Some(Err(e)) => {
                        progress.counts.errors += 1;
                        return Some(self.settle(progress, SyncEnd::Failed(failure_message(&e))).await);
                    }
                    Some(Ok(SyncStep::Item(item))) => {
                        if let Err(e) = self.publish(spec, &run, &subject, max_payload, item, progress).await {
                            progress.counts.errors += 1;
                            return Some(self.settle(progress, SyncEnd::Failed(e)).await);
                        }
                    }
                    Some(Ok(SyncStep::Checkpoint(cursor))) => {
                        if let Err(e) = progress.checkpoint(cursor).await {
                            progress.counts.errors += 1;
                            return Some(self.settle(progress, SyncEnd::Failed(e)).await);
                        }
                    }
                }
            }
        }
    }

    /// Publishes one item, waiting first when `max_inflight` publishes are unacknowledged; an
    /// item over `max_payload` bytes (the server's limit; 0: none known) is skipped as an
    /// error.
    async fn publish(
        &self,
        spec: &InstanceSpec,
        run: &str,
        subject: &Subject,
        max_payload: usize,
        mut item: ConnectorItem,
        progress: &mut Progress,
    ) -> Result<(), String> {
        spec.grants
            .check_write(item.entity_type)
            .map_err(|denied| {
                format!("the plugin yielded a {} item: {denied}", item.entity_type)
            })?;
        // Forgetting source records is the plugin manager's, when an instance is purged.
        if item.operation == ItemOperation::Purge {
            return Err(format!(
                "the plugin yielded a purge item for {}; only the plugin manager purges, a plugin deletes with `delete`",
                item.external_id
            ));
        }
        // The instance is the service's to say, not the plugin's: items never cross instances.
        item.instance_id.clone_from(&spec.instance_id);
        let payload = serde_json::to_vec(&item)
            .map_err(|e| format!("cannot encode item {}: {e}", item.external_id))?;
        // One item too big for the server is that item's error, not the sync's.
        if max_payload > 0 && payload.len() > max_payload {
            tracing::warn!(
                instance = %spec.instance_id,
                external_id = %item.external_id,
                bytes = payload.len(),
                max_payload,
                "Skipping an item larger than the NATS server takes."
            );
            progress.counts.errors += 1;
            return Ok(());
        }
        while progress.inflight.len() >= self.max_inflight {
            progress.ack_oldest().await?;
        }
        let ack = self
            .jetstream
            .publish_with_headers(subject.clone(), item.headers(run), payload.into())
            .await
            .map_err(|e| format!("cannot publish item {} on {subject}: {e}", item.external_id))?;
        progress
            .inflight
            .push_back(std::future::IntoFuture::into_future(ack));
        Ok(())
    }

    /// Waits for the acknowledgements still due, so the counts are final, and for the
    /// checkpoints they made due to be stored, so the end is written after them; a failure
    /// of either turns success into failure.
    async fn settle(&self, progress: &mut Progress, end: SyncEnd) -> SyncEnd {
        let acked = progress.ack_all().await;
        let stored = progress.flush_checkpoints().await;
        match (acked.and(stored), end) {
            (Err(e), SyncEnd::Succeeded) => SyncEnd::Failed(e),
            (_, end) => end,
        }
    }

    /// Tells the plugin manager how the instance's sync ended: a failure marks the instance
    /// failed, a success or a cancel marks it healthy (recovering a failed one).
    pub async fn report_end(&self, instance_id: &str, end: &SyncEnd) {
        match end {
            SyncEnd::Failed(e) => self.health.report_failed(instance_id, e.clone()).await,
            SyncEnd::Succeeded | SyncEnd::Cancelled(_) => {
                self.health.report_healthy(instance_id).await
            }
        }
    }
}

/// What a plugin's error says, as the sync's failure is recorded, logged, reported and
/// announced: with the credentials of any URL in it hidden
/// ([`tributary_proto::redact::redact_urls`]). A plugin (a WebAssembly one's own message, a
/// library's error) may name the URL it was configured with, `https://user:password@…`.
fn failure_message(error: &PluginError) -> String {
    tributary_proto::redact::redact_urls(&error.to_string()).into_owned()
}
