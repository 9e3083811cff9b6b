//! How a service that hosts plugin instances (the connector and channel services) keeps in
//! line with the plugin manager: each `plugins.Plugin*` event about an instance of its plugin
//! type is compared at once; all of them every so often, which also catches events missed
//! while disconnected.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tributary_kit::backoff::Backoff;
use tributary_kit::client::CallError;
use tributary_kit::{KitError, ServiceRuntime};
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{EventKind, PluginEvent, PluginLifecycle};
use tributary_proto::manifest::PluginType;

/// The plugin events after which an instance is compared with the plugin manager again (an
/// install never makes an instance run: only its enable does). A reconnect needed and a
/// connect (again) change the instance's state, and so how its service runs it.
pub const FOLLOWED_EVENTS: [PluginEvent; 7] = [
    PluginEvent::Configured,
    PluginEvent::Enabled,
    PluginEvent::Disabled,
    PluginEvent::Upgraded,
    PluginEvent::Uninstalled,
    PluginEvent::Connected,
    PluginEvent::ReconnectNeeded,
];

/// A boxed future, for the methods of [`InstanceFollower`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a service does to keep its instances in line with the plugin manager.
pub trait InstanceFollower: Send + Sync + 'static {
    /// The plugin type whose instances it runs.
    fn plugin_type(&self) -> PluginType;

    /// Compares every instance with the plugin manager's; fails when the plugin manager
    /// cannot be asked.
    fn reconcile_all(&self) -> BoxFuture<'_, Result<(), CallError>>;

    /// Brings one instance in line with the plugin manager.
    fn reconcile<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, ()>;
}

/// Follows the plugin manager until `runtime` stops: subscribes to the plugin events, runs
/// [`InstanceFollower::reconcile`] for each one about an instance of the follower's type, and
/// [`InstanceFollower::reconcile_all`] every `every` (retrying with a short backoff until the
/// plugin manager first answers).
pub async fn follow_plugin_manager(
    runtime: &ServiceRuntime,
    follower: Arc<dyn InstanceFollower>,
    every: Duration,
) -> Result<(), KitError> {
    let mut subscriptions = Vec::new();
    for event in FOLLOWED_EVENTS {
        let subject = runtime.subjects.event(EventKind::Plugin(event));
        let subscription = runtime
            .nats
            .subscribe(subject)
            .await
            .map_err(|e| KitError::Unexpected(e.into()))?;
        subscriptions.push(subscription);
    }
    let mut events = futures::stream::select_all(subscriptions);
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker("plugin-manager-follower", async move {
        let mut backoff = Backoff::new(Duration::from_millis(200), every);
        let mut next_full = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next_full) => {
                    match follower.reconcile_all().await {
                        Ok(()) => {
                            backoff.reset();
                            next_full = tokio::time::Instant::now() + every;
                        }
                        Err(e) => {
                            let wait = backoff.next_wait();
                            tracing::debug!(error = %e, retry_in = ?wait, plugin_type = follower.plugin_type().as_str(), "Cannot list the instances yet.");
                            next_full = tokio::time::Instant::now() + wait;
                        }
                    }
                }
                message = events.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let Ok(envelope) = Envelope::<PluginLifecycle>::from_slice(&message.payload) else {
                        tracing::warn!(subject = %message.subject, "Ignoring a plugin event that does not parse.");
                        continue;
                    };
                    if envelope.data.plugin_type == follower.plugin_type().as_str() {
                        follower.reconcile(&envelope.data.instance_id).await;
                    }
                }
            }
        }
    });
    Ok(())
}
