//! `tributary up`: the whole mesh in one process. The services still talk only over NATS;
//! sharing a process only saves memory and start-up time.

use std::future::Future;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use tributary_kit::{Config, KitError, ServiceRuntime};

/// Starts the five services, in order, and returns them started. If one cannot start, the
/// error says what to fix and none keeps running.
pub async fn start_all(config: &Config) -> Result<Vec<ServiceRuntime>, KitError> {
    Ok(vec![
        tributary_plugin_manager::build(config.clone()).await?,
        tributary_connector::build(config.clone()).await?,
        tributary_etl::build(config.clone()).await?,
        tributary_channel::build(config.clone()).await?,
        tributary_search::build(config.clone()).await?,
    ])
}

/// Runs the whole mesh until `shutdown` resolves, then stops every service cleanly.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), KitError> {
    let runtimes = start_all(&config).await?;
    for rt in &runtimes {
        tracing::info!(service = rt.spec.name.as_str(), health = %format!("http://{}/readyz", rt.http_addr()), "Service ready.");
    }
    tracing::info!(nats = %config.nats.url, database = %config.database.name, "Tributary is up. Press ctrl-c to stop.");
    let stop = CancellationToken::new();
    let running = join_all(runtimes.into_iter().map(|rt| {
        let stop = stop.clone();
        async move { rt.run_until_stopped(stop.cancelled_owned()).await }
    }));
    tokio::pin!(running);
    let results = tokio::select! {
        results = &mut running => results,
        _ = shutdown => {
            stop.cancel();
            running.await
        }
    };
    results.into_iter().collect::<Result<Vec<()>, KitError>>()?;
    Ok(())
}
