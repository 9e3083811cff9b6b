//! What the host tells the plugin manager about an instance's health, read off the real NATS
//! by a stand-in for the plugin manager's `plugins.heartbeat.connector` endpoint.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tributary_host::health::REPORT_TIMEOUT;
use tributary_host::{ConnectorRegistry, InstanceHealth};
use tributary_kit::client::MeshClient;
use tributary_kit::testing::TestEnv;
use tributary_proto::requests::plugins::HeartbeatRequest;
use tributary_proto::requests::Request;
use tributary_proto::PluginType;

/// The plugin manager's side of `plugins.heartbeat.connector` on `env`'s prefix: each report
/// it gets, answered as the plugin manager would (when `answer`), or left unanswered.
struct StandIn {
    reports: tokio::sync::mpsc::UnboundedReceiver<HeartbeatRequest>,
}

impl StandIn {
    async fn start(env: &TestEnv, answer: bool) -> Self {
        let nats = env.nats().await;
        // The connector service's own subject: a report there is about a connector instance.
        let subject = HeartbeatRequest {
            plugin_type: Some(PluginType::Connector),
            ..HeartbeatRequest::default()
        }
        .subject(&env.subjects());
        let mut requests = nats.subscribe(subject).await.unwrap();
        nats.flush().await.unwrap();
        let (sender, reports) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let report: HeartbeatRequest = serde_json::from_slice(&request.payload).unwrap();
                if answer {
                    if let Some(reply) = request.reply {
                        let view = instance_view(&report);
                        nats.publish(reply, view.to_string().into()).await.unwrap();
                    }
                }
                let _ = sender.send(report);
            }
        });
        Self { reports }
    }

    /// The next report, within 5 s.
    async fn next(&mut self) -> HeartbeatRequest {
        tokio::time::timeout(Duration::from_secs(5), self.reports.recv())
            .await
            .expect("a report within 5 s")
            .expect("the stand-in runs")
    }
}

/// The plugin manager's answer to `report`: the instance, failed with its error or enabled.
fn instance_view(report: &HeartbeatRequest) -> Value {
    json!({ "ok": {
        "id": report.instance_id,
        "plugin_id": "test.probe",
        "plugin_type": "connector",
        "version": "1.0.0",
        "state": if report.error.is_some() { "failed" } else { "enabled" },
        "config": {},
        "secrets": {},
        "permissions": [],
        "last_error": report.error,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    } })
}

async fn health(env: &TestEnv) -> InstanceHealth {
    InstanceHealth::new(
        PluginType::Connector,
        MeshClient::new(env.nats().await, env.subjects(), "connector".into())
            .with_timeout(Duration::from_secs(60)),
    )
}

#[tokio::test]
async fn an_unresolvable_entrypoint_is_reported_as_the_instance_failure_with_its_message() {
    let env = TestEnv::new().await;
    let mut plugin_manager = StandIn::start(&env, true).await;
    let unresolved = ConnectorRegistry::builtin()
        .resolve("builtin:nowhere")
        .err()
        .expect("no connector runs builtin:nowhere");

    health(&env)
        .await
        .report_unrunnable("probe-1", &unresolved)
        .await;

    let report = plugin_manager.next().await;
    assert_eq!(report.instance_id, "probe-1");
    assert_eq!(
        report.error.as_deref(),
        Some("no connector runs entrypoint `builtin:nowhere` in this connector service")
    );
}

#[tokio::test]
async fn a_healthy_report_carries_no_error_and_a_failed_one_its_error() {
    let env = TestEnv::new().await;
    let mut plugin_manager = StandIn::start(&env, true).await;
    let health = health(&env).await;

    health.report_healthy("probe-1").await;
    health
        .report_failed("probe-1", "the server said 500".to_owned())
        .await;

    let healthy = plugin_manager.next().await;
    assert_eq!(healthy.instance_id, "probe-1");
    assert_eq!(healthy.error, None);
    let failed = plugin_manager.next().await;
    assert_eq!(failed.error.as_deref(), Some("the server said 500"));
}

#[tokio::test]
async fn a_report_the_plugin_manager_does_not_answer_is_given_up_on_in_time() {
    // The client would wait 60 s for an answer; the report gives up after REPORT_TIMEOUT.
    let env = TestEnv::new().await;
    let mut plugin_manager = StandIn::start(&env, false).await;
    let began = Instant::now();

    health(&env).await.report_healthy("probe-1").await;

    let waited = began.elapsed();
    assert_eq!(plugin_manager.next().await.instance_id, "probe-1");
    assert!(
        waited >= REPORT_TIMEOUT && waited < REPORT_TIMEOUT + Duration::from_secs(5),
        "waited {waited:?}"
    );
}
