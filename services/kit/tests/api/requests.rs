//! Serving a request of the catalog with `kit::requests::serve` and calling it with the kit's
//! `MeshClient`, against the real NATS.

use std::time::Duration;

use serde_json::Value;
use tributary_kit::client::{CallError, MeshClient};
use tributary_kit::testing::TestEnv;
use tributary_kit::{requests, ServiceRuntime, ServiceSpec};
use tributary_proto::requests::plugins::{InstanceInfo, ListPlugins, PluginList};
use tributary_proto::requests::{ApiError, ErrorCode};
use tributary_proto::ServiceName;

const SPEC: ServiceSpec = ServiceSpec {
    name: ServiceName::PluginManager,
    version: "0.0.0-test",
    description: "request serving test",
    uses_database: false,
};

/// `plugins.instance` asked with the raw `body`, bypassing the typed client: the whole reply.
async fn raw_instance_request(
    nats: &async_nats::Client,
    subjects: &tributary_proto::Subjects,
    body: &'static str,
) -> async_nats::Message {
    nats.request(
        subjects.request(ServiceName::PluginManager, "instance"),
        body.into(),
    )
    .await
    .unwrap()
}

/// The value of the header `name` of `reply`.
fn header(reply: &async_nats::Message, name: &str) -> Option<String> {
    reply
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

/// A stand-in plugin manager: `plugins.list` answers an empty list, `plugins.instance`
/// refuses every id as not found.
async fn start(env: &TestEnv) -> ServiceRuntime {
    let runtime = ServiceRuntime::start(SPEC, env.config.clone())
        .await
        .unwrap();
    requests::serve(&runtime, |_: ListPlugins| async {
        Ok(PluginList {
            plugins: Vec::new(),
            invalid: Vec::new(),
        })
    })
    .await
    .unwrap();
    requests::serve(&runtime, |r: InstanceInfo| async move {
        Err::<tributary_proto::requests::plugins::InstanceView, _>(ApiError::new(
            ErrorCode::NotFound,
            format!("no instance `{}`", r.instance_id),
        ))
    })
    .await
    .unwrap();
    runtime
}

#[tokio::test]
async fn a_refused_request_carries_the_error_headers_and_body_and_is_counted_in_srv_stats() {
    let env = TestEnv::new().await;
    let runtime = start(&env).await;
    let nats = runtime.nats.clone();
    let service_id = runtime.micro_service().info().await.id;
    let subjects = runtime.subjects.clone();
    let running = tokio::spawn(runtime.run_until_stopped(std::future::pending()));

    // The typed client reads the refusal from the body.
    let client = MeshClient::new(nats.clone(), subjects.clone(), "test".into());
    let err = client
        .call(&InstanceInfo {
            instance_id: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Api(e) if e.error == ErrorCode::NotFound && e.message.contains("ghost")),
        "{err}"
    );
    assert!(client.call(&ListPlugins {}).await.is_ok());

    // The raw reply has both the NATS service error headers and the JSON body.
    let raw = raw_instance_request(&nats, &subjects, r#"{"instance_id":"ghost"}"#).await;
    assert_eq!(
        header(&raw, async_nats::service::NATS_SERVICE_ERROR_CODE),
        Some("404".to_owned())
    );
    assert_eq!(
        header(&raw, async_nats::service::NATS_SERVICE_ERROR),
        Some("no instance `ghost`".to_owned())
    );
    let body: Value = serde_json::from_slice(&raw.payload).unwrap();
    assert_eq!(body["error"]["error"], "not_found", "{body}");

    // $SRV.STATS counts both refusals on the endpoint, and none on the one that answered.
    let stats = nats
        .request(
            format!(
                "$SRV.STATS.{}.{service_id}",
                ServiceName::PluginManager.as_str()
            ),
            "".into(),
        )
        .await
        .unwrap();
    let stats: Value = serde_json::from_slice(&stats.payload).unwrap();
    let endpoint = |verb: &str| {
        let subject = subjects.request(ServiceName::PluginManager, verb);
        stats["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["subject"] == subject.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("no endpoint on {subject} in {stats}"))
    };
    assert_eq!(endpoint("instance")["num_errors"], 2, "{stats}");
    assert_eq!(endpoint("instance")["num_requests"], 2, "{stats}");
    assert_eq!(endpoint("list")["num_errors"], 0, "{stats}");

    running.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
}

#[tokio::test]
async fn a_body_that_does_not_parse_is_a_counted_bad_request() {
    let env = TestEnv::new().await;
    let runtime = start(&env).await;
    let nats = runtime.nats.clone();
    let subjects = runtime.subjects.clone();
    let running = tokio::spawn(runtime.run_until_stopped(std::future::pending()));

    let raw = raw_instance_request(&nats, &subjects, r#"{"instance_id": 7}"#).await;
    assert_eq!(
        header(&raw, async_nats::service::NATS_SERVICE_ERROR_CODE),
        Some("400".to_owned())
    );
    let body: Value = serde_json::from_slice(&raw.payload).unwrap();
    assert_eq!(body["error"]["error"], "bad_request", "{body}");

    running.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
}
