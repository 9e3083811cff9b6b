//! Reporting a hosted instance's health to the plugin manager
//! (`plugins.heartbeat.<plugin type>`), the one way for every service that hosts plugins:
//! alive, failed with an error, or not runnable here at all because its entrypoint resolves to
//! no plugin ([`ResolveError`]). Each service reports on its own plugin type's subject, and the
//! plugin manager takes its reports only about instances of that type.
//!
//! The plugin manager keeps the instance's state from these reports: an error marks it
//! `failed` with that error as its `last_error` (announced as `plugins.PluginFailed`), and a
//! healthy report recovers a failed instance. A report is best effort: the service goes on
//! whether or not the plugin manager took it, and waits for it at most [`REPORT_TIMEOUT`].

use std::time::Duration;

use tributary_kit::client::MeshClient;
use tributary_proto::PluginType;

use crate::resolve::ResolveError;

/// How long a health report may take before it is given up on, so a slow plugin manager
/// never holds up a sync or a reconciliation.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reports the health of the instances a service hosts to the plugin manager.
#[derive(Debug, Clone)]
pub struct InstanceHealth {
    /// The client the reports go out on.
    plugins: MeshClient,
    /// The type of plugin the hosting service runs: it reports on
    /// `plugins.heartbeat.<plugin_type>`.
    plugin_type: PluginType,
}

impl InstanceHealth {
    /// Reports on instances of `plugin_type` plugins through `plugins`.
    pub fn new(plugin_type: PluginType, plugins: MeshClient) -> Self {
        Self {
            plugins,
            plugin_type,
        }
    }

    /// The instance runs: a sync succeeded or was cancelled, or it is alive mid-sync. A failed
    /// instance recovers.
    pub async fn report_healthy(&self, instance_id: &str) {
        self.report(instance_id, None).await;
    }

    /// The instance failed with `error`, which the plugin manager keeps as its last error.
    pub async fn report_failed(&self, instance_id: &str, error: String) {
        self.report(instance_id, Some(error)).await;
    }

    /// The instance cannot run in this service: its entrypoint resolves to no plugin. Logged,
    /// and reported as the instance's failure with the resolver's message, which names the
    /// entrypoint and why.
    pub async fn report_unrunnable(&self, instance_id: &str, error: &ResolveError) {
        let error = error.to_string();
        tracing::warn!(instance = instance_id, error, "Cannot run the instance.");
        self.report_failed(instance_id, error).await;
    }

    /// Sends one `plugins.heartbeat.<plugin type>`, waiting at most [`REPORT_TIMEOUT`].
    async fn report(&self, instance_id: &str, error: Option<String>) {
        let report = self.plugins.heartbeat(self.plugin_type, instance_id, error);
        match tokio::time::timeout(REPORT_TIMEOUT, report).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(instance = instance_id, error = %e, "The plugin manager did not take the health report.");
            }
            Err(_) => {
                tracing::debug!(
                    instance = instance_id,
                    "The plugin manager did not answer the health report in time."
                );
            }
        }
    }
}
