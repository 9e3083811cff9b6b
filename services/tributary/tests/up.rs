//! `tributary up` as a user runs it: the real binary, against the real NATS and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::service::Info;
use futures::StreamExt;
use tributary_kit::testing::TestEnv;

/// Starts `tributary up` with this test's prefix, database and free ports, on the machine's
/// NATS and PostgreSQL, named in the configuration as a deployment using its own servers
/// names them (unconfigured, `up` would start servers of its own).
fn spawn_up(env: &TestEnv) -> Child {
    common::up_command(&std::env::var_os("PATH").unwrap_or_default())
        .env("TRIBUTARY__NATS__URL", "nats://127.0.0.1:4222")
        .env("TRIBUTARY__DATABASE__HOST", "127.0.0.1")
        .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &env.prefix)
        .env("TRIBUTARY__DATABASE__NAME", &env.database)
        .env(
            "TRIBUTARY__DATA_DIR",
            std::env::temp_dir().join(format!("tributary-up-{}", env.prefix)),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Asks `$SRV.INFO` and keeps the answers of services started with `prefix`.
async fn our_services(client: &async_nats::Client, prefix: &str) -> Vec<Info> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.INFO", inbox, "".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let mut found = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), replies.next()).await
    {
        if let Ok(info) = serde_json::from_slice::<Info>(&message.payload) {
            if info.metadata.get("subject_prefix").map(String::as_str) == Some(prefix) {
                found.push(info);
            }
        }
    }
    found
}

#[tokio::test]
async fn srv_ping_finds_all_five_services_started_by_tributary_up_and_sigterm_stops_them() {
    let env = TestEnv::new().await;
    let client = env.nats().await;
    let mut child = spawn_up(&env);

    let expected: BTreeSet<&str> =
        ["plugin-manager", "connector", "etl", "channel", "search"].into();
    let deadline = Instant::now() + Duration::from_secs(60);
    let infos = loop {
        let infos = our_services(&client, &env.prefix).await;
        let names: BTreeSet<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        if names == expected {
            break infos;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tributary up exited early with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "only {names:?} answered $SRV.INFO"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    for info in &infos {
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(!info.description.is_empty());
        // Each registers its status endpoint under its request group.
        let domain = if info.name == "plugin-manager" {
            "plugins"
        } else {
            info.name.as_str()
        };
        let status_subject = format!("{}.{domain}.status", env.prefix);
        assert!(
            info.endpoints.iter().any(|e| e.subject == status_subject),
            "{}: {:?}",
            info.name,
            info.endpoints
        );
        // $SRV.PING.<name> answers for each of them.
        let pong = client
            .request(format!("$SRV.PING.{}", info.name), "".into())
            .await
            .unwrap();
        let pong: serde_json::Value = serde_json::from_slice(&pong.payload).unwrap();
        assert_eq!(pong["type"], "io.nats.micro.v1.ping_response");
    }

    // The status endpoint answers with the service's readiness.
    let status = client
        .request(format!("{}.etl.status", env.prefix), "".into())
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.payload).unwrap();
    assert_eq!(status["service"], "etl");
    assert_eq!(status["ready"], true, "{status}");

    // SIGTERM stops everything cleanly and deregisters.
    let exit = common::signal_and_wait(&mut child, "TERM", 20);
    assert!(exit.success(), "exit status {exit}");
    assert!(
        our_services(&client, &env.prefix).await.is_empty(),
        "services still registered after shutdown"
    );
}

#[tokio::test]
async fn tributary_up_says_what_to_start_when_nats_is_unreachable() {
    let data_dir =
        std::env::temp_dir().join(format!("tributary-up-unreachable-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("up")
        .env("TRIBUTARY__NATS__URL", "nats://127.0.0.1:1")
        .env("TRIBUTARY__NATS__CONNECT_TIMEOUT_SECS", "2")
        .env("TRIBUTARY__DATABASE__HOST", "127.0.0.1")
        .env("TRIBUTARY__DATA_DIR", &data_dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach NATS at nats://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("nats-server -js"), "{stderr}");
}

#[tokio::test]
async fn bad_configuration_stops_start_up_with_the_key_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("up")
        .env("TRIBUTARY__DATABASE__PORT", "fivefourthreetwo")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`database.port`"), "{stderr}");
}
