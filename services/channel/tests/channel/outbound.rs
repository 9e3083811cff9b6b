//! Sending through `channel.send.<instance>` against a local server that answers as Twilio's
//! Messages API documents (429 with Retry-After, 5xx, 4xx), the idempotent retry of a send,
//! and Twilio's status callbacks updating the sent message, in the unified model too.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Value};
use tributary_channel::api::{SendMessage, SendOutcome, SendRequest};
use tributary_kit::client::CallError;
use tributary_plugin_sdk::signatures::twilio;
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::events::{CommunicationEvent, EventKind};
use tributary_proto::streams::StreamKey;
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use uuid::Uuid;

use crate::support::{Harness, Signed};

const MESSAGES: &str = "/2010-04-01/Accounts/AC0123/Messages.json";

fn twilio_message(sid: &str, status: &str) -> Value {
    json!({
        "account_sid": "AC0123",
        "api_version": "2010-04-01",
        "body": "Your order shipped",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": null,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": "+15550001",
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": null,
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": format!("{MESSAGES}/{sid}/Media.json")},
        "to": "+15550002",
        "uri": format!("/2010-04-01/Accounts/AC0123/Messages/{sid}.json")
    })
}

async fn send(
    mesh: &Harness,
    instance: &str,
    request: &SendRequest,
) -> Result<SendOutcome, CallError> {
    mesh.client()
        .call(&SendMessage {
            instance_id: instance.to_owned(),
            message: request.clone(),
        })
        .await
}

fn text_to(to: &str, text: &str) -> SendRequest {
    SendRequest {
        id: None,
        to: vec![to.to_owned()],
        text: text.to_owned(),
        subject: None,
        conversation_id: None,
        in_reply_to: None,
    }
}

#[tokio::test]
async fn a_send_survives_a_429_and_its_status_callbacks_update_the_message() {
    let mesh = Harness::start(true).await;
    let twilio_api = FixtureServer::start().await.unwrap();
    mesh.serve(
        "tributary.twilio-sms",
        "sms-out",
        json!({
            "accountSid": "AC0123",
            "authToken": "token-out",
            "fromNumber": "+15550001",
            "apiBaseUrl": twilio_api.base_url()
        }),
    )
    .await;
    twilio_api.respond(
        MESSAGES,
        [
            Canned::json(
                429,
                json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
            )
            .header("retry-after", "1"),
            Canned::json(201, twilio_message("SM7001", "queued")),
        ],
    );
    let mut sent_events = mesh
        .watch(EventKind::Communication(CommunicationEvent::MessageSent))
        .await;
    let mut request = text_to("+15550002", "Your order shipped");
    request.id = Some(Uuid::now_v7());
    let outcome = send(&mesh, "sms-out", &request).await.unwrap();
    assert_eq!(outcome.status, "queued", "{outcome:?}");
    assert_eq!(outcome.provider_message_id.as_deref(), Some("SM7001"));
    assert!(!outcome.repeated);

    // Twilio was asked twice (the 429, then the retry), as its API documents.
    let calls = twilio_api.requests_to(MESSAGES);
    assert_eq!(calls.len(), 2);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&calls[1].body)
        .into_owned()
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("To").as_deref(), Some("+15550002"));
    assert_eq!(field("From").as_deref(), Some("+15550001"));
    assert_eq!(field("Body").as_deref(), Some("Your order shipped"));
    let callback = field("StatusCallback").expect("a StatusCallback URL");
    assert_eq!(
        callback,
        format!("{}/webhooks/twilio-sms/sms-out", mesh.base_url())
    );
    assert!(calls[1]
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic ")));

    let event = sent_events.next(Duration::from_secs(5)).await;
    assert_eq!(event.data["message_id"], json!(outcome.message_id));
    assert_eq!(event.data["provider_message_id"], "SM7001");

    // The same id again: answered from the record, nothing sent.
    let again = send(&mesh, "sms-out", &request).await.unwrap();
    assert!(again.repeated);
    assert_eq!(again.provider_message_id.as_deref(), Some("SM7001"));
    assert_eq!(twilio_api.requests_to(MESSAGES).len(), 2);

    // The sent message is in the unified model.
    let sent_row = "SELECT count(*) FROM message WHERE extra->>'delivery_status' = 'queued' AND body_text = 'Your order shipped'";
    mesh.wait_for_rows(sent_row, 1, Duration::from_secs(10))
        .await;

    // Twilio's status callback, signed as Twilio signs it, to the URL it was given.
    let mut changed = mesh
        .watch(EventKind::Communication(
            CommunicationEvent::DeliveryStatusChanged,
        ))
        .await;
    let params = [
        ("MessageSid", "SM7001"),
        ("SmsSid", "SM7001"),
        ("MessageStatus", "delivered"),
        ("SmsStatus", "delivered"),
        ("AccountSid", "AC0123"),
        ("From", "+15550001"),
        ("To", "+15550002"),
        ("ApiVersion", "2010-04-01"),
    ];
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let signature = twilio::sign(
        &SecretString::from("token-out".to_owned()),
        &callback,
        &owned,
    );
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let status_callback = Signed::new(
        "/webhooks/twilio-sms/sms-out",
        vec![
            ("content-type", "application/x-www-form-urlencoded".into()),
            ("x-twilio-signature", signature),
        ],
        body,
    );
    assert_eq!(mesh.post(&status_callback).await.0, 200);
    let event = changed.next(Duration::from_secs(5)).await;
    assert_eq!(event.data["status"], "delivered");
    assert_eq!(event.data["message_id"], json!(outcome.message_id));
    let delivered_row = "SELECT count(*) FROM message WHERE extra->>'delivery_status' = 'delivered' AND body_text = 'Your order shipped'";
    mesh.wait_for_rows(delivered_row, 1, Duration::from_secs(10))
        .await;
    mesh.wait_for_rows("SELECT count(*) FROM message", 1, Duration::from_secs(1))
        .await;
    let stored: String = sqlx::query_scalar("SELECT status FROM channel_outbound WHERE id = $1")
        .bind(outcome.message_id)
        .fetch_one(&mesh.env.pool().await)
        .await
        .unwrap();
    assert_eq!(stored, "delivered");

    // The instance's timeline: the send with its status, the status callback accepted, the
    // delivery; sends through the outbox, in the order they were recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines: Vec<TimelineEntry> = mesh
            .payloads_on(StreamKey::Timeline, "timeline.channel.sms-out", 3)
            .await
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let sends = lines
            .iter()
            .filter(|l| l.kind == TimelineKind::Send)
            .count();
        if sends >= 2 || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sends: Vec<(&str, TimelineStatus)> = lines
        .iter()
        .filter(|l| l.kind == TimelineKind::Send)
        .map(|l| (l.summary.as_str(), l.status))
        .collect();
    assert_eq!(
        sends,
        [
            ("sent to +15550002: queued", TimelineStatus::Ok),
            ("delivered for +15550002", TimelineStatus::Ok)
        ],
        "{lines:?}"
    );
    let message_id = outcome.message_id.to_string();
    assert!(lines
        .iter()
        .filter(|l| l.kind == TimelineKind::Send)
        .all(|l| l.detail["message_id"] == message_id.as_str()));
    assert!(
        lines
            .iter()
            .any(|l| l.kind == TimelineKind::Webhook && l.summary == "accepted"),
        "{lines:?}"
    );
    mesh.stop().await;
}

#[tokio::test]
async fn failures_are_outcomes_with_their_reason_and_a_delivery_failed_event() {
    let mesh = Harness::start_with(false, |env| env.config.channel.send_max_attempts = 3).await;
    let twilio_api = FixtureServer::start().await.unwrap();
    mesh.serve(
        "tributary.twilio-sms",
        "sms-fail",
        json!({
            "accountSid": "AC0123",
            "authToken": "token-fail",
            "fromNumber": "+15550001",
            "apiBaseUrl": twilio_api.base_url()
        }),
    )
    .await;
    let mut failed = mesh
        .watch(EventKind::Communication(CommunicationEvent::DeliveryFailed))
        .await;

    // 5xx every time: retried send_max_attempts times, then failed.
    twilio_api.respond(
        MESSAGES,
        [Canned::json(503, json!({"message": "Service Unavailable"}))],
    );
    let outcome = send(&mesh, "sms-fail", &text_to("+15550002", "hello"))
        .await
        .unwrap();
    assert_eq!(outcome.status, "failed");
    assert!(
        outcome.error.as_deref().is_some_and(|e| e.contains("503")),
        "{outcome:?}"
    );
    assert_eq!(twilio_api.requests_to(MESSAGES).len(), 3);
    let event = failed.next(Duration::from_secs(5)).await;
    assert_eq!(event.data["message_id"], json!(outcome.message_id));
    assert!(event.data["error"]
        .as_str()
        .is_some_and(|e| e.contains("503")));

    // A 500 then success: one failure is retried.
    twilio_api.respond(
        MESSAGES,
        [
            Canned::status(500),
            Canned::json(201, twilio_message("SM7002", "queued")),
        ],
    );
    let outcome = send(&mesh, "sms-fail", &text_to("+15550002", "hello again"))
        .await
        .unwrap();
    assert_eq!(
        outcome.provider_message_id.as_deref(),
        Some("SM7002"),
        "{outcome:?}"
    );

    // A 400 is the caller's fault: not retried, and Twilio's reason is kept.
    twilio_api.respond(
        MESSAGES,
        [Canned::json(
            400,
            json!({"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
        )],
    );
    let before = twilio_api.requests_to(MESSAGES).len();
    let outcome = send(&mesh, "sms-fail", &text_to("+1555", "bad number"))
        .await
        .unwrap();
    assert_eq!(outcome.status, "failed");
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("21211")),
        "{outcome:?}"
    );
    assert_eq!(twilio_api.requests_to(MESSAGES).len(), before + 1);

    // Bad requests are refused before anything is sent.
    let refused = send(&mesh, "sms-fail", &text_to("+15550002", "  ")).await;
    assert!(
        matches!(refused, Err(CallError::Api(ref e)) if e.message.contains("text")),
        "{refused:?}"
    );
    let unknown = send(&mesh, "nobody", &text_to("+15550002", "hi")).await;
    assert!(
        matches!(unknown, Err(CallError::Api(ref e)) if e.message.contains("nobody")),
        "{unknown:?}"
    );
    assert_eq!(twilio_api.requests_to(MESSAGES).len(), before + 1);
    mesh.stop().await;
}

/// aiosmtpd's own server with its Mailbox handler, on a free port; killed when dropped.
struct Aiosmtpd {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl Aiosmtpd {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let maildir = std::env::temp_dir().join(format!("channel-maildir-{}", Uuid::new_v4()));
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd (python3 -m pip install aiosmtpd, or scripts/services-up)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Aiosmtpd {
            child,
            port,
            maildir,
        }
    }

    fn mails(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

#[tokio::test]
async fn a_send_through_the_email_channel_reaches_a_real_smtp_server() {
    let smtp = Aiosmtpd::start();
    let mesh = Harness::start(true).await;
    mesh.serve(
        "tributary.email",
        "mail-out",
        json!({
            "server": format!("smtp://127.0.0.1:{}?tls=none", smtp.port),
            "from": "Tributary <hub@example.org>"
        }),
    )
    .await;
    let mut request = text_to("ops@example.com", "All green tonight.");
    request.subject = Some("Nightly report".into());
    let outcome = send(&mesh, "mail-out", &request).await.unwrap();
    assert_eq!(outcome.status, "sent", "{outcome:?}");
    let message_id = outcome.provider_message_id.clone().unwrap();

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert!(mail.contains("Subject: Nightly report"), "{mail}");
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(
        mail.contains(&format!("Message-ID: {message_id}")),
        "{mail}"
    );
    assert!(mail.contains("All green tonight."), "{mail}");
    mesh.wait_for_rows("SELECT count(*) FROM message WHERE subject = 'Nightly report' AND extra->>'direction' = 'outbound'", 1, Duration::from_secs(10))
        .await;

    // Nothing listening any more: the send fails, with a reason, after the channel's retries.
    drop(smtp);
    let outcome = send(&mesh, "mail-out", &text_to("ops@example.com", "again"))
        .await
        .unwrap();
    assert_eq!(outcome.status, "failed", "{outcome:?}");
    assert!(outcome.error.is_some());
    mesh.stop().await;
}
