//! `/api/v1/dead-letters`: dead letters made by the services' own code (kit's `DeadLetters`)
//! from messages pulled off the real streams, listed page by page, shown whole, replayed onto
//! their original subject once, refused where a replay would be wrong, and discarded.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, Message};
use futures::StreamExt;
use serde_json::{json, Value};
use tributary_kit::dead_letter::DeadLetters;
use tributary_proto::envelope::MSG_ID_HEADER;
use tributary_proto::streams::{ConsumerKey, StreamKey};

use crate::support::*;

/// Pulls `n` messages of `consumer` off its stream, as the service would.
pub async fn pull_from(
    js: &jetstream::Context,
    env_stream: String,
    consumer: &str,
    n: usize,
) -> Vec<Message> {
    let stream = js.get_stream(env_stream).await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream.get_consumer(consumer).await.unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message.unwrap());
    }
    assert_eq!(messages.len(), n, "pulled from {consumer:?}");
    messages
}

/// Publishes `body` on `subject` through JetStream, acknowledged.
pub async fn publish(js: &jetstream::Context, subject: String, body: &Value) {
    js.publish(subject, serde_json::to_vec(body).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

fn sequences(page: &Value) -> Vec<u64> {
    page["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sequence"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn dead_letters_are_listed_shown_replayed_once_refused_where_wrong_and_discarded() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    let subjects = env.subjects();
    let js = jetstream::new(env.nats().await);

    // Three items of `work` the ETL gave up on, one data event the indexer gave up on, and
    // one message the ETL's consumer was never for (its payload dropped unread).
    let items: Vec<Value> = (0..3)
        .map(|n| json!({ "instance_id": "work", "external_id": format!("c{n}"), "n": n }))
        .collect();
    for item in &items {
        publish(&js, subjects.connector_items("work"), item).await;
    }
    let etl = DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::EtlItems);
    let pulled = pull_from(
        &js,
        StreamKey::ConnectorItems.name(&subjects),
        ConsumerKey::EtlItems.durable_name(),
        3,
    )
    .await;
    for message in &pulled {
        etl.send(
            message,
            "instance `work` is not installed; only an installed instance's items are stored",
        )
        .await;
    }
    let event = json!({ "id": "e1", "type": "PersonCreated" });
    publish(&js, subjects.qualify("data.PersonCreated"), &event).await;
    let search = DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::SearchIndexer);
    let pulled = pull_from(
        &js,
        StreamKey::DataEvents.name(&subjects),
        ConsumerKey::SearchIndexer.durable_name(),
        1,
    )
    .await;
    search.send(&pulled[0], "the index refused it").await;
    // Another message than the indexer's (a dead letter's id is its stream and sequence).
    publish(&js, subjects.qualify("data.PersonUpdated"), &event).await;
    let stranger = js
        .get_stream(StreamKey::DataEvents.name(&subjects))
        .await
        .unwrap()
        .create_consumer(pull::Config {
            filter_subject: subjects.qualify("data.PersonUpdated"),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = stranger.fetch().max_messages(1).messages().await.unwrap();
    let misplaced = batch.next().await.unwrap().unwrap();
    etl.refuse(&misplaced).await;

    // Listed oldest first, a page at a time, with their reasons.
    let (status, first) = admin
        .call("GET", "/api/v1/dead-letters?limit=2", None)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["total"], 5, "{first}");
    let page_one = sequences(&first);
    assert_eq!(page_one.len(), 2, "{first}");
    let after = first["next_after"].as_u64().unwrap();
    let (_, rest) = admin
        .call(
            "GET",
            &format!("/api/v1/dead-letters?after={after}&limit=10"),
            None,
        )
        .await;
    let page_two = sequences(&rest);
    assert_eq!(page_two.len(), 3, "{rest}");
    assert!(rest.get("next_after").is_none(), "the last page: {rest}");
    assert!(page_one[1] < page_two[0], "oldest first: {first} {rest}");
    let (_, etl_only) = admin
        .call("GET", "/api/v1/dead-letters?consumer=etl-items", None)
        .await;
    assert_eq!(etl_only["total"], 4, "{etl_only}");
    let (status, bad) = admin
        .call("GET", "/api/v1/dead-letters?consumer=nobody", None)
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["message"].as_str().unwrap().contains("`consumer`"),
        "{bad}"
    );

    // One shown whole: its payload as it was, where it came from, why.
    let seq = page_one[0];
    let (status, letter) = admin
        .call("GET", &format!("/api/v1/dead-letters/{seq}"), None)
        .await;
    assert_eq!(status, 200, "{letter}");
    assert_eq!(letter["consumer"], "etl-items");
    assert_eq!(letter["original_subject"], "connector.items.work");
    assert_eq!(letter["deliveries"], 1);
    assert!(
        letter["reason"].as_str().unwrap().contains("not installed"),
        "{letter}"
    );
    let payload: Value = serde_json::from_str(letter["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, items[0]);
    assert!(letter.get("not_replayable").is_none(), "{letter}");

    // Replayed: back on its subject once, the dead letter gone; a second replay finds nothing.
    let (status, replayed) = admin
        .call("POST", &format!("/api/v1/dead-letters/{seq}/replay"), None)
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["subject"], "connector.items.work");
    assert_eq!(env.stored_on("connector.items.work").await, 4);
    let stream = js
        .get_stream(StreamKey::ConnectorItems.name(&subjects))
        .await
        .unwrap();
    let again = stream
        .get_raw_message(replayed["stream_sequence"].as_u64().unwrap())
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&again.payload).unwrap(),
        items[0]
    );
    assert_eq!(
        again.headers.get(MSG_ID_HEADER).unwrap().as_str(),
        format!("replay-{seq}")
    );
    let (status, _) = admin
        .call("GET", &format!("/api/v1/dead-letters/{seq}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, gone) = admin
        .call("POST", &format!("/api/v1/dead-letters/{seq}/replay"), None)
        .await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(env.stored_on("connector.items.work").await, 4, "not twice");

    // What a replay would get wrong is refused, saying why.
    let letters = rest["dead_letters"].as_array().unwrap();
    let of = |consumer: &str, subject_start: &str| {
        letters
            .iter()
            .find(|d| {
                d["consumer"] == consumer
                    && d["original_subject"]
                        .as_str()
                        .unwrap()
                        .starts_with(subject_start)
            })
            .unwrap()["sequence"]
            .as_u64()
            .unwrap()
    };
    let indexer = of("search-indexer", "data.");
    let (status, refused) = admin
        .call(
            "POST",
            &format!("/api/v1/dead-letters/{indexer}/replay"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("reindex"),
        "{refused}"
    );
    let dropped = of("etl-items", "data.");
    let (_, shown) = admin
        .call("GET", &format!("/api/v1/dead-letters/{dropped}"), None)
        .await;
    assert_eq!(shown["payload_bytes"], 0, "never kept: {shown}");
    let (status, refused) = admin
        .call(
            "POST",
            &format!("/api/v1/dead-letters/{dropped}/replay"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("is not one `etl-items` is for"),
        "{refused}"
    );
    assert_eq!(
        env.stored_on("data.PersonCreated").await,
        1,
        "no event announced again"
    );

    // All of the ETL's replayed at once: the two others go, the misplaced one stays.
    let (status, outcome) = admin
        .call(
            "POST",
            "/api/v1/dead-letters/replay",
            Some(json!({ "consumer": "etl-items" })),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["done"].as_array().unwrap().len(), 2, "{outcome}");
    assert_eq!(outcome["left"][0]["sequence"], dropped, "{outcome}");
    assert_eq!(env.stored_on("connector.items.work").await, 6);

    // Discarded: one, then the rest; nothing waits any more.
    let (status, _) = admin
        .call("DELETE", &format!("/api/v1/dead-letters/{indexer}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = admin
        .call("DELETE", &format!("/api/v1/dead-letters/{indexer}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, outcome) = admin
        .call("POST", "/api/v1/dead-letters/discard", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["done"], json!([dropped]), "{outcome}");
    let (_, empty) = admin.call("GET", "/api/v1/dead-letters", None).await;
    assert_eq!(empty["total"], 0, "{empty}");
    assert_eq!(sequences(&empty), Vec::<u64>::new());
    pm.stop().await;
}
