//! The generic webhook channel against signed deliveries and a recording receiver.

// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/channels/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use tributary_channel_webhook::GenericWebhook;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::{standard_webhooks, DEFAULT_TOLERANCE};
use tributary_plugin_sdk::testing::{Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, Participant, PluginError,
    WebhookVerdict,
};
use uuid::Uuid;

/// The secret of the Standard Webhooks reference test vector.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh";

fn receive_only() -> TestContext {
    TestContext::new(&["network:inbound"], json!({ "secret": SECRET }))
}

fn key(secret: &str) -> Vec<u8> {
    standard_webhooks::key_of(&SecretString::from(secret.to_owned())).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn webhook(
    headers: Vec<(&str, String)>,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> IncomingWebhook {
    IncomingWebhook {
        method: "POST".into(),
        url: "https://hub.example.com/webhooks/webhook/wh-1".into(),
        query: None,
        headers: headers
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .chain([("content-type".to_owned(), "application/json".to_owned())])
            .collect(),
        body: body.to_vec(),
        received_at,
    }
}

/// A delivery signed with `secret` at `signed_at`, as a Standard Webhooks sender makes it.
fn signed(secret: &str, id: &str, signed_at: DateTime<Utc>, body: &[u8]) -> IncomingWebhook {
    let ts = signed_at.timestamp();
    let signature = standard_webhooks::sign(&key(secret), id, ts, body);
    webhook(
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ],
        body,
        now(),
    )
}

fn received_body() -> Vec<u8> {
    json!({
        "type": "message.received",
        "timestamp": "2024-05-01T11:59:59Z",
        "data": {
            "id": "m-100",
            "from": { "address": "alice@example.com", "name": "Alice" },
            "to": [{ "address": "support" }, "billing"],
            "text": "Hello, my invoice is wrong.",
            "conversation_id": "ticket-42",
            "conversation_title": "Ticket 42",
            "sent_at": "2024-05-01T11:59:58Z"
        }
    })
    .to_string()
    .into_bytes()
}

fn verify(ctx: &TestContext, request: &IncomingWebhook) -> Result<WebhookVerdict, (u16, String)> {
    GenericWebhook
        .verify_webhook(&ctx.ctx(), request)
        .map_err(|r| (r.status, r.reason))
}

// ---- verify_webhook ----

#[test]
fn the_reference_vector_of_the_spec_is_accepted_with_webhook_id_as_delivery_id() {
    // The vector every Standard Webhooks library tests against: a delivery signed by any of
    // them verifies here.
    let ts = 1614265330;
    let request = webhook(
        vec![
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
            ),
        ],
        br#"{"test": 2432232314}"#,
        DateTime::from_timestamp(ts + 10, 0).unwrap(),
    );
    assert_eq!(
        verify(&receive_only(), &request),
        Ok(WebhookVerdict::Accept {
            delivery_id: "msg_p5jXN8AQM9LWM0D4loKWxJek".into()
        })
    );
}

#[test]
fn a_signed_message_is_accepted_and_a_rotated_secret_still_verifies() {
    let body = received_body();
    let request = signed(SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now(), &body);
    assert_eq!(
        verify(&receive_only(), &request),
        Ok(WebhookVerdict::Accept {
            delivery_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".into()
        })
    );

    // During a rotation the sender signs with the old and the new secret, space-separated.
    let ts = now().timestamp();
    let old = standard_webhooks::sign(&key(OTHER_SECRET), "msg_rot", ts, &body);
    let new = standard_webhooks::sign(&key(SECRET), "msg_rot", ts, &body);
    let rotated = webhook(
        vec![
            ("webhook-id", "msg_rot".into()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", format!("{old} {new}")),
        ],
        &body,
        now(),
    );
    assert!(matches!(
        verify(&receive_only(), &rotated),
        Ok(WebhookVerdict::Accept { .. })
    ));
}

#[test]
fn a_tampered_body_is_rejected_401() {
    let mut request = signed(SECRET, "msg_1", now(), &received_body());
    request.body = String::from_utf8(request.body)
        .unwrap()
        .replace("invoice is wrong", "invoice is fine")
        .into_bytes();
    let (status, reason) = verify(&receive_only(), &request).unwrap_err();
    assert_eq!(status, 401);
    assert!(
        reason.contains("webhook-signature") && reason.contains("does not match"),
        "{reason}"
    );
}

#[test]
fn a_changed_webhook_id_is_rejected_401_as_the_signature_covers_it() {
    let mut request = signed(SECRET, "msg_1", now(), &received_body());
    for (name, value) in &mut request.headers {
        if name == "webhook-id" {
            *value = "msg_2".into();
        }
    }
    assert_eq!(verify(&receive_only(), &request).unwrap_err().0, 401);
}

#[test]
fn a_delivery_signed_with_another_secret_is_rejected_401() {
    let request = signed(OTHER_SECRET, "msg_1", now(), &received_body());
    let (status, reason) = verify(&receive_only(), &request).unwrap_err();
    assert_eq!(status, 401);
    assert!(
        !reason.contains(SECRET) && !reason.contains("MfKQ9r8"),
        "{reason}"
    );
}

#[test]
fn each_missing_header_is_rejected_401_naming_it() {
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut request = signed(SECRET, "msg_1", now(), &received_body());
        request.headers.retain(|(name, _)| name != missing);
        let (status, reason) = verify(&receive_only(), &request).unwrap_err();
        assert_eq!(status, 401, "{missing}");
        assert!(reason.contains(missing), "{missing}: {reason}");
    }
}

#[test]
fn a_stale_or_future_timestamp_is_rejected_401() {
    let tolerance = chrono::Duration::from_std(DEFAULT_TOLERANCE).unwrap();
    for signed_at in [
        now() - tolerance - chrono::Duration::seconds(1),
        now() + tolerance + chrono::Duration::seconds(1),
    ] {
        let request = signed(SECRET, "msg_1", signed_at, &received_body());
        let (status, reason) = verify(&receive_only(), &request).unwrap_err();
        assert_eq!(status, 401);
        assert!(reason.contains("webhook-timestamp"), "{reason}");
    }
    // Just inside the window is fine.
    let request = signed(
        SECRET,
        "msg_1",
        now() - tolerance + chrono::Duration::seconds(5),
        &received_body(),
    );
    assert!(verify(&receive_only(), &request).is_ok());
}

#[test]
fn a_signature_without_v1_entries_is_rejected_401() {
    let mut request = signed(SECRET, "msg_1", now(), &received_body());
    for (name, value) in &mut request.headers {
        if name == "webhook-signature" {
            *value = value.replacen("v1,", "v1a,", 1);
        }
    }
    let (status, reason) = verify(&receive_only(), &request).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("v1,"), "{reason}");
}

#[test]
fn an_unusable_secret_rejects_every_delivery_without_echoing_it() {
    let ctx = TestContext::new(
        &["network:inbound"],
        json!({ "secret": "whsec_not base64 at all!" }),
    );
    let request = signed(SECRET, "msg_1", now(), &received_body());
    let (status, reason) = verify(&ctx, &request).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("secret is unusable"), "{reason}");
    assert!(!reason.contains("not base64 at all"), "{reason}");

    let ctx = TestContext::new(&["network:inbound"], json!({}));
    let (status, reason) = verify(&ctx, &request).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("`secret`"), "{reason}");
}

// ---- handle_incoming ----

async fn parse(body: &[u8]) -> Result<Vec<IncomingEvent>, PluginError> {
    let request = signed(SECRET, "msg_1", now(), body);
    GenericWebhook
        .handle_incoming(&receive_only().ctx(), request)
        .await
}

async fn parse_error(body: Value) -> String {
    match parse(body.to_string().as_bytes()).await {
        Err(PluginError::Other(reason)) => reason,
        other => panic!("expected PluginError::Other, got {other:?}"),
    }
}

#[tokio::test]
async fn a_received_message_becomes_a_message_with_sender_recipients_and_conversation() {
    let body = received_body();
    let events = parse(&body).await.unwrap();
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "m-100");
    assert_eq!(message.conversation_id.as_deref(), Some("ticket-42"));
    assert_eq!(message.conversation_title.as_deref(), Some("Ticket 42"));
    assert_eq!(
        message.sender,
        Participant {
            address: "alice@example.com".into(),
            display_name: Some("Alice".into())
        }
    );
    assert_eq!(
        message.recipients,
        vec![Participant::new("support"), Participant::new("billing")]
    );
    assert_eq!(message.text, "Hello, my invoice is wrong.");
    assert_eq!(
        message.sent_at,
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 59, 58).unwrap()
    );
    assert_eq!(message.raw, serde_json::from_slice::<Value>(&body).unwrap());

    // The same delivery handled twice gives the same result.
    assert_eq!(parse(&body).await.unwrap(), events);
}

#[tokio::test]
async fn a_minimal_message_takes_its_time_from_the_envelope_or_else_from_receipt() {
    let minimal = json!({
        "type": "message.received",
        "data": { "id": "m-1", "from": "+15551234567", "text": "hi" }
    });
    let events = parse(minimal.to_string().as_bytes()).await.unwrap();
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(message.sender, Participant::new("+15551234567"));
    assert!(message.recipients.is_empty());
    assert_eq!(message.conversation_id, None);
    assert_eq!(message.sent_at, now());

    let with_unix_timestamp = json!({
        "type": "message.received",
        "timestamp": 1714564700,
        "data": { "id": "m-2", "from": { "address": "bob" }, "text": "yo" }
    });
    let events = parse(with_unix_timestamp.to_string().as_bytes())
        .await
        .unwrap();
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(
        message.sent_at,
        DateTime::from_timestamp(1714564700, 0).unwrap()
    );
    assert_eq!(message.sender.display_name, None);
}

#[tokio::test]
async fn a_status_event_becomes_a_delivery_status() {
    let body = json!({
        "type": "message.status",
        "timestamp": "2024-05-01T12:00:30Z",
        "data": { "id": "ext-77", "status": "failed", "error": "mailbox full" }
    });
    let events = parse(body.to_string().as_bytes()).await.unwrap();
    let [IncomingEvent::DeliveryStatus(status)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(status.provider_message_id, "ext-77");
    assert_eq!(status.status, "failed");
    assert_eq!(status.error.as_deref(), Some("mailbox full"));
    assert_eq!(
        status.at,
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 30).unwrap()
    );

    let delivered =
        json!({ "type": "message.status", "data": { "id": "ext-77", "status": "delivered" } });
    let events = parse(delivered.to_string().as_bytes()).await.unwrap();
    let [IncomingEvent::DeliveryStatus(status)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(
        (status.status.as_str(), status.error.as_deref(), status.at),
        ("delivered", None, now())
    );
}

#[tokio::test]
async fn other_event_types_are_ignored() {
    for kind in ["message.send", "contact.created", "ping"] {
        let body = json!({ "type": kind, "timestamp": "2022-11-03T20:26:10.344522Z", "data": { "foo": "bar" } });
        assert_eq!(
            parse(body.to_string().as_bytes()).await.unwrap(),
            vec![],
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_malformed_delivery_is_an_error_naming_the_field() {
    let reason = parse_error(json!({
        "type": "message.received",
        "data": { "id": "m-1", "from": { "name": "Alice" }, "text": "hi" }
    }))
    .await;
    assert!(reason.contains("`data.from.address`"), "{reason}");

    let reason = parse_error(json!({
        "type": "message.received",
        "data": { "id": "m-1", "from": "alice" }
    }))
    .await;
    assert!(reason.contains("`data.text`"), "{reason}");

    let reason = parse_error(json!({
        "type": "message.received",
        "data": { "id": "m-1", "from": "alice", "to": [{ "name": "x" }], "text": "hi" }
    }))
    .await;
    assert!(reason.contains("`data.to[0].address`"), "{reason}");

    let reason = parse_error(json!({
        "type": "message.received",
        "data": { "id": "m-1", "from": "alice", "text": "hi", "sent_at": "yesterday" }
    }))
    .await;
    assert!(reason.contains("`data.sent_at`"), "{reason}");

    let reason = parse_error(json!({ "type": "message.received" })).await;
    assert!(reason.contains("`data`"), "{reason}");

    let reason = parse_error(json!({ "type": "message.status", "data": { "id": "x" } })).await;
    assert!(reason.contains("`data.status`"), "{reason}");

    let reason = parse_error(
        json!({ "type": "message.received", "data": { "id": "", "from": "a", "text": "t" } }),
    )
    .await;
    assert!(reason.contains("`data.id`"), "{reason}");

    let reason = parse_error(json!({ "data": {} })).await;
    assert!(reason.contains("`type`"), "{reason}");

    match parse(b"not json").await {
        Err(PluginError::Other(reason)) => assert!(reason.contains("not JSON"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// ---- send_message ----

fn sender(server: &FixtureServer, permissions: &[&str]) -> TestContext {
    TestContext::new(
        permissions,
        json!({ "secret": SECRET, "outboundUrl": server.url("/hooks/tributary") }),
    )
    .with_fast_retries()
}

fn granted(server: &FixtureServer) -> TestContext {
    sender(server, &["network:inbound", "network:outbound:127.0.0.1"])
}

fn message() -> OutboundMessage {
    OutboundMessage {
        id: Uuid::parse_str("0190f3c4-8a6b-7cde-9f01-23456789abcd").unwrap(),
        conversation_id: Some("ticket-42".into()),
        recipients: vec![Participant {
            address: "alice@example.com".into(),
            display_name: Some("Alice".into()),
        }],
        subject: Some("Your invoice".into()),
        text: "We fixed it.".into(),
        in_reply_to: Some("m-100".into()),
        status_callback_url: None,
    }
}

#[tokio::test]
async fn a_message_is_posted_as_a_signed_message_send_event_a_receiver_can_verify() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/hooks/tributary",
        [Canned::json(202, json!({ "id": "ext-9001" }))],
    );
    let ctx = granted(&server);

    let sent = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap();

    assert_eq!(sent.id, message().id);
    assert_eq!(sent.provider_message_id, "ext-9001");
    assert_eq!(sent.status, "sent");
    let requests = server.requests_to("/hooks/tributary");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("webhook-id"),
        Some("msg_0190f3c4-8a6b-7cde-9f01-23456789abcd")
    );
    // Verified the way a receiver does: the same key, its own clock.
    standard_webhooks::verify(
        &key(SECRET),
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
        &request.body,
        Utc::now(),
        DEFAULT_TOLERANCE,
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "message.send");
    let timestamp: DateTime<Utc> = body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(
        (Utc::now() - timestamp).num_seconds().abs() < 60,
        "{timestamp}"
    );
    assert_eq!(
        body["data"],
        json!({
            "id": "0190f3c4-8a6b-7cde-9f01-23456789abcd",
            "to": [{ "address": "alice@example.com", "name": "Alice" }],
            "text": "We fixed it.",
            "subject": "Your invoice",
            "conversation_id": "ticket-42",
            "in_reply_to": "m-100"
        })
    );
}

#[tokio::test]
async fn without_an_id_in_the_answer_the_provider_id_is_tributarys_and_absent_fields_are_left_out()
{
    let server = FixtureServer::start().await.unwrap();
    server.respond("/hooks/tributary", [Canned::status(204)]);
    let ctx = granted(&server);
    let msg = OutboundMessage {
        conversation_id: None,
        subject: None,
        in_reply_to: None,
        ..message()
    };
    let sent = GenericWebhook
        .send_message(&ctx.ctx(), msg.clone())
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, msg.id.to_string());
    let body: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    let data = body["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "text", "to"]);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_with_the_same_webhook_id() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/hooks/tributary",
        [
            Canned::status(429).header("retry-after", "1"),
            Canned::json(200, json!({ "id": "ext-1" })),
        ],
    );
    let ctx = granted(&server);
    let started = std::time::Instant::now();
    let sent = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sent.provider_message_id, "ext-1");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_500_then_success_is_sent() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/hooks/tributary",
        [
            Canned::status(500),
            Canned::json(200, json!({ "ok": true })),
        ],
    );
    let ctx = granted(&server);
    let sent = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, message().id.to_string());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_400_is_a_permanent_error_and_not_retried() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/hooks/tributary",
        [Canned::json(400, json!({ "error": "unknown recipient" }))],
    );
    let ctx = granted(&server);
    let err = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap_err();
    match &err {
        PluginError::Http {
            status: 400,
            message,
        } => {
            assert!(message.contains("unknown recipient"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_host_not_granted_is_refused_before_connecting() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/hooks/tributary", [Canned::status(200)]);
    let ctx = sender(
        &server,
        &["network:inbound", "network:outbound:hooks.example.com"],
    );
    let err = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::PermissionDenied(_)), "{err:?}");
    assert!(
        err.to_string().contains("network:outbound:127.0.0.1"),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn sending_needs_an_outbound_url_and_a_usable_secret() {
    let err = GenericWebhook
        .send_message(&receive_only().ctx(), message())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Config { field, .. } if field == "outboundUrl"),
        "{err:?}"
    );

    let ctx = TestContext::new(
        &["network:outbound:127.0.0.1"],
        json!({ "secret": SECRET, "outboundUrl": "ftp://127.0.0.1/x" }),
    );
    let err = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Config { field, .. } if field == "outboundUrl"),
        "{err:?}"
    );

    let ctx = TestContext::new(
        &["network:outbound:127.0.0.1"],
        json!({ "secret": "whsec_%%%", "outboundUrl": "http://127.0.0.1:9/x" }),
    );
    let err = GenericWebhook
        .send_message(&ctx.ctx(), message())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Config { field, .. } if field == "secret"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("%%%"), "{err}");
}
