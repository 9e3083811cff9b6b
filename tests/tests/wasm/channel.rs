//! `com.example.js-chat`, a channel in JavaScript, through the channel, ETL and search
//! processes: a webhook signed as the README documents is answered 2xx, stored, handled into a
//! message in PostgreSQL and announced, once however often it is delivered; a badly signed one
//! is answered 401 and stored nowhere; a send reaches the provider with the bearer token the
//! host attached, and is recorded.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tributary_e2e::{ServiceName, Stack};
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::events::{CommunicationEvent, DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_proto::requests::channel::{SendMessage, SendRequest};
use tributary_proto::streams::ConsumerKey;
use uuid::Uuid;

use crate::support::{self, chat_signature, FIRST_LOAD};

const PLUGIN: &str = "com.example.js-chat";
const SIGNING_SECRET: &str = "chat-signing-secret-e2e";
const API_TOKEN: &str = "chat-api-token-e2e-7f3a";

/// A stack with an enabled `com.example.js-chat` instance whose `apiBase` is `api_base`; its
/// webhook URL once the channel process serves it.
async fn stack_with_chat(instance: &str, api_base: &str) -> (Stack, String) {
    let stack = support::stack().await;
    let enabled = support::install_and_enable(
        &stack,
        PLUGIN,
        instance,
        json!({
            "signingSecret": SIGNING_SECRET,
            "apiToken": API_TOKEN,
            "apiBase": api_base,
        }),
    )
    .await;
    let url = support::served_webhook_url(&stack, instance, FIRST_LOAD).await;
    eprintln!(
        "{PLUGIN}: the route was served {:.1?} after the instance was enabled (component load included)",
        enabled.elapsed()
    );
    assert!(
        url.starts_with(&format!(
            "http://{}/webhooks/",
            stack.http_addr(ServiceName::Channel)
        )) && url.ends_with(&format!("/{instance}")),
        "the route is the channel process's: {url}"
    );
    (stack, url)
}

/// A chat message webhook as the provider sends it: its body, and its headers signed with
/// `secret`.
fn message_webhook(delivery: &str, text: &str, secret: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = json!({
        "id": delivery,
        "type": "message",
        "message_id": format!("m-{delivery}"),
        "conversation_id": "c-ops",
        "conversation_title": "Ops",
        "from": {"address": "alice", "name": "Alice"},
        "to": ["bot"],
        "text": text,
        "sent_at": "2026-03-02T09:00:00Z",
    })
    .to_string()
    .into_bytes();
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-signature".to_owned(), chat_signature(secret, &body)),
    ];
    (headers, body)
}

/// The channel name in a route URL (`/webhooks/<channel>/<instance>`).
fn channel_of(url: &str) -> String {
    let mut segments = url.rsplit('/');
    segments.next();
    segments.next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_stored_handled_and_announced_once_however_often_it_comes() {
    let instance = "js-chat-in";
    let (mut stack, url) = stack_with_chat(instance, "http://127.0.0.1:9/").await;
    let channel = channel_of(&url);
    let mut received = stack
        .watch(EventKind::Communication(
            CommunicationEvent::MessageReceived,
        ))
        .await;
    let mut created = stack
        .watch(EventKind::Data {
            entity: EntityType::Message,
            change: DataChange::Created,
        })
        .await;

    let text = "The orrery needs calibrating before Friday";
    let (headers, body) = message_webhook("d-1", text, SIGNING_SECRET);
    let started = Instant::now();
    let (status, answer) = stack.post(&url, &headers, body.clone()).await;
    eprintln!(
        "{PLUGIN}: a signed webhook was answered in {:.1?}",
        started.elapsed()
    );
    assert!((200..300).contains(&status), "{status}: {answer}");
    // The same delivery again, as a provider retries: answered 2xx, not handled again.
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert!(
        (200..300).contains(&status),
        "a redelivery: {status}: {answer}"
    );

    // Handled: a MessageReceived, from the guest's reading of the body (that it is the only
    // one is counted on its stream below, once everything after it has happened).
    let events = received
        .collect(1, Duration::from_secs(30), |e| {
            e.data["instance_id"] == instance
        })
        .await;
    assert_eq!(events.len(), 1, "a MessageReceived: {events:?}");
    assert_eq!(events[0].data["text"], text);
    assert_eq!(events[0].data["from"], "alice");
    assert_eq!(events[0].data["to"], json!(["bot"]));
    assert_eq!(events[0].data["conversation_id"], "c-ops");
    assert_eq!(events[0].data["provider_message_id"], "m-d-1");
    assert_eq!(events[0].data["channel"], channel.as_str());

    // Stored: the message in PostgreSQL, announced by the ETL, and searchable.
    stack
        .wait_for_rows(
            &format!("SELECT count(*) FROM message WHERE body_text = '{text}'"),
            1,
            Duration::from_secs(30),
        )
        .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM message WHERE body_text = $1")
        .bind(text)
        .fetch_one(stack.pool())
        .await
        .unwrap();
    let announced = created.next_of(instance, Duration::from_secs(30)).await;
    assert_eq!(announced.entity_id, Some(id));
    let found = stack
        .wait_search_total(&[("q", "orrery calibrating"), ("type", "message")], 1, 30)
        .await;
    assert_eq!(found["hits"][0]["id"], id.to_string(), "{found}");

    // Once: one stored webhook, handled (its consumer has nothing left), one event of each,
    // one message.
    stack
        .wait_consumer_settled(ConsumerKey::ChannelInbound, 30)
        .await;
    assert_eq!(
        stack
            .stored_on(&format!("channel.inbound.{channel}.{instance}"))
            .await,
        1,
        "the redelivery was recognised and not stored again"
    );
    assert_eq!(stack.stored_on("communication.MessageReceived").await, 1);
    assert_eq!(stack.stored_on("data.MessageCreated").await, 1);
    assert_eq!(stack.count("SELECT count(*) FROM message").await, 1);
    stack.assert_all_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badly_signed_webhook_is_refused_with_401_and_stored_nowhere() {
    let instance = "js-chat-forged";
    let (mut stack, url) = stack_with_chat(instance, "http://127.0.0.1:9/").await;
    let channel = channel_of(&url);

    let (_, unsigned_body) = message_webhook("d-unsigned", "Forged unsigned", SIGNING_SECRET);
    let (wrong_secret, wrong_secret_body) = message_webhook(
        "d-wrongsecret",
        "Forged wrongsecret",
        "not-the-signing-secret",
    );
    let (signed, _) = message_webhook("d-original", "Genuine original", SIGNING_SECRET);
    let (_, tampered_body) = message_webhook("d-original", "Forged tampered", SIGNING_SECRET);
    let (_, garbage_body) = message_webhook("d-garbage", "Forged garbage", SIGNING_SECRET);
    let json_only = vec![("content-type".to_owned(), "application/json".to_owned())];
    let mut garbage = json_only.clone();
    garbage.push(("x-signature".to_owned(), "not a signature".to_owned()));
    let refused = [
        ("no signature", json_only, unsigned_body),
        (
            "a signature under another secret",
            wrong_secret,
            wrong_secret_body,
        ),
        ("a body changed after signing", signed, tampered_body),
        ("a signature that is not hex", garbage, garbage_body),
    ];
    for (what, headers, body) in refused {
        let (status, answer) = stack.post(&url, &headers, body).await;
        assert_eq!(
            status, 401,
            "{what} must be refused with 401; got {status}: {answer}"
        );
        assert!(!answer.trim().is_empty(), "{what}: the refusal says why");
    }

    // A good one after them, as a yardstick: once it is stored, anything accepted before it
    // would have been too.
    let (headers, body) = message_webhook("d-good", "Genuine hello", SIGNING_SECRET);
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert!((200..300).contains(&status), "{status}: {answer}");
    stack
        .wait_for_rows(
            "SELECT count(*) FROM message WHERE body_text = 'Genuine hello'",
            1,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(stack.count("SELECT count(*) FROM message").await, 1);
    assert_eq!(
        stack
            .stored_on(&format!("channel.inbound.{channel}.{instance}"))
            .await,
        1,
        "only the signed webhook was stored"
    );
    assert_eq!(stack.stored_on("communication.MessageReceived").await, 1);
    let found = stack.search(&[("q", "forged")]).await;
    assert_eq!(found["total"], 0, "{found}");
    stack.assert_all_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reaches_the_provider_with_the_token_the_host_attached_and_is_recorded() {
    let provider = FixtureServer::start().await.unwrap();
    provider.respond(
        "/messages",
        [Canned::json(
            201,
            json!({"id": "chat-9001", "status": "sent", "sent_at": "2026-03-02T10:00:00Z", "from": "bot"}),
        )],
    );
    let instance = "js-chat-out";
    let (mut stack, _) = stack_with_chat(instance, &provider.base_url()).await;
    let mut sent = stack
        .watch(EventKind::Communication(CommunicationEvent::MessageSent))
        .await;

    let request = SendRequest {
        id: Some(Uuid::now_v7()),
        to: vec!["alice".to_owned()],
        text: "Calibration done, the orrery runs true".to_owned(),
        subject: None,
        conversation_id: Some("c-ops".to_owned()),
        in_reply_to: None,
    };
    let send = SendMessage {
        instance_id: instance.to_owned(),
        message: request.clone(),
    };
    let outcome = stack.client().call(&send).await.unwrap();
    assert_eq!(outcome.status, "sent", "{outcome:?}");
    assert_eq!(outcome.provider_message_id.as_deref(), Some("chat-9001"));
    assert!(!outcome.repeated);
    let message_id = request.id.unwrap();
    assert_eq!(outcome.message_id, message_id);

    // The provider got one POST /messages as the README documents, with the API token as a
    // bearer token: the host attached it; the guest's config never holds it (it is a secret
    // field) and the guest reads only `signingSecret`.
    let calls = provider.requests_to("/messages");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {API_TOKEN}").as_str())
    );
    assert_eq!(
        call.header("idempotency-key"),
        Some(message_id.to_string().as_str())
    );
    let payload: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        payload,
        json!({
            "client_id": message_id,
            "conversation_id": "c-ops",
            "to": ["alice"],
            "text": request.text,
        })
    );

    // Recorded: the outbound row with the provider's id, a MessageSent, and the message in the
    // unified model.
    let (status, provider_id): (String, Option<String>) =
        sqlx::query_as("SELECT status, provider_message_id FROM channel_outbound WHERE id = $1")
            .bind(message_id)
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), provider_id.as_deref()),
        ("sent", Some("chat-9001"))
    );
    let event = sent.next(Duration::from_secs(10)).await;
    assert_eq!(event.data["message_id"], json!(message_id));
    assert_eq!(event.data["provider_message_id"], "chat-9001");
    stack
        .wait_for_rows(
            &format!(
                "SELECT count(*) FROM message WHERE body_text = '{}'",
                request.text
            ),
            1,
            Duration::from_secs(30),
        )
        .await;

    // The same id again is answered from the record; nothing is sent twice.
    let again = stack.client().call(&send).await.unwrap();
    assert!(again.repeated, "{again:?}");
    assert_eq!(again.provider_message_id.as_deref(), Some("chat-9001"));
    assert_eq!(provider.requests_to("/messages").len(), 1);

    // The token went to the provider and nowhere else: not in the instance's config as the
    // admin API shows it, not in the outbound record, not in any log of the stack.
    let view = stack.admin_instance(instance).await;
    assert!(!view.to_string().contains(API_TOKEN), "{view}");
    let secrets = view["secrets"].as_object().unwrap();
    assert!(
        secrets
            .iter()
            .any(|(field, status)| field.ends_with("apiToken") && status == "set"),
        "the API token is kept as a secret: {view}"
    );
    let record: Value = sqlx::query_scalar("SELECT to_jsonb(o) FROM channel_outbound o")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert!(!record.to_string().contains(API_TOKEN), "{record}");
    for service in ServiceName::ALL {
        assert!(
            !stack.log_text(service).contains(API_TOKEN),
            "the {service} log holds the API token"
        );
    }
    stack.assert_all_running();
}
