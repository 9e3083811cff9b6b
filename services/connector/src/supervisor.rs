//! Which connector instances run here, and their syncs: instances follow the plugin manager
//! (its `plugins.*` events, and a full comparison every `connector.reconcile_interval_secs`);
//! each has a scheduler; a sync starts on schedule or on `connector.sync`, one per instance at
//! a time across every connector process (a PostgreSQL advisory lock held while it runs).
//!
//! An instance that needs a person to connect its account again (`needs_reconnect`) keeps its
//! slot but has no scheduler: every sync would fail on the missing token, noisily. A
//! `connector.sync` of it is refused saying so; once it is connected again the plugin manager
//! enables it (`PluginConnected`), the slot is rebuilt and its schedule resumes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary_host::follow::{BoxFuture, InstanceFollower};
use tributary_host::{ConnectorRegistry, InstanceHealth};
use tributary_kit::client::{CallError, MeshClient};
use tributary_plugin_sdk::PluginType;
use tributary_plugin_sdk::SyncRequest;
use tributary_proto::events::InstanceState;
use tributary_proto::requests::plugins::RuntimeInstance;
use tributary_proto::requests::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::api::{CancelAccepted, SyncAccepted, SyncStateView, SyncStatus};
use crate::runner::{InstanceSpec, RunOutcome, StopSignal, SyncRunner};
use crate::schedule::{InvalidSchedule, Schedule};

/// How long a scheduler waits before trying again when a sync could not start (another
/// process runs it, or the database is unreachable).
const RETRY_START: Duration = Duration::from_secs(10);

/// The plugin type this service runs.
const CONNECTOR: &str = "connector";

/// The advisory-lock class of connector syncs (the first key of the two-key form).
const SYNC_LOCK_CLASS: i32 = 0x5359_4e43; // "SYNC"

/// A sync running in this process.
struct ActiveSync {
    sync_id: Uuid,
    stop: StopSignal,
}

/// One instance this process runs.
struct Slot {
    spec: Arc<InstanceSpec>,
    /// The permissions and config it was built from, to tell whether a change matters.
    source: tributary_proto::requests::plugins::InstanceSource,
    schedule: Result<Schedule, InvalidSchedule>,
    /// Set while the instance needs its account connected again: why, and the command to
    /// run, which a `connector.sync` of it is refused with. It has no scheduler meanwhile.
    reconnect: Option<String>,
    scheduler: CancellationToken,
    /// Woken when a sync of the instance ends, so the scheduler computes the next one.
    ended: Arc<Notify>,
    active: Option<ActiveSync>,
    next_sync_at: Option<DateTime<Utc>>,
}

/// Runs the connector instances the plugin manager has enabled.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    registry: ConnectorRegistry,
    runner: SyncRunner,
    plugins: MeshClient,
    /// Where an instance that cannot run, or runs on demand only, is reported failed.
    health: InstanceHealth,
    default_schedule: Schedule,
    lock_options: PgConnectOptions,
    slots: Mutex<HashMap<String, Slot>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor running `registry`'s connectors; `lock_options` open the connection
    /// that holds a sync's lock.
    pub fn new(
        registry: ConnectorRegistry,
        runner: SyncRunner,
        plugins: MeshClient,
        default_schedule: Schedule,
        lock_options: PgConnectOptions,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                runner,
                health: InstanceHealth::new(
                    tributary_proto::PluginType::Connector,
                    plugins.clone(),
                ),
                plugins,
                default_schedule,
                lock_options,
                slots: Mutex::new(HashMap::new()),
                tasks,
                shutdown,
            }),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Compares the instances running here with the plugin manager's connector instances:
    /// starts the enabled ones, updates changed ones, stops the rest.
    pub async fn reconcile_all(&self) -> Result<(), CallError> {
        let live = self.inner.plugins.running_instance_ids(CONNECTOR).await?;
        let stale: Vec<String> = self
            .slots()
            .keys()
            .filter(|id| !live.contains(id))
            .cloned()
            .collect();
        for id in stale {
            self.remove(&id, "the instance is no longer enabled");
        }
        for id in live {
            self.reconcile(&id).await;
        }
        Ok(())
    }

    /// Brings one instance in line with the plugin manager: runs it if it is an enabled
    /// connector instance, with its current config; stops it otherwise.
    pub async fn reconcile(&self, instance_id: &str) {
        match self
            .inner
            .plugins
            .runtime(PluginType::Connector, instance_id)
            .await
        {
            Ok(runtime) if runtime.plugin_type.as_str() == CONNECTOR && runtime.runs() => {
                self.run_instance(runtime).await;
            }
            Ok(_) => self.remove(instance_id, "the instance was disabled"),
            Err(e) if e.is_not_found() => {
                // Purged: its sync state and cursor mean nothing any more.
                self.remove(instance_id, "the instance was uninstalled");
                if let Err(e) = self.inner.runner.store().forget(instance_id).await {
                    tracing::warn!(instance = instance_id, error = %e, "Cannot delete the sync state of a purged instance.");
                }
            }
            Err(e) => {
                tracing::warn!(instance = instance_id, error = %e, "Cannot read the instance from the plugin manager; keeping it as it was.");
            }
        }
    }

    async fn run_instance(&self, runtime: RuntimeInstance) {
        let instance_id = runtime.instance_id.clone();
        let source = runtime.source();
        if self
            .slots()
            .get(&instance_id)
            .is_some_and(|slot| slot.source == source)
        {
            return;
        }
        let connector = match self.inner.registry.resolve_instance(&runtime).await {
            Ok(connector) => connector,
            Err(e) => {
                self.remove(&instance_id, &e.to_string());
                self.inner.health.report_unrunnable(&instance_id, &e).await;
                return;
            }
        };
        let spec = Arc::new(InstanceSpec {
            grants: runtime.grants(),
            instance_id: instance_id.clone(),
            plugin_id: runtime.plugin_id,
            version: runtime.version,
            config: runtime.config,
            oauth: runtime.oauth,
            connector,
        });
        let reconnect = match runtime.state {
            InstanceState::NeedsReconnect => Some(self.reconnect_message(&instance_id).await),
            _ => None,
        };
        let schedule = Schedule::of_config(&spec.config, &self.inner.default_schedule);
        if let Err(e) = &schedule {
            let error = format!("config `schedule`: {e}");
            tracing::warn!(instance = %instance_id, error, "The instance syncs only on demand.");
            self.inner.health.report_failed(&instance_id, error).await;
        }
        let scheduler = CancellationToken::new();
        let ended = Arc::new(Notify::new());
        {
            let mut slots = self.slots();
            let active = slots.remove(&instance_id).and_then(|old| {
                old.scheduler.cancel();
                old.active
            });
            slots.insert(
                instance_id.clone(),
                Slot {
                    spec,
                    source,
                    schedule,
                    reconnect: reconnect.clone(),
                    scheduler: scheduler.clone(),
                    ended: ended.clone(),
                    active,
                    next_sync_at: None,
                },
            );
        }
        if let Some(reconnect) = reconnect {
            tracing::warn!(instance = %instance_id, reason = %reconnect, "The connector instance waits for its account to be connected again; it is not scheduled.");
            return;
        }
        tracing::info!(instance = %instance_id, "Running the connector instance.");
        let this = self.clone();
        self.inner.tasks.spawn(async move {
            this.schedule_loop(instance_id, scheduler, ended).await;
        });
    }

    /// What a sync of an instance that needs a reconnect is refused with: the provider's
    /// reason as the plugin manager recorded it, and the command that connects it again.
    async fn reconnect_message(&self, instance_id: &str) -> String {
        let reason = match self.inner.plugins.instance(instance_id).await {
            Ok(view) => view
                .auth
                .and_then(|auth| auth.reconnect_reason)
                .or_else(|| {
                    view.last_error.map(|e| {
                        e.strip_prefix("reconnect needed: ")
                            .map(str::to_owned)
                            .unwrap_or(e)
                    })
                }),
            Err(e) => {
                tracing::debug!(instance = instance_id, error = %e, "Cannot read why the instance needs a reconnect.");
                None
            }
        };
        let reason =
            reason.unwrap_or_else(|| "the provider no longer accepts its grant".to_owned());
        format!("reconnect needed: {reason}; run `tributary plugins connect {instance_id}`")
    }

    /// Stops running `instance_id` here: its scheduler ends and a running sync is cancelled
    /// with `reason`.
    pub fn remove(&self, instance_id: &str, reason: &str) {
        if let Some(slot) = self.slots().remove(instance_id) {
            slot.scheduler.cancel();
            if let Some(active) = slot.active {
                active.stop.stop(reason);
            }
            tracing::info!(
                instance = instance_id,
                reason,
                "Stopped running the connector instance."
            );
        }
    }

    async fn schedule_loop(
        &self,
        instance_id: String,
        stop: CancellationToken,
        ended: Arc<Notify>,
    ) {
        let shutdown = self.inner.shutdown.clone();
        loop {
            let due = match self.next_due(&instance_id).await {
                Some(due) => due,
                None => return,
            };
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = shutdown.cancelled() => return,
                _ = ended.notified() => continue,
                _ = tokio::time::sleep(wait) => {}
            }
            match self
                .start_sync(&instance_id, SyncRequest::incremental(), "schedule")
                .await
            {
                Ok(_) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = shutdown.cancelled() => return,
                        _ = ended.notified() => {}
                    }
                }
                Err(e) => {
                    tracing::debug!(instance = %instance_id, error = %e, "A scheduled sync did not start; trying again later.");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = shutdown.cancelled() => return,
                        _ = ended.notified() => {}
                        _ = tokio::time::sleep(RETRY_START) => {}
                    }
                }
            }
        }
    }

    /// When the instance syncs next on its own: now for an interrupted sync or one never
    /// synced, else by its schedule; `None` when it is not scheduled.
    async fn next_due(&self, instance_id: &str) -> Option<DateTime<Utc>> {
        let schedule = match self.slots().get(instance_id) {
            Some(slot) if slot.reconnect.is_none() => slot.schedule.clone().ok()?,
            _ => return None,
        };
        let now = Utc::now();
        let due = match self.inner.runner.store().last_finished(instance_id).await {
            Ok((_, true)) => now,
            Ok((last, false)) => schedule.next_due(last, now),
            Err(e) => {
                tracing::warn!(instance = instance_id, error = %e, "Cannot read the sync state; trying again later.");
                now + chrono::Duration::from_std(RETRY_START).unwrap_or_default()
            }
        };
        if let Some(slot) = self.slots().get_mut(instance_id) {
            slot.next_sync_at = Some(due);
        }
        Some(due)
    }

    /// Starts a sync of `instance_id` (`trigger` says why, for the log); refused when the
    /// instance does not run here or a sync of it runs already, here or in another process.
    pub async fn start_sync(
        &self,
        instance_id: &str,
        request: SyncRequest,
        trigger: &str,
    ) -> Result<SyncAccepted, ApiError> {
        let spec = {
            let slots = self.slots();
            let slot = slots.get(instance_id).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("`{instance_id}` is not an enabled connector instance"),
                )
            })?;
            if let Some(reconnect) = &slot.reconnect {
                return Err(ApiError::new(ErrorCode::Conflict, reconnect.clone()));
            }
            if let Some(active) = &slot.active {
                return Err(already_running(instance_id, Some(active.sync_id)));
            }
            slot.spec.clone()
        };
        let mut lock = PgConnection::connect_with(&self.inner.lock_options)
            .await
            .map_err(ApiError::internal)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(SYNC_LOCK_CLASS)
            .bind(instance_id)
            .fetch_one(&mut lock)
            .await
            .map_err(ApiError::internal)?;
        if !locked {
            return Err(already_running(instance_id, None));
        }
        let stop = StopSignal::new();
        let sync_id = Uuid::now_v7();
        {
            let mut slots = self.slots();
            match slots.get_mut(instance_id) {
                Some(slot) if slot.active.is_none() => {
                    slot.active = Some(ActiveSync {
                        sync_id,
                        stop: stop.clone(),
                    });
                }
                Some(slot) => {
                    return Err(already_running(
                        instance_id,
                        slot.active.as_ref().map(|a| a.sync_id),
                    ))
                }
                None => {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!("`{instance_id}` is not an enabled connector instance"),
                    ))
                }
            }
        }
        let begun = match self
            .inner
            .runner
            .store()
            .begin(instance_id, sync_id, request)
            .await
        {
            Ok(begun) => begun,
            Err(e) => {
                self.clear_active(instance_id, sync_id);
                return Err(ApiError::internal(e));
            }
        };
        let accepted = SyncAccepted {
            instance_id: instance_id.to_owned(),
            sync_id,
            resumed: begun.resumed,
        };
        tracing::debug!(instance = instance_id, %sync_id, trigger, "Starting a sync.");
        let this = self.clone();
        let id = instance_id.to_owned();
        self.inner.tasks.spawn(async move {
            let outcome = this.inner.runner.run(&spec, sync_id, begun, stop).await;
            // Closing the connection releases the lock, also when the task is dropped.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(SYNC_LOCK_CLASS)
                .bind(&id)
                .execute(&mut lock)
                .await;
            let _ = lock.close().await;
            if let RunOutcome::Ended(end) = outcome {
                this.clear_active(&id, sync_id);
                this.inner.runner.report_end(&id, &end).await;
            }
        });
        Ok(accepted)
    }

    fn clear_active(&self, instance_id: &str, sync_id: Uuid) {
        if let Some(slot) = self.slots().get_mut(instance_id) {
            if slot.active.as_ref().is_some_and(|a| a.sync_id == sync_id) {
                slot.active = None;
                slot.ended.notify_one();
            }
        }
    }

    /// Asks the running sync of `instance_id` to stop, wherever it runs: here at once, in
    /// another process at its next heartbeat.
    pub async fn cancel(&self, instance_id: &str) -> Result<CancelAccepted, ApiError> {
        let requested = self
            .inner
            .runner
            .store()
            .request_cancel(instance_id)
            .await
            .map_err(ApiError::internal)?;
        let local = self
            .slots()
            .get(instance_id)
            .and_then(|slot| slot.active.as_ref().map(|a| (a.sync_id, a.stop.clone())));
        if let Some((_, stop)) = &local {
            stop.stop("cancelled by connector.cancel");
        }
        match (requested, local) {
            (Some(sync_id), _) | (None, Some((sync_id, _))) => Ok(CancelAccepted {
                instance_id: instance_id.to_owned(),
                sync_id,
            }),
            (None, None) => Err(ApiError::new(
                ErrorCode::Conflict,
                format!("no sync of `{instance_id}` is running"),
            )),
        }
    }

    /// The sync state of every instance that runs here or has synced.
    pub async fn states(&self) -> Result<Vec<SyncStateView>, ApiError> {
        let mut states = self
            .inner
            .runner
            .store()
            .states()
            .await
            .map_err(ApiError::internal)?;
        let slots = self.slots();
        for state in &mut states {
            self.annotate(state, &slots);
        }
        for id in slots.keys() {
            if !states.iter().any(|s| &s.instance_id == id) {
                let mut state = idle(id);
                self.annotate(&mut state, &slots);
                states.push(state);
            }
        }
        states.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(states)
    }

    /// The sync state of one instance.
    pub async fn state(&self, instance_id: &str) -> Result<SyncStateView, ApiError> {
        let stored = self
            .inner
            .runner
            .store()
            .state(instance_id)
            .await
            .map_err(ApiError::internal)?;
        let slots = self.slots();
        let mut state = match stored {
            Some(state) => state,
            None if slots.contains_key(instance_id) => idle(instance_id),
            None => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("`{instance_id}` is not a connector instance this service knows"),
                ))
            }
        };
        self.annotate(&mut state, &slots);
        Ok(state)
    }

    fn annotate(&self, state: &mut SyncStateView, slots: &HashMap<String, Slot>) {
        if let Some(slot) = slots.get(&state.instance_id) {
            state.scheduled = slot.schedule.is_ok() && slot.reconnect.is_none();
            state.next_sync_at = slot.next_sync_at.filter(|_| slot.active.is_none());
        }
    }
}

fn idle(instance_id: &str) -> SyncStateView {
    SyncStateView {
        instance_id: instance_id.to_owned(),
        status: SyncStatus::Idle,
        sync_id: None,
        mode: None,
        started_at: None,
        finished_at: None,
        items: 0,
        errors: 0,
        total_items: 0,
        last_success_at: None,
        last_error: None,
        scheduled: false,
        next_sync_at: None,
    }
}

fn already_running(instance_id: &str, sync_id: Option<Uuid>) -> ApiError {
    let message = match sync_id {
        Some(id) => format!("a sync of `{instance_id}` is already running ({id})"),
        None => {
            format!("a sync of `{instance_id}` is already running in another connector process")
        }
    };
    ApiError::new(ErrorCode::Conflict, message)
}

impl InstanceFollower for Supervisor {
    fn plugin_type(&self) -> PluginType {
        PluginType::Connector
    }

    fn reconcile_all(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(Supervisor::reconcile_all(self))
    }

    fn reconcile<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(Supervisor::reconcile(self, instance_id))
    }
}
