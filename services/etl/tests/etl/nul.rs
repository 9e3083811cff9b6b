//! NUL characters, which PostgreSQL refuses in `text` and `jsonb`: an item holding them is
//! stored with each one replaced, and never breaks the batch it came in.

use serde_json::{json, Value};
use tributary_etl::store::{BatchWriter, PendingItem};
use tributary_proto::streams::StreamKey;

use crate::support::*;

/// What a NUL becomes.
const MARK: &str = "\u{FFFD}";

/// A message whose id, text, nested data (a key and a value) and raw payload hold NUL.
fn message_with_nul(instance: &str) -> Value {
    json!({
        "instance_id": instance,
        "entity_type": "message",
        "external_id": "m\u{0}1",
        "source_modified_at": "2026-03-01T10:00:00Z",
        "data": {
            "sender": "+14155550132",
            "subject": "hi\u{0}there",
            "body_text": "before\u{0}after",
            "sent_at": "2026-03-01T10:00:00Z",
            "extra": {"note": "a\u{0}b", "nested\u{0}key": {"deep": ["x\u{0}y"]}},
        },
        "raw": {"Body": "before\u{0}after", "headers\u{0}": {"X-Id": "\u{0}"}},
    })
}

/// The first thing this test proves: the item reaches its row and its event, with a mark
/// where each NUL was, instead of the dead-letter stream.
#[tokio::test]
async fn a_message_whose_text_data_and_raw_hold_nul_is_stored_and_announced() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    mesh.publish_items(&[message_with_nul("sms")]).await;

    let events = data_events(&mesh, 1).await;
    let event = events[0].json();
    assert_eq!(event["type"], "data.MessageCreated");
    assert_eq!(event["data"]["body_text"], format!("before{MARK}after"));
    assert_matches_schema(&event);

    let (subject, body, extra): (Option<String>, String, Value) =
        sqlx::query_as("SELECT subject, body_text, extra FROM message")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(subject, Some(format!("hi{MARK}there")));
    assert_eq!(body, format!("before{MARK}after"));
    assert_eq!(
        extra,
        json!({"note": format!("a{MARK}b"), format!("nested{MARK}key"): {"deep": [format!("x{MARK}y")]}})
    );
    let (external_id, raw): (String, Value) =
        sqlx::query_as("SELECT external_id, raw FROM source_record")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(external_id, format!("m{MARK}1"));
    assert_eq!(
        raw,
        json!({"Body": format!("before{MARK}after"), format!("headers{MARK}"): {"X-Id": MARK}})
    );
    items_settled(&mesh, 1).await;
    let dead = read_stream(&mesh, StreamKey::DeadLetters).await;
    assert!(dead.is_empty(), "nothing is dead-lettered");
    etl.stop().await;
    mesh.pool().close().await;
}

/// The second: a batch around such an item is written whole, in one transaction, the first
/// time (PostgreSQL refusing it would have sent the pipeline to writing items one by one).
#[tokio::test]
async fn a_batch_around_an_item_with_nul_commits_once() {
    let (_env, subjects, pool, normaliser) = migrated().await;
    let writer = BatchWriter::new(pool.clone(), subjects.clone());
    let subject = subjects.connector_items("sms");
    let before = item(
        "sms",
        "person",
        "p1",
        "2026-03-01T10:00:00Z",
        json!({"display_name": "Ada\u{0} Lovelace"}),
    );
    let after = item(
        "sms",
        "document",
        "d1",
        "2026-03-01T10:00:00Z",
        json!({"title": "Notes", "content": "plain"}),
    );
    let batch: Vec<PendingItem> = [before, message_with_nul("sms"), after]
        .iter()
        .map(|i| pending_item(&normaliser, &subject, &serde_json::to_vec(i).unwrap()))
        .collect();

    let report = writer
        .write(&batch)
        .await
        .expect("the batch is stored whole");

    assert_eq!(report.events, 3);
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM source_record")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(transactions, 1, "one transaction wrote every source record");
    assert_eq!(count(&pool, "source_record").await, 3);
    let name: String = sqlx::query_scalar("SELECT display_name FROM person")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, format!("Ada{MARK} Lovelace"));
    pool.close().await;
}
