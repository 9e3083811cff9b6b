//! Every provider's signature scheme, through the real service: a valid request is accepted
//! and its `communication.MessageReceived` published; a request with a wrong secret, a
//! changed body, a changed URL, a stale timestamp or no signature is refused with 401 and
//! nothing is stored or published; a redelivery is answered 200 and not handled twice.

use std::time::Duration;

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::json;
use tributary_plugin_sdk::signatures::{meta, slack, standard_webhooks, twilio};
use tributary_proto::events::{CommunicationEvent, EventKind};
use tributary_proto::streams::StreamKey;
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};

use crate::support::{now_secs, Harness, Signed};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Posts each of `refused` (each must get 401), then `valid` twice (both 200); exactly one
/// `MessageReceived` with `text` follows, and only one webhook is stored, for `instance`
/// alone.
async fn judge(
    mesh: &Harness,
    channel: &str,
    instance: &str,
    other: &str,
    valid: Signed,
    refused: Vec<(&str, Signed)>,
    text: &str,
) {
    let mut received = mesh
        .watch(EventKind::Communication(
            CommunicationEvent::MessageReceived,
        ))
        .await;
    for (what, request) in &refused {
        let (status, body) = mesh.post(request).await;
        assert_eq!(
            status, 401,
            "{what} must be refused with 401; got {status}: {body}"
        );
        assert!(!body.trim().is_empty(), "{what}: the refusal says why");
    }
    let (status, body) = mesh.post(&valid).await;
    assert_eq!(status, 200, "the valid request: {body}");
    let (status, body) = mesh.post(&valid).await;
    assert_eq!(status, 200, "a redelivery is answered 200: {body}");

    let events = received
        .collect(2, Duration::from_secs(5), |e| {
            e.data["instance_id"] == instance
        })
        .await;
    assert_eq!(events.len(), 1, "one MessageReceived: {events:?}");
    assert_eq!(events[0].data["text"], text);
    assert_eq!(events[0].data["channel"], channel);
    assert_eq!(mesh.stored_webhooks(channel, instance).await, 1);
    assert_eq!(mesh.stored_webhooks(channel, other).await, 0);
    assert_eq!(
        mesh.stored_events(CommunicationEvent::MessageReceived)
            .await,
        1
    );
    // Each webhook is a line of its instance's timeline: each refusal with its reason (some
    // are addressed to `other`), the acceptance, the repeat; never a signature or any other
    // header. The accepted ones are published last, so once they are stored all are.
    let read = |of: &str, at_least: u64| {
        let subject = format!("timeline.channel.{of}");
        async move {
            mesh.payloads_on(StreamKey::Timeline, &subject, at_least)
                .await
                .iter()
                .map(|l| serde_json::from_slice::<TimelineEntry>(l).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let mut lines = read(instance, 2).await;
    while !lines
        .iter()
        .any(|l| l.summary.starts_with("accepted: a repeat"))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lines = read(instance, 2).await;
    }
    let others = read(other, 0).await;
    assert!(lines
        .iter()
        .all(|l| l.kind == TimelineKind::Webhook && l.instance_id == instance));
    assert!(others
        .iter()
        .all(|l| l.status == TimelineStatus::Error && l.instance_id == other));
    lines.extend(others);
    let (errors, accepted): (Vec<_>, Vec<_>) = lines
        .iter()
        .partition(|l| l.status == TimelineStatus::Error);
    assert_eq!(errors.len(), refused.len(), "{lines:?}");
    assert!(
        errors
            .iter()
            .all(|l| l.summary.starts_with("refused (401): ")),
        "{errors:?}"
    );
    let accepted: Vec<&str> = accepted.iter().map(|l| l.summary.as_str()).collect();
    assert_eq!(
        accepted,
        [
            "accepted",
            "accepted: a repeat of one received before, kept once"
        ]
    );
    let text = serde_json::to_string(&lines).unwrap();
    for request in refused.iter().map(|(_, r)| r).chain([&valid]) {
        for (name, value) in &request.headers {
            if value.len() >= 16 {
                assert!(
                    !text.contains(value.as_str()),
                    "the header {name} is in {text}"
                );
            }
        }
    }
}

fn form(params: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn twilio_sms_signatures_cover_the_url_and_the_form() {
    let mesh = Harness::start(false).await;
    for (instance, token) in [("sms-a", "token-a"), ("sms-b", "token-b")] {
        mesh.serve(
            "tributary.twilio-sms",
            instance,
            json!({"accountSid": "AC0123", "authToken": token, "fromNumber": "+15550001"}),
        )
        .await;
    }
    let path = "/webhooks/twilio-sms/sms-a";
    let url = format!("{}{path}", mesh.base_url());
    let params = [
        ("MessageSid", "SM0001"),
        ("SmsSid", "SM0001"),
        ("SmsStatus", "received"),
        ("AccountSid", "AC0123"),
        ("From", "+15550002"),
        ("To", "+15550001"),
        ("Body", "Hello from Twilio"),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ];
    let signed = |token: &str, url: &str| {
        let signature = twilio::sign(&secret(token), url, &owned(&params));
        Signed::new(
            path,
            vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("x-twilio-signature", signature),
            ],
            form(&params),
        )
    };
    let valid = signed("token-a", &url);
    let mut changed = params;
    changed[6].1 = "Hello from someone else";
    let refused = vec![
        ("a wrong auth token", signed("token-b", &url)),
        ("a changed body", valid.clone().with_body(form(&changed))),
        (
            "a signature for another URL",
            signed("token-a", &format!("{url}?extra=1")),
        ),
        (
            "another instance's route",
            valid.clone().to("/webhooks/twilio-sms/sms-b"),
        ),
        (
            "no signature",
            Signed::new(
                path,
                vec![("content-type", "application/x-www-form-urlencoded".into())],
                form(&params),
            ),
        ),
    ];
    judge(
        &mesh,
        "twilio-sms",
        "sms-a",
        "sms-b",
        valid,
        refused,
        "Hello from Twilio",
    )
    .await;
    mesh.stop().await;
}

#[tokio::test]
async fn a_public_base_url_behind_a_proxy_is_what_twilio_signatures_cover() {
    let public = "https://hub.example.com/tributary";
    let mesh = Harness::start_with(false, |env| {
        env.config.channel.public_base_url = format!("{public}/");
    })
    .await;
    mesh.serve(
        "tributary.twilio-sms",
        "sms-proxy",
        json!({"accountSid": "AC0123", "authToken": "token-p", "fromNumber": "+15550001"}),
    )
    .await;
    let path = "/webhooks/twilio-sms/sms-proxy";
    let params = [
        ("MessageSid", "SM0009"),
        ("AccountSid", "AC0123"),
        ("From", "+15550002"),
        ("To", "+15550001"),
        ("Body", "Through the proxy"),
        ("SmsStatus", "received"),
    ];
    let request = |url: &str| {
        Signed::new(
            path,
            vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                (
                    "x-twilio-signature",
                    twilio::sign(&secret("token-p"), url, &owned(&params)),
                ),
            ],
            form(&params),
        )
    };
    // Signed for the address the service listens on, not the one Twilio was given: refused.
    let local = format!("{}{path}", mesh.base_url());
    assert_eq!(mesh.post(&request(&local)).await.0, 401);
    assert_eq!(mesh.post(&request(&format!("{public}{path}"))).await.0, 200);
    mesh.stop().await;
}

fn slack_event(text: &str, event_id: &str) -> Vec<u8> {
    json!({
        "token": "ignored",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1_700_000_000,
        "event": {
            "type": "message",
            "channel": "C0001",
            "user": "U0002",
            "text": text,
            "ts": "1700000000.000100",
            "channel_type": "channel"
        }
    })
    .to_string()
    .into_bytes()
}

fn slack_signed(path: &str, signing: &str, timestamp: i64, body: Vec<u8>) -> Signed {
    let signature = slack::sign(&secret(signing), timestamp, &body);
    Signed::new(
        path,
        vec![
            ("content-type", "application/json".into()),
            ("x-slack-request-timestamp", timestamp.to_string()),
            ("x-slack-signature", signature),
        ],
        body,
    )
}

#[tokio::test]
async fn slack_signatures_cover_the_timestamp_and_the_body() {
    let mesh = Harness::start(false).await;
    for (instance, signing) in [("slack-a", "signing-a"), ("slack-b", "signing-b")] {
        mesh.serve(
            "tributary.slack",
            instance,
            json!({"signingSecret": signing, "botToken": "xoxb-test"}),
        )
        .await;
    }
    let path = "/webhooks/slack/slack-a";
    let body = slack_event("Hello from Slack", "Ev0001");
    let valid = slack_signed(path, "signing-a", now_secs(), body.clone());
    let refused = vec![
        (
            "a wrong signing secret",
            slack_signed(path, "signing-b", now_secs(), body.clone()),
        ),
        (
            "a changed body",
            valid
                .clone()
                .with_body(slack_event("Hello from someone else", "Ev0001")),
        ),
        (
            "a timestamp six minutes old",
            slack_signed(path, "signing-a", now_secs() - 360, body.clone()),
        ),
        (
            "another instance's route",
            valid.clone().to("/webhooks/slack/slack-b"),
        ),
        (
            "no signature",
            Signed::new(
                path,
                vec![("content-type", "application/json".into())],
                body,
            ),
        ),
    ];
    judge(
        &mesh,
        "slack",
        "slack-a",
        "slack-b",
        valid,
        refused,
        "Hello from Slack",
    )
    .await;

    // The url_verification handshake is answered at once with the challenge, once signed.
    let challenge = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"})
        .to_string()
        .into_bytes();
    let (status, answer) = mesh
        .post(&slack_signed(
            path,
            "signing-a",
            now_secs(),
            challenge.clone(),
        ))
        .await;
    assert_eq!(status, 200);
    assert!(answer.contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"));
    let (status, _) = mesh
        .post(&slack_signed(path, "signing-b", now_secs(), challenge))
        .await;
    assert_eq!(status, 401);
    assert_eq!(mesh.stored_webhooks("slack", "slack-a").await, 1);
    mesh.stop().await;
}

fn whsec(seed: u8) -> String {
    let key: Vec<u8> = (0..32).map(|i| i ^ seed).collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn generic_message(text: &str) -> Vec<u8> {
    json!({
        "type": "message.received",
        "timestamp": "2026-11-21T10:00:00Z",
        "data": {
            "id": "m-0001",
            "from": {"address": "alice@example.com", "name": "Alice"},
            "to": [{"address": "hub"}],
            "text": text,
            "conversation_id": "thread-1"
        }
    })
    .to_string()
    .into_bytes()
}

fn standard_signed(
    path: &str,
    secret_text: &str,
    id: &str,
    timestamp: i64,
    body: Vec<u8>,
) -> Signed {
    let key = standard_webhooks::key_of(&secret(secret_text)).unwrap();
    let signature = standard_webhooks::sign(&key, id, timestamp, &body);
    Signed::new(
        path,
        vec![
            ("content-type", "application/json".into()),
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    )
}

#[tokio::test]
async fn standard_webhooks_signatures_cover_the_id_the_timestamp_and_the_body() {
    let mesh = Harness::start(false).await;
    for (instance, seed) in [("hook-a", 1), ("hook-b", 2)] {
        mesh.serve(
            "tributary.webhook",
            instance,
            json!({"secret": whsec(seed)}),
        )
        .await;
    }
    let path = "/webhooks/webhook/hook-a";
    let body = generic_message("Hello through a webhook");
    let valid = standard_signed(path, &whsec(1), "msg_0001", now_secs(), body.clone());
    let mut other_id = valid.clone();
    for (name, value) in &mut other_id.headers {
        if name == "webhook-id" {
            *value = "msg_0002".into();
        }
    }
    let refused = vec![
        (
            "a wrong secret",
            standard_signed(path, &whsec(2), "msg_0001", now_secs(), body.clone()),
        ),
        (
            "a changed body",
            valid
                .clone()
                .with_body(generic_message("Hello from someone else")),
        ),
        ("a changed webhook-id", other_id),
        (
            "a timestamp six minutes old",
            standard_signed(path, &whsec(1), "msg_0001", now_secs() - 360, body.clone()),
        ),
        (
            "another instance's route",
            valid.clone().to("/webhooks/webhook/hook-b"),
        ),
        (
            "no signature",
            Signed::new(
                path,
                vec![
                    ("content-type", "application/json".into()),
                    ("webhook-id", "msg_0001".into()),
                    ("webhook-timestamp", now_secs().to_string()),
                ],
                body,
            ),
        ),
    ];
    judge(
        &mesh,
        "webhook",
        "hook-a",
        "hook-b",
        valid,
        refused,
        "Hello through a webhook",
    )
    .await;
    mesh.stop().await;
}

fn whatsapp_message(text: &str) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001", "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Alice"}, "wa_id": "15550002"}],
                    "messages": [{
                        "from": "15550002",
                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                        "timestamp": "1700000000",
                        "type": "text",
                        "text": {"body": text}
                    }]
                }
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

fn meta_signed(path: &str, app_secret: &str, body: Vec<u8>) -> Signed {
    let signature = meta::sign(&secret(app_secret), &body);
    Signed::new(
        path,
        vec![
            ("content-type", "application/json".into()),
            ("x-hub-signature-256", signature),
        ],
        body,
    )
}

#[tokio::test]
async fn whatsapp_signatures_cover_the_body_and_the_handshake_needs_the_verify_token() {
    let mesh = Harness::start(false).await;
    for (instance, app) in [("wa-a", "app-secret-a"), ("wa-b", "app-secret-b")] {
        mesh.serve(
            "tributary.whatsapp",
            instance,
            json!({
                "phoneNumberId": "106540352242922",
                "accessToken": "EAAG-test",
                "appSecret": app,
                "verifyToken": format!("verify-{instance}")
            }),
        )
        .await;
    }
    let path = "/webhooks/whatsapp/wa-a";
    let body = whatsapp_message("Hello from WhatsApp");
    let valid = meta_signed(path, "app-secret-a", body.clone());
    let refused = vec![
        (
            "a wrong app secret",
            meta_signed(path, "app-secret-b", body.clone()),
        ),
        (
            "a changed body",
            valid
                .clone()
                .with_body(whatsapp_message("Hello from someone else")),
        ),
        (
            "another instance's route",
            valid.clone().to("/webhooks/whatsapp/wa-b"),
        ),
        (
            "no signature",
            Signed::new(
                path,
                vec![("content-type", "application/json".into())],
                body,
            ),
        ),
    ];
    judge(
        &mesh,
        "whatsapp",
        "wa-a",
        "wa-b",
        valid,
        refused,
        "Hello from WhatsApp",
    )
    .await;

    let handshake = |token: &str| {
        format!(
            "{}{path}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            mesh.base_url()
        )
    };
    let answer = mesh
        .http
        .get(handshake("verify-wa-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.unwrap().trim(), "1158201444");
    let answer = mesh
        .http
        .get(handshake("verify-wa-b"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    mesh.stop().await;
}

fn telegram_update(text: &str) -> Vec<u8> {
    json!({
        "update_id": 10_001,
        "message": {
            "message_id": 5,
            "from": {"id": 42, "is_bot": false, "first_name": "Alice"},
            "chat": {"id": 42, "first_name": "Alice", "type": "private"},
            "date": 1_700_000_000,
            "text": text
        }
    })
    .to_string()
    .into_bytes()
}

/// Telegram's secret token proves the sender knows it; it covers neither the body nor the
/// URL, and there is no timestamp (see docs/channels/telegram.md).
#[tokio::test]
async fn telegram_requests_must_carry_the_instance_secret_token() {
    let mesh = Harness::start(false).await;
    for (instance, token) in [("tg-a", "secret-token-a"), ("tg-b", "secret-token-b")] {
        mesh.serve(
            "tributary.telegram",
            instance,
            json!({"botToken": "123456:ABC-test", "secretToken": token}),
        )
        .await;
    }
    let path = "/webhooks/telegram/tg-a";
    let body = telegram_update("Hello from Telegram");
    let signed = |token: &str| {
        Signed::new(
            path,
            vec![
                ("content-type", "application/json".into()),
                ("x-telegram-bot-api-secret-token", token.to_owned()),
            ],
            body.clone(),
        )
    };
    let valid = signed("secret-token-a");
    let refused = vec![
        ("another instance's token", signed("secret-token-b")),
        ("a token one letter off", signed("secret-token-A")),
        (
            "another instance's route",
            valid.clone().to("/webhooks/telegram/tg-b"),
        ),
        (
            "no token",
            Signed::new(
                path,
                vec![("content-type", "application/json".into())],
                body.clone(),
            ),
        ),
    ];
    judge(
        &mesh,
        "telegram",
        "tg-a",
        "tg-b",
        valid,
        refused,
        "Hello from Telegram",
    )
    .await;
    mesh.stop().await;
}
