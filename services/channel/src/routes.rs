//! The webhook routes this process serves: one per enabled channel instance, each with the
//! plugin and the context it runs in. Routes are added and removed while the service runs.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use std::sync::atomic::{AtomicBool, Ordering};

use tributary_host::health::InstanceHealth;
use tributary_plugin_sdk::{ChannelPlugin, Grants, PluginContext};

/// One channel instance, ready to verify, handle and send.
pub struct ChannelInstance {
    /// The instance's id, the last segment of its route.
    pub instance_id: String,
    /// Its plugin's id (`tributary.slack`).
    pub plugin_id: String,
    /// Its route name (`slack`), from the plugin's entrypoint.
    pub channel: String,
    /// The plugin.
    pub plugin: Arc<dyn ChannelPlugin>,
    /// The context the host hands the plugin: config (secrets included), grants, logger,
    /// HTTP client, event sink and data reader.
    pub ctx: PluginContext,
    /// What the instance was built from (permissions, config, version), to tell whether a
    /// change in the plugin manager matters.
    pub source: tributary_proto::requests::plugins::InstanceSource,
    /// Where its failures (a webhook its plugin could not verify or handle: a trap, a
    /// misconfiguration) are reported, as the instance's last error.
    pub health: InstanceHealth,
    /// Whether a failure was reported and no success since.
    pub failed: AtomicBool,
}

impl ChannelInstance {
    /// What it may do.
    pub fn grants(&self) -> &Grants {
        self.ctx.grants()
    }

    /// Reports that the plugin failed on a webhook with `error` (in the background: the
    /// webhook's answer does not wait for the plugin manager).
    pub fn report_failure(&self, error: String) {
        self.failed.store(true, Ordering::Relaxed);
        let health = self.health.clone();
        let instance_id = self.instance_id.clone();
        tokio::spawn(async move { health.report_failed(&instance_id, error).await });
    }

    /// Reports the instance healthy again after a failure; nothing when none was reported.
    pub fn report_success(&self) {
        if self.failed.swap(false, Ordering::Relaxed) {
            let health = self.health.clone();
            let instance_id = self.instance_id.clone();
            tokio::spawn(async move { health.report_healthy(&instance_id).await });
        }
    }
}

impl std::fmt::Debug for ChannelInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelInstance")
            .field("instance_id", &self.instance_id)
            .field("plugin_id", &self.plugin_id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// Instance id → instance, shared by the HTTP handlers, the inbound worker and the sender.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Arc<RwLock<HashMap<String, Arc<ChannelInstance>>>>,
}

impl RouteTable {
    /// The instance behind `/webhooks/<channel>/<instance_id>`, if that route is served.
    pub fn route(&self, channel: &str, instance_id: &str) -> Option<Arc<ChannelInstance>> {
        self.instance(instance_id)
            .filter(|instance| instance.channel == channel)
    }

    /// The enabled instance `instance_id`.
    pub fn instance(&self, instance_id: &str) -> Option<Arc<ChannelInstance>> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(instance_id)
            .cloned()
    }

    /// Serves `instance` (replacing an older version of it).
    pub fn insert(&self, instance: ChannelInstance) {
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(instance.instance_id.clone(), Arc::new(instance));
    }

    /// Stops serving `instance_id`; whether it was served.
    pub fn remove(&self, instance_id: &str) -> bool {
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(instance_id)
            .is_some()
    }

    /// The ids of every instance served.
    pub fn instance_ids(&self) -> Vec<String> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Every instance served, by id.
    pub fn all(&self) -> Vec<Arc<ChannelInstance>> {
        let mut all: Vec<_> = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        all
    }
}
