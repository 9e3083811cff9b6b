//! The plugin manager service: Owns the plugin registry: manifests, instances, permissions, credentials and lifecycle.
//!
//! This crate is the service; `main.rs` only runs [`build`] until a signal arrives, and
//! `tributary up` runs it next to the other four in one process.

use tributary_kit::{Config, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::PluginManager,
    version: env!("CARGO_PKG_VERSION"),
    description:
        "Owns the plugin registry: manifests, instances, permissions, credentials and lifecycle.",
    uses_database: true,
};

/// Starts the service: connects to NATS and PostgreSQL, provisions its streams, registers
/// `$SRV` discovery and serves health on `plugin_manager.http_addr`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    ServiceRuntime::start(SERVICE, config).await
}
