//! Twilio SMS webhooks through the channel process: signed with the instance's auth token
//! they are answered 2xx and become a message the search process finds; unsigned or badly
//! signed they are refused with 4xx and never show up anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use tributary_e2e::{twilio, ServiceName, Stack};
use tributary_proto::events::{CommunicationEvent, EventKind};

const INSTANCE: &str = "sms-e2e";
const TOKEN: &str = "twilio-auth-token-e2e";

/// A stack with all five services and an enabled Twilio SMS instance; its webhook URL.
async fn stack_with_twilio() -> (Stack, String) {
    let mut stack = Stack::new().await;
    stack.start_all().await;
    stack
        .admin_install("tributary.twilio-sms", INSTANCE, twilio::config(TOKEN))
        .await;
    stack.admin_enable(INSTANCE).await;
    let url = stack.webhook_url(INSTANCE).await;
    assert_eq!(
        url,
        format!(
            "http://{}/webhooks/twilio-sms/{INSTANCE}",
            stack.http_addr(ServiceName::Channel)
        ),
        "the route is served by the channel process, at its public URL"
    );
    (stack, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_twilio_webhook_becomes_a_searchable_message() {
    let (stack, url) = stack_with_twilio().await;
    let mut received = stack
        .watch(EventKind::Communication(
            CommunicationEvent::MessageReceived,
        ))
        .await;
    let text = "The analytical engine weaves algebraic patterns";
    let params = twilio::inbound_sms("SM00000000000000000000000000000001", "+15550002", text);
    let (headers, body) = twilio::signed(TOKEN, &url, &params);
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert!((200..300).contains(&status), "{status}: {answer}");

    let events = received
        .collect(1, Duration::from_secs(30), |e| {
            e.data["instance_id"] == INSTANCE
        })
        .await;
    assert_eq!(events.len(), 1, "one MessageReceived");
    assert_eq!(events[0].data["text"], text);
    stack
        .wait_for_rows(
            &format!("SELECT count(*) FROM message WHERE body_text = '{text}'"),
            1,
            Duration::from_secs(30),
        )
        .await;

    let found = stack
        .wait_search_total(&[("q", "algebraic patterns"), ("type", "message")], 1, 30)
        .await;
    let hit = &found["hits"][0];
    assert_eq!(hit["title"], text);
    assert_eq!(hit["entity_type"], "message");
    assert_eq!(hit["sources"], serde_json::json!([INSTANCE]));
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM message WHERE body_text = $1")
        .bind(text)
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(hit["id"], id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_badly_signed_twilio_webhooks_are_refused_and_never_searchable() {
    let (stack, url) = stack_with_twilio().await;
    let sms = |marker: &str| {
        twilio::inbound_sms(
            &format!("SM{marker:0>32}"),
            "+15550002",
            &format!("Forged message {marker}"),
        )
    };

    let unsigned = sms("unsigned");
    let wrong_token = sms("wrongtoken");
    let other_url = sms("otherurl");
    let signed_then_changed = sms("original");
    let mut changed = signed_then_changed.clone();
    changed[6].1 = "Forged message tampered".to_owned();
    let refused = [
        (
            "no signature",
            twilio::headers(None),
            twilio::form(&unsigned),
        ),
        (
            "another auth token",
            twilio::signed("not-the-token", &url, &wrong_token).0,
            twilio::form(&wrong_token),
        ),
        (
            "a signature for another URL",
            twilio::signed(TOKEN, &format!("{url}?extra=1"), &other_url).0,
            twilio::form(&other_url),
        ),
        (
            "a body changed after signing",
            twilio::signed(TOKEN, &url, &signed_then_changed).0,
            twilio::form(&changed),
        ),
        (
            "a signature that is not base64",
            twilio::headers(Some("not a signature".to_owned())),
            twilio::form(&sms("garbage")),
        ),
    ];
    for (what, headers, body) in refused {
        let (status, answer) = stack.post(&url, &headers, body).await;
        assert!(
            (400..500).contains(&status),
            "{what} must be refused with 4xx; got {status}: {answer}"
        );
    }

    // A good one after them, as a yardstick: once it is searchable, anything accepted before
    // it would have been too.
    let good = twilio::inbound_sms(
        "SM000000000000000000000000000000ok",
        "+15550002",
        "Genuine hello",
    );
    let (headers, body) = twilio::signed(TOKEN, &url, &good);
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert!((200..300).contains(&status), "{status}: {answer}");
    stack
        .wait_search_total(&[("q", "genuine"), ("type", "message")], 1, 30)
        .await;

    for marker in [
        "forged",
        "unsigned",
        "wrongtoken",
        "otherurl",
        "original",
        "tampered",
        "garbage",
    ] {
        let found = stack.search(&[("q", marker)]).await;
        assert_eq!(found["total"], 0, "`{marker}` must not be found: {found}");
    }
    assert_eq!(stack.count("SELECT count(*) FROM message").await, 1);
    assert_eq!(
        stack
            .stored_on(&format!("channel.inbound.twilio-sms.{INSTANCE}"))
            .await,
        1,
        "only the signed webhook was stored"
    );
    assert_eq!(stack.stored_on("communication.MessageReceived").await, 1);
}
