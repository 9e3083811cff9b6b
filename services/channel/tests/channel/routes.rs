//! Routes come and go with their instances, without a restart; what is not served is 404,
//! and bodies over the limit are 413.

use serde_json::json;
use tributary_proto::events::CommunicationEvent;

use crate::support::{Mesh, Signed};

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
    let mesh = Mesh::start_with(false, |env| env.config.channel.max_body_bytes = 4096).await;
    let path = "/webhooks/telegram/tg-live";
    let request = telegram(path, "token-live", update(1, "first"));

    // Before the instance exists, and under the wrong channel name: 404.
    assert_eq!(mesh.post(&request).await.0, 404);
    mesh.install(
        "tributary.telegram",
        "tg-live",
        json!({"botToken": "1:x", "secretToken": "token-live"}),
    )
    .await;
    assert_eq!(
        mesh.post(&request.clone().to("/webhooks/slack/tg-live"))
            .await
            .0,
        404
    );
    assert_eq!(
        mesh.post(&request.clone().to("/webhooks/telegram")).await.0,
        404
    );

    let mut received = mesh.watch(CommunicationEvent::MessageReceived).await;
    assert_eq!(mesh.post(&request).await.0, 200);
    let event = tributary_kit::testing::next_json(&mut received, 5).await;
    assert_eq!(event["data"]["text"], "first");

    // A body over channel.max_body_bytes: 413, and nothing stored.
    let huge = update(2, &"x".repeat(5000));
    let (status, _) = mesh.post(&telegram(path, "token-live", huge)).await;
    assert_eq!(status, 413);
    assert_eq!(mesh.stored_webhooks("telegram", "tg-live").await, 1);

    // Disabled: its route is gone at once, without a restart.
    let client = mesh.client().await;
    client.disable("tg-live").await.unwrap();
    mesh.wait_route("tg-live", false).await;
    let (status, body) = mesh
        .post(&telegram(path, "token-live", update(3, "late")))
        .await;
    assert_eq!(status, 404, "{body}");
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
    let mesh = Mesh::start(false).await;
    mesh.install(
        "tributary.email",
        "mail-out",
        json!({"server": "smtp://127.0.0.1:2525?tls=none", "from": "hub@example.com"}),
    )
    .await;
    let routes: serde_json::Value = mesh
        .client()
        .await
        .request(tributary_proto::ServiceName::Channel, "routes", &json!({}))
        .await
        .unwrap();
    let route = &routes["routes"][0];
    assert_eq!(route["instance_id"], "mail-out");
    assert!(route.get("webhook_url").is_none(), "{route}");
    let (status, _) = mesh
        .post(&Signed::new(
            "/webhooks/email/mail-out",
            vec![],
            b"{}".to_vec(),
        ))
        .await;
    assert_eq!(status, 404);
    mesh.stop().await;
}
