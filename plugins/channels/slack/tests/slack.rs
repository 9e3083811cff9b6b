// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/channels/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Slack channel against signed Events API requests and a fixture Web API.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use tributary_channel_slack::Slack;
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures;
use tributary_plugin_sdk::testing::{outbound_message, Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, Participant, PluginError,
    RetryPolicy, WebhookVerdict,
};

/// The signing secret of Slack's own signature example.
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const BOT_TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
const PUBLIC_URL: &str = "https://hub.example.com/webhooks/slack/slack-1";

/// The `message` event of Slack's documentation (docs.slack.dev/reference/events/message),
/// wrapper included.
fn message_event() -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": "T123ABC456",
        "api_app_id": "A123ABC456",
        "event": {
            "type": "message",
            "channel": "C123ABC456",
            "user": "U123ABC456",
            "text": "Hello world",
            "ts": "1355517523.000005",
            "channel_type": "channel"
        },
        "type": "event_callback",
        "authorizations": [{
            "team_id": "T123ABC456",
            "user_id": "U123ABC456",
            "is_bot": false,
            "is_enterprise_install": false
        }],
        "event_id": "Ev123ABC456",
        "event_time": 1355517523
    })
}

/// `message_event` with its inner event replaced.
fn with_event(event: Value) -> Value {
    let mut body = message_event();
    body["event"] = event;
    body
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    }
}

fn context(api_base_url: &str, permissions: &[&str]) -> TestContext {
    TestContext::new(
        permissions,
        json!({
            "signingSecret": SIGNING_SECRET,
            "botToken": BOT_TOKEN,
            "apiBaseUrl": api_base_url,
        }),
    )
    .with_http(|http| http.retry_policy(fast_retries()))
}

fn local_context(server: &FixtureServer) -> TestContext {
    context(
        &format!("{}/api", server.base_url()),
        &["network:inbound", "network:outbound:127.0.0.1"],
    )
}

/// Sends `msg` through a fixture chat.postMessage that answers `status` with `body`: the
/// server (for its requests) and the error the send must end in.
async fn refused(status: u16, body: Value, msg: OutboundMessage) -> (FixtureServer, PluginError) {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/api/chat.postMessage", [Canned::json(status, body)]);
    let test = local_context(&server);
    let err = Slack.send_message(&test.ctx(), msg).await.unwrap_err();
    (server, err)
}

/// A context for inbound tests: no HTTP is made.
fn inbound_context() -> TestContext {
    context(
        "https://slack.com/api",
        &["network:inbound", "network:outbound:slack.com"],
    )
}

/// A request as Slack sends it: JSON body, signed at `signed_at` with `secret`, received now.
fn request_signed(body: &[u8], signed_at: i64, secret: &str) -> IncomingWebhook {
    let signature =
        signatures::slack::sign(&SecretString::from(secret.to_owned()), signed_at, body);
    IncomingWebhook {
        method: "POST".to_owned(),
        url: PUBLIC_URL.to_owned(),
        query: None,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "x-slack-request-timestamp".to_owned(),
                signed_at.to_string(),
            ),
            ("x-slack-signature".to_owned(), signature),
        ],
        body: body.to_vec(),
        received_at: Utc::now(),
    }
}

fn signed(body: &Value) -> IncomingWebhook {
    request_signed(
        body.to_string().as_bytes(),
        Utc::now().timestamp(),
        SIGNING_SECRET,
    )
}

async fn messages_of(body: &Value) -> Vec<IncomingEvent> {
    let test = inbound_context();
    Slack
        .handle_incoming(&test.ctx(), signed(body))
        .await
        .unwrap()
}

fn outbound(conversation: Option<&str>, recipients: &[&str], text: &str) -> OutboundMessage {
    let id = "0190b1c2-0000-7000-8000-000000000001".parse().unwrap();
    outbound_message(id, conversation, recipients, text)
}

/// The success answer of chat.postMessage's documentation.
fn posted() -> Value {
    json!({
        "ok": true,
        "channel": "C123ABC456",
        "ts": "1503435956.000247",
        "message": {
            "text": "Here's a message for you",
            "username": "ecto1",
            "bot_id": "B123ABC456",
            "user": "U0BOTUSER1",
            "type": "message",
            "subtype": "bot_message",
            "ts": "1503435956.000247"
        }
    })
}

fn body_of(request: &tributary_plugin_sdk::testing::RecordedRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

// ---------------------------------------------------------------- verify_webhook

#[test]
fn a_signed_event_is_accepted_under_its_event_id() {
    // Proves: the delivery id is Slack's `event_id`, which its retries repeat.
    let test = inbound_context();
    let verdict = Slack.verify_webhook(&test.ctx(), &signed(&message_event()));
    assert_eq!(
        verdict,
        Ok(WebhookVerdict::Accept {
            delivery_id: "Ev123ABC456".to_owned()
        })
    );
}

#[test]
fn a_retry_of_the_same_event_has_the_same_delivery_id() {
    // Proves: Slack's retry (same body, new timestamp and signature, X-Slack-Retry-Num) is
    // recognised as the same delivery.
    let test = inbound_context();
    let first = Slack.verify_webhook(&test.ctx(), &signed(&message_event()));
    let mut retry = request_signed(
        message_event().to_string().as_bytes(),
        Utc::now().timestamp() + 60,
        SIGNING_SECRET,
    );
    retry
        .headers
        .push(("x-slack-retry-num".to_owned(), "1".to_owned()));
    retry
        .headers
        .push(("x-slack-retry-reason".to_owned(), "http_timeout".to_owned()));
    assert_eq!(first, Slack.verify_webhook(&test.ctx(), &retry));
    let mut other = with_event(json!({"type": "message"}));
    other["event_id"] = json!("Ev999OTHER");
    assert_ne!(first, Slack.verify_webhook(&test.ctx(), &signed(&other)));
}

#[test]
fn the_documented_signature_example_verifies() {
    // Proves: the check is Slack's (its documented example passes the signature); the form
    // body of that example is then refused as not an Events API payload.
    let test = inbound_context();
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let mut request = request_signed(body, 1531420618, SIGNING_SECRET);
    request.headers[2].1 =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".to_owned();
    request.received_at = Utc.timestamp_opt(1531420618 + 30, 0).unwrap();
    let rejection = Slack.verify_webhook(&test.ctx(), &request).unwrap_err();
    assert_eq!(rejection.status, 400, "{rejection}");
}

#[test]
fn a_tampered_body_is_rejected() {
    let test = inbound_context();
    let mut request = signed(&message_event());
    request.body = message_event()
        .to_string()
        .replace("Hello world", "Send me the keys")
        .into_bytes();
    let rejection = Slack.verify_webhook(&test.ctx(), &request).unwrap_err();
    assert_eq!(rejection.status, 401);
    assert!(
        rejection.reason.contains("X-Slack-Signature"),
        "{rejection}"
    );
}

#[test]
fn a_tampered_timestamp_is_rejected() {
    // Proves: the timestamp is signed, so moving it into the window does not help.
    let test = inbound_context();
    let mut request = signed(&message_event());
    let ts = request.headers[1].1.parse::<i64>().unwrap();
    request.headers[1].1 = (ts - 1).to_string();
    let rejection = Slack.verify_webhook(&test.ctx(), &request).unwrap_err();
    assert_eq!(rejection.status, 401);
}

#[test]
fn a_request_signed_with_another_secret_is_rejected() {
    let test = inbound_context();
    let request = request_signed(
        message_event().to_string().as_bytes(),
        Utc::now().timestamp(),
        "not-the-signing-secret",
    );
    let rejection = Slack.verify_webhook(&test.ctx(), &request).unwrap_err();
    assert_eq!(rejection.status, 401);
    assert!(!rejection.reason.contains(SIGNING_SECRET));
}

#[test]
fn a_request_without_signature_or_timestamp_is_rejected() {
    let test = inbound_context();
    for missing in ["x-slack-signature", "x-slack-request-timestamp"] {
        let mut request = signed(&message_event());
        request.headers.retain(|(name, _)| name != missing);
        let rejection = Slack.verify_webhook(&test.ctx(), &request).unwrap_err();
        assert_eq!(rejection.status, 401, "{missing}");
        assert!(rejection.reason.contains("missing"), "{rejection}");
    }
}

#[test]
fn a_stale_request_is_rejected_even_with_a_good_signature() {
    // Proves: a replay older than five minutes is refused.
    let test = inbound_context();
    let six_minutes_ago = Utc::now().timestamp() - 6 * 60;
    let request = request_signed(
        message_event().to_string().as_bytes(),
        six_minutes_ago,
        SIGNING_SECRET,
    );
    let rejection = Slack.verify_webhook(&test.ctx(), &request).unwrap_err();
    assert_eq!(rejection.status, 401);
    assert!(rejection.reason.contains("timestamp"), "{rejection}");
}

#[test]
fn the_url_verification_challenge_is_echoed_as_plain_text() {
    // The payload of Slack's url_verification documentation.
    let test = inbound_context();
    let body = json!({
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification"
    });
    let Ok(WebhookVerdict::Respond(response)) = Slack.verify_webhook(&test.ctx(), &signed(&body))
    else {
        panic!("expected a response to the handshake");
    };
    assert_eq!(response.status, 200);
    assert!(response.content_type.starts_with("text/plain"));
    assert_eq!(
        response.body,
        b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

#[test]
fn an_unsigned_url_verification_is_rejected_before_it_is_answered() {
    let test = inbound_context();
    let body = json!({"token": "x", "challenge": "abc", "type": "url_verification"});
    let mut request = signed(&body);
    request
        .headers
        .retain(|(name, _)| name != "x-slack-signature");
    assert_eq!(
        Slack
            .verify_webhook(&test.ctx(), &request)
            .unwrap_err()
            .status,
        401
    );
}

#[test]
fn a_signed_body_that_is_not_json_or_has_no_event_id_is_a_bad_request() {
    let test = inbound_context();
    let not_json = request_signed(b"{not json", Utc::now().timestamp(), SIGNING_SECRET);
    assert_eq!(
        Slack
            .verify_webhook(&test.ctx(), &not_json)
            .unwrap_err()
            .status,
        400
    );
    let mut body = message_event();
    body.as_object_mut().unwrap().remove("event_id");
    assert_eq!(
        Slack
            .verify_webhook(&test.ctx(), &signed(&body))
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn a_rate_limit_notice_is_acknowledged_and_not_stored() {
    // The app_rate_limited payload of the Events API documentation.
    let test = inbound_context();
    let body = json!({
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "type": "app_rate_limited",
        "team_id": "T123456",
        "minute_rate_limited": 1518467820,
        "api_app_id": "A123456"
    });
    assert!(matches!(
        Slack.verify_webhook(&test.ctx(), &signed(&body)),
        Ok(WebhookVerdict::Respond(_))
    ));
}

#[test]
fn a_missing_signing_secret_is_a_server_error_naming_the_field() {
    let test = TestContext::new(&["network:inbound"], json!({"botToken": BOT_TOKEN}));
    let rejection = Slack
        .verify_webhook(&test.ctx(), &signed(&message_event()))
        .unwrap_err();
    assert_eq!(rejection.status, 500);
    assert!(rejection.reason.contains("signingSecret"), "{rejection}");
}

// ---------------------------------------------------------------- handle_incoming

#[tokio::test]
async fn a_user_message_becomes_a_message_of_its_channel() {
    let events = messages_of(&message_event()).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "C123ABC456:1355517523.000005");
    assert_eq!(message.conversation_id.as_deref(), Some("C123ABC456"));
    assert_eq!(message.sender, Participant::new("U123ABC456"));
    assert!(message.recipients.is_empty());
    assert_eq!(message.text, "Hello world");
    let expected: DateTime<Utc> = Utc.timestamp_opt(1355517523, 5_000).unwrap();
    assert_eq!(message.sent_at, expected);
    assert_eq!(message.raw, message_event());
}

#[tokio::test]
async fn a_thread_reply_stays_in_its_channel_with_the_thread_in_raw() {
    let body = with_event(json!({
        "type": "message",
        "channel": "C123ABC456",
        "user": "U222222222",
        "text": "Agreed &amp; done: &lt;ok&gt; <@U123ABC456>",
        "ts": "1355517600.000100",
        "thread_ts": "1355517523.000005",
        "parent_user_id": "U123ABC456",
        "channel_type": "channel"
    }));
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "C123ABC456:1355517600.000100");
    assert_eq!(message.conversation_id.as_deref(), Some("C123ABC456"));
    assert_eq!(message.text, "Agreed & done: <ok> <@U123ABC456>");
    assert_eq!(message.raw["event"]["thread_ts"], "1355517523.000005");
}

#[tokio::test]
async fn an_app_mention_is_the_same_message_as_its_message_event() {
    // Proves: subscribed to both, the two deliveries of one message carry one provider id.
    let body = with_event(json!({
        "type": "app_mention",
        "user": "U123ABC456",
        "text": "<@U0LAN0Z89> is it everything a river should be?",
        "ts": "1355517523.000005",
        "channel": "C123ABC456",
        "event_ts": "1355517523.000005"
    }));
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, "C123ABC456:1355517523.000005");
}

#[tokio::test]
async fn a_direct_message_is_filed_under_its_im_channel() {
    let body = with_event(json!({
        "type": "message",
        "channel": "D024BE91L",
        "user": "U2147483697",
        "text": "Hello hello can you hear me?",
        "ts": "1355517523.000005",
        "event_ts": "1355517523.000005",
        "channel_type": "im"
    }));
    let events = messages_of(&body).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.conversation_id.as_deref(), Some("D024BE91L"));
}

#[tokio::test]
async fn bot_messages_edits_deletions_and_notices_are_ignored() {
    let ignored = [
        // Our own chat.postMessage, echoed back: a user message with a bot_id.
        json!({"type": "message", "channel": "C1", "user": "U0BOTUSER1", "bot_id": "B123ABC456",
               "text": "Here's a message for you", "ts": "1503435956.000247"}),
        // A legacy bot message.
        json!({"type": "message", "subtype": "bot_message", "channel": "C1", "bot_id": "B1",
               "username": "ecto1", "text": "beep", "ts": "1358877455.000010"}),
        // The message_changed example of Slack's documentation.
        json!({"type": "message", "subtype": "message_changed", "hidden": true,
               "channel": "C123ABC456", "ts": "1358878755.000001",
               "message": {"type": "message", "user": "U123ABC456", "text": "Hello, world!",
                           "ts": "1355517523.000005",
                           "edited": {"user": "U123ABC456", "ts": "1358878755.000001"}}}),
        json!({"type": "message", "subtype": "message_deleted", "hidden": true,
               "channel": "C123ABC456", "ts": "1358878755.000001",
               "deleted_ts": "1358878749.000002"}),
        json!({"type": "message", "subtype": "channel_join", "channel": "C1", "user": "U1",
               "text": "<@U1> has joined the channel", "ts": "1358877455.000010"}),
        // A file shared without a comment.
        json!({"type": "message", "subtype": "file_share", "channel": "C1", "user": "U1",
               "text": "", "ts": "1358877455.000010", "files": [{"id": "F1"}]}),
        // Another event type altogether.
        json!({"type": "reaction_added", "user": "U123ABC456", "reaction": "thumbsup",
               "item": {"type": "message", "channel": "C1", "ts": "1360782400.498405"},
               "event_ts": "1360782804.083113"}),
    ];
    for event in ignored {
        let events = messages_of(&with_event(event.clone())).await;
        assert!(events.is_empty(), "{event} gave {events:?}");
    }
}

#[tokio::test]
async fn a_file_shared_with_a_comment_is_kept() {
    let body = with_event(json!({
        "type": "message", "subtype": "file_share", "channel": "C1", "user": "U1",
        "text": "the report", "ts": "1358877455.000010", "files": [{"id": "F1"}]
    }));
    assert_eq!(messages_of(&body).await.len(), 1);
}

#[tokio::test]
async fn a_malformed_event_is_an_error_naming_the_problem() {
    let test = inbound_context();
    let not_json = request_signed(b"{oops", Utc::now().timestamp(), SIGNING_SECRET);
    let err = Slack
        .handle_incoming(&test.ctx(), not_json)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Other(m) if m.contains("not JSON")),
        "{err}"
    );

    let no_event = json!({"type": "event_callback", "event_id": "Ev1"});
    let err = Slack
        .handle_incoming(&test.ctx(), signed(&no_event))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`event`"), "{err}");

    let no_ts = with_event(json!({"type": "message", "channel": "C1", "user": "U1", "text": "hi"}));
    let err = Slack
        .handle_incoming(&test.ctx(), signed(&no_ts))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`ts`"), "{err}");
}

#[tokio::test]
async fn handling_the_same_delivery_twice_gives_the_same_result() {
    let test = inbound_context();
    let request = signed(&message_event());
    let first = Slack
        .handle_incoming(&test.ctx(), request.clone())
        .await
        .unwrap();
    let second = Slack.handle_incoming(&test.ctx(), request).await.unwrap();
    assert_eq!(first, second);
}

// ---------------------------------------------------------------- send_message

#[tokio::test]
async fn a_message_is_posted_to_its_conversation_with_the_bot_token() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/api/chat.postMessage", [Canned::json(200, posted())]);
    let test = local_context(&server);

    let sent = Slack
        .send_message(
            &test.ctx(),
            outbound(Some("C123ABC456"), &[], "Hello & <welcome>"),
        )
        .await
        .unwrap();

    let requests = server.requests_to("/api/chat.postMessage");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {BOT_TOKEN}").as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        body_of(request),
        json!({"channel": "C123ABC456", "text": "Hello & <welcome>"})
    );
    assert_eq!(sent.provider_message_id, "C123ABC456:1503435956.000247");
    assert_eq!(sent.status, "sent");
    assert_eq!(
        sent.sender,
        Some(Participant {
            address: "U0BOTUSER1".to_owned(),
            display_name: Some("ecto1".to_owned()),
        })
    );
    assert_eq!(
        sent.sent_at,
        Utc.timestamp_opt(1503435956, 247_000).unwrap()
    );
    assert_eq!(sent.id, outbound(None, &[], "").id);
}

#[tokio::test]
async fn a_reply_goes_into_the_thread_of_the_message_it_answers() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/api/chat.postMessage", [Canned::json(200, posted())]);
    let test = local_context(&server);
    let mut msg = outbound(None, &[], "On it");
    msg.in_reply_to = Some("C123ABC456:1355517523.000005".to_owned());

    Slack.send_message(&test.ctx(), msg).await.unwrap();

    assert_eq!(
        body_of(&server.requests()[0]),
        json!({"channel": "C123ABC456", "text": "On it", "thread_ts": "1355517523.000005"})
    );
}

#[tokio::test]
async fn a_single_recipient_is_the_channel_when_there_is_no_conversation() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/api/chat.postMessage", [Canned::json(200, posted())]);
    let test = local_context(&server);

    Slack
        .send_message(&test.ctx(), outbound(None, &["U123ABC456"], "Hi"))
        .await
        .unwrap();
    assert_eq!(body_of(&server.requests()[0])["channel"], "U123ABC456");

    let err = Slack
        .send_message(&test.ctx(), outbound(None, &["U1", "U2"], "Hi"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exactly one recipient"), "{err}");
    let mut across = outbound(Some("C999"), &[], "Hi");
    across.in_reply_to = Some("C123ABC456:1355517523.000005".to_owned());
    assert!(Slack.send_message(&test.ctx(), across).await.is_err());
    assert_eq!(
        server.requests().len(),
        1,
        "no request for a message with no channel"
    );
}

#[tokio::test]
async fn an_ok_false_answer_is_an_error_naming_slacks_code() {
    let (server, err) = refused(
        200,
        json!({"ok": false, "error": "channel_not_found"}),
        outbound(Some("C0NOTHERE"), &[], "Hi"),
    )
    .await;
    assert!(
        matches!(&err, PluginError::Other(m) if m.contains("channel_not_found")),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(server.requests().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_missing_scope_names_the_scope_needed() {
    let (_server, err) = refused(200, json!({"ok": false, "error": "missing_scope", "needed": "chat:write", "provided": "channels:history"}), outbound(Some("C1"), &[], "Hi")).await;
    assert!(
        err.to_string()
            .contains("missing_scope (needed: chat:write)"),
        "{err}"
    );
}

#[tokio::test]
async fn ratelimited_in_an_ok_false_body_is_a_429() {
    let (_server, err) = refused(
        200,
        json!({"ok": false, "error": "ratelimited"}),
        outbound(Some("C1"), &[], "Hi"),
    )
    .await;
    assert!(
        matches!(err, PluginError::Http { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_internal_error_is_transient() {
    let (_server, err) = refused(
        200,
        json!({"ok": false, "error": "internal_error"}),
        outbound(Some("C1"), &[], "Hi"),
    )
    .await;
    assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/api/chat.postMessage",
        [
            Canned::json(429, json!({"ok": false, "error": "ratelimited"}))
                .header("retry-after", "1"),
            Canned::json(200, posted()),
        ],
    );
    let test = local_context(&server);
    let started = std::time::Instant::now();
    let sent = Slack
        .send_message(&test.ctx(), outbound(Some("C123ABC456"), &[], "Hi"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "C123ABC456:1503435956.000247");
    assert_eq!(server.requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn a_500_is_retried_until_it_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/api/chat.postMessage",
        [Canned::status(500), Canned::json(200, posted())],
    );
    let test = local_context(&server);
    Slack
        .send_message(&test.ctx(), outbound(Some("C123ABC456"), &[], "Hi"))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_permanent_4xx_is_an_http_error_without_the_token() {
    let (server, err) = refused(
        404,
        json!({"ok": false, "error": "unknown_method"}),
        outbound(Some("C1"), &[], "Hi"),
    )
    .await;
    assert!(
        matches!(err, PluginError::Http { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(BOT_TOKEN));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn slack_com_is_refused_without_its_grant() {
    // Proves: with the manifest's default base URL and no grant for slack.com, nothing is
    // sent and the error names the permission.
    let test = context("https://slack.com/api", &["network:inbound"]);
    let err = Slack
        .send_message(&test.ctx(), outbound(Some("C1"), &[], "Hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::PermissionDenied(_)), "{err:?}");
    assert!(
        err.to_string().contains("network:outbound:slack.com"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_bot_token_is_a_config_error_naming_it() {
    let test = TestContext::new(
        &["network:outbound:slack.com"],
        json!({"signingSecret": SIGNING_SECRET}),
    );
    let err = Slack
        .send_message(&test.ctx(), outbound(Some("C1"), &[], "Hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Config { field, .. } if field == "botToken"),
        "{err:?}"
    );
}
