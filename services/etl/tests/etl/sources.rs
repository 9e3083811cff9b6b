//! Every person event names the instances the person still comes from.

use serde_json::json;
use tributary_proto::streams::StreamKey;

use crate::support::*;

/// What this test proves: a person met through two sources is announced with both, and when
/// one of them deletes its record she is announced with the other alone.
#[tokio::test]
async fn a_person_event_names_the_sources_that_still_hold_a_live_record_of_her() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let v1 = "2026-03-01T10:00:00Z";
    mesh.publish_items(&[item(
        "crm",
        "person",
        "p1",
        v1,
        json!({"display_name": "Ada", "emails": ["ada@example.org"]}),
    )])
    .await;
    barrier(&mesh, "after-crm").await;
    mesh.publish_items(&[item(
        "phone",
        "person",
        "x9",
        v1,
        json!({"display_name": "Ada L.", "emails": ["ada@example.org"]}),
    )])
    .await;
    barrier(&mesh, "after-phone").await;
    mesh.publish_items(&[tombstone("phone", "person", "x9", "2026-03-02T10:00:00Z")])
        .await;

    barrier(&mesh, "after-tombstone").await;

    let events: Vec<Stored> = read_stream(&mesh, StreamKey::DataEvents)
        .await
        .into_iter()
        .filter(|e| e.json()["source"]["instance"] != "barrier")
        .collect();
    let sources: Vec<(String, serde_json::Value)> = events
        .iter()
        .map(|e| {
            let event = e.json();
            let sources = match event["type"].as_str() {
                Some("data.PersonMerged") => event["data"]["person"]["sources"].clone(),
                _ => event["data"]["sources"].clone(),
            };
            (e.event_type(), sources)
        })
        .collect();
    let (first, rest) = sources.split_first().expect("events");
    let (last, middle) = rest.split_last().expect("more events");
    assert_eq!(first, &("data.PersonCreated".to_owned(), json!(["crm"])));
    assert!(!middle.is_empty(), "{sources:?}");
    for (_, both) in middle {
        assert_eq!(both, &json!(["crm", "phone"]), "{sources:?}");
    }
    assert_eq!(last, &("data.PersonUpdated".to_owned(), json!(["crm"])));
    for event in &events {
        assert_matches_schema(&event.json());
    }
    etl.stop().await;
    mesh.pool().close().await;
}
