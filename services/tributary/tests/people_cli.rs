//! `tributary people …`, running the real binary against a real ETL: a merge shown with its
//! evidence, a shared front-desk number, a suggestion rejected, an unmerge and a manual merge,
//! each recorded as made by `nats:admin`, and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use tributary_kit::testing::{RunningService, TestEnv};
use uuid::Uuid;

use common::{cli, publish_items};

fn person(instance: &str, id: &str, name: &str, emails: &[&str], phones: &[&str]) -> Value {
    json!({
        "instance_id": instance, "entity_type": "person", "external_id": id,
        "source_modified_at": "2026-03-01T10:00:00Z",
        "data": { "display_name": name, "emails": emails, "phones": phones }, "raw": {},
    })
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn wait_count(pool: &sqlx::PgPool, sql: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(pool, sql).await != want {
        assert!(tokio::time::Instant::now() < deadline, "{sql} ≠ {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn person_of(pool: &sqlx::PgPool, instance: &str, id: &str) -> Uuid {
    sqlx::query_scalar(
        "SELECT entity_id FROM source_record WHERE instance_id = $1 AND external_id = $2",
    )
    .bind(instance)
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn ok(env: &TestEnv, args: &[&str]) -> String {
    let run = cli(env, args).await;
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    // Shown with --nocapture: what docs/etl.md quotes.
    println!("$ tributary {}\n{}", args.join(" "), run.stdout);
    run.stdout
}

const LIVE: &str = "SELECT count(*) FROM person WHERE merged_into IS NULL AND deleted_at IS NULL";

#[tokio::test]
async fn people_show_explains_a_merge_and_unmerge_merge_and_reject_mend_it() {
    let mut env = TestEnv::new().await;
    env.config.etl.batch_wait_ms = 20;
    env.config.etl.check_data_write = false;
    let _etl = RunningService::start(tributary_etl::build, env.config.clone()).await;
    let desk = "+442071234567";
    publish_items(
        &env,
        &[
            person("crm", "c1", "Ada Lovelace", &["ada@engines.example"], &[]),
            person("mail", "m1", "A. Lovelace", &["ada@engines.example"], &[]),
            person("crm", "d1", "Alan Turing", &[], &[desk]),
            person("crm", "d2", "Grace Hopper", &[], &[desk]),
            person("crm", "d3", "Edsger Dijkstra", &[], &[desk]),
            person(
                "crm",
                "b1",
                "Charles Babbage",
                &["lab@engines.example"],
                &[],
            ),
            person(
                "mail",
                "s1",
                "Mary Somerville",
                &["lab@engines.example"],
                &[],
            ),
        ],
    )
    .await;
    let pool = env.pool().await;
    wait_count(
        &pool,
        "SELECT count(*) FROM source_record WHERE entity_type = 'person'",
        7,
    )
    .await;
    wait_count(&pool, LIVE, 6).await;

    // Why Ada is one person: both records, and the address that merged them.
    let ada = person_of(&pool, "crm", "c1").await;
    let shown = ok(&env, &["people", "show", &ada.to_string()]).await;
    for expected in [
        "Ada Lovelace",
        "Sources (2)",
        "crm/c1",
        "mail/m1",
        "Merges (1)",
        "shared e-mail ada@engines.example",
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }
    let json: Value =
        serde_json::from_str(&ok(&env, &["people", "show", &ada.to_string(), "--json"]).await)
            .unwrap();
    assert_eq!(json["sources"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["merges"][0]["rule"], "shared_email", "{json}");

    // The front desk's number merged nobody and is reported.
    let shared = ok(&env, &["people", "shared"]).await;
    assert!(shared.contains("1 shared identifiers"), "{shared}");
    assert!(shared.contains(desk), "{shared}");
    assert!(shared.contains("Edsger Dijkstra"), "{shared}");

    // Two names that do not match on one address: a suggestion, rejected for good.
    let listed = ok(&env, &["people", "suggestions"]).await;
    assert!(listed.contains("lab@engines.example"), "{listed}");
    assert!(
        listed.contains("Charles Babbage") && listed.contains("Mary Somerville"),
        "{listed}"
    );
    let page: Value =
        serde_json::from_str(&ok(&env, &["people", "suggestions", "--json"]).await).unwrap();
    let a = page["suggestions"][0]["a"]["person_id"].as_str().unwrap();
    let b = page["suggestions"][0]["b"]["person_id"].as_str().unwrap();
    let rejected = ok(&env, &["people", "reject", a, b]).await;
    assert!(
        rejected.starts_with("Rejected: kept apart as"),
        "{rejected}"
    );
    assert!(ok(&env, &["people", "suggestions"])
        .await
        .starts_with("No suggestions."));
    assert_eq!(count(&pool, LIVE).await, 6, "a rejection merges nothing");

    // Unmerged: two people, the decision shown as the operator's.
    let split = ok(&env, &["people", "unmerge", &ada.to_string()]).await;
    assert!(split.starts_with("Split into"), "{split}");
    assert_eq!(count(&pool, LIVE).await, 7);
    let (crm_ada, mail_ada) = (
        person_of(&pool, "crm", "c1").await,
        person_of(&pool, "mail", "m1").await,
    );
    assert_ne!(crm_ada, mail_ada);
    let shown = ok(&env, &["people", "show", &crm_ada.to_string()]).await;
    assert!(shown.contains("Sources (1)"), "{shown}");
    assert!(
        shown.contains("crm/c1 and mail/m1 kept apart by nats:admin"),
        "{shown}"
    );

    // Merged again by hand, and the merge says by whom.
    let merged = ok(
        &env,
        &[
            "people",
            "merge",
            &crm_ada.to_string(),
            &mail_ada.to_string(),
        ],
    )
    .await;
    assert!(merged.starts_with("Merged into"), "{merged}");
    assert_eq!(count(&pool, LIVE).await, 6);
    let kept = person_of(&pool, "crm", "c1").await;
    let gone = if kept == crm_ada { mail_ada } else { crm_ada };
    let shown = ok(&env, &["people", "show", &kept.to_string()]).await;
    assert!(shown.contains("merged by nats:admin"), "{shown}");
    let followed = ok(&env, &["people", "show", &gone.to_string()]).await;
    assert!(
        followed.starts_with(&format!("{gone} was merged into {kept}")),
        "{followed}"
    );

    // Refusals name the problem and exit 1.
    let same = cli(
        &env,
        &["people", "merge", &kept.to_string(), &kept.to_string()],
    )
    .await;
    assert_eq!(same.code, 1, "{}", same.stdout);
    assert!(same.stderr.contains("the same person"), "{}", same.stderr);
    let nobody = Uuid::now_v7().to_string();
    let unknown = cli(&env, &["people", "unmerge", &nobody]).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains(&format!("no person has the id {nobody}")),
        "{}",
        unknown.stderr
    );
    let bad = cli(&env, &["people", "shared", "--limit", "0"]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("`limit`"), "{}", bad.stderr);
}
