//! `tributary send …` as a person runs it: the real binary against the real plugin manager
//! and channel service, sending through a generic webhook instance to a local receiver that
//! checks the Standard Webhooks signature the way a real one would.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{ask, cli};

use serde_json::{json, Value};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::requests::plugins::{
    Call, EnableRequest, InstallRequest, InstanceCall, PluginInfo,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_through_a_channel_and_fails_with_the_providers_reason() {
    let env = TestEnv::new().await;
    let receiver = FixtureServer::start().await.unwrap();
    receiver.respond("/inbox", [Canned::json(202, json!({"id": "remote-1"}))]);
    let pm = RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
    let channel = RunningService::start(tributary_channel::build, env.config.clone()).await;
    let info = ask::<PluginInfo>(&env, json!({"plugin_id": "tributary.webhook"})).await;
    ask::<Call<InstallRequest>>(
        &env,
        json!({
            "plugin_id": "tributary.webhook",
            "instance_id": "out",
            "config": {"secret": SECRET, "outboundUrl": receiver.url("/inbox")},
            "accept_permissions": info["permissions"],
        }),
    )
    .await;
    ask::<InstanceCall<EnableRequest>>(&env, json!({"instance_id": "out"})).await;

    // The route appears within moments of the enable; until then, `send` says which instance
    // is unknown.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let run = loop {
        let run = cli(&env, &["send", "out", "--to", "bob", "Hello Bob"]).await;
        if run.code == 0 || std::time::Instant::now() > deadline {
            break run;
        }
        assert!(run.stderr.contains("out"), "{}", run.stderr);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains("Sent") && run.stdout.contains("remote-1"),
        "{}",
        run.stdout
    );

    let delivered = receiver.requests_to("/inbox");
    assert_eq!(delivered.len(), 1);
    let request = &delivered[0];
    let key = standard_webhooks::key_of(&SECRET.to_owned().into()).unwrap();
    let verified = standard_webhooks::verify(
        &key,
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
        &request.body,
        chrono::Utc::now(),
        tributary_plugin_sdk::signatures::DEFAULT_TOLERANCE,
    );
    assert!(verified.is_ok(), "{verified:?}");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["data"]["text"], "Hello Bob");

    // The receiver refuses: the command fails, with the receiver's status in the reason.
    receiver.respond(
        "/inbox",
        [Canned::json(422, json!({"error": "unknown recipient"}))],
    );
    let run = cli(&env, &["send", "out", "--to", "nobody", "--json", "Hello?"]).await;
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["status"], "failed");
    assert!(
        outcome["error"].as_str().unwrap().contains("422"),
        "{outcome}"
    );

    // No recipient: refused before anything is sent.
    let run = cli(&env, &["send", "out", "Hello nobody"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("recipient"), "{}", run.stderr);
    assert_eq!(receiver.requests_to("/inbox").len(), 2);
    channel.stop().await;
    pm.stop().await;
}
