//! The plugin manager service: the plugin registry. It discovers plugins ([`discovery`]),
//! keeps installed instances with their validated configuration ([`config_schema`]) and
//! sealed secrets ([`keys`], [`vault`]) in PostgreSQL ([`store`]), runs their lifecycle
//! ([`manager`]), adds third-party plugins from archives ([`adding`]), keeps the instances' timelines
//! ([`timeline`]), announces every change
//! as a `plugins.*` event through the outbox, and answers on NATS ([`nats_api`]) and on an admin HTTP API ([`http_api`]), with the admin
//! console beside it at `/` ([`console`]); both ask the other services for sync control and
//! readiness through [`mesh`]. What it refuses is
//! a [`RegistryError`] ([`error`]), which those two edges turn into the contract's
//! `ApiError`; the request and reply types are the contract's own
//! ([`tributary_proto::requests::plugins`]).
//!
//! `main.rs` only runs [`build`] until a signal arrives, and `tributary up` runs it next to
//! the other four in one process.

pub mod actor;
pub mod adding;
pub mod config_schema;
pub mod console;
pub mod dead_letters;
pub mod discovery;
pub mod error;
pub mod http_api;
pub mod keys;
pub mod manager;
pub mod mesh;
pub mod nats_api;
pub mod oauth;
pub mod store;
pub mod timeline;
mod uninstall;
pub mod validate;
pub mod vault;

use tributary_kit::{Config, ConfigError, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

pub use error::RegistryError;
pub use manager::PluginManager;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::PluginManager,
    version: env!("CARGO_PKG_VERSION"),
    description:
        "Owns the plugin registry: manifests, instances, permissions, credentials and lifecycle.",
    uses_database: true,
};

/// Events published per round of the outbox publisher.
const OUTBOX_BATCH: usize = 100;

/// Checks what the plugin manager reads of `config` beyond its shape (its master key, admin
/// token and plugin directories), as [`build`] does before it starts: `tributary
/// check-config` runs it too.
pub fn check_config(config: &Config) -> Result<(), ConfigError> {
    checked(config).map(|_| ())
}

/// The master key and the admin token, once the plugin directories are found to exist.
fn checked(config: &Config) -> Result<(keys::MasterKey, secrecy::SecretString), ConfigError> {
    let settings = &config.plugin_manager;
    let key = keys::master_key_from(settings)?;
    let token = keys::admin_token_from(settings)?;
    discovery::check_dirs(&settings.plugin_dirs)?;
    Ok((key, token))
}

/// Starts the service: checks its keys and plugin directories (a wrong or missing master key
/// stops start-up naming the setting), connects, scans for plugins (in the configured
/// directories and the managed one, [`Config::plugin_dirs`]), and serves `plugins.*` on
/// NATS and the admin API and the console on `plugin_manager.http_addr`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    let (key, token) = checked(&config)?;
    // The configured directories, then the managed one `tributary plugins add` fills.
    let plugin_dirs = config.plugin_dirs();
    // Where `tributary plugins add` and `POST /api/v1/plugins` put plugins.
    let managed = adding::ManagedDir::of(&config);

    let oauth_config = config.oauth.clone();
    // The console's cookies are Secure when browsers reach the plugin manager over https.
    let secure_cookies = oauth_config
        .redirect_base_url
        .trim()
        .to_ascii_lowercase()
        .starts_with("https://");

    let mut runtime = ServiceRuntime::start(SERVICE, config).await?;
    // On the address bound, which port 0 leaves to the system.
    let redirect_uri = oauth_config.redirect_uri(runtime.http_addr());
    let oauth = oauth::OAuthSettings::new(oauth_config, redirect_uri);
    let pool = runtime.db.clone().ok_or_else(|| {
        KitError::Unexpected(anyhow::anyhow!("the plugin manager needs its database"))
    })?;
    vault::check_master_key(&pool, &key)
        .await
        .map_err(|e| match e {
            vault::KitOrConfig::Config(c) => KitError::Config(c),
            vault::KitOrConfig::Vault(v) => KitError::Unexpected(v.into()),
        })?;

    let wake = tributary_kit::outbox::spawn_publisher(&runtime, pool.clone(), OUTBOX_BATCH);
    let manager = PluginManager::new(
        pool.clone(),
        runtime.jetstream.clone(),
        key,
        runtime.subjects.clone(),
        plugin_dirs,
        managed,
    )
    .waking(wake.clone())
    .with_oauth(oauth);
    let found = manager
        .rescan()
        .await
        .map_err(|e| KitError::Unexpected(e.into()))?;
    tracing::info!(
        plugins = found.plugins.len(),
        invalid = found.invalid.len(),
        "Plugins discovered."
    );

    nats_api::serve(&runtime, manager.clone()).await?;
    spawn_timeline(&runtime, pool.clone()).await?;
    let refresher = manager.clone();
    let stop = runtime.shutdown.clone();
    runtime.spawn_worker("oauth-refresher", async move {
        refresher.refresh_due_until(stop).await;
        Ok(())
    });
    let mesh = mesh::Mesh::new(runtime.nats.clone(), runtime.subjects.clone());
    let (routes, _) = http_api::router(manager.clone(), mesh.clone(), token.clone());
    runtime.merge_routes(routes);
    let console = console::router(
        manager.clone(),
        mesh,
        token,
        secure_cookies,
        runtime.shutdown.clone(),
    )
    .map_err(|e| KitError::Unexpected(anyhow::anyhow!("the console's templates: {e}")))?;
    runtime.merge_routes(console);
    runtime.merge_routes(oauth::callback::router(manager));
    Ok(runtime)
}

/// Runs the `timeline` consumer, storing the lines the services publish, and deletes lines
/// past `plugin_manager.timeline_retention_days` every hour.
async fn spawn_timeline(runtime: &ServiceRuntime, pool: sqlx::PgPool) -> Result<(), KitError> {
    use tributary_proto::streams::ConsumerKey;
    let key = ConsumerKey::Timeline;
    let limits = tributary_kit::provision::consumer_limits(&runtime.config, key);
    let consumer =
        tributary_kit::nats::open_consumer(&runtime.jetstream, &runtime.subjects, key, limits)
            .await?;
    let dead_letters = tributary_kit::dead_letter::DeadLetters::for_consumer(
        runtime.jetstream.clone(),
        &runtime.subjects,
        key,
    );
    let (subjects, stop) = (runtime.subjects.clone(), runtime.shutdown.clone());
    let store_pool = pool.clone();
    runtime.spawn_worker("timeline", async move {
        timeline::consume(consumer, store_pool, subjects, dead_letters, stop).await;
        Ok(())
    });
    let retention = runtime.config.plugin_manager.timeline_retention();
    let stop = runtime.shutdown.clone();
    runtime.spawn_worker("timeline-trim", async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = every.tick() => match timeline::trim(&pool, retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(lines = n, "Old timeline lines deleted."),
                    Err(e) => tracing::warn!(error = %e, "Cannot delete old timeline lines."),
                },
            }
        }
    });
    Ok(())
}
