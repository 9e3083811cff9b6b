//! A provider's replay after JetStream's duplicate window (issue 27, Low): Twilio, Meta and
//! Telegram retry for longer than a day, and a signed request can be replayed by whoever
//! kept it. The inbound stream no longer recognises the delivery, so it is stored and handled
//! again; the message, known by the provider's own id, must change nothing and be announced
//! never again.

use std::time::Duration;

use serde_json::json;
use tributary_proto::events::CommunicationEvent;
use tributary_proto::streams::{ConsumerKey, StreamKey};

use crate::support::{Harness, Signed};

fn update(id: u64) -> Signed {
    Signed::new(
        "/webhooks/telegram/tg-replay",
        vec![
            ("content-type", "application/json".into()),
            ("x-telegram-bot-api-secret-token", "token-replay".into()),
        ],
        json!({
            "update_id": id,
            "message": {
                "message_id": id,
                "from": {"id": 9, "is_bot": false, "first_name": "Kim"},
                "chat": {"id": 9, "type": "private", "first_name": "Kim"},
                "date": 1_700_000_000,
                "text": "hello"
            }
        })
        .to_string(),
    )
}

/// Polls until `done` holds, or fails naming `what` after 20 s.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_replay_after_the_duplicate_window_is_announced_never_again() {
    let mesh = Harness::start(false).await;
    mesh.serve(
        "tributary.telegram",
        "tg-replay",
        json!({"botToken": "1:x", "secretToken": "token-replay"}),
    )
    .await;
    let items = tributary_proto::Subjects::new(String::new()).connector_items("tg-replay");
    assert_eq!(mesh.post(&update(7)).await.0, 200);
    until("the first delivery is announced", || async {
        mesh.stored_events(CommunicationEvent::MessageReceived)
            .await
            == 1
    })
    .await;
    let items_before = mesh.stored_on(&items).await;
    assert!(items_before > 0, "the message was filed");

    // A day later, as far as JetStream knows: the window that recognised the delivery is
    // shrunk to a moment and waited out.
    let js = mesh.jetstream();
    let stream_name = StreamKey::ChannelInbound.name(mesh.subjects());
    let mut stream = js.get_stream(&stream_name).await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.duplicate_window = Duration::from_millis(100);
    js.update_stream(config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(mesh.post(&update(7)).await.0, 200);
    until("the replay is stored", || async {
        mesh.stored_webhooks("telegram", "tg-replay").await == 2
    })
    .await;
    let durable = ConsumerKey::ChannelInbound.durable_name();
    until("the replay is handled", || async {
        let mut consumer = js
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                durable,
                &stream_name,
            )
            .await
            .unwrap();
        let info = consumer.info().await.unwrap();
        info.delivered.stream_sequence >= 2 && info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;

    assert_eq!(
        mesh.stored_events(CommunicationEvent::MessageReceived)
            .await,
        1,
        "the replay was announced again"
    );
    assert_eq!(
        mesh.stored_on(&items).await,
        items_before,
        "the replay was filed again"
    );
    mesh.stop().await;
}
