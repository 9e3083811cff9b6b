//! The ETL service: connector items become the unified model in PostgreSQL, and every change
//! is announced as a `data.*` event.
//!
//! Items arrive on `connector.items.>` through the durable pull consumer `etl-items`, shared
//! by every ETL process. [`pipeline`] batches them; [`normalise`] validates and normalises
//! each; [`store`] writes a batch (rows, source records and outbox events) in one transaction;
//! [`tributary_kit::outbox`] publishes the events to JetStream. [`people_api`] answers the
//! `etl.people.*` requests: a person's view, suggestions and shared identifiers, and the
//! unmerges and merges a person decides. `main.rs` only runs [`build`] until a signal
//! arrives, and `tributary up` runs it next to the other four services in one process.

pub mod hash;
pub mod normalise;
pub mod people_api;
pub mod people_reads;
pub mod pipeline;
pub mod store;
pub mod write_grants;

use std::sync::Arc;

use tokio::sync::Notify;
use tributary_kit::{Config, ConfigError, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::streams::{ConsumerKey, DeliveryLimits};
use tributary_proto::ServiceName;

use crate::normalise::contact::ContactNormaliser;
use crate::normalise::Normaliser;
use crate::pipeline::ItemPipeline;
use crate::store::BatchWriter;
use crate::write_grants::WriteGrants;
use tributary_kit::backoff::Backoff;
use tributary_kit::client::MeshClient;
use tributary_kit::outbox::OutboxPublisher;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Etl,
    version: env!("CARGO_PKG_VERSION"),
    description: "Turns connector items into the unified model in PostgreSQL and announces every change as a data event.",
    uses_database: true,
};

/// The delivery limits of the `etl-items` consumer. JetStream itself never gives up on an
/// item: the ETL dead-letters one after `etl.max_deliver` failed writes, with the reason.
/// Provisioning sets them ([`tributary_kit::provision::consumer_limits`]).
pub fn delivery_limits(config: &Config) -> DeliveryLimits {
    tributary_kit::provision::consumer_limits(config, ConsumerKey::EtlItems)
}

/// Checks what the ETL reads of `config` beyond its shape, as [`build`] does before it
/// starts: `tributary check-config` runs it too.
pub fn check_config(config: &Config) -> Result<(), ConfigError> {
    phone_region(config).map(|_| ())
}

/// `etl.default_phone_region`, as a region with phone numbers.
fn phone_region(config: &Config) -> Result<phonenumber::country::Id, ConfigError> {
    ContactNormaliser::parse_region(&config.etl.default_phone_region).ok_or_else(|| {
        ConfigError::new(
            "etl.default_phone_region",
            format!(
                "`{}` is not a region with phone numbers",
                config.etl.default_phone_region
            ),
        )
    })
}

/// Starts the service: connects to NATS and PostgreSQL (migrating it), opens the
/// `etl-items` consumer (provisioned beforehand), runs the item pipeline and the outbox
/// publisher, and answers `etl.people.*`.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    let region = phone_region(&config)?;
    let runtime = ServiceRuntime::start(SERVICE, config).await?;
    let Some(pool) = runtime.db.clone() else {
        return Err(KitError::Unexpected(anyhow::anyhow!(
            "the ETL runs without a database pool"
        )));
    };
    let consumer = tributary_kit::nats::open_consumer(
        &runtime.jetstream,
        &runtime.subjects,
        ConsumerKey::EtlItems,
        delivery_limits(&runtime.config),
    )
    .await?;
    let settings = runtime.config.etl.clone();
    let wake = Arc::new(Notify::new());
    let publisher = OutboxPublisher::new(
        pool.clone(),
        runtime.jetstream.clone(),
        runtime.subjects.clone(),
        runtime.spec.name,
        settings.outbox_batch_size,
        wake.clone(),
    );
    let backoff = Backoff::new(settings.retry_initial(), settings.retry_max());
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker("outbox-publisher", async move {
        publisher.run(backoff, shutdown).await;
        Ok(())
    });
    people_api::serve(&runtime, pool.clone(), wake.clone()).await?;
    let pipeline = ItemPipeline::new(
        Normaliser::new(runtime.subjects.clone(), region),
        BatchWriter::new(pool, runtime.subjects.clone()),
        runtime.jetstream.clone(),
        &runtime.subjects,
        settings,
        wake,
    );
    let pipeline = if runtime.config.etl.check_data_write {
        pipeline.with_write_grants(WriteGrants::new(MeshClient::new(
            runtime.nats.clone(),
            runtime.subjects.clone(),
            SERVICE.name.as_str().to_owned(),
        )))
    } else {
        pipeline
    };
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker("item-pipeline", async move {
        pipeline.run(consumer, shutdown).await;
        Ok(())
    });
    Ok(runtime)
}
