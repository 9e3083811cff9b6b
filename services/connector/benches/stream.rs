//! Stream benchmark: how many items per second a connector sync streams into JetStream
//! through the connector service's runner (permission check, `Nats-Msg-Id`, bounded
//! unacknowledged publishes, a checkpoint stored every 1,000 items), against raw async
//! JetStream publishes of the same payloads with the same bound, in the same run.
//!
//! `cargo bench -p tributary-connector --bench stream [-- <items>]` (100,000 by default),
//! against the machine's NATS and PostgreSQL, in a database and stream prefix of its own that
//! are removed afterwards.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use async_nats::HeaderMap;
use chrono::{TimeZone, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_connector::runner::{InstanceSpec, RunOutcome, StopSignal, SyncRunner};
use tributary_connector::state::{SyncEnd, SyncStore};
use tributary_kit::client::MeshClient;
use tributary_kit::testing::TestEnv;
use tributary_kit::ServiceRuntime;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, EntityType, Grants, ItemOperation, PluginContext,
    PluginError, SyncRequest, SyncStep,
};

/// Items between checkpoints.
const CHECKPOINT_EVERY: usize = 1_000;

fn item(instance: &str, i: usize) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance.to_owned(),
        entity_type: EntityType::Person,
        external_id: format!("person-{i}"),
        operation: ItemOperation::Upsert,
        source_modified_at: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        data: json!({
            "display_name": format!("Person {i}"),
            "given_name": "Person",
            "family_name": format!("{i}"),
            "emails": [format!("person.{i}@example.org")],
            "organization": "Bench Corp",
        }),
        raw: json!({ "id": i }),
    }
}

/// Yields prepared items, with a checkpoint every [`CHECKPOINT_EVERY`].
struct Prepared(Arc<Vec<ConnectorItem>>);

impl ConnectorPlugin for Prepared {
    fn sync(
        &self,
        _ctx: PluginContext,
        _cursor: Option<Cursor>,
        _request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let items = self.0.clone();
        let n = items.len();
        stream::iter(0..n)
            .flat_map(move |i| {
                let mut steps = vec![Ok(SyncStep::Item(items[i].clone()))];
                if (i + 1) % CHECKPOINT_EVERY == 0 || i + 1 == n {
                    steps.push(Ok(SyncStep::Checkpoint(Cursor(json!({ "next": i + 1 })))));
                }
                stream::iter(steps)
            })
            .boxed()
    }
}

async fn through_runner(
    runtime: &ServiceRuntime,
    items: &Arc<Vec<ConnectorItem>>,
    instance: &str,
    max_inflight: usize,
) -> anyhow::Result<f64> {
    let pool = runtime
        .db
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no pool"))?;
    let store = SyncStore::new(pool, runtime.subjects.clone(), Arc::new(Notify::new()));
    let runner = SyncRunner::new(
        store.clone(),
        runtime.jetstream.clone(),
        runtime.nats.clone(),
        runtime.subjects.clone(),
        MeshClient::new(
            runtime.nats.clone(),
            runtime.subjects.clone(),
            "bench".into(),
        ),
        max_inflight,
        std::time::Duration::from_secs(5),
        CancellationToken::new(),
    );
    let spec = InstanceSpec {
        instance_id: instance.to_owned(),
        plugin_id: "bench.prepared".into(),
        version: "1.0.0".into(),
        config: json!({}),
        grants: Grants::new(["data:write:persons".parse()?]),
        oauth: false,
        connector: Arc::new(Prepared(items.clone())),
    };
    let sync_id = uuid::Uuid::now_v7();
    let begun = store.begin(instance, sync_id, SyncRequest::full()).await?;
    let started = Instant::now();
    let outcome = runner.run(&spec, sync_id, begun, StopSignal::new()).await;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        outcome == RunOutcome::Ended(SyncEnd::Succeeded),
        "the sync did not succeed: {outcome:?}"
    );
    Ok(items.len() as f64 / secs)
}

async fn raw_publishes(
    runtime: &ServiceRuntime,
    items: &[ConnectorItem],
    instance: &str,
    max_inflight: usize,
) -> anyhow::Result<f64> {
    let payloads: Vec<(String, Vec<u8>)> = items
        .iter()
        .map(|item| Ok((item.message_id("bench"), serde_json::to_vec(item)?)))
        .collect::<anyhow::Result<_>>()?;
    let subject = runtime.subjects.connector_items(instance);
    let started = Instant::now();
    let mut inflight = VecDeque::new();
    for (id, payload) in payloads {
        if inflight.len() >= max_inflight {
            if let Some(ack) = inflight.pop_front() {
                let ack: async_nats::jetstream::context::PublishAckFuture = ack;
                ack.await?;
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        inflight.push_back(
            runtime
                .jetstream
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await?,
        );
    }
    for ack in inflight {
        ack.await?;
    }
    Ok(items.len() as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = tributary_kit::testing::count_argument(100_000);
    let env = TestEnv::new().await;
    let runtime = ServiceRuntime::start(tributary_connector::SERVICE, env.config.clone()).await?;
    println!("stream benchmark: {n} person items per run");
    println!("{:<44} {:>12} {:>8}", "run", "items/s", "ratio");
    for max_inflight in [256, 1] {
        // Each run has its own instance and items, so JetStream's duplicate window drops none.
        let raw_items: Vec<ConnectorItem> = (0..n)
            .map(|i| item(&format!("raw{max_inflight}"), i))
            .collect();
        let raw = raw_publishes(
            &runtime,
            &raw_items,
            &format!("raw{max_inflight}"),
            max_inflight,
        )
        .await?;
        let sync_instance = format!("sync{max_inflight}");
        let sync_items = Arc::new((0..n).map(|i| item(&sync_instance, i)).collect::<Vec<_>>());
        let sync = through_runner(&runtime, &sync_items, &sync_instance, max_inflight).await?;
        println!(
            "{:<44} {:>12.0} {:>8}",
            format!("raw async publishes, {max_inflight} unacked"),
            raw,
            "1.00"
        );
        println!(
            "{:<44} {:>12.0} {:>8.2}",
            format!("connector sync, {max_inflight} unacked"),
            sync,
            sync / raw
        );
    }
    drop(runtime);
    drop(env);
    Ok(())
}
