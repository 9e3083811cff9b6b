//! schemathesis against the whole admin OpenAPI document (`/api/v1/openapi.json`), with the
//! admin token, on the five real service processes holding data (two demo instances synced, so
//! people, search hits and sync states exist): every operation is called with requests made
//! from its schema, and no answer may be a server error (5xx) or break the schema the document
//! declares for it. The routes that change things run too (install, uninstall, discard…): the
//! stack is this test's own.
//!
//! schemathesis is installed by `scripts/schemathesis` (pinned in
//! tests/openapi/requirements.txt, in a virtual environment under ~/.cache/tributary-pip/),
//! which this test runs: a machine without it installs it, or the test fails saying why; it is
//! never skipped. The seed is fixed so a failure can be reproduced; the command it prints runs
//! the same case again.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;

use secrecy::ExposeSecret;
use serde_json::json;
use tributary_e2e::{installed_by, Stack};
use tributary_proto::streams::ConsumerKey;
use tributary_proto::ServiceName;

/// The seed of the generated requests.
const SEED: &str = "2512";
/// Examples per operation.
const EXAMPLES: &str = "12";

/// Where schemathesis is: `$TRIBUTARY_SCHEMATHESIS`, or what `scripts/schemathesis` installs.
fn schemathesis() -> PathBuf {
    installed_by("schemathesis", "TRIBUTARY_SCHEMATHESIS", "schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_every_generated_request_within_its_schema_and_without_a_server_error(
) {
    let schemathesis = schemathesis();
    let mut stack = Stack::new().await;
    stack.start_all().await;
    for demo in ["demo-a", "demo-b"] {
        stack
            .admin_install("tributary.demo", demo, json!({ "schedule": "24h" }))
            .await;
        stack.admin_enable(demo).await;
    }
    let people = "SELECT count(*) FROM source_record WHERE entity_type = 'person'";
    stack
        .wait_for_rows(people, 14, std::time::Duration::from_secs(60))
        .await;
    stack
        .wait_consumer_settled(ConsumerKey::SearchIndexer, 60)
        .await;

    let base = format!("http://{}", stack.http_addr(ServiceName::PluginManager));
    let token = stack
        .config()
        .plugin_manager
        .admin_token
        .expose_secret()
        .to_owned();
    // schemathesis keeps a cache in its working directory: a temporary one, not the clone.
    let workdir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(&schemathesis)
        .current_dir(workdir.path())
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--workers", "2", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), run)
        .await
        .expect("schemathesis ends within 600 s")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout).replace(&token, "<admin token>");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&token, "<admin token>");
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found a server error or a response breaking its schema:\n{stdout}\n{stderr}\nplugin manager log:\n{}",
        stack.log_text(ServiceName::PluginManager)
    );
    assert!(
        stdout.contains("passed"),
        "schemathesis ran no operation:\n{stdout}"
    );
}
