//! A webhook answered 2xx is never lost: the channel service is killed (SIGKILL) right after
//! answering, another one starts, and every message is handled exactly once. A webhook its
//! plugin cannot read goes to the dead-letter stream with the reason.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tributary_kit::testing::RunningService;
use tributary_proto::events::CommunicationEvent;

use crate::support::{Harness, Signed};

/// The channel service as its own process on `port`, configured like the test's services.
fn spawn_channel(mesh: &Harness, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary-channel"))
        .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &mesh.env.prefix)
        .env("TRIBUTARY__DATABASE__NAME", &mesh.env.database)
        .env("TRIBUTARY__CHANNEL__HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("TRIBUTARY__CHANNEL__ACK_WAIT_SECS", "2")
        .env("TRIBUTARY__TELEMETRY__LOG_FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the channel service binary starts")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn update(id: u64) -> Signed {
    Signed::new(
        "/webhooks/telegram/tg-kill",
        vec![
            ("content-type", "application/json".into()),
            ("x-telegram-bot-api-secret-token", "token-kill".into()),
        ],
        json!({
            "update_id": id,
            "message": {
                "message_id": id,
                "from": {"id": 9, "is_bot": false, "first_name": "Kim"},
                "chat": {"id": 9, "type": "private", "first_name": "Kim"},
                "date": 1_700_000_000,
                "text": format!("message {id}")
            }
        })
        .to_string(),
    )
}

#[tokio::test]
async fn a_channel_service_killed_after_answering_loses_nothing_and_repeats_nothing() {
    let mut mesh = Harness::start_with(true, |env| env.config.channel.ack_wait_secs = 2).await;
    mesh.serve(
        "tributary.telegram",
        "tg-kill",
        json!({"botToken": "1:x", "secretToken": "token-kill"}),
    )
    .await;
    // Only the child process serves from now on.
    if let Some(channel) = mesh.channel.take() {
        channel.stop().await;
    }
    let port = free_port();
    let mut child = spawn_channel(&mesh, port);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = mesh
            .http
            .post(format!("{base}{}", update(0).path))
            .body("{}")
            .send()
            .await;
        // 401: the route is served (and the empty request refused).
        if ready.is_ok_and(|r| r.status().as_u16() == 401) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child channel service did not serve the route"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 40 updates at once; the process is killed as soon as the last is answered.
    let posts = (1..=40).map(|id| {
        let http = mesh.http.clone();
        let request = update(id);
        let url = format!("{base}{}", request.path);
        async move {
            let mut builder = http.post(url).body(request.body);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            builder.send().await.map(|r| r.status().as_u16())
        }
    });
    let statuses = futures::future::join_all(posts).await;
    child.kill().expect("SIGKILL the channel service");
    let _ = child.wait();
    for status in &statuses {
        assert_eq!(status.as_ref().ok(), Some(&200), "{statuses:?}");
    }

    // Another channel service takes over: whatever the first had not acked comes again.
    mesh.channel =
        Some(RunningService::start(tributary_channel::build, mesh.env.config.clone()).await);
    mesh.wait_for_rows(
        "SELECT count(*) FROM message WHERE body_text LIKE 'message %'",
        40,
        Duration::from_secs(30),
    )
    .await;
    // Past the ack wait, so anything redelivered has been handled again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        mesh.stored_events(CommunicationEvent::MessageReceived)
            .await,
        40
    );
    assert_eq!(mesh.stored_webhooks("telegram", "tg-kill").await, 40);
    mesh.wait_for_rows("SELECT count(*) FROM message", 40, Duration::from_secs(1))
        .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM conversation",
        1,
        Duration::from_secs(1),
    )
    .await;
    mesh.stop().await;
}

#[tokio::test]
async fn a_webhook_its_plugin_cannot_read_is_dead_lettered_with_the_reason() {
    let mesh = Harness::start(false).await;
    mesh.serve(
        "tributary.telegram",
        "tg-bad",
        json!({"botToken": "1:x", "secretToken": "token-bad"}),
    )
    .await;
    let nats = mesh.env.nats().await;
    let mut dead = nats
        .subscribe(mesh.env.subjects().dead_letter("channel-inbound"))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    // Verified (the token is right, and update_id is there), but not an update Telegram sends.
    let request = Signed::new(
        "/webhooks/telegram/tg-bad",
        vec![
            ("content-type", "application/json".into()),
            ("x-telegram-bot-api-secret-token", "token-bad".into()),
        ],
        json!({"update_id": 77, "message": {"message_id": "not a number", "chat": 5, "text": 3}})
            .to_string(),
    );
    assert_eq!(mesh.post(&request).await.0, 200);
    let letter = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut dead))
        .await
        .expect("a dead letter")
        .unwrap();
    let reason = letter
        .headers
        .as_ref()
        .and_then(|h| h.get(tributary_proto::dead_letter::REASON_HEADER))
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("telegram"), "{reason}");
    assert_eq!(
        mesh.stored_events(CommunicationEvent::MessageReceived)
            .await,
        0
    );
    mesh.stop().await;
}

#[tokio::test]
async fn a_stored_webhook_keeps_no_signature_or_secret_token() {
    // Whoever reads CHANNEL_INBOUND (kept 7 days, dead letters 30) must not find Telegram's
    // secret token, its only authenticator, nor any provider's signature.
    let mesh = Harness::start(false).await;
    mesh.serve(
        "tributary.telegram",
        "tg-kept",
        json!({"botToken": "1:x", "secretToken": "token-never-stored"}),
    )
    .await;
    let request = Signed::new(
        "/webhooks/telegram/tg-kept",
        vec![
            ("content-type", "application/json".into()),
            (
                "x-telegram-bot-api-secret-token",
                "token-never-stored".into(),
            ),
            ("x-forwarded-for", "203.0.113.9".into()),
        ],
        json!({"update_id": 5, "message": {"message_id": 1, "chat": {"id": 42, "type": "private"},
               "date": 1_700_000_000, "text": "hello"}})
        .to_string(),
    );
    assert_eq!(mesh.post(&request).await.0, 200);

    let subjects = mesh.env.subjects();
    let js = async_nats::jetstream::new(mesh.env.nats().await);
    let stream = js
        .get_stream(tributary_proto::streams::StreamKey::ChannelInbound.name(&subjects))
        .await
        .unwrap();
    let stored = stream
        .get_last_raw_message_by_subject(&subjects.channel_inbound("telegram", "tg-kept"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&stored.payload).into_owned();
    assert!(!text.contains("token-never-stored"), "{text}");
    let stored: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(
        stored["webhook"]["headers"],
        json!([["content-type", "application/json"]]),
        "only what the plugin reads when it handles the update"
    );
    mesh.stop().await;
}
