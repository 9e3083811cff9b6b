//! `tributary search` and `tributary search reindex`, running the real binary against a real
//! ETL and search service.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use serde_json::json;
use tributary_kit::testing::{RunningService, TestEnv};

use common::{cli, cli_into_closed_pipe, publish_items};

fn item(instance: &str, entity: &str, id: &str, data: serde_json::Value) -> serde_json::Value {
    json!({
        "instance_id": instance, "entity_type": entity, "external_id": id,
        "source_modified_at": "2026-03-01T10:00:00Z", "data": data, "raw": {},
    })
}

#[tokio::test]
async fn search_prints_readable_results_and_reindex_follows_its_progress() {
    let mut env = TestEnv::new().await;
    env.config.etl.batch_wait_ms = 20;
    env.config.search.batch_wait_ms = 20;
    let etl = RunningService::start(tributary_etl::build, env.config.clone()).await;
    let search = RunningService::start(tributary_search::build, env.config.clone()).await;
    publish_items(
        &env,
        &[
            item("mail", "message", "m1", json!({
                "sender": "grace@navy.example", "subject": "Budget review",
                "body_text": "The <draft> budget & the compiler plan", "sent_at": "2026-03-01T12:00:00Z"
            })),
            item("files", "document", "d1", json!({"title": "Compiler notes", "content": "Notes on the A-0 compiler"})),
        ],
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let found = loop {
        let run = cli(&env, &["search", "compilr"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        if run.stdout.starts_with("2 results") {
            break run.stdout;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", run.stdout);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        found.contains("2 results for \"compilr\" (1–2 shown, embedded index)"),
        "{found}"
    );
    assert!(found.contains("message        Budget review"), "{found}");
    // Entities decoded, the matched word marked (no terminal: between asterisks).
    assert!(
        found.contains("The <draft> budget & the *compiler* plan"),
        "{found}"
    );
    assert!(found.contains("2026-03-01 12:00 · mail"), "{found}");

    let run = cli(
        &env,
        &["search", "compiler", "--type", "document", "--json"],
    )
    .await;
    let results: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(results["total"], 1);
    assert_eq!(results["hits"][0]["title"], "Compiler notes");
    let run = cli(&env, &["search", "nothing-like-it"]).await;
    assert_eq!(run.stdout, "No results for \"nothing-like-it\".\n");
    let run = cli(&env, &["search", "x", "--from", "someday"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("`from`"), "{}", run.stderr);

    let run = cli(&env, &["search", "reindex"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("Reindexing the embedded index from PostgreSQL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Reindexed 2 entries in"),
        "{}",
        run.stdout
    );
    let run = cli(&env, &["search", "stats"]).await;
    assert_eq!(run.stdout, "2 entries searchable in the embedded index\n");
    let run = cli(&env, &["search", "compiler"]).await;
    assert!(run.stdout.starts_with("2 results"), "{}", run.stdout);

    search.stop().await;
    etl.stop().await;
}

#[tokio::test]
async fn search_into_a_pipe_closed_early_exits_quietly() {
    // Proves `tributary search "" --json | head` ends like a Unix tool: exit 0, nothing on
    // standard error, no panic about a broken pipe.
    let env = TestEnv::new().await;
    let search = RunningService::start(tributary_search::build, env.config.clone()).await;

    let run = cli_into_closed_pipe(&env, &["search", "", "--json"]).await;

    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    search.stop().await;
}

#[tokio::test]
async fn commands_without_the_mesh_into_a_pipe_closed_early_exit_quietly() {
    // Proves the quiet exit is the CLI's, not one command's: the commands that print without
    // asking any service behave the same.
    let env = TestEnv::new().await;
    for args in [
        &["check-config"][..],
        &["plugins", "generate-key"],
        &["plugins", "generate-key", "--json"],
    ] {
        let run = cli_into_closed_pipe(&env, args).await;
        // generate-key's advice goes to standard error before the key; nothing else may.
        let complaint = run.stderr.contains("Broken pipe") || run.stderr.contains("panicked");
        assert_eq!(run.code, 0, "tributary {args:?}: {}", run.stderr);
        assert!(!complaint, "tributary {args:?}: {}", run.stderr);
    }
}
