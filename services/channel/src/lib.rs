//! The channel service: webhook ingress with verified signatures, and outbound messaging,
//! one route per channel instance.
//!
//! [`follower`] keeps a [`routes::RouteTable`] of the enabled channel instances in line with
//! the plugin manager. [`ingress`] serves `/webhooks/<channel>/<instance>`: the instance's
//! plugin verifies the signature, and the request is made durable in JetStream before it is
//! answered. [`inbound`] hands stored webhooks to the plugin's `handle_incoming` and announces
//! what they carry ([`model`], [`publish`]). [`outbound`] sends on `channel.send.<instance>`
//! ([`nats_api`]) and records each send and its delivery statuses ([`store`]). `main.rs` only
//! runs [`build`] until a signal arrives, and `tributary up` runs it next to the other four in
//! one process.

pub mod api;
pub mod follower;
pub mod inbound;
pub mod ingress;
pub mod model;
pub mod nats_api;
pub mod outbound;
pub mod publish;
pub mod received;
pub mod registry;
pub mod routes;
pub mod store;

use std::sync::Arc;

use tributary_host::follow_plugin_manager;
use tributary_kit::client::MeshClient;
use tributary_kit::{Config, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::streams::ConsumerKey;
use tributary_proto::ServiceName;

pub use registry::ChannelRegistry;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Channel,
    version: env!("CARGO_PKG_VERSION"),
    description: "Webhook ingress with verified signatures, and outbound messaging, one route per channel instance.",
    uses_database: true,
};

/// Who the service says it is to the plugin manager.
const ACTOR: &str = "channel";

/// Events published per round of the outbox publisher.
const OUTBOX_BATCH: usize = 100;

/// The URL of an instance's webhook route under `public_base_url`.
pub fn webhook_url(public_base_url: &str, channel: &str, instance_id: &str) -> String {
    format!("{public_base_url}/webhooks/{channel}/{instance_id}")
}

/// Starts the service with the built-in channels.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    build_with(config, ChannelRegistry::builtin()).await
}

/// Starts the service running `registry`'s channels: connects to NATS and PostgreSQL, serves
/// a webhook route for every enabled channel instance, handles what they receive, and sends
/// on `channel.send.<instance>`.
pub async fn build_with(
    config: Config,
    registry: ChannelRegistry,
) -> Result<ServiceRuntime, KitError> {
    let registry = registry
        .with_wasm_from(&config)
        .map_err(|e| KitError::Unexpected(anyhow::anyhow!(e)))?;
    let mut runtime = ServiceRuntime::start(SERVICE, config).await?;
    let pool = runtime.db.clone().ok_or_else(|| {
        KitError::Unexpected(anyhow::anyhow!("the channel service needs its database"))
    })?;
    let settings = runtime.config.channel.clone();
    let public_base_url = match settings.public_base_url.trim() {
        "" => format!("http://{}", runtime.http_addr()),
        base => base.trim_end_matches('/').to_owned(),
    };

    let wake = tributary_kit::outbox::spawn_publisher(&runtime, pool.clone(), OUTBOX_BATCH);
    let routes = routes::RouteTable::default();
    let plugins = MeshClient::new(
        runtime.nats.clone(),
        runtime.subjects.clone(),
        ACTOR.to_owned(),
    );
    let publisher =
        publish::MeshPublisher::new(runtime.jetstream.clone(), runtime.subjects.clone());
    let store = store::OutboundStore::new(pool.clone(), runtime.subjects.clone(), wake);
    let sender = outbound::Sender::new(
        routes.clone(),
        store,
        publisher.clone(),
        public_base_url.clone(),
        settings.send_timeout(),
    );

    let timeline = Arc::new(tributary_kit::timeline::TimelineRecorder::new(
        runtime.nats.clone(),
        runtime.subjects.clone(),
        ServiceName::Channel,
    ));
    runtime.merge_routes(ingress::router(
        ingress::Ingress::new(
            routes.clone(),
            runtime.jetstream.clone(),
            runtime.subjects.clone(),
            &public_base_url,
            ingress::WebhookLimits::of(&settings),
        )
        .with_timeline(timeline.clone()),
    ));
    nats_api::serve(
        &runtime,
        sender.clone(),
        routes.clone(),
        plugins.clone(),
        public_base_url,
    )
    .await?;

    let limits =
        tributary_kit::provision::consumer_limits(&runtime.config, ConsumerKey::ChannelInbound);
    let consumer = tributary_kit::nats::open_consumer(
        &runtime.jetstream,
        &runtime.subjects,
        ConsumerKey::ChannelInbound,
        limits,
    )
    .await?;
    let handler = inbound::InboundHandler::new(
        routes.clone(),
        publisher,
        sender,
        tributary_kit::dead_letter::DeadLetters::for_consumer(
            runtime.jetstream.clone(),
            &runtime.subjects,
            ConsumerKey::ChannelInbound,
        ),
        settings.max_deliver,
    );
    let shutdown = runtime.shutdown.clone();
    let concurrency = settings.concurrent_handlers;
    runtime.spawn_worker("inbound-webhooks", async move {
        handler.run(consumer, concurrency, shutdown).await;
        Ok(())
    });

    let contexts = tributary_host::InstanceContexts::new(
        tributary_proto::PluginType::Channel,
        runtime.nats.clone(),
        runtime.subjects.clone(),
        pool,
    )
    .with_http_attempts(settings.send_max_attempts)
    .with_egress(runtime.config.plugins);
    let keeper = follower::RouteKeeper::new(registry, routes, plugins, contexts);
    follow_plugin_manager(&runtime, Arc::new(keeper), settings.reconcile_interval()).await?;
    Ok(runtime)
}
