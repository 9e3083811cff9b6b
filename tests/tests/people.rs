//! People across sources through the whole mesh (issue 28): two sources' records of one person
//! merged by the ETL process, the merge's evidence shown by the admin API, the merge undone
//! through it and followed by the search process, both sources synced again without merging
//! them, then merged again by hand; each change recorded under the admin token's name.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tributary_e2e::Stack;
use tributary_proto::item::ItemOperation;
use tributary_proto::model::EntityType;
use tributary_proto::streams::ConsumerKey;
use tributary_proto::ConnectorItem;
use uuid::Uuid;

const CRM: &str = "crm-people";
const MAIL: &str = "mail-people";
/// The word both records carry, to find exactly them in the index.
const MARKER: &str = "quokka";

fn ada(instance: &str, external_id: &str, name: &str, at: DateTime<Utc>) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance.to_owned(),
        entity_type: EntityType::Person,
        external_id: external_id.to_owned(),
        operation: ItemOperation::Upsert,
        source_modified_at: at,
        data: json!({
            "display_name": name,
            "emails": ["ada@engines.example"],
            "title": format!("Analyst {MARKER}"),
        }),
        raw: json!({ "id": external_id }),
    }
}

fn both(at: DateTime<Utc>) -> Vec<ConnectorItem> {
    vec![
        ada(CRM, "c1", "Ada Lovelace", at),
        ada(MAIL, "m1", "A. Lovelace", at),
    ]
}

/// The live persons the two sources' records belong to now.
async fn people(stack: &Stack) -> BTreeSet<String> {
    let mut ids = stack.person_ids(CRM).await;
    ids.extend(stack.person_ids(MAIL).await);
    ids
}

async fn wait_people(stack: &Stack, n: usize, secs: u64) -> BTreeSet<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let ids = people(stack).await;
        if ids.len() == n {
            return ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {n} people within {secs} s: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn show(stack: &Stack, id: &str) -> Value {
    let (status, shown) = stack
        .admin(Method::GET, &format!("/api/v1/people/{id}"), None)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["status"], "found", "{shown}");
    shown
}

fn admin_actor(actor: &Value) -> bool {
    actor.as_str().is_some_and(|a| a.starts_with("admin-api:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_is_explained_undone_followed_by_search_kept_apart_on_resync_and_redone_by_hand() {
    let mut stack = Stack::new().await;
    // Published as connectors would, for instances never installed.
    stack.set("etl.check_data_write", false);
    stack.start_all().await;
    let first = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    stack.mesh().publish_items(&both(first)).await;

    // Merged by the shared address, their names compatible (an initial), with the evidence.
    let merged = wait_people(&stack, 1, 30).await;
    let id = merged.first().unwrap().clone();
    stack.wait_search_total(&[("q", MARKER)], 1, 30).await;
    let shown = show(&stack, &id).await;
    assert_eq!(shown["sources"].as_array().unwrap().len(), 2, "{shown}");
    let merges = shown["merges"].as_array().unwrap();
    assert_eq!(merges.len(), 1, "{shown}");
    assert_eq!(merges[0]["rule"], "shared_email", "{shown}");
    assert_eq!(merges[0]["identifier"], "ada@engines.example", "{shown}");
    let evidence: Vec<&Value> = merges[0]["kept_sources"]
        .as_array()
        .unwrap()
        .iter()
        .chain(merges[0]["merged_sources"].as_array().unwrap())
        .collect();
    assert_eq!(evidence.len(), 2, "both records named: {shown}");

    // Undone through the admin API: two people, in the index too.
    let (status, outcome) = stack
        .admin(
            Method::POST,
            &format!("/api/v1/people/{id}/unmerge"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    let split: BTreeSet<String> = outcome["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(split.len(), 2, "{outcome}");
    assert_eq!(wait_people(&stack, 2, 30).await, split);
    let found = stack.wait_search_total(&[("q", MARKER)], 2, 30).await;
    let indexed: BTreeSet<String> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(indexed, split, "the index holds the two people: {found}");
    let shown = show(&stack, &id).await;
    assert_eq!(shown["sources"].as_array().unwrap().len(), 1, "{shown}");
    let decision = &shown["decisions"][0];
    assert_eq!(decision["verdict"], "apart", "{shown}");
    assert!(admin_actor(&decision["actor"]), "{shown}");

    // Both sources change and sync again: still two.
    let later = first + chrono::Duration::days(1);
    stack.mesh().publish_items(&both(later)).await;
    stack
        .wait_for_rows(
            "SELECT count(*) FROM source_record WHERE entity_type = 'person' \
             AND instance_id IN ('crm-people', 'mail-people') AND source_modified_at > '2026-03-01T09:00:00Z'",
            2,
            Duration::from_secs(30),
        )
        .await;
    stack.wait_consumer_settled(ConsumerKey::EtlItems, 30).await;
    assert_eq!(people(&stack).await, split, "the resync merged nobody");

    // A person says they are one after all: merged by hand, which the next sync keeps.
    let pair: Vec<&String> = split.iter().collect();
    let (status, outcome) = stack
        .admin(
            Method::POST,
            "/api/v1/people/merge",
            Some(json!({ "a": pair[0], "b": pair[1] })),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    let one = wait_people(&stack, 1, 30).await;
    let kept = one.first().unwrap().clone();
    stack.wait_search_total(&[("q", MARKER)], 1, 30).await;
    let shown = show(&stack, &kept).await;
    let manual: Vec<&Value> = shown["merges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["rule"] == "manual")
        .collect();
    assert_eq!(manual.len(), 1, "{shown}");
    assert!(admin_actor(&manual[0]["actor"]), "{shown}");

    // Refusals keep their meaning over HTTP.
    let (status, reply) = stack
        .admin(
            Method::POST,
            "/api/v1/people/merge",
            Some(json!({ "a": kept, "b": kept })),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    let (status, reply) = stack
        .admin(
            Method::GET,
            &format!("/api/v1/people/{}", Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(status, 404, "{reply}");
    let (status, reply) = stack
        .admin(Method::GET, "/api/v1/people/suggestions?limit=0", None)
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("limit"),
        "{reply}"
    );
    stack.assert_all_running();
}
