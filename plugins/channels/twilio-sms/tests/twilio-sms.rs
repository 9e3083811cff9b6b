// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/channels/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Twilio SMS channel against Twilio's documented webhooks and Messages API, with a
//! fixture server standing in for `api.twilio.com`.

use std::time::Duration;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tributary_channel_twilio_sms::{conversation_id, TwilioSms};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::twilio;
use tributary_plugin_sdk::testing::{outbound_message, Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, Participant, PluginError,
    WebhookVerdict,
};
use uuid::Uuid;

const ACCOUNT: &str = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const TOKEN: &str = "12345";
const OUR_NUMBER: &str = "+14152001331";
const URL: &str = "https://hub.example.com/webhooks/twilio-sms/sms-main";
const MESSAGES_PATH: &str = "/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages.json";

/// An inbound SMS as Twilio posts it (parameters of twilio.com/docs/messaging/guides/webhook-request).
const INBOUND: &str = "ToCountry=US&ToState=CA&SmsMessageSid=SM5ab7891328b440f04b7c83b459fc85fd&NumMedia=0&ToCity=SAN+FRANCISCO&FromZip=30512&SmsSid=SM5ab7891328b440f04b7c83b459fc85fd&FromState=GA&SmsStatus=received&FromCity=BLAIRSVILLE&Body=Is+the+shop+open+today%3F&FromCountry=US&To=%2B14152001331&ToZip=94105&NumSegments=1&MessageSid=SM5ab7891328b440f04b7c83b459fc85fd&AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&From=%2B17067815146&ApiVersion=2010-04-01";

/// An MMS with two images and no text.
const INBOUND_MMS: &str = "SmsMessageSid=MM0123456789abcdef0123456789abcdef&NumMedia=2&SmsSid=MM0123456789abcdef0123456789abcdef&SmsStatus=received&Body=&To=%2B14152001331&NumSegments=1&MessageSid=MM0123456789abcdef0123456789abcdef&AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&From=%2B17067815146&ApiVersion=2010-04-01&MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX%2FMessages%2FMM0123456789abcdef0123456789abcdef%2FMedia%2FME1&MediaContentType1=image%2Fpng&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX%2FMessages%2FMM0123456789abcdef0123456789abcdef%2FMedia%2FME2";

/// A status callback (twilio.com/docs/messaging/guides/track-outbound-message-status).
const DELIVERED: &str = "SmsSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&SmsStatus=delivered&MessageStatus=delivered&To=%2B17067815146&MessageSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&From=%2B14152001331&ApiVersion=2010-04-01";

/// A status callback for a message that could not be delivered.
const UNDELIVERED: &str = "ErrorCode=30003&SmsSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B17067815146&MessageSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&From=%2B14152001331&ApiVersion=2010-04-01";

fn config(api_base_url: Option<&str>) -> Value {
    let mut config = json!({
        "accountSid": ACCOUNT,
        "authToken": TOKEN,
        "fromNumber": OUR_NUMBER,
    });
    if let Some(base) = api_base_url {
        config["apiBaseUrl"] = json!(base);
    }
    config
}

fn test_context() -> TestContext {
    TestContext::new(&["network:inbound"], config(None))
}

fn token(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn received_at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

/// A POST of `body` to `url`, signed with `secret` over `signed_url` when given.
fn post(url: &str, body: &str, signature: Option<String>) -> IncomingWebhook {
    let mut headers = vec![(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature".to_owned(), signature));
    }
    IncomingWebhook {
        method: "POST".to_owned(),
        url: url.to_owned(),
        query: url.split_once('?').map(|(_, q)| q.to_owned()),
        headers,
        body: body.as_bytes().to_vec(),
        received_at: received_at(),
    }
}

fn signed(body: &str) -> IncomingWebhook {
    post(
        URL,
        body,
        Some(twilio::sign(&token(TOKEN), URL, &form(body))),
    )
}

fn verdict(request: &IncomingWebhook) -> Result<WebhookVerdict, (u16, String)> {
    TwilioSms
        .verify_webhook(&test_context().ctx(), request)
        .map_err(|r| (r.status, r.reason))
}

fn accepted(id: &str) -> Result<WebhookVerdict, (u16, String)> {
    Ok(WebhookVerdict::Accept {
        delivery_id: id.to_owned(),
    })
}

async fn handle(request: IncomingWebhook) -> Result<Vec<IncomingEvent>, PluginError> {
    TwilioSms
        .handle_incoming(&test_context().ctx(), request)
        .await
}

// --- verify_webhook ---------------------------------------------------------------------

#[test]
fn a_signed_inbound_sms_is_accepted_under_its_message_sid() {
    assert_eq!(
        verdict(&signed(INBOUND)),
        accepted("SM5ab7891328b440f04b7c83b459fc85fd")
    );
}

#[test]
fn each_status_of_a_sent_message_is_a_delivery_of_its_own() {
    assert_eq!(
        verdict(&signed(DELIVERED)),
        accepted("SM1342fe1b2c904d1ab04f0fc7a58abca9:delivered")
    );
    assert_eq!(
        verdict(&signed(UNDELIVERED)),
        accepted("SM1342fe1b2c904d1ab04f0fc7a58abca9:undelivered")
    );
}

#[test]
fn a_tampered_body_is_rejected() {
    let signature = twilio::sign(&token(TOKEN), URL, &form(INBOUND));
    let tampered = INBOUND.replace("open+today", "closed+today");
    let (status, reason) = verdict(&post(URL, &tampered, Some(signature))).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("X-Twilio-Signature"), "{reason}");
}

#[test]
fn a_tampered_url_is_rejected() {
    let signature = twilio::sign(&token(TOKEN), URL, &form(INBOUND));
    let other = "https://hub.example.com/webhooks/twilio-sms/other-instance";
    assert_eq!(
        verdict(&post(other, INBOUND, Some(signature)))
            .unwrap_err()
            .0,
        401
    );
}

#[test]
fn a_signature_made_with_another_token_is_rejected() {
    let signature = twilio::sign(&token("54321"), URL, &form(INBOUND));
    let (status, reason) = verdict(&post(URL, INBOUND, Some(signature))).unwrap_err();
    assert_eq!(status, 401);
    assert!(!reason.contains(TOKEN), "{reason}");
}

#[test]
fn a_request_without_a_signature_is_rejected() {
    let (status, reason) = verdict(&post(URL, INBOUND, None)).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn a_signed_request_for_another_account_is_rejected() {
    let body = INBOUND.replace(ACCOUNT, "ACYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY");
    let (status, reason) = verdict(&signed(&body)).unwrap_err();
    assert_eq!(status, 401);
    assert!(reason.contains("AccountSid"), "{reason}");
}

#[test]
fn a_signature_over_the_url_with_its_default_port_verifies() {
    let with_port = "https://hub.example.com:443/webhooks/twilio-sms/sms-main";
    let signature = twilio::sign(&token(TOKEN), with_port, &form(INBOUND));
    assert_eq!(
        verdict(&post(URL, INBOUND, Some(signature))),
        accepted("SM5ab7891328b440f04b7c83b459fc85fd")
    );
}

#[test]
fn a_json_body_is_verified_through_body_sha256() {
    use sha2::Digest as _;
    let body = json!({
        "MessageSid": "SM5ab7891328b440f04b7c83b459fc85fd",
        "AccountSid": ACCOUNT,
        "From": "+17067815146",
        "To": OUR_NUMBER,
        "Body": "hello",
        "SmsStatus": "received",
        "NumMedia": 0
    })
    .to_string();
    let url = format!(
        "{URL}?bodySHA256={}",
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );
    let mut request = post(&url, &body, Some(twilio::sign(&token(TOKEN), &url, &[])));
    request.headers[0].1 = "application/json".to_owned();
    assert_eq!(
        verdict(&request),
        accepted("SM5ab7891328b440f04b7c83b459fc85fd")
    );

    let mut tampered = request.clone();
    tampered.body = body.replace("hello", "hullo").into_bytes();
    assert_eq!(verdict(&tampered).unwrap_err().0, 401);
}

#[test]
fn a_json_body_not_named_by_body_sha256_is_refused_though_its_url_is_signed() {
    // The attack: a signature over the bare URL (one Twilio sent, or any URL-only signature)
    // with a body of the attacker's choosing. Without `bodySHA256` the signature covers the
    // URL alone, so it authenticated any JSON body.
    let body = json!({
        "MessageSid": "SMforgedforgedforgedforgedforged00",
        "AccountSid": ACCOUNT,
        "From": "+15550009999",
        "To": OUR_NUMBER,
        "Body": "wire the money",
        "SmsStatus": "received",
        "NumMedia": 0
    })
    .to_string();
    let mut request = post(URL, &body, Some(twilio::sign(&token(TOKEN), URL, &[])));
    request.headers[0].1 = "application/json".to_owned();
    let (status, reason) = verdict(&request).unwrap_err();
    assert_eq!(status, 401, "{reason}");
    assert!(reason.contains("bodySHA256"), "{reason}");
}

/// A `GET` webhook carrying [`INBOUND`] in its URL, signed over that URL, with `body`.
fn signed_get(body: &[u8]) -> IncomingWebhook {
    let url = format!("{URL}?{INBOUND}");
    IncomingWebhook {
        method: "GET".to_owned(),
        url: url.clone(),
        query: Some(INBOUND.to_owned()),
        headers: vec![(
            "x-twilio-signature".to_owned(),
            twilio::sign(&token(TOKEN), &url, &[]),
        )],
        body: body.to_vec(),
        received_at: received_at(),
    }
}

#[test]
fn a_get_with_a_body_is_refused() {
    let request = signed_get(b"Body=not+covered+by+the+signature");
    assert_eq!(verdict(&request).unwrap_err().0, 400);
}

#[test]
fn a_get_webhook_is_verified_over_its_url() {
    let request = signed_get(b"");
    assert_eq!(
        verdict(&request),
        accepted("SM5ab7891328b440f04b7c83b459fc85fd")
    );
}

#[test]
fn signed_requests_that_are_neither_message_nor_status_are_refused_as_unreadable() {
    let no_sid = "AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&MessageStatus=sent";
    assert_eq!(verdict(&signed(no_sid)).unwrap_err().0, 400);
    let no_kind = "AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&MessageSid=SM1";
    assert_eq!(verdict(&signed(no_kind)).unwrap_err().0, 400);
    let mut put = signed(INBOUND);
    put.method = "PUT".to_owned();
    assert_eq!(verdict(&put).unwrap_err().0, 405);
}

#[test]
fn a_misconfigured_instance_answers_500_naming_the_field_not_its_value() {
    let ctx = TestContext::new(
        &[],
        json!({ "accountSid": ACCOUNT, "authToken": 987654, "fromNumber": OUR_NUMBER }),
    );
    let rejection = TwilioSms
        .verify_webhook(&ctx.ctx(), &signed(INBOUND))
        .unwrap_err();
    assert_eq!(rejection.status, 500);
    assert!(
        rejection.reason.contains("authToken"),
        "{}",
        rejection.reason
    );
    assert!(!rejection.reason.contains("987654"), "{}", rejection.reason);
}

// --- handle_incoming ----------------------------------------------------------------------

#[tokio::test]
async fn an_inbound_sms_becomes_a_message_in_the_conversation_of_the_two_numbers() {
    let events = handle(signed(INBOUND)).await.unwrap();
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(
        message.provider_message_id,
        "SM5ab7891328b440f04b7c83b459fc85fd"
    );
    assert_eq!(message.sender, Participant::new("+17067815146"));
    assert_eq!(message.recipients, vec![Participant::new(OUR_NUMBER)]);
    assert_eq!(message.text, "Is the shop open today?");
    assert_eq!(
        message.conversation_id.as_deref(),
        Some("+14152001331|+17067815146")
    );
    assert_eq!(message.sent_at, received_at());
    assert_eq!(message.raw["FromCity"], "BLAIRSVILLE");
    assert_eq!(message.raw["SmsStatus"], "received");
}

#[tokio::test]
async fn handling_the_same_delivery_twice_gives_the_same_events() {
    let first = handle(signed(INBOUND)).await.unwrap();
    let second = handle(signed(INBOUND)).await.unwrap();
    assert_eq!(first, second);
}

#[tokio::test]
async fn an_mms_lists_its_attachments_in_the_text() {
    let events = handle(signed(INBOUND_MMS)).await.unwrap();
    let [IncomingEvent::Message(message)] = events.as_slice() else {
        panic!("expected one message, got {events:?}");
    };
    assert_eq!(
        message.text,
        "[attachment: image/jpeg]\n[attachment: image/png]"
    );
    assert!(message.raw["MediaUrl1"]
        .as_str()
        .unwrap()
        .ends_with("/Media/ME2"));
}

#[tokio::test]
async fn status_callbacks_become_delivery_statuses() {
    let events = handle(signed(DELIVERED)).await.unwrap();
    let [IncomingEvent::DeliveryStatus(update)] = events.as_slice() else {
        panic!("expected one status, got {events:?}");
    };
    assert_eq!(
        update.provider_message_id,
        "SM1342fe1b2c904d1ab04f0fc7a58abca9"
    );
    assert_eq!(update.status, "delivered");
    assert_eq!(update.error, None);
    assert_eq!(update.at, received_at());

    let events = handle(signed(UNDELIVERED)).await.unwrap();
    let [IncomingEvent::DeliveryStatus(update)] = events.as_slice() else {
        panic!("expected one status, got {events:?}");
    };
    assert_eq!(update.status, "undelivered");
    let error = update.error.as_deref().unwrap();
    assert!(
        error.contains("30003") && error.contains("Unreachable destination handset"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreadable_payload_is_an_error_that_says_why() {
    let error = handle(signed("AccountSid=ACX&Body=hi")).await.unwrap_err();
    assert!(error.to_string().contains("MessageSid"), "{error}");

    let mut json_list = signed(INBOUND);
    json_list.headers[0].1 = "application/json".to_owned();
    json_list.body = b"[1, 2]".to_vec();
    let error = handle(json_list).await.unwrap_err();
    assert!(error.to_string().contains("not an object"), "{error}");

    let no_from = INBOUND.replace("&From=%2B17067815146", "");
    let error = handle(signed(&no_from)).await.unwrap_err();
    assert!(error.to_string().contains("`From`"), "{error}");
}

// --- send_message ---------------------------------------------------------------------

/// The Message resource Twilio answers a create with (twilio.com/docs/messaging/api/message-resource).
fn created() -> Value {
    json!({
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": "Yes, until 6pm.",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": null,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": OUR_NUMBER,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": null,
        "sid": "SM1342fe1b2c904d1ab04f0fc7a58abca9",
        "status": "queued",
        "subresource_uris": {
            "media": "/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages/SM1342fe1b2c904d1ab04f0fc7a58abca9/Media.json"
        },
        "to": "+17067815146",
        "uri": "/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages/SM1342fe1b2c904d1ab04f0fc7a58abca9.json"
    })
}

fn twilio_error(code: u32, message: &str, status: u16) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status
    })
}

fn sending(server: &FixtureServer) -> TestContext {
    TestContext::new(
        &["network:outbound:127.0.0.1"],
        config(Some(&server.base_url())),
    )
    .with_fast_retries()
}

fn reply(to: &[&str]) -> OutboundMessage {
    let mut msg = outbound_message(Uuid::from_u128(7), None, to, "Yes, until 6pm.");
    msg.status_callback_url = Some(URL.to_owned());
    msg
}

#[tokio::test]
async fn a_message_is_posted_to_the_messages_api_as_documented() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(MESSAGES_PATH, [Canned::json(201, created())]);
    let context = sending(&server);

    let sent = TwilioSms
        .send_message(&context.ctx(), reply(&["+1 706 781 5146"]))
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, MESSAGES_PATH);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    assert_eq!(
        request.header("authorization"),
        Some(expected_auth.as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let mut fields = form(std::str::from_utf8(&request.body).unwrap());
    fields.sort();
    assert_eq!(
        fields,
        vec![
            ("Body".to_owned(), "Yes, until 6pm.".to_owned()),
            ("From".to_owned(), OUR_NUMBER.to_owned()),
            ("StatusCallback".to_owned(), URL.to_owned()),
            ("To".to_owned(), "+17067815146".to_owned()),
        ]
    );

    assert_eq!(sent.id, Uuid::from_u128(7));
    assert_eq!(
        sent.provider_message_id,
        "SM1342fe1b2c904d1ab04f0fc7a58abca9"
    );
    assert_eq!(sent.status, "queued");
    assert_eq!(sent.sender, Some(Participant::new(OUR_NUMBER)));
    assert_eq!(
        sent.sent_at,
        Utc.with_ymd_and_hms(2023, 8, 24, 5, 1, 45).unwrap()
    );
}

#[tokio::test]
async fn without_a_public_url_no_status_callback_is_asked_for() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(MESSAGES_PATH, [Canned::json(201, created())]);
    let mut msg = reply(&["+17067815146"]);
    msg.status_callback_url = None;
    TwilioSms
        .send_message(&sending(&server).ctx(), msg)
        .await
        .unwrap();
    let body = String::from_utf8(server.requests()[0].body.clone()).unwrap();
    assert!(!body.contains("StatusCallback"), "{body}");
}

#[tokio::test]
async fn a_reply_without_recipients_goes_to_the_other_number_of_its_conversation() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(MESSAGES_PATH, [Canned::json(201, created())]);
    let mut msg = reply(&[]);
    msg.conversation_id = Some(conversation_id(OUR_NUMBER, "+17067815146"));
    TwilioSms
        .send_message(&sending(&server).ctx(), msg)
        .await
        .unwrap();
    let fields = form(std::str::from_utf8(&server.requests()[0].body).unwrap());
    assert!(fields.contains(&("To".to_owned(), "+17067815146".to_owned())));
}

#[tokio::test]
async fn a_message_needs_exactly_one_recipient_and_some_text() {
    let server = FixtureServer::start().await.unwrap();
    let ctx = sending(&server).ctx();
    let none = TwilioSms.send_message(&ctx, reply(&[])).await.unwrap_err();
    assert!(none.to_string().contains("exactly one recipient"), "{none}");
    let two = TwilioSms
        .send_message(&ctx, reply(&["+17067815146", "+17067815147"]))
        .await
        .unwrap_err();
    assert!(two.to_string().contains("names 2"), "{two}");
    let mut empty = reply(&["+17067815146"]);
    empty.text = "  ".to_owned();
    assert!(TwilioSms.send_message(&ctx, empty).await.is_err());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn twilio_errors_are_named_by_code_and_message() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [Canned::json(
            400,
            twilio_error(
                21211,
                "The 'To' number +1555 is not a valid phone number.",
                400,
            ),
        )],
    );
    let error = TwilioSms
        .send_message(&sending(&server).ctx(), reply(&["+1555"]))
        .await
        .unwrap_err();
    match &error {
        PluginError::Http { status, message } => {
            assert_eq!(*status, 400);
            assert!(
                message.starts_with("Twilio error 21211: The 'To' number"),
                "{message}"
            );
            assert!(
                message.contains("https://www.twilio.com/docs/errors/21211"),
                "{message}"
            );
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried_and_never_shows_the_token() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [Canned::json(401, twilio_error(20003, "Authenticate", 401))],
    );
    let error = TwilioSms
        .send_message(&sending(&server).ctx(), reply(&["+17067815146"]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Http { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("20003"), "{error}");
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_then_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [
            Canned::json(429, twilio_error(20429, "Too Many Requests", 429))
                .header("retry-after", "1"),
            Canned::json(201, created()),
        ],
    );
    let started = std::time::Instant::now();
    let sent = TwilioSms
        .send_message(&sending(&server).ctx(), reply(&["+17067815146"]))
        .await
        .unwrap();
    assert_eq!(
        sent.provider_message_id,
        "SM1342fe1b2c904d1ab04f0fc7a58abca9"
    );
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [Canned::status(500), Canned::json(201, created())],
    );
    let sent = TwilioSms
        .send_message(&sending(&server).ctx(), reply(&["+17067815146"]))
        .await
        .unwrap();
    assert_eq!(sent.status, "queued");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_lasting_rate_limit_stays_transient_and_named() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        MESSAGES_PATH,
        [Canned::json(
            429,
            twilio_error(20429, "Too Many Requests", 429),
        )],
    );
    let error = TwilioSms
        .send_message(&sending(&server).ctx(), reply(&["+17067815146"]))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("20429"), "{error}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_host_outside_the_grants_is_refused_naming_the_permission() {
    let context = TestContext::new(&["network:inbound"], config(None));
    let error = TwilioSms
        .send_message(&context.ctx(), reply(&["+17067815146"]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::PermissionDenied(_)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("network:outbound:api.twilio.com"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_config_field_is_named() {
    let context = TestContext::new(
        &[],
        json!({ "accountSid": ACCOUNT, "fromNumber": OUR_NUMBER }),
    );
    let error = TwilioSms
        .send_message(&context.ctx(), reply(&["+17067815146"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::Config { field, .. } if field == "authToken"),
        "{error:?}"
    );
}

#[test]
fn inbound_and_outbound_agree_on_the_conversation_id() {
    assert_eq!(
        conversation_id("+1 (415) 200-1331", "+17067815146"),
        "+14152001331|+17067815146"
    );
}
