//! Routes come and go with their instances, without a restart; what is not served is 404,
//! and bodies over the limit are 413.

use std::time::Duration;

use serde_json::json;
use tributary_proto::events::{CommunicationEvent, EventKind};

use crate::support::{Harness, Signed};

fn telegram(path: &str, token: &str, body: Vec<u8>) -> Signed {
    Signed::new(
        path,
        vec![
            ("content-type", "application/json".into()),
            ("x-telegram-bot-api-secret-token", token.to_owned()),
        ],
        body,
    )
}

fn update(id: u64, text: &str) -> Vec<u8> {
    json!({
        "update_id": id,
        "message": {
            "message_id": id,
            "from": {"id": 7, "is_bot": false, "first_name": "Bo"},
            "chat": {"id": 7, "type": "private", "first_name": "Bo"},
            "date": 1_700_000_000,
            "text": text
        }
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn routes_follow_enable_and_disable_and_unknown_ones_are_404() {
    let mesh = Harness::start_with(false, |env| env.config.channel.max_body_bytes = 4096).await;
    let path = "/webhooks/telegram/tg-live";
    let request = telegram(path, "token-live", update(1, "first"));

    // Before the instance exists, and under the wrong channel name: 404, every route not
    // served answered with the same words, echoing nothing of the path (issue 27, Low).
    let not_served = |(status, body): (u16, String)| {
        assert_eq!(status, 404, "{body}");
        assert_eq!(body.trim(), "no such webhook route");
        assert!(
            !body.contains("tg-live") && !body.contains("telegram"),
            "{body}"
        );
    };
    not_served(mesh.post(&request).await);
    mesh.serve(
        "tributary.telegram",
        "tg-live",
        json!({"botToken": "1:x", "secretToken": "token-live"}),
    )
    .await;
    not_served(
        mesh.post(&request.clone().to("/webhooks/slack/tg-live"))
            .await,
    );
    assert_eq!(
        mesh.post(&request.clone().to("/webhooks/telegram")).await.0,
        404
    );

    let mut received = mesh
        .watch(EventKind::Communication(
            CommunicationEvent::MessageReceived,
        ))
        .await;
    assert_eq!(mesh.post(&request).await.0, 200);
    let event = received.next(Duration::from_secs(5)).await;
    assert_eq!(event.data["text"], "first");

    // A body over channel.max_body_bytes: 413, and nothing stored.
    let huge = update(2, &"x".repeat(5000));
    let (status, _) = mesh.post(&telegram(path, "token-live", huge)).await;
    assert_eq!(status, 413);
    assert_eq!(mesh.stored_webhooks("telegram", "tg-live").await, 1);

    // Disabled: its route is gone at once, without a restart.
    let client = mesh.client();
    client.disable("tg-live").await.unwrap();
    mesh.wait_route("tg-live", false).await;
    not_served(
        mesh.post(&telegram(path, "token-live", update(3, "late")))
            .await,
    );
    assert_eq!(mesh.stored_webhooks("telegram", "tg-live").await, 1);

    // Enabled again: served again.
    client.enable("tg-live").await.unwrap();
    mesh.wait_route("tg-live", true).await;
    assert_eq!(
        mesh.post(&telegram(path, "token-live", update(4, "back")))
            .await
            .0,
        200
    );
    mesh.stop().await;
}

#[tokio::test]
async fn a_channel_without_network_inbound_has_no_webhook_route() {
    let mesh = Harness::start(false).await;
    mesh.serve(
        "tributary.email",
        "mail-out",
        json!({"server": "smtp://127.0.0.1:2525?tls=none", "from": "hub@example.com"}),
    )
    .await;
    let routes = mesh
        .client()
        .call(&tributary_channel::api::RoutesQuery {})
        .await
        .unwrap();
    let routes = serde_json::to_value(routes).unwrap();
    let route = &routes["routes"][0];
    assert_eq!(route["instance_id"], "mail-out");
    assert!(route.get("webhook_url").is_none(), "{route}");
    let (status, body) = mesh
        .post(&Signed::new(
            "/webhooks/email/mail-out",
            vec![],
            b"{}".to_vec(),
        ))
        .await;
    assert_eq!(status, 404);
    // Answered as a route that never existed.
    assert_eq!(body.trim(), "no such webhook route");
    mesh.stop().await;
}

/// Opens a connection to the channel service and sends the head of a `POST` to `path` that
/// announces a body of `length` bytes and sends none of it, as a slow sender does; the
/// connection is kept open by the returned stream.
async fn slow_post(mesh: &Harness, path: &str, length: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = mesh.base_url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Telegram-Bot-Api-Secret-Token: token-slow\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status line's code of the answer on `stream`, which must come within `secs`.
async fn status_of(stream: &mut tokio::net::TcpStream, secs: u64) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut answer = vec![0; 256];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        stream.read(&mut answer),
    )
    .await
    .expect("an answer in time")
    .unwrap();
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"))
}

#[tokio::test]
async fn a_route_not_served_is_404_before_any_of_the_body_arrives() {
    // Before, the whole body (up to 1 MiB) was read before the route was known, with no time
    // limit: slow bodies to a route that does not exist held memory and tasks for ever.
    let mesh = Harness::start(false).await;
    let mut slow = slow_post(&mesh, "/webhooks/telegram/nowhere", 1_000_000).await;
    assert_eq!(status_of(&mut slow, 5).await, 404);
    mesh.stop().await;
}

#[tokio::test]
async fn a_body_slower_than_the_timeout_is_408_and_too_many_at_once_is_503() {
    let mesh = Harness::start_with(false, |env| {
        env.config.channel.webhook_body_timeout_ms = 1500;
        env.config.channel.max_concurrent_webhooks = 1;
    })
    .await;
    mesh.serve(
        "tributary.telegram",
        "tg-slow",
        json!({"botToken": "1:x", "secretToken": "token-slow"}),
    )
    .await;
    let path = "/webhooks/telegram/tg-slow";
    let started = tokio::time::Instant::now();
    let mut slow = slow_post(&mesh, path, 100).await;
    // While the slow one holds the only place, the next is refused at once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = mesh
        .post(&telegram(path, "token-slow", update(1, "quick")))
        .await;
    assert_eq!(status, 503);
    assert_eq!(status_of(&mut slow, 10).await, 408);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1400),
        "408 only once the timeout passed"
    );
    // Its place is free again.
    let (status, _) = mesh
        .post(&telegram(path, "token-slow", update(2, "after")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(mesh.stored_webhooks("telegram", "tg-slow").await, 1);
    mesh.stop().await;
}
