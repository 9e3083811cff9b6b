//! Keeps the route table in line with the plugin manager (through the host's
//! [`tributary_host::follow`]): each `plugins.Plugin*` event about a channel instance
//! adds, updates or removes its route at once; a full comparison every
//! `channel.reconcile_interval_secs` catches events missed while disconnected.

use tributary_host::follow::{BoxFuture, InstanceFollower};
use tributary_host::{InstanceContexts, InstanceHealth};
use tributary_kit::client::{CallError, MeshClient};
use tributary_plugin_sdk::PluginType;
use tributary_proto::requests::plugins::RuntimeInstance;

use crate::registry::{channel_name, ChannelRegistry};
use crate::routes::{ChannelInstance, RouteTable};

/// The plugin type this service runs.
const CHANNEL: &str = "channel";

/// Builds routes from the plugin manager's channel instances.
#[derive(Debug, Clone)]
pub struct RouteKeeper {
    registry: ChannelRegistry,
    routes: RouteTable,
    plugins: MeshClient,
    /// Where an instance that cannot be served is reported failed.
    health: InstanceHealth,
    /// Makes each instance's plugin context (config, logger, HTTP, events, data), as the host
    /// makes every instance's.
    contexts: InstanceContexts,
}

impl RouteKeeper {
    /// A keeper filling `routes` with `registry`'s channels, each handed a context from
    /// `contexts`.
    pub fn new(
        registry: ChannelRegistry,
        routes: RouteTable,
        plugins: MeshClient,
        contexts: InstanceContexts,
    ) -> Self {
        Self {
            registry,
            routes,
            health: InstanceHealth::new(tributary_proto::PluginType::Channel, plugins.clone()),
            plugins,
            contexts,
        }
    }

    /// Compares every route with the plugin manager's channel instances.
    pub async fn reconcile_all(&self) -> Result<(), CallError> {
        let live = self.plugins.running_instance_ids(CHANNEL).await?;
        for id in self.routes.instance_ids() {
            if !live.contains(&id) && self.routes.remove(&id) {
                tracing::info!(instance = %id, "Removed the webhook route: the instance is no longer enabled.");
            }
        }
        for id in live {
            self.reconcile(&id).await;
        }
        Ok(())
    }

    /// Brings one instance's route in line with the plugin manager.
    pub async fn reconcile(&self, instance_id: &str) {
        match self.plugins.runtime(PluginType::Channel, instance_id).await {
            Ok(runtime) if runtime.plugin_type.as_str() == CHANNEL && runtime.runs() => {
                self.serve(runtime).await;
            }
            Ok(_) => {
                if self.routes.remove(instance_id) {
                    tracing::info!(
                        instance = instance_id,
                        "Removed the webhook route: the instance was disabled."
                    );
                }
            }
            Err(e) if e.is_not_found() => {
                if self.routes.remove(instance_id) {
                    tracing::info!(
                        instance = instance_id,
                        "Removed the webhook route: the instance was uninstalled."
                    );
                }
            }
            Err(e) => {
                tracing::warn!(instance = instance_id, error = %e, "Cannot read the instance from the plugin manager; keeping its route as it was.");
            }
        }
    }

    async fn serve(&self, runtime: RuntimeInstance) {
        let source = runtime.source();
        if self
            .routes
            .instance(&runtime.instance_id)
            .is_some_and(|i| i.source == source)
        {
            return;
        }
        let instance_id = runtime.instance_id.clone();
        let plugin = match self.registry.resolve_instance(&runtime).await {
            Ok(plugin) => plugin,
            Err(e) => {
                self.routes.remove(&instance_id);
                self.health.report_unrunnable(&instance_id, &e).await;
                return;
            }
        };
        let ctx = self.contexts.build(
            runtime.plugin_id.clone(),
            instance_id.clone(),
            runtime.grants(),
            runtime.config,
            runtime.oauth,
        );
        let ctx = match ctx {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(instance = %instance_id, error = %e, "Cannot build the instance's context.");
                self.health.report_failed(&instance_id, e.to_string()).await;
                return;
            }
        };
        let channel = channel_name(&runtime.entrypoint);
        tracing::info!(instance = %instance_id, channel, "Serving the channel instance.");
        self.routes.insert(ChannelInstance {
            instance_id,
            plugin_id: runtime.plugin_id,
            channel,
            plugin,
            ctx,
            source,
            health: self.health.clone(),
            failed: Default::default(),
        });
    }
}

impl InstanceFollower for RouteKeeper {
    fn plugin_type(&self) -> PluginType {
        PluginType::Channel
    }

    fn reconcile_all(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(RouteKeeper::reconcile_all(self))
    }

    fn reconcile<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(RouteKeeper::reconcile(self, instance_id))
    }
}
