//! The connector service: Runs connector plugins: schedules, on-demand and backfill syncs, cursors and heartbeats.
//!
//! This crate is the service; `main.rs` only runs [`build`] until a signal arrives, and
//! `tributary up` runs it next to the other four in one process.

use tributary_kit::{Config, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Connector,
    version: env!("CARGO_PKG_VERSION"),
    description:
        "Runs connector plugins: schedules, on-demand and backfill syncs, cursors and heartbeats.",
    uses_database: true,
};

/// Starts the service: connects to NATS and PostgreSQL, provisions its streams, registers
/// `$SRV` discovery and serves health on `connector.http_addr`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    ServiceRuntime::start(SERVICE, config).await
}
