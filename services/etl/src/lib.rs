//! The ETL service: Turns connector items into the unified model in PostgreSQL and announces every change as a data event.
//!
//! This crate is the service; `main.rs` only runs [`build`] until a signal arrives, and
//! `tributary up` runs it next to the other four in one process.

use tributary_kit::{Config, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Etl,
    version: env!("CARGO_PKG_VERSION"),
    description: "Turns connector items into the unified model in PostgreSQL and announces every change as a data event.",
    uses_database: true,
};

/// Starts the service: connects to NATS and PostgreSQL, provisions its streams, registers
/// `$SRV` discovery and serves health on `etl.http_addr`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    ServiceRuntime::start(SERVICE, config).await
}
