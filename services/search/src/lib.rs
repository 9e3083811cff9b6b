//! The search service: indexes every data event and answers search queries.
//!
//! Data events arrive on `data.*` through the durable pull consumer `search-indexer`; each
//! becomes versioned [`document::IndexChange`]s applied by a [`backend::SearchBackend`]: the
//! embedded tantivy index by default, Meilisearch when a URL is configured. `main.rs` only
//! runs [`build`] until a signal arrives, and `tributary up` runs it next to the other four.

pub mod backend;
pub mod document;
pub mod query;

use tributary_kit::{Config, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Search,
    version: env!("CARGO_PKG_VERSION"),
    description: "Indexes every data event and answers search queries.",
    uses_database: false,
};

/// Starts the service: connects to NATS, provisions its streams, registers
/// `$SRV` discovery and serves health on `search.http_addr`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    ServiceRuntime::start(SERVICE, config).await
}
