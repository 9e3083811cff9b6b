//! A channel plugin is handed the host's whole context, as a connector is: it emits events
//! and reads the unified model through it, within its grants.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};
use tributary_channel::ChannelRegistry;
use tributary_kit::testing::{Mesh, RunningService, TestEnv};
use tributary_plugin_sdk::{
    ChannelPlugin, EntityType, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext,
    PluginError, SentMessage, WebhookRejection, WebhookVerdict,
};
use tributary_proto::PluginType;
use uuid::Uuid;

use crate::support::{Harness, Signed};

/// The probe channel's plugin id.
const PROBE: &str = "test.probe";
/// The entrypoint it runs under.
const ENTRYPOINT: &str = "builtin:test-probe";
/// The subject it emits on, under its `event:publish` grant.
const SEEN: &str = "probe.PersonSeen";

/// A channel whose every webhook names a person: it reads that person through its context
/// and emits an event carrying the name it read.
struct Probe;

#[async_trait]
impl ChannelPlugin for Probe {
    fn verify_webhook(
        &self,
        _ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        let delivery_id = request
            .header("x-probe-delivery")
            .ok_or_else(|| WebhookRejection::bad_request("no x-probe-delivery"))?;
        Ok(WebhookVerdict::Accept {
            delivery_id: delivery_id.to_owned(),
        })
    }

    async fn handle_incoming(
        &self,
        ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        let body = payload.json_body()?;
        let id: Uuid = body["person"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| PluginError::Other("no person id".to_owned()))?;
        let person = ctx.data().get(EntityType::Person, id).await?;
        let name = person
            .map(|p| p["display_name"].clone())
            .unwrap_or(Value::Null);
        ctx.emit_event(SEEN, json!({ "person": id, "display_name": name }))
            .await?;
        Ok(Vec::new())
    }

    async fn send_message(
        &self,
        _ctx: &PluginContext,
        _msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        Err(PluginError::Other("the probe sends nothing".to_owned()))
    }
}

/// A temporary plugin directory holding the probe's manifest, removed on drop.
struct ProbeDir(std::path::PathBuf);

impl ProbeDir {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("channel-probe-{}", Uuid::new_v4()));
        std::fs::create_dir_all(root.join("probe")).unwrap();
        let manifest = json!({
            "id": PROBE,
            "name": "Probe",
            "version": "0.1.0",
            "type": "channel",
            "entrypoint": ENTRYPOINT,
            "permissions": ["network:inbound", "event:publish:probe.*", "data:read:persons"],
        });
        std::fs::write(root.join("probe/plugin.json"), manifest.to_string()).unwrap();
        Self(root)
    }
}

impl Drop for ProbeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_channel_plugin_emits_an_event_and_reads_data_through_its_context() {
    // Arrange: the plugin manager with the probe's manifest, and a channel service that runs
    // the probe besides the built-ins; one person in the unified model.
    let dir = ProbeDir::new();
    let mut env = TestEnv::new().await;
    env.config.plugin_manager.plugin_dirs = vec![dir.0.clone()];
    let plugin_manager =
        RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
    let registry = ChannelRegistry::builtin().with(ENTRYPOINT, Arc::new(Probe));
    let channel = RunningService::start(
        move |config| tributary_channel::build_with(config, registry),
        env.config.clone(),
    )
    .await;
    let mesh = Harness {
        mesh: Mesh::of(&env).await,
        env,
        plugin_manager: Some(plugin_manager),
        channel: Some(channel),
        etl: None,
        http: reqwest::Client::new(),
    };
    let person = Uuid::now_v7();
    sqlx::query("INSERT INTO person (id, display_name) VALUES ($1, 'Grace Hopper')")
        .bind(person)
        .execute(&mesh.env.pool().await)
        .await
        .unwrap();
    mesh.serve(PROBE, "probe-1", json!({})).await;
    let nats = mesh.env.nats().await;
    let mut seen = nats
        .subscribe(
            mesh.env
                .subjects()
                .plugin_event(PluginType::Channel, "probe-1", SEEN),
        )
        .await
        .unwrap();
    nats.flush().await.unwrap();

    // Act: a webhook naming the person.
    let (status, body) = mesh
        .post(&Signed::new(
            "/webhooks/test-probe/probe-1",
            vec![
                ("content-type", "application/json".into()),
                ("x-probe-delivery", "d-1".into()),
            ],
            json!({ "person": person }).to_string(),
        ))
        .await;

    // Assert: the plugin read the person's row and emitted what it read.
    assert_eq!(status, 200, "{body}");
    let message = tokio::time::timeout(Duration::from_secs(10), seen.next())
        .await
        .expect("the probe's event within 10 s")
        .unwrap();
    // In its instance's namespace, inside an envelope the host made.
    let event: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(
        event["data"],
        json!({ "person": person, "display_name": "Grace Hopper" })
    );
    assert_eq!(
        event["source"],
        json!({ "service": "channel", "instance": "probe-1" })
    );
    mesh.stop().await;
}
