//! `com.example.mattermost` (`examples/plugins/mattermost`, TypeScript) through the channel,
//! ETL and search processes. In: a Mattermost outgoing webhook POSTs a post to the instance's
//! webhook route with the webhook's token in its body (Mattermost's scheme: it signs nothing);
//! with the token it is answered 2xx, stored, handled into a message and announced, once
//! however often it comes; with another token or none it is answered 401 and stored nowhere.
//! Out: `channel.send` over NATS posts to a local Mattermost's incoming webhook,
//! `<serverUrl>/hooks/<key>`, the JSON body Mattermost documents, and is recorded as sent; the
//! key, a secret, is in no error, view or log.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tributary_e2e::{ServiceName, Stack};
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::events::{CommunicationEvent, EventKind};
use tributary_proto::requests::channel::{SendMessage, SendOutcome, SendRequest};
use tributary_proto::streams::ConsumerKey;
use uuid::Uuid;

use super::{
    assert_secret_kept, data_events, install_and_enable, stack_serving, wait_until_written,
};
use crate::support::{self, FIRST_LOAD};

const PLUGIN: &str = "com.example.mattermost";
/// The outgoing webhook's token, as Mattermost generates them (26 characters).
const OUT_TOKEN: &str = "xr3j5x3p4pfrjm8ecqs6ctjxgh";
/// The incoming webhook's key.
const IN_KEY: &str = "y6tqc5anf3dp8rr9m6tdt1ahwe";
const PERMISSIONS: [&str; 4] = [
    "network:inbound",
    "network:outbound:${serverUrl}",
    "data:write:messages",
    "data:write:conversations",
];

/// A stack with an enabled `com.example.mattermost` instance sending to `server_url`; its
/// webhook URL once the channel process serves it.
async fn stack_with_mattermost(instance: &str, server_url: &str) -> (Stack, String) {
    let stack = stack_serving("mattermost").await;
    let enabled = install_and_enable(
        &stack,
        PLUGIN,
        &PERMISSIONS,
        instance,
        json!({
            "outgoingWebhookToken": OUT_TOKEN,
            "serverUrl": server_url,
            "incomingWebhookId": IN_KEY,
            "username": "tributary",
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

/// The fields of a post as a Mattermost outgoing webhook sends them, in its order.
fn post_fields(token: Option<&str>, post_id: &str, text: &str) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("team_id", "kwoknj9nwpypzgzy78wkw516qe".to_owned()),
        ("team_domain", "acme".to_owned()),
        ("channel_id", "4xp9fdt77pncbef59f4k1qe83o".to_owned()),
        ("channel_name", "town-square".to_owned()),
        ("timestamp", "1767261600123".to_owned()),
        ("user_id", "9ezbdnxfbfg7xn8ypwbdqb1ype".to_owned()),
        ("user_name", "alice".to_owned()),
        ("post_id", post_id.to_owned()),
        ("text", text.to_owned()),
        ("trigger_word", String::new()),
        ("file_ids", String::new()),
    ];
    if let Some(token) = token {
        fields.insert(0, ("token", token.to_owned()));
    }
    fields
}

/// A post as Mattermost sends it by default: `application/x-www-form-urlencoded`.
fn form_post(token: Option<&str>, post_id: &str, text: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(post_fields(token, post_id, text))
        .finish();
    let headers = vec![(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    (headers, body.into_bytes())
}

/// A post as Mattermost sends it with the webhook's Content Type `application/json` (its
/// `timestamp` a number).
fn json_post(token: Option<&str>, post_id: &str, text: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let mut body: serde_json::Map<String, Value> = post_fields(token, post_id, text)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    body.insert("timestamp".to_owned(), json!(1767261660000_u64));
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    (headers, Value::Object(body).to_string().into_bytes())
}

/// The channel name in a route URL (`/webhooks/<channel>/<instance>`).
fn channel_of(url: &str) -> String {
    let mut segments = url.rsplit('/');
    segments.next();
    segments.next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mattermost_post_with_the_webhook_token_is_stored_handled_and_announced_once() {
    let instance = "mattermost-in";
    let (mut stack, url) = stack_with_mattermost(instance, "http://127.0.0.1:9").await;
    let channel = channel_of(&url);
    let mut received = stack
        .watch(EventKind::Communication(
            CommunicationEvent::MessageReceived,
        ))
        .await;

    // Forged: another token (as a form and as JSON), no token at all. Each 401, saying why.
    let refused = [
        (
            "another token",
            form_post(Some("not-the-token"), "forged-1", "Forged wrongtoken"),
        ),
        (
            "another token, JSON",
            json_post(Some("not-the-token"), "forged-2", "Forged wrongjson"),
        ),
        ("no token", form_post(None, "forged-3", "Forged notoken")),
    ];
    for (what, (headers, body)) in refused {
        let (status, answer) = stack.post(&url, &headers, body).await;
        assert_eq!(
            status, 401,
            "{what} must be refused with 401; got {status}: {answer}"
        );
        assert!(!answer.trim().is_empty(), "{what}: the refusal says why");
    }

    // Genuine: a form post, the same post again (a replay), and a JSON post.
    let text = "deploy is done, thanks @bob & all";
    let (headers, body) = form_post(Some(OUT_TOKEN), "bew5wsjnctbt78mkq9z6ci9sme", text);
    let started = Instant::now();
    let (status, answer) = stack.post(&url, &headers, body.clone()).await;
    eprintln!(
        "{PLUGIN}: a post with the token was answered in {:.1?}",
        started.elapsed()
    );
    assert!((200..300).contains(&status), "{status}: {answer}");
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert!((200..300).contains(&status), "a replay: {status}: {answer}");
    let json_text = "The orrery is calibrated";
    let (headers, body) = json_post(Some(OUT_TOKEN), "q4n7c9e1x3kz5m8p2r6t0w4y1a", json_text);
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert!((200..300).contains(&status), "JSON: {status}: {answer}");

    // Handled: a MessageReceived each, as the README's table says.
    let events = received
        .collect(2, Duration::from_secs(30), |e| {
            e.data["instance_id"] == instance
        })
        .await;
    assert_eq!(events.len(), 2, "{events:?}");
    let form = &events[0].data;
    assert_eq!(form["text"], text, "{form}");
    assert_eq!(form["from"], "alice");
    assert_eq!(form["to"], json!([]));
    assert_eq!(form["conversation_id"], "town-square");
    assert_eq!(form["provider_message_id"], "bew5wsjnctbt78mkq9z6ci9sme");
    assert_eq!(form["channel"], channel.as_str());
    assert_eq!(events[1].data["text"], json_text);

    // Stored: the messages in PostgreSQL, sent when Mattermost says, in the channel's
    // conversation; announced by the ETL; searchable.
    stack
        .wait_for_rows(
            "SELECT count(*) FROM message WHERE sender = 'alice'",
            2,
            Duration::from_secs(30),
        )
        .await;
    type Stored = (Uuid, DateTime<Utc>, Option<Uuid>, Option<String>);
    let (id, sent_at, conversation_id, conversation): Stored = sqlx::query_as(
        "SELECT m.id, m.sent_at, c.id, c.title FROM message m \
         LEFT JOIN conversation c ON c.id = m.conversation_id WHERE m.body_text = $1",
    )
    .bind(text)
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(
        sent_at,
        "2026-01-01T10:00:00.123Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(conversation.as_deref(), Some("town-square"));
    let (json_id, json_conversation_id): (Uuid, Option<Uuid>) =
        sqlx::query_as("SELECT id, conversation_id FROM message WHERE body_text = $1")
            .bind(json_text)
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(
        json_conversation_id, conversation_id,
        "one conversation per channel"
    );
    let found = stack
        .wait_search_total(&[("q", "orrery calibrated"), ("type", "message")], 1, 30)
        .await;
    assert_eq!(found["hits"][0]["id"], json_id.to_string(), "{found}");
    let found = stack
        .wait_search_total(&[("q", "deploy thanks"), ("type", "message")], 1, 30)
        .await;
    assert_eq!(found["hits"][0]["id"], id.to_string(), "{found}");

    // Once each, the forged ones nowhere: two stored webhooks, handled, two of each event,
    // two messages; the token is kept with neither.
    stack
        .wait_consumer_settled(ConsumerKey::ChannelInbound, 30)
        .await;
    wait_until_written(&stack).await;
    assert_eq!(
        stack
            .stored_on(&format!("channel.inbound.{channel}.{instance}"))
            .await,
        2,
        "the replay was recognised and the forged posts were not stored"
    );
    assert_eq!(stack.stored_on("communication.MessageReceived").await, 2);
    let mut announced = data_events(&stack, instance).await;
    // A message the ETL stores before its conversation is linked to it when the conversation
    // arrives, and that link is announced as an update (two ETL batches may commit in either
    // order under load): allowed, once per message; nothing else is.
    let updated: Vec<String> = announced
        .iter()
        .filter(|(kind, _)| kind == "data.MessageUpdated")
        .map(|(_, id)| id.clone())
        .collect();
    for message in &updated {
        assert!(
            [id.to_string(), json_id.to_string()].contains(message),
            "only the two messages may be updated: {announced:?}"
        );
        assert_eq!(
            updated.iter().filter(|u| *u == message).count(),
            1,
            "{announced:?}"
        );
    }
    announced.retain(|(kind, _)| kind != "data.MessageUpdated");
    announced.sort();
    let mut ids = vec![
        ("data.MessageCreated".to_owned(), id.to_string()),
        ("data.MessageCreated".to_owned(), json_id.to_string()),
        (
            "data.ConversationCreated".to_owned(),
            conversation_id.unwrap().to_string(),
        ),
    ];
    ids.sort();
    assert_eq!(
        announced, ids,
        "one MessageCreated per message, one ConversationCreated for the channel, nothing else"
    );
    assert_eq!(stack.count("SELECT count(*) FROM message").await, 2);
    let found = stack.search(&[("q", "forged")]).await;
    assert_eq!(found["total"], 0, "{found}");
    let raw: Value = sqlx::query_scalar(
        "SELECT raw FROM source_record WHERE entity_type = 'message' AND external_id LIKE '%bew5wsjnctbt78mkq9z6ci9sme%'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(raw["user_id"], "9ezbdnxfbfg7xn8ypwbdqb1ype", "{raw}");
    assert_secret_kept(&stack, instance, "outgoingWebhookToken", OUT_TOKEN).await;
    stack.assert_all_running();
}

/// Sends `request` through `instance` over NATS (`channel.send.<instance>`).
async fn send(stack: &Stack, instance: &str, request: &SendRequest) -> SendOutcome {
    let send = SendMessage {
        instance_id: instance.to_owned(),
        message: request.clone(),
    };
    stack.client().call(&send).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_posts_to_the_mattermost_incoming_webhook_and_is_recorded() {
    let mattermost = FixtureServer::start().await.unwrap();
    let hook = format!("/hooks/{IN_KEY}");
    // What Mattermost answers a post it made: 200, `ok`, no post id.
    let ok = Canned::status(200)
        .header("content-type", "text/plain")
        .body("ok");
    mattermost.respond(&hook, [ok]);
    let instance = "mattermost-out";
    let (mut stack, _) = stack_with_mattermost(instance, &mattermost.base_url()).await;
    let mut sent = stack
        .watch(EventKind::Communication(CommunicationEvent::MessageSent))
        .await;

    // A reply in a conversation: into that channel.
    let reply = SendRequest {
        id: Some(Uuid::now_v7()),
        to: vec![],
        text: "Thanks, **Alice**: noted.".to_owned(),
        subject: None,
        conversation_id: Some("town-square".to_owned()),
        in_reply_to: None,
    };
    let started = Instant::now();
    let outcome = send(&stack, instance, &reply).await;
    eprintln!("{PLUGIN}: a send took {:.1?}", started.elapsed());
    let id = reply.id.unwrap();
    assert_eq!(outcome.status, "sent", "{outcome:?}");
    assert_eq!(outcome.message_id, id);
    let provider_id = format!("webhook:{id}");
    assert_eq!(
        outcome.provider_message_id.as_deref(),
        Some(provider_id.as_str())
    );
    assert!(!outcome.repeated);

    // A direct message: one recipient, no conversation, a subject as a bold first line.
    let direct = SendRequest {
        id: Some(Uuid::now_v7()),
        to: vec!["alice".to_owned()],
        text: "The deploy is done.".to_owned(),
        subject: Some("Deploy".to_owned()),
        conversation_id: None,
        in_reply_to: None,
    };
    let outcome = send(&stack, instance, &direct).await;
    assert_eq!(outcome.status, "sent", "{outcome:?}");

    // Mattermost got two POSTs to the incoming webhook with the JSON body it documents.
    let calls = mattermost.requests_to(&hook);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let bodies: Vec<Value> = calls
        .iter()
        .map(|call| {
            assert_eq!(call.method, "POST");
            assert_eq!(call.header("content-type"), Some("application/json"));
            serde_json::from_slice(&call.body).unwrap()
        })
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"text": "Thanks, **Alice**: noted.", "channel": "town-square", "username": "tributary"}),
            json!({"text": "**Deploy**\n\nThe deploy is done.", "channel": "@alice", "username": "tributary"}),
        ]
    );

    // Recorded: the outbound row, a MessageSent, the message in the unified model.
    let (status, recorded_id, sender): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT status, provider_message_id, sender FROM channel_outbound WHERE id = $1",
    )
    .bind(id)
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(status, "sent");
    assert_eq!(recorded_id.as_deref(), Some(provider_id.as_str()));
    assert_eq!(sender.as_deref(), Some("tributary"));
    let event = sent.next(Duration::from_secs(10)).await;
    assert_eq!(event.data["message_id"], json!(id));
    assert_eq!(event.data["provider_message_id"], provider_id);
    stack
        .wait_for_rows(
            "SELECT count(*) FROM message WHERE body_text = 'Thanks, **Alice**: noted.'",
            1,
            Duration::from_secs(30),
        )
        .await;

    // The same id again is answered from the record; nothing is posted twice.
    let again = send(&stack, instance, &reply).await;
    assert!(again.repeated, "{again:?}");
    assert_eq!(
        again.provider_message_id.as_deref(),
        Some(provider_id.as_str())
    );
    assert_eq!(mattermost.requests_to(&hook).len(), 2);

    // A channel Mattermost does not know: the send fails with its status and message, and the
    // key is not in the error.
    mattermost.respond(
        &hook,
        [Canned::json(
            400,
            json!({"id": "web.incoming_webhook.channel.app_error", "message": "Couldn't find the channel.",
                   "detailed_error": "", "request_id": "mh1ixf5gijbqxy8gkgqj1twmjc", "status_code": 400}),
        )],
    );
    let lost = SendRequest {
        id: Some(Uuid::now_v7()),
        to: vec![],
        text: "hello?".to_owned(),
        subject: None,
        conversation_id: Some("no-such-channel".to_owned()),
        in_reply_to: None,
    };
    let outcome = send(&stack, instance, &lost).await;
    assert_eq!(outcome.status, "failed", "{outcome:?}");
    let error = outcome.error.unwrap_or_default();
    assert!(
        error.contains("/hooks/<incomingWebhookId> answered 400: Couldn't find the channel."),
        "{error}"
    );
    let (status, recorded_error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM channel_outbound WHERE id = $1")
            .bind(lost.id.unwrap())
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(recorded_error.as_deref(), Some(error.as_str()));

    // The key went to Mattermost and nowhere else.
    let records: Value = sqlx::query_scalar("SELECT jsonb_agg(o) FROM channel_outbound o")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert!(!records.to_string().contains(IN_KEY), "{records}");
    assert_secret_kept(&stack, instance, "incomingWebhookId", IN_KEY).await;
    stack.assert_all_running();
}
