//! What every Tributary service shares: configuration ([`config`]), telemetry ([`telemetry`]),
//! NATS and JetStream ([`nats`]), the database pool and migrations ([`db`]), the health server
//! ([`health`]), what the HTTP APIs share: refusals and bearer tokens ([`http`]), the outbox
//! ([`outbox`]), dead letters ([`dead_letter`]), the batch retry policy ([`batch_retry`]), the
//! typed mesh client ([`client`]) and the one way to serve a request ([`requests`]), shutdown
//! triggers ([`shutdown`]), the instances' timeline lines ([`timeline`]) and the runtime that ties
//! them together ([`service`]).

pub mod backoff;
pub mod batch_retry;
pub mod client;
pub mod config;
pub mod consume;
pub mod db;
pub mod dead_letter;
pub mod health;
pub mod http;
pub mod nats;
pub mod outbox;
pub mod provision;
pub mod requests;
pub mod serve;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeline;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::{Config, ConfigError, ConfigSources};
pub use service::{ServiceRuntime, ServiceSpec};

/// Anything that stops a service from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    /// NATS or JetStream failed.
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] db::DatabaseError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on `{key}` = {addr}: {source}")]
    Bind {
        /// The configuration key of the address.
        key: String,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The NATS micro service could not be registered.
    #[error("cannot register the {service} micro service on NATS: {reason}")]
    Register {
        /// The service.
        service: &'static str,
        /// Why.
        reason: String,
    },
    /// A service's own work failed unexpectedly.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Runs one service as its own process: loads configuration (`--config <file>` or
/// `TRIBUTARY_CONFIG`, then `TRIBUTARY__…` variables), sets up telemetry, builds the service
/// with `build` and runs it until SIGINT or SIGTERM. This is all a service's `main` does.
pub async fn run_service_main<B, Fut>(
    service: tributary_proto::ServiceName,
    build: B,
) -> Result<(), KitError>
where
    B: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = Result<ServiceRuntime, KitError>>,
{
    let mut args = std::env::args().skip(1);
    let mut file: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => file = args.next().map(PathBuf::from),
            other => {
                return Err(ConfigError {
                    key: "(command line)".into(),
                    message: format!(
                        "unknown argument `{other}`; the only option is --config <file>"
                    ),
                }
                .into())
            }
        }
    }
    let config = Config::load(&ConfigSources::from_process(Config::file_from_env(
        file.as_deref(),
    )))?;
    let _telemetry = telemetry::init(&config.telemetry, service.as_str())?;
    let runtime = build(config).await?;
    runtime.run_until_stopped(shutdown::signal()).await
}

/// Turns the outcome of a service's run into the process exit code, printing the error (one
/// line that names what to fix) on standard error.
pub fn exit_code(outcome: Result<(), KitError>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
