//! The channel service: Webhook ingress with verified signatures, and outbound messaging, one route per channel instance.
//!
//! This crate is the service; `main.rs` only runs [`build`] until a signal arrives, and
//! `tributary up` runs it next to the other four in one process.

use tributary_kit::{Config, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Channel,
    version: env!("CARGO_PKG_VERSION"),
    description: "Webhook ingress with verified signatures, and outbound messaging, one route per channel instance.",
    uses_database: false,
};

/// Starts the service: connects to NATS, provisions its streams, registers
/// `$SRV` discovery and serves health on `channel.http_addr`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    ServiceRuntime::start(SERVICE, config).await
}
