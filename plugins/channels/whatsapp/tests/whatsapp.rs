// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/channels/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The WhatsApp channel against Meta's documented webhooks and Cloud API, with a fixture
//! server standing in for `graph.facebook.com`.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tributary_channel_whatsapp::{conversation_id, WhatsApp};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::meta;
use tributary_plugin_sdk::testing::{outbound_message, Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, Participant, PluginError,
    WebhookResponse, WebhookVerdict,
};
use uuid::Uuid;

const PHONE_NUMBER_ID: &str = "106540352242922";
const APP_SECRET: &str = "d2a0f1c8e7b6a5948372615049382716";
const VERIFY_TOKEN: &str = "meatyhamhock";
const ACCESS_TOKEN: &str = "EAAJB-example-access-token";
const URL: &str = "https://hub.example.com/webhooks/whatsapp/wa-main";
const MESSAGES_PATH: &str = "/v21.0/106540352242922/messages";
const USER: &str = "16505551234";
const INBOUND_ID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
const SENT_ID: &str = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";

fn config(api_base_url: Option<&str>) -> Value {
    let mut config = json!({
        "phoneNumberId": PHONE_NUMBER_ID,
        "accessToken": ACCESS_TOKEN,
        "appSecret": APP_SECRET,
        "verifyToken": VERIFY_TOKEN,
    });
    if let Some(base) = api_base_url {
        config["apiBaseUrl"] = json!(base);
    }
    config
}

fn test_context() -> TestContext {
    TestContext::new(&["network:inbound"], config(None))
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

fn received_at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 9, 12, 0, 0).unwrap()
}

/// The envelope of a `messages` webhook around `value`'s own fields.
fn webhook(phone_number_id: &str, value: Value) -> Value {
    let mut value_object = json!({
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "15550783881",
            "phone_number_id": phone_number_id
        }
    });
    for (key, field) in value.as_object().unwrap() {
        value_object[key] = field.clone();
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{ "value": value_object, "field": "messages" }]
        }]
    })
}

/// A text message, as in Meta's messages webhook reference.
fn text_message() -> Value {
    webhook(
        PHONE_NUMBER_ID,
        json!({
            "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": USER }],
            "messages": [{
                "from": USER,
                "id": INBOUND_ID,
                "timestamp": "1749416383",
                "type": "text",
                "text": { "body": "Does it come in another color?" }
            }]
        }),
    )
}

fn one_message(message: Value) -> Value {
    webhook(
        PHONE_NUMBER_ID,
        json!({
            "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": USER }],
            "messages": [message]
        }),
    )
}

fn one_status(status: Value) -> Value {
    webhook(PHONE_NUMBER_ID, json!({ "statuses": [status] }))
}

/// A `delivered` status, as in Meta's status messages webhook reference.
fn delivered() -> Value {
    one_status(json!({
        "id": SENT_ID,
        "status": "delivered",
        "timestamp": "1750263773",
        "recipient_id": USER,
        "pricing": {
            "billable": true,
            "pricing_model": "PMP",
            "category": "utility",
            "type": "regular"
        }
    }))
}

/// A `failed` status with the error Meta documents for a closed customer service window.
fn failed() -> Value {
    one_status(json!({
        "id": SENT_ID,
        "status": "failed",
        "timestamp": "1750263780",
        "recipient_id": USER,
        "errors": [{
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {
                "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
            },
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
        }]
    }))
}

fn post(body: &[u8], signature: Option<String>) -> IncomingWebhook {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(signature) = signature {
        headers.push(("x-hub-signature-256".to_owned(), signature));
    }
    IncomingWebhook {
        method: "POST".to_owned(),
        url: URL.to_owned(),
        query: None,
        headers,
        body: body.to_vec(),
        received_at: received_at(),
    }
}

fn signed(payload: &Value) -> IncomingWebhook {
    let body = payload.to_string().into_bytes();
    let signature = meta::sign(&secret(APP_SECRET), &body);
    post(&body, Some(signature))
}

fn handshake(query: &str) -> IncomingWebhook {
    IncomingWebhook {
        method: "GET".to_owned(),
        url: format!("{URL}?{query}"),
        query: Some(query.to_owned()),
        headers: Vec::new(),
        body: Vec::new(),
        received_at: received_at(),
    }
}

fn verdict(request: &IncomingWebhook) -> Result<WebhookVerdict, (u16, String)> {
    WhatsApp
        .verify_webhook(&test_context().ctx(), request)
        .map_err(|r| (r.status, r.reason))
}

fn delivery_id(request: &IncomingWebhook) -> String {
    match verdict(request) {
        Ok(WebhookVerdict::Accept { delivery_id }) => delivery_id,
        other => panic!("expected the delivery to be accepted, got {other:?}"),
    }
}

async fn handle(payload: &Value) -> Vec<IncomingEvent> {
    WhatsApp
        .handle_incoming(&test_context().ctx(), signed(payload))
        .await
        .unwrap()
}

// --- verify_webhook ---------------------------------------------------------------------

#[test]
fn the_handshake_echoes_the_challenge_for_the_right_token() {
    let request =
        handshake("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock");
    assert_eq!(
        verdict(&request),
        Ok(WebhookVerdict::Respond(WebhookResponse::text("1158201444")))
    );
}

#[test]
fn a_handshake_with_another_token_is_forbidden() {
    let request = handshake("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess");
    let (status, reason) = verdict(&request).unwrap_err();
    assert_eq!(status, 403);
    assert!(
        !reason.contains(VERIFY_TOKEN) && !reason.contains("guess"),
        "{reason}"
    );
}

#[test]
fn a_get_that_is_no_handshake_is_a_bad_request() {
    assert_eq!(
        verdict(&handshake("hub.mode=unsubscribe")).unwrap_err().0,
        400
    );
    assert_eq!(
        verdict(&handshake(
            "hub.mode=subscribe&hub.verify_token=meatyhamhock"
        ))
        .unwrap_err()
        .0,
        400
    );
}

#[test]
fn a_signed_message_is_accepted_under_its_message_id() {
    assert_eq!(
        delivery_id(&signed(&text_message())),
        format!("message:{INBOUND_ID}")
    );
}

#[test]
fn each_status_of_a_sent_message_is_a_delivery_of_its_own() {
    assert_eq!(
        delivery_id(&signed(&delivered())),
        format!("status:{SENT_ID}:delivered")
    );
    assert_eq!(
        delivery_id(&signed(&failed())),
        format!("status:{SENT_ID}:failed")
    );
}

#[test]
fn a_batch_is_named_by_its_items_whatever_their_order() {
    let status = |id: &str, state: &str| json!({ "id": id, "status": state, "timestamp": "1", "recipient_id": USER });
    let forward = webhook(
        PHONE_NUMBER_ID,
        json!({ "statuses": [status("wamid.A", "sent"), status("wamid.B", "read")] }),
    );
    let backward = webhook(
        PHONE_NUMBER_ID,
        json!({ "statuses": [status("wamid.B", "read"), status("wamid.A", "sent")] }),
    );
    let other = webhook(
        PHONE_NUMBER_ID,
        json!({ "statuses": [status("wamid.A", "sent"), status("wamid.B", "delivered")] }),
    );
    let id = delivery_id(&signed(&forward));
    assert!(id.starts_with("items-sha256:"), "{id}");
    assert_eq!(id, delivery_id(&signed(&backward)));
    assert_ne!(id, delivery_id(&signed(&other)));
}

#[test]
fn a_delivery_without_messages_or_statuses_is_named_by_its_body() {
    let update = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{
            "field": "account_update",
            "value": { "phone_number": "15550783881", "event": "VERIFIED_ACCOUNT" }
        }]}]
    });
    let request = signed(&update);
    let id = delivery_id(&request);
    use sha2::Digest as _;
    assert_eq!(
        id,
        format!(
            "body-sha256:{}",
            hex::encode(sha2::Sha256::digest(&request.body))
        )
    );
}

#[test]
fn a_tampered_body_is_rejected() {
    let body = text_message().to_string();
    let signature = meta::sign(&secret(APP_SECRET), body.as_bytes());
    let tampered = body.replace("another color", "another colour");
    let (status, reason) = verdict(&post(tampered.as_bytes(), Some(signature))).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("X-Hub-Signature-256"), "{reason}");
}

#[test]
fn a_signature_made_with_another_secret_is_rejected() {
    let body = text_message().to_string();
    let signature = meta::sign(&secret("not-the-app-secret"), body.as_bytes());
    let (status, reason) = verdict(&post(body.as_bytes(), Some(signature))).unwrap_err();
    assert_eq!(status, 401);
    assert!(!reason.contains(APP_SECRET), "{reason}");
}

#[test]
fn a_request_without_a_signature_is_rejected() {
    let body = text_message().to_string();
    let (status, reason) = verdict(&post(body.as_bytes(), None)).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("missing"), "{reason}");
    let (status, _) = verdict(&post(body.as_bytes(), Some("sha1=abc".to_owned()))).unwrap_err();
    assert_eq!(status, 401);
}

#[test]
fn a_signed_body_that_is_not_json_is_a_bad_request() {
    let body = b"not json";
    let signature = meta::sign(&secret(APP_SECRET), body);
    assert_eq!(verdict(&post(body, Some(signature))).unwrap_err().0, 400);
    let mut put = signed(&text_message());
    put.method = "PUT".to_owned();
    assert_eq!(verdict(&put).unwrap_err().0, 405);
}

#[test]
fn a_misconfigured_instance_answers_500_naming_the_field() {
    let ctx = TestContext::new(&[], json!({ "phoneNumberId": PHONE_NUMBER_ID }));
    let rejection = WhatsApp
        .verify_webhook(&ctx.ctx(), &signed(&text_message()))
        .unwrap_err();
    assert_eq!(rejection.status, 500);
    assert!(
        rejection.reason.contains("accessToken"),
        "{}",
        rejection.reason
    );
}

// --- handle_incoming ----------------------------------------------------------------------

#[tokio::test]
async fn a_text_message_becomes_a_message_from_the_named_contact() {
    let events = handle(&text_message()).await;
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(message.provider_message_id, INBOUND_ID);
    assert_eq!(
        message.sender,
        Participant {
            address: USER.to_owned(),
            display_name: Some("Sheena Nelson".to_owned())
        }
    );
    assert_eq!(message.recipients, vec![Participant::new("15550783881")]);
    assert_eq!(message.text, "Does it come in another color?");
    assert_eq!(
        message.conversation_id.as_deref(),
        Some("106540352242922|16505551234")
    );
    assert_eq!(message.sent_at, Utc.timestamp_opt(1749416383, 0).unwrap());
    assert_eq!(message.raw["message"]["id"], INBOUND_ID);
    assert_eq!(message.raw["metadata"]["phone_number_id"], PHONE_NUMBER_ID);
}

#[tokio::test]
async fn handling_the_same_delivery_twice_gives_the_same_events() {
    assert_eq!(handle(&text_message()).await, handle(&text_message()).await);
}

#[tokio::test]
async fn media_and_other_types_keep_a_placeholder_text() {
    let cases = [
        (
            json!({ "from": USER, "id": "wamid.IMG", "timestamp": "1749416383", "type": "image",
                    "image": { "caption": "This one?", "mime_type": "image/jpeg",
                               "sha256": "zsqpHQ5MlkiK5ZvRjP4qMtGhVvSGPZ5WNZxU3+vlGw4=", "id": "1003383421387256" } }),
            "[image] This one?",
        ),
        (
            json!({ "from": USER, "id": "wamid.DOC", "timestamp": "1749416383", "type": "document",
                    "document": { "filename": "invoice.pdf", "mime_type": "application/pdf",
                                  "sha256": "abc", "id": "1003383421387257" } }),
            "[document: invoice.pdf]",
        ),
        (
            json!({ "from": USER, "id": "wamid.LOC", "timestamp": "1749416383", "type": "location",
                    "location": { "latitude": 37.483307, "longitude": 122.148981,
                                  "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto, CA 94301" } }),
            "[location] Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301, (37.483307, 122.148981)",
        ),
        (
            json!({ "from": USER, "id": "wamid.BTN", "timestamp": "1749416383", "type": "interactive",
                    "context": { "from": "15550783881", "id": SENT_ID },
                    "interactive": { "type": "button_reply",
                                     "button_reply": { "id": "yes-button", "title": "Yes, please" } } }),
            "Yes, please",
        ),
        (
            json!({ "from": USER, "id": "wamid.UNS", "timestamp": "1749416383", "type": "unsupported",
                    "errors": [{ "code": 131051, "title": "Message type unknown",
                                 "message": "Message type unknown",
                                 "error_data": { "details": "Message type is currently not supported." } }] }),
            "[unsupported message]",
        ),
    ];
    for (message, text) in cases {
        let events = handle(&one_message(message.clone())).await;
        let [IncomingEvent::Message(inbound)] = events.as_slice() else {
            panic!("expected one message for {message}, got {events:?}");
        };
        assert_eq!(inbound.text, text);
    }
}

#[tokio::test]
async fn reactions_and_system_notices_are_not_messages() {
    let reaction = json!({ "from": USER, "id": "wamid.REACT", "timestamp": "1749416383", "type": "reaction",
                           "reaction": { "message_id": SENT_ID, "emoji": "\u{1F44D}" } });
    assert!(handle(&one_message(reaction)).await.is_empty());
    let system = json!({ "from": USER, "id": "wamid.SYS", "timestamp": "1749416383", "type": "system",
                         "system": { "body": "User A changed from 1650 to 1651", "type": "user_changed_number" } });
    assert!(handle(&one_message(system)).await.is_empty());
}

#[tokio::test]
async fn changes_for_another_number_or_field_are_ignored() {
    let other_number = webhook(
        "999999999999999",
        json!({ "messages": [{ "from": USER, "id": "wamid.X", "timestamp": "1", "type": "text",
                               "text": { "body": "hi" } }] }),
    );
    assert!(handle(&other_number).await.is_empty());
    let template_update = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{
            "field": "message_template_status_update",
            "value": { "event": "APPROVED", "message_template_id": 12345678,
                       "message_template_name": "order_update", "message_template_language": "en_US",
                       "reason": "NONE" }
        }]}]
    });
    assert!(handle(&template_update).await.is_empty());
}

#[tokio::test]
async fn statuses_become_delivery_statuses() {
    let events = handle(&delivered()).await;
    let [IncomingEvent::DeliveryStatus(update)] = events.as_slice() else {
        panic!("expected one status, got {events:?}");
    };
    assert_eq!(update.provider_message_id, SENT_ID);
    assert_eq!(update.status, "delivered");
    assert_eq!(update.error, None);
    assert_eq!(update.at, Utc.timestamp_opt(1750263773, 0).unwrap());

    let events = handle(&failed()).await;
    let [IncomingEvent::DeliveryStatus(update)] = events.as_slice() else {
        panic!("expected one status, got {events:?}");
    };
    assert_eq!(update.status, "failed");
    let error = update.error.as_deref().unwrap();
    assert!(
        error.starts_with("WhatsApp error 131047 Re-engagement message: Message failed"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreadable_payload_is_an_error_that_says_why() {
    let ctx = test_context().ctx();
    let error = WhatsApp
        .handle_incoming(
            &ctx,
            signed(&json!({ "object": "whatsapp_business_account" })),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`entry`"), "{error}");
    let no_id = one_message(
        json!({ "from": USER, "timestamp": "1", "type": "text", "text": { "body": "hi" } }),
    );
    let error = WhatsApp
        .handle_incoming(&ctx, signed(&no_id))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`id`"), "{error}");
    let mut not_json = signed(&text_message());
    not_json.body = b"<xml/>".to_vec();
    assert!(WhatsApp.handle_incoming(&ctx, not_json).await.is_err());
}

// --- send_message ---------------------------------------------------------------------

/// The answer to a send, as in Meta's messages API reference.
fn accepted() -> Value {
    json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": "+16505551234", "wa_id": USER }],
        "messages": [{ "id": SENT_ID }]
    })
}

/// A Graph error body, its keys in the order Meta writes them (message first). It is a
/// string, as `serde_json` would sort the keys.
fn graph_error(code: i64, message: &str, details: &str, subcode: Option<i64>) -> String {
    let subcode = subcode.map_or_else(String::new, |s| format!(r#","error_subcode":{s}"#));
    format!(
        r#"{{"error":{{"message":{},"type":"OAuthException","code":{code},"error_data":{{"messaging_product":"whatsapp","details":{}}}{subcode},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}}}"#,
        json!(message),
        json!(details)
    )
}

fn graph_answer(status: u16, body: String) -> Canned {
    Canned::status(status)
        .header("content-type", "application/json")
        .body(body)
}

fn sending(server: &FixtureServer) -> TestContext {
    TestContext::new(
        &["network:outbound:127.0.0.1"],
        config(Some(&server.url("/v21.0"))),
    )
    .with_fast_retries()
}

fn reply(to: &[&str]) -> OutboundMessage {
    let mut msg = outbound_message(Uuid::from_u128(9), None, to, "Yes: blue and green.");
    msg.status_callback_url = Some(URL.to_owned());
    msg
}

#[tokio::test]
async fn a_message_is_posted_to_the_cloud_api_as_documented() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(MESSAGES_PATH, [Canned::json(200, accepted())]);
    let mut msg = reply(&["+1 650-555-1234"]);
    msg.in_reply_to = Some(INBOUND_ID.to_owned());

    let sent = WhatsApp
        .send_message(&sending(&server).ctx(), msg)
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, MESSAGES_PATH);
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": USER,
            "type": "text",
            "text": { "body": "Yes: blue and green." },
            "context": { "message_id": INBOUND_ID }
        })
    );
    assert_eq!(sent.id, Uuid::from_u128(9));
    assert_eq!(sent.provider_message_id, SENT_ID);
    assert_eq!(sent.status, "accepted");
    assert_eq!(sent.sender, None);
}

#[tokio::test]
async fn a_reply_without_recipients_goes_to_the_user_of_its_conversation() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(MESSAGES_PATH, [Canned::json(200, accepted())]);
    let mut msg = reply(&[]);
    msg.conversation_id = Some(conversation_id(PHONE_NUMBER_ID, USER));
    WhatsApp
        .send_message(&sending(&server).ctx(), msg)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    assert_eq!(body["to"], USER);
    assert!(body.get("context").is_none());
}

#[tokio::test]
async fn a_message_needs_exactly_one_recipient_and_some_text() {
    let server = FixtureServer::start().await.unwrap();
    let ctx = sending(&server).ctx();
    let none = WhatsApp.send_message(&ctx, reply(&[])).await.unwrap_err();
    assert!(none.to_string().contains("exactly one recipient"), "{none}");
    let two = WhatsApp
        .send_message(&ctx, reply(&[USER, "16505550000"]))
        .await
        .unwrap_err();
    assert!(two.to_string().contains("names 2"), "{two}");
    let mut empty = reply(&[USER]);
    empty.text = String::new();
    assert!(WhatsApp.send_message(&ctx, empty).await.is_err());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn graph_errors_are_named_by_code_and_message() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [graph_answer(
            400,
            graph_error(
                131030,
                "(#131030) Recipient phone number not in allowed list",
                "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.",
                Some(2655007),
            ),
        )],
    );
    let error = WhatsApp
        .send_message(&sending(&server).ctx(), reply(&[USER]))
        .await
        .unwrap_err();
    match &error {
        PluginError::Http { status, message } => {
            assert_eq!(*status, 400);
            // The SDK keeps the first 300 characters of the answer: the code, message and
            // type are read from them even though the end (subcode, trace id) is cut off.
            assert!(message.starts_with("Graph API error 131030"), "{message}");
            assert!(
                message.contains(": (#131030) Recipient phone number not in allowed list"),
                "{message}"
            );
            assert!(message.contains("[OAuthException"), "{message}");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert!(!error.to_string().contains(ACCESS_TOKEN));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_throttling_error_in_a_400_becomes_a_transient_429() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [graph_answer(
            400,
            graph_error(
                130429,
                "(#130429) Rate limit hit",
                "Cloud API message throughput has been reached.",
                None,
            ),
        )],
    );
    let error = WhatsApp
        .send_message(&sending(&server).ctx(), reply(&[USER]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Http { status: 429, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert!(
        error
            .to_string()
            .contains("Graph API error 130429: (#130429) Rate limit hit"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam"),
        "{error}"
    );
}

#[tokio::test]
async fn an_error_in_a_200_answer_is_still_an_error() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [graph_answer(
            200,
            graph_error(
                100,
                "Invalid parameter",
                "Param text['body'] is required.",
                None,
            ),
        )],
    );
    let error = WhatsApp
        .send_message(&sending(&server).ctx(), reply(&[USER]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Graph API error 100"), "{error}");
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_then_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [
            graph_answer(
                429,
                graph_error(4, "(#4) Application request limit reached", "", None),
            )
            .header("retry-after", "1"),
            Canned::json(200, accepted()),
        ],
    );
    let started = std::time::Instant::now();
    let sent = WhatsApp
        .send_message(&sending(&server).ctx(), reply(&[USER]))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, SENT_ID);
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [Canned::status(500), Canned::json(200, accepted())],
    );
    let sent = WhatsApp
        .send_message(&sending(&server).ctx(), reply(&[USER]))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, SENT_ID);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_host_outside_the_grants_is_refused_naming_the_permission() {
    let error = WhatsApp
        .send_message(&test_context().ctx(), reply(&[USER]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::PermissionDenied(_)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("network:outbound:graph.facebook.com"),
        "{error}"
    );
}

#[test]
fn inbound_and_outbound_agree_on_the_conversation_id() {
    assert_eq!(
        conversation_id(PHONE_NUMBER_ID, "+1 (650) 555-1234"),
        "106540352242922|16505551234"
    );
}
