//! Signed webhooks per second and latency through the channel service (Standard Webhooks
//! signature verified, the request published to JetStream and acknowledged before the 200),
//! against a bare axum route answering 200 in the same run, with the same client, requests
//! and concurrency. Needs the machine's NATS and PostgreSQL.
//!
//! `cargo bench -p tributary-channel --bench webhooks [-- REQUESTS [CONCURRENCY]]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tributary_kit::client::MeshClient;
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_proto::requests::plugins::InstallRequest;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Prepared {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn prepare(count: usize) -> Vec<Prepared> {
    let key = standard_webhooks::key_of(&SECRET.to_owned().into()).unwrap();
    let now = chrono::Utc::now().timestamp();
    (0..count)
        .map(|i| {
            let id = format!("msg_bench_{i}_{}", uuid::Uuid::new_v4().simple());
            let body = json!({
                "type": "message.received",
                "timestamp": "2026-11-21T10:00:00Z",
                "data": {"id": id, "from": {"address": "alice"}, "to": [{"address": "hub"}], "text": format!("message {i}")}
            })
            .to_string()
            .into_bytes();
            let signature = standard_webhooks::sign(&key, &id, now, &body);
            Prepared {
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("webhook-id", id),
                    ("webhook-timestamp", now.to_string()),
                    ("webhook-signature", signature),
                ],
                body,
            }
        })
        .collect()
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn drive(url: &str, requests: &[Prepared], concurrency: usize) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(requests)
        .map(|request| {
            let client = client.clone();
            async move {
                let mut builder = client.post(url).body(request.body.clone());
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                let sent = Instant::now();
                let response = builder.send().await.unwrap();
                assert_eq!(
                    response.status().as_u16(),
                    200,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: requests.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<44} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        f.per_second,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);

    let env = TestEnv::new().await;
    let pm = RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
    let channel = RunningService::start(tributary_channel::build, env.config.clone()).await;
    let client = MeshClient::new(env.nats().await, env.subjects(), "bench".into());
    let info = client.plugin("tributary.webhook").await.unwrap();
    client
        .install(InstallRequest {
            plugin_id: "tributary.webhook".into(),
            instance_id: Some("bench".into()),
            config: Some(json!({"secret": SECRET})),
            accept_permissions: info.permissions,
        })
        .await
        .unwrap();
    client.enable("bench").await.unwrap();
    loop {
        let routes = client
            .call(&tributary_channel::api::RoutesQuery {})
            .await
            .unwrap();
        if !routes.routes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_addr = listener.local_addr().unwrap();
    let bare = axum::Router::new().route("/hook", axum::routing::post(|| async { "" }));
    tokio::spawn(async move { axum::serve(listener, bare).await });

    let warm = prepare(concurrency * 4);
    let service_url = format!("http://{}/webhooks/webhook/bench", channel.http_addr);
    let bare_url = format!("http://{bare_addr}/hook");
    drive(&bare_url, &warm, concurrency).await;
    drive(&service_url, &warm, concurrency).await;

    println!(
        "{count} signed webhooks, {concurrency} at a time, on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let requests = prepare(count);
    let baseline = drive(&bare_url, &requests, concurrency).await;
    let requests = prepare(count);
    let service = drive(&service_url, &requests, concurrency).await;
    print("bare axum route answering 200 (baseline)", &baseline);
    print("channel service: verify + JetStream ack + 200", &service);
    println!(
        "ratio: {:.2}x the baseline's throughput; p50 {:.1}x, p99 {:.1}x the baseline's latency",
        service.per_second / baseline.per_second,
        service.p50.as_secs_f64() / baseline.p50.as_secs_f64(),
        service.p99.as_secs_f64() / baseline.p99.as_secs_f64()
    );
    channel.stop().await;
    pm.stop().await;
}
