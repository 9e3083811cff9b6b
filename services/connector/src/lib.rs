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
pub mod checkpoint;
pub mod nats_api;
pub mod runner;
pub mod schedule;
pub mod state;
pub mod supervisor;

use std::sync::Arc;

use tributary_host::follow_plugin_manager;
use tributary_kit::client::MeshClient;
use tributary_kit::{Config, ConfigError, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

use runner::SyncRunner;
use schedule::Schedule;
use state::SyncStore;
use supervisor::Supervisor;
/// The connectors a connector service runs, by entrypoint: the built-ins from the host's one
/// list, and any a test registers.
pub use tributary_host::ConnectorRegistry;

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

/// Checks what the connector service reads of `config` beyond its shape, as
/// [`build_with`] does before it starts: `tributary check-config` runs it too.
pub fn check_config(config: &Config) -> Result<(), ConfigError> {
    default_schedule(config).map(|_| ())
}

/// `connector.default_schedule`, read.
fn default_schedule(config: &Config) -> Result<Schedule, ConfigError> {
    config
        .connector
        .default_schedule
        .parse()
        .map_err(|e: schedule::InvalidSchedule| {
            ConfigError::new("connector.default_schedule", e.to_string())
        })
}

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
    let registry = registry
        .with_wasm_from(&config)
        .map_err(|e| KitError::Unexpected(anyhow::anyhow!(e)))?;
    let default_schedule = default_schedule(&config)?;
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
    )
    .with_egress(runtime.config.plugins)
    // The master key, the NATS passwords and the plugin store live under data_dir: no
    // instance's config may point the folder connector at them.
    .with_protected_paths(vec![runtime.config.data_dir.clone()]);
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
    follow_plugin_manager(
        &runtime,
        Arc::new(supervisor),
        settings.reconcile_interval(),
    )
    .await?;
    Ok(runtime)
}
