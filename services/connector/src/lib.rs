//! The connector service: runs connector plugins on their schedules and on demand, streams
//! what they find to `connector.items.<instance>`, and keeps each instance's sync state.
//!
//! [`supervisor`] follows the plugin manager and starts one scheduler per enabled connector
//! instance; [`runner`] runs one sync (backpressure, checkpoints, heartbeats, cancel);
//! [`state`] persists where each instance's syncs stand and announces `connector.Sync*`
//! events through the outbox; [`nats_api`] answers `connector.sync`, `connector.cancel`,
//! `connector.state` and `connector.states`. `main.rs` only runs [`build`] until a signal
//! arrives, and `tributary up` runs it next to the other four in one process.

pub mod api;
pub mod bridge;
pub mod nats_api;
pub mod registry;
pub mod runner;
pub mod schedule;
pub mod state;
pub mod supervisor;

use std::time::Duration;

use futures::StreamExt;
use tributary_kit::backoff::Backoff;
use tributary_kit::{Config, ConfigError, KitError, ServiceRuntime, ServiceSpec};
use tributary_plugin_manager::client::MeshClient;
use tributary_proto::events::{EventKind, PluginEvent};
use tributary_proto::ServiceName;

pub use registry::ConnectorRegistry;
use runner::SyncRunner;
use schedule::Schedule;
use state::SyncStore;
use supervisor::Supervisor;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Connector,
    version: env!("CARGO_PKG_VERSION"),
    description:
        "Runs connector plugins: schedules, on-demand and backfill syncs, cursors and heartbeats.",
    uses_database: true,
};

/// Events published per round of the outbox publisher.
const OUTBOX_BATCH: usize = 100;

/// Who the service says it is to the plugin manager.
const ACTOR: &str = "connector";

/// The plugin events after which an instance is compared with the plugin manager again
/// (an install never makes an instance run: only its enable does).
const PLUGIN_EVENTS: [PluginEvent; 5] = [
    PluginEvent::Configured,
    PluginEvent::Enabled,
    PluginEvent::Disabled,
    PluginEvent::Upgraded,
    PluginEvent::Uninstalled,
];

/// Starts the service with the built-in connectors.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    build_with(config, ConnectorRegistry::builtin()).await
}

/// Starts the service running `registry`'s connectors: connects to NATS and PostgreSQL,
/// serves `connector.*`, and runs every enabled connector instance the plugin manager has.
pub async fn build_with(
    config: Config,
    registry: ConnectorRegistry,
) -> Result<ServiceRuntime, KitError> {
    let default_schedule: Schedule =
        config
            .connector
            .default_schedule
            .parse()
            .map_err(|e: schedule::InvalidSchedule| {
                ConfigError::new("connector.default_schedule", e.to_string())
            })?;
    let runtime = ServiceRuntime::start(SERVICE, config).await?;
    let pool = runtime.db.clone().ok_or_else(|| {
        KitError::Unexpected(anyhow::anyhow!("the connector service needs its database"))
    })?;
    let settings = runtime.config.connector.clone();

    let wake = tributary_kit::outbox::spawn_publisher(&runtime, pool.clone(), OUTBOX_BATCH);

    let plugins = MeshClient::new(
        runtime.nats.clone(),
        runtime.subjects.clone(),
        ACTOR.to_owned(),
    );
    let store = SyncStore::new(pool, runtime.subjects.clone(), wake);
    let runner = SyncRunner::new(
        store,
        runtime.jetstream.clone(),
        runtime.nats.clone(),
        runtime.subjects.clone(),
        plugins.clone(),
        settings.max_inflight_publishes,
        settings.heartbeat_interval(),
        runtime.shutdown.clone(),
    );
    let database = &runtime.config.database;
    let supervisor = Supervisor::new(
        registry,
        runner,
        plugins,
        default_schedule,
        tributary_kit::db::connect_options(database, &database.name),
        runtime.task_tracker(),
        runtime.shutdown.clone(),
    );
    nats_api::serve(&runtime, supervisor.clone()).await?;
    follow_plugin_manager(&runtime, supervisor, settings.reconcile_interval()).await?;
    Ok(runtime)
}

/// Keeps the instances running here in line with the plugin manager: each plugin event about
/// a connector instance compares that instance at once; every `every`, all of them (which
/// also catches events missed while disconnected). Until the plugin manager first answers,
/// it is asked again with a short backoff.
async fn follow_plugin_manager(
    runtime: &ServiceRuntime,
    supervisor: Supervisor,
    every: Duration,
) -> Result<(), KitError> {
    let mut subscriptions = Vec::new();
    for event in PLUGIN_EVENTS {
        let subject = runtime.subjects.event(EventKind::Plugin(event));
        let subscription = runtime
            .nats
            .subscribe(subject)
            .await
            .map_err(|e| KitError::Unexpected(e.into()))?;
        subscriptions.push(subscription);
    }
    let mut events = futures::stream::select_all(subscriptions);
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker("plugin-manager-follower", async move {
        let mut backoff = Backoff::new(Duration::from_millis(200), every);
        let mut next_full = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next_full) => {
                    match supervisor.reconcile_all().await {
                        Ok(()) => {
                            backoff.reset();
                            next_full = tokio::time::Instant::now() + every;
                        }
                        Err(e) => {
                            let wait = backoff.next_wait();
                            tracing::debug!(error = %e, retry_in = ?wait, "Cannot list the connector instances yet.");
                            next_full = tokio::time::Instant::now() + wait;
                        }
                    }
                }
                message = events.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let Ok(envelope) = tributary_proto::envelope::Envelope::<tributary_proto::events::PluginLifecycle>::from_slice(&message.payload) else {
                        tracing::warn!(subject = %message.subject, "Ignoring a plugin event that does not parse.");
                        continue;
                    };
                    if envelope.data.plugin_type == "connector" {
                        supervisor.reconcile(&envelope.data.instance_id).await;
                    }
                }
            }
        }
    });
    Ok(())
}
