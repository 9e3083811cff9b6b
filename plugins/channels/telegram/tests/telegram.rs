// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/channels/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Telegram channel against webhook updates and a fixture Bot API.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tributary_channel_telegram::Telegram;
use tributary_plugin_sdk::testing::{
    outbound_message, Canned, FixtureServer, RecordedRequest, TestContext,
};
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, Participant, PluginError,
    WebhookVerdict,
};

/// The example token of the Bot API documentation.
const BOT_TOKEN: &str = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET_TOKEN: &str = "s3cr3t_T0ken-for-webhooks";
const SEND_PATH: &str = "/bot110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage";

/// A private message, as the Bot API documents an `Update`.
fn private_message() -> Value {
    json!({
        "update_id": 524876123,
        "message": {
            "message_id": 101,
            "from": {
                "id": 123456789,
                "is_bot": false,
                "first_name": "Jane",
                "last_name": "Smith",
                "username": "janesmith",
                "language_code": "en"
            },
            "chat": {
                "id": 123456789,
                "first_name": "Jane",
                "last_name": "Smith",
                "username": "janesmith",
                "type": "private"
            },
            "date": 1746268800,
            "text": "Hello bot"
        }
    })
}

fn context(api_base_url: &str, permissions: &[&str]) -> TestContext {
    TestContext::new(
        permissions,
        json!({
            "botToken": BOT_TOKEN,
            "secretToken": SECRET_TOKEN,
            "apiBaseUrl": api_base_url,
        }),
    )
}

fn local_context(server: &FixtureServer) -> TestContext {
    context(
        &server.base_url(),
        &["network:inbound", "network:outbound:127.0.0.1"],
    )
}

/// Sends `msg` through a fixture the Bot API that answers `status` with `body`: the
/// server (for its requests) and the error the send must end in.
async fn refused(status: u16, body: Value, msg: OutboundMessage) -> (FixtureServer, PluginError) {
    let server = FixtureServer::start().await.unwrap();
    server.respond(SEND_PATH, [Canned::json(status, body)]);
    let test = local_context(&server);
    let err = Telegram.send_message(&test.ctx(), msg).await.unwrap_err();
    (server, err)
}

fn inbound_context() -> TestContext {
    context(
        "https://api.telegram.org",
        &["network:inbound", "network:outbound:api.telegram.org"],
    )
}

/// An update as Telegram posts it, with `secret` in its header (none if `None`).
fn update_with(body: &[u8], secret: Option<&str>) -> IncomingWebhook {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(secret) = secret {
        headers.push((
            "x-telegram-bot-api-secret-token".to_owned(),
            secret.to_owned(),
        ));
    }
    IncomingWebhook {
        method: "POST".to_owned(),
        url: "https://hub.example.com/webhooks/telegram/tg-1".to_owned(),
        query: None,
        headers,
        body: body.to_vec(),
        received_at: Utc::now(),
    }
}

fn update(body: &Value) -> IncomingWebhook {
    update_with(body.to_string().as_bytes(), Some(SECRET_TOKEN))
}

async fn messages_of(body: &Value) -> Vec<IncomingEvent> {
    let test = inbound_context();
    Telegram
        .handle_incoming(&test.ctx(), update(body))
        .await
        .unwrap()
}

fn outbound(conversation: Option<&str>, recipients: &[&str], text: &str) -> OutboundMessage {
    let id = "0190b1c2-0000-7000-8000-000000000002".parse().unwrap();
    outbound_message(id, conversation, recipients, text)
}

/// sendMessage's answer: the sent `Message`.
fn sent_ok() -> Value {
    json!({
        "ok": true,
        "result": {
            "message_id": 102,
            "from": {
                "id": 110201543,
                "is_bot": true,
                "first_name": "Tributary",
                "username": "tributary_bot"
            },
            "chat": {
                "id": 123456789,
                "first_name": "Jane",
                "last_name": "Smith",
                "username": "janesmith",
                "type": "private"
            },
            "date": 1746268900,
            "text": "Hi Jane"
        }
    })
}

fn body_of(request: &RecordedRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn assert_no_token(text: &str) {
    assert!(!text.contains(BOT_TOKEN), "the bot token leaked: {text}");
    assert!(
        !text.contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        "the bot token leaked: {text}"
    );
}

// ---------------------------------------------------------------- verify_webhook

#[test]
fn an_update_with_the_secret_token_is_accepted_under_its_update_id() {
    let test = inbound_context();
    assert_eq!(
        Telegram.verify_webhook(&test.ctx(), &update(&private_message())),
        Ok(WebhookVerdict::Accept {
            delivery_id: "524876123".to_owned()
        })
    );
}

#[test]
fn a_wrong_or_missing_secret_token_is_rejected() {
    let test = inbound_context();
    let body = private_message().to_string();
    for secret in [Some("not-the-secret"), Some(""), None] {
        let rejection = Telegram
            .verify_webhook(&test.ctx(), &update_with(body.as_bytes(), secret))
            .unwrap_err();
        assert_eq!(rejection.status, 401, "{secret:?}");
        assert!(
            rejection.reason.contains("X-Telegram-Bot-Api-Secret-Token"),
            "{rejection}"
        );
        assert!(!rejection.reason.contains(SECRET_TOKEN));
    }
}

#[test]
fn a_wrong_secret_token_is_reported_as_a_token_that_does_not_match_not_a_signature() {
    let test = inbound_context();
    let body = private_message().to_string();
    let rejection = Telegram
        .verify_webhook(
            &test.ctx(),
            &update_with(body.as_bytes(), Some("not-the-secret")),
        )
        .unwrap_err();
    assert!(
        rejection.reason.contains("secret token does not match"),
        "{rejection}"
    );
    assert!(!rejection.reason.contains("signature"), "{rejection}");
}

#[test]
fn the_secret_token_is_checked_before_the_body_is_read() {
    // Proves: an unauthenticated caller learns nothing about what the body should be.
    let test = inbound_context();
    let rejection = Telegram
        .verify_webhook(&test.ctx(), &update_with(b"{not json", Some("wrong")))
        .unwrap_err();
    assert_eq!(rejection.status, 401);
}

#[test]
fn an_authenticated_body_without_an_update_id_is_a_bad_request() {
    let test = inbound_context();
    for body in [&b"{not json"[..], br#"{"message": {"message_id": 1}}"#] {
        let rejection = Telegram
            .verify_webhook(&test.ctx(), &update_with(body, Some(SECRET_TOKEN)))
            .unwrap_err();
        assert_eq!(rejection.status, 400, "{rejection}");
    }
}

#[test]
fn a_missing_secret_token_in_the_config_is_a_server_error_naming_the_field() {
    let test = TestContext::new(&["network:inbound"], json!({"botToken": BOT_TOKEN}));
    let rejection = Telegram
        .verify_webhook(&test.ctx(), &update(&private_message()))
        .unwrap_err();
    assert_eq!(rejection.status, 500);
    assert!(rejection.reason.contains("secretToken"), "{rejection}");
    assert_no_token(&rejection.reason);
}

// ---------------------------------------------------------------- handle_incoming

#[tokio::test]
async fn a_private_message_becomes_a_message_of_its_chat() {
    let events = messages_of(&private_message()).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "123456789:101");
    assert_eq!(message.conversation_id.as_deref(), Some("123456789"));
    assert_eq!(message.conversation_title.as_deref(), Some("Jane Smith"));
    assert_eq!(
        message.sender,
        Participant {
            address: "123456789".to_owned(),
            display_name: Some("Jane Smith".to_owned()),
        }
    );
    assert!(message.recipients.is_empty());
    assert_eq!(message.text, "Hello bot");
    assert_eq!(message.sent_at, Utc.timestamp_opt(1746268800, 0).unwrap());
    assert_eq!(message.raw, private_message());
}

#[tokio::test]
async fn a_group_message_is_filed_under_the_group_with_its_title() {
    let body = json!({
        "update_id": 524876130,
        "message": {
            "message_id": 5531,
            "from": {"id": 222222222, "is_bot": false, "first_name": "Ana", "username": "ana"},
            "chat": {"id": -1001234567890_i64, "title": "Release team", "type": "supergroup"},
            "date": 1746269000,
            "text": "Ship it"
        }
    });
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "-1001234567890:5531");
    assert_eq!(message.conversation_id.as_deref(), Some("-1001234567890"));
    assert_eq!(message.conversation_title.as_deref(), Some("Release team"));
    assert_eq!(message.sender.display_name.as_deref(), Some("Ana"));
}

#[tokio::test]
async fn a_sender_with_only_a_username_is_named_by_it() {
    let mut body = private_message();
    body["message"]["from"] =
        json!({"id": 5, "is_bot": false, "first_name": "", "username": "nobody"});
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.sender.display_name.as_deref(), Some("@nobody"));
}

#[tokio::test]
async fn a_channel_post_is_sent_by_the_channel() {
    let body = json!({
        "update_id": 524876140,
        "channel_post": {
            "message_id": 77,
            "sender_chat": {"id": -1009876543210_i64, "title": "Announcements", "type": "channel"},
            "chat": {"id": -1009876543210_i64, "title": "Announcements", "type": "channel"},
            "date": 1746269100,
            "text": "Maintenance tonight"
        }
    });
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "-1009876543210:77");
    assert_eq!(message.sender.address, "-1009876543210");
    assert_eq!(
        message.sender.display_name.as_deref(),
        Some("Announcements")
    );
}

#[tokio::test]
async fn a_photo_with_a_caption_is_kept_by_its_caption() {
    let body = json!({
        "update_id": 524876150,
        "message": {
            "message_id": 103,
            "from": {"id": 123456789, "is_bot": false, "first_name": "Jane"},
            "chat": {"id": 123456789, "first_name": "Jane", "type": "private"},
            "date": 1746269200,
            "photo": [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 51, "file_size": 1234}],
            "caption": "The whiteboard"
        }
    });
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.text, "The whiteboard");
}

#[tokio::test]
async fn edits_non_text_messages_and_other_updates_are_ignored() {
    let ignored = [
        json!({"update_id": 1, "edited_message": {
            "message_id": 101, "from": {"id": 123456789, "is_bot": false, "first_name": "Jane"},
            "chat": {"id": 123456789, "first_name": "Jane", "type": "private"},
            "date": 1746268800, "edit_date": 1746268860, "text": "Hello bot!"}}),
        json!({"update_id": 2, "message": {
            "message_id": 104, "from": {"id": 123456789, "is_bot": false, "first_name": "Jane"},
            "chat": {"id": 123456789, "first_name": "Jane", "type": "private"},
            "date": 1746269300,
            "sticker": {"file_id": "CAAD", "file_unique_id": "AgAD", "type": "regular",
                        "width": 512, "height": 512, "is_animated": false, "is_video": false}}}),
        json!({"update_id": 3, "message": {
            "message_id": 105, "from": {"id": 1, "is_bot": false, "first_name": "Ana"},
            "chat": {"id": -100123, "title": "Release team", "type": "supergroup"},
            "date": 1746269300,
            "new_chat_members": [{"id": 2, "is_bot": false, "first_name": "Bo"}]}}),
        json!({"update_id": 4, "callback_query": {
            "id": "4382bfdwdsf43", "from": {"id": 123456789, "is_bot": false, "first_name": "Jane"},
            "chat_instance": "-76543210987654321", "data": "option_1"}}),
        json!({"update_id": 5, "my_chat_member": {
            "chat": {"id": 123456789, "type": "private", "first_name": "Jane"},
            "from": {"id": 123456789, "is_bot": false, "first_name": "Jane"},
            "date": 1746269400,
            "old_chat_member": {"status": "member", "user": {"id": 110201543, "is_bot": true, "first_name": "Tributary"}},
            "new_chat_member": {"status": "kicked", "until_date": 0, "user": {"id": 110201543, "is_bot": true, "first_name": "Tributary"}}}}),
    ];
    for body in ignored {
        let events = messages_of(&body).await;
        assert!(events.is_empty(), "{body} gave {events:?}");
    }
}

#[tokio::test]
async fn a_malformed_update_is_an_error_naming_the_problem() {
    let test = inbound_context();
    let not_json = update_with(b"{oops", Some(SECRET_TOKEN));
    let err = Telegram
        .handle_incoming(&test.ctx(), not_json)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Other(m) if m.contains("not JSON")),
        "{err}"
    );

    let no_chat =
        json!({"update_id": 9, "message": {"message_id": 1, "date": 1746268800, "text": "x"}});
    let err = Telegram
        .handle_incoming(&test.ctx(), update(&no_chat))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("chat"), "{err}");

    let no_update_id = json!({"message": private_message()["message"].clone()});
    assert!(Telegram
        .handle_incoming(&test.ctx(), update(&no_update_id))
        .await
        .is_err());
}

// ---------------------------------------------------------------- send_message

#[tokio::test]
async fn a_message_is_sent_to_its_chat_as_documented() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(SEND_PATH, [Canned::json(200, sent_ok())]);
    let test = local_context(&server);

    let sent = Telegram
        .send_message(&test.ctx(), outbound(Some("123456789"), &[], "Hi Jane"))
        .await
        .unwrap();

    let requests = server.requests_to(SEND_PATH);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        body_of(&requests[0]),
        json!({"chat_id": 123456789, "text": "Hi Jane"})
    );
    assert_eq!(sent.provider_message_id, "123456789:102");
    assert_eq!(sent.status, "sent");
    assert_eq!(
        sent.sender,
        Some(Participant {
            address: "110201543".to_owned(),
            display_name: Some("Tributary".to_owned()),
        })
    );
    assert_eq!(sent.sent_at, Utc.timestamp_opt(1746268900, 0).unwrap());
}

#[tokio::test]
async fn a_reply_carries_reply_parameters() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(SEND_PATH, [Canned::json(200, sent_ok())]);
    let test = local_context(&server);

    let mut reply = outbound(None, &[], "On it");
    reply.in_reply_to = Some("-1001234567890:5531".to_owned());
    Telegram.send_message(&test.ctx(), reply).await.unwrap();
    let mut elsewhere = outbound(Some("123456789"), &[], "Quoting the team");
    elsewhere.in_reply_to = Some("-1001234567890:5531".to_owned());
    Telegram.send_message(&test.ctx(), elsewhere).await.unwrap();

    let requests = server.requests_to(SEND_PATH);
    assert_eq!(
        body_of(&requests[0]),
        json!({"chat_id": -1001234567890_i64, "text": "On it",
               "reply_parameters": {"message_id": 5531, "allow_sending_without_reply": true}})
    );
    assert_eq!(
        body_of(&requests[1]),
        json!({"chat_id": 123456789, "text": "Quoting the team",
               "reply_parameters": {"message_id": 5531, "chat_id": -1001234567890_i64}})
    );
}

#[tokio::test]
async fn a_single_recipient_or_a_channel_username_is_the_chat() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(SEND_PATH, [Canned::json(200, sent_ok())]);
    let test = local_context(&server);

    Telegram
        .send_message(&test.ctx(), outbound(None, &["123456789"], "Hi"))
        .await
        .unwrap();
    Telegram
        .send_message(&test.ctx(), outbound(Some("@announcements"), &[], "Hi all"))
        .await
        .unwrap();
    let err = Telegram
        .send_message(&test.ctx(), outbound(None, &[], "Hi"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exactly one recipient"), "{err}");

    let requests = server.requests_to(SEND_PATH);
    assert_eq!(requests.len(), 2);
    assert_eq!(body_of(&requests[0])["chat_id"], 123456789);
    assert_eq!(body_of(&requests[1])["chat_id"], "@announcements");
}

#[tokio::test]
async fn a_bad_request_names_telegrams_description_without_the_token() {
    let (server, err) = refused(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        outbound(Some("42"), &[], "Hi"),
    )
    .await;
    let PluginError::Http { status, message } = &err else {
        panic!("expected an HTTP error, got {err:?}");
    };
    assert_eq!(*status, 400);
    assert_eq!(message, "Telegram sendMessage: Bad Request: chat not found");
    assert_no_token(&err.to_string());
    assert_no_token(&format!("{err:?}"));
    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_blocked_bot_is_a_permanent_403() {
    let (_server, err) = refused(403, json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}), outbound(Some("42"), &[], "Hi")).await;
    assert!(
        matches!(err, PluginError::Http { status: 403, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("bot was blocked by the user"));
}

#[tokio::test]
async fn a_migrated_group_names_its_new_supergroup() {
    let (_server, err) = refused(
        400,
        json!({"ok": false, "error_code": 400,
                   "description": "Bad Request: group chat was upgraded to a supergroup chat",
                   "parameters": {"migrate_to_chat_id": -1001234567890_i64}}),
        outbound(Some("-123"), &[], "Hi"),
    )
    .await;
    assert!(
        err.to_string().contains("supergroup -1001234567890"),
        "{err}"
    );
}

#[tokio::test]
async fn flood_control_is_waited_out_and_retried_once() {
    // Proves: the Bot API's `retry_after` is honoured by the channel's own retry, and the
    // SDK does not retry as well (exactly two requests).
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        SEND_PATH,
        [
            Canned::json(
                429,
                json!({"ok": false, "error_code": 429,
                       "description": "Too Many Requests: retry after 1",
                       "parameters": {"retry_after": 1}}),
            )
            .header("retry-after", "1"),
            Canned::json(200, sent_ok()),
        ],
    );
    let test = local_context(&server);
    let started = Instant::now();
    let sent = Telegram
        .send_message(&test.ctx(), outbound(Some("123456789"), &[], "Hi"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "123456789:102");
    assert_eq!(server.requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retry_after was not honoured"
    );
}

#[tokio::test]
async fn flood_control_longer_than_a_minute_is_handed_back_as_a_429() {
    let (server, err) = refused(
        429,
        json!({"ok": false, "error_code": 429,
                   "description": "Too Many Requests: retry after 3600",
                   "parameters": {"retry_after": 3600}}),
        outbound(Some("1"), &[], "Hi"),
    )
    .await;
    assert!(
        matches!(err, PluginError::Http { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("retry after 3600 s"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_500_is_retried_until_it_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        SEND_PATH,
        [
            Canned::json(
                500,
                json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
            ),
            Canned::json(200, sent_ok()),
        ],
    );
    let test = local_context(&server);
    Telegram
        .send_message(&test.ctx(), outbound(Some("123456789"), &[], "Hi"))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_persistent_502_gives_up_without_naming_the_token() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        SEND_PATH,
        [Canned::status(502).body("<html>Bad Gateway</html>")],
    );
    let test = local_context(&server);
    let err = Telegram
        .send_message(&test.ctx(), outbound(Some("1"), &[], "Hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PluginError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert_no_token(&err.to_string());
    assert_eq!(server.requests().len(), 4, "four attempts in all");
}

#[tokio::test]
async fn an_ok_false_in_a_200_is_an_error() {
    let (_server, err) = refused(200, json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}), outbound(Some("1"), &[], "")).await;
    assert!(
        matches!(err, PluginError::Http { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("message text is empty"));
}

#[tokio::test]
async fn a_connection_failure_does_not_name_the_token() {
    // Port 1 on loopback refuses connections.
    let test = context(
        "http://127.0.0.1:1",
        &["network:inbound", "network:outbound:127.0.0.1"],
    );
    let err = Telegram
        .send_message(&test.ctx(), outbound(Some("1"), &[], "Hi"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_no_token(&err.to_string());
    assert!(err.to_string().contains("<botToken>"), "{err}");
}

#[tokio::test]
async fn api_telegram_org_is_refused_without_its_grant() {
    let test = context("https://api.telegram.org", &["network:inbound"]);
    let err = Telegram
        .send_message(&test.ctx(), outbound(Some("1"), &[], "Hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::PermissionDenied(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("network:outbound:api.telegram.org"),
        "{err}"
    );
    assert_no_token(&err.to_string());
}

/// Collects everything logged, for the test below.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_names_the_token_when_a_send_is_retried_or_fails() {
    // Proves: the retries log (the capture works) and none of it holds the token, whereas
    // the SDK's own retry warning would name the request's path.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = FixtureServer::start().await.unwrap();
    server.respond(
        SEND_PATH,
        [
            Canned::json(500, json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})),
            Canned::json(400, json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"})),
        ],
    );
    let test = local_context(&server);
    let _ = Telegram
        .send_message(&test.ctx(), outbound(Some("1"), &[], "Hi"))
        .await
        .unwrap_err();

    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("Retrying a Telegram request"), "{logged}");
    assert_no_token(&logged);
}
