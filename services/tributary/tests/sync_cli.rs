//! `tributary sync …` as a person runs it: the real binary against the real plugin manager,
//! connector service and ETL started in this process on the real NATS and PostgreSQL, with a
//! folder connector instance on a temporary folder.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{ask, cli};

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tributary_kit::client::MeshClient;
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_proto::requests::connector::StateQuery;
use tributary_proto::requests::plugins::{Call, EnableRequest, InstallRequest, InstanceCall};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_follows_a_sync_to_its_end_and_status_lists_every_instance() {
    let env = TestEnv::new().await;
    let notes = std::env::temp_dir().join(format!("sync-cli-{}", env.prefix));
    std::fs::create_dir_all(&notes).unwrap();
    for (name, text) in [
        ("a.md", "# A\n\nalpha"),
        ("b.md", "# B\n\nbeta"),
        ("c.txt", "gamma"),
    ] {
        std::fs::write(notes.join(name), text).unwrap();
    }
    let pm = RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
    let etl = RunningService::start(tributary_etl::build, env.config.clone()).await;
    let connector = RunningService::start(tributary_connector::build, env.config.clone()).await;
    ask::<Call<InstallRequest>>(
        &env,
        json!({
            "plugin_id": "tributary.folder",
            "instance_id": "notes",
            "config": { "path": notes.display().to_string() },
            "accept_permissions": ["data:write:documents"],
        }),
    )
    .await;
    ask::<InstanceCall<EnableRequest>>(&env, json!({ "instance_id": "notes" })).await;
    // It syncs once on its own when enabled; wait for that to end.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Not known to the connector service until it has heard of the enable: ask again.
        let state: Value = MeshClient::new(env.nats().await, env.subjects(), "test".into())
            .call_with_body::<StateQuery, Value>(&json!({ "instance_id": "notes" }))
            .await
            .unwrap_or(Value::Null);
        if state["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first sync did not end: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let run = cli(&env, &["sync", "notes", "--full"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("Syncing notes (Full)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("Sync completed: 3 items"),
        "{}",
        run.stdout
    );

    let run = cli(&env, &["sync", "status"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run.stdout.lines().find(|l| l.starts_with("notes")).unwrap();
    assert!(row.contains("succeeded"), "{row}");
    assert!(run.stdout.starts_with("INSTANCE"), "{}", run.stdout);

    let run = cli(&env, &["sync", "status", "--json"]).await;
    let states: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(states["instances"][0]["total_items"], 6);

    let run = cli(&env, &["sync", "nobody"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("`nobody` is not an enabled connector instance"),
        "{}",
        run.stderr
    );
    let run = cli(&env, &["sync", "notes", "--since", "last week"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("neither a date"), "{}", run.stderr);
    let run = cli(&env, &["sync", "cancel", "notes"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no sync of `notes` is running"),
        "{}",
        run.stderr
    );

    connector.stop().await;
    etl.stop().await;
    pm.stop().await;
    let _ = std::fs::remove_dir_all(&notes);
}
