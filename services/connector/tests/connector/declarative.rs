//! A declarative connector run by the real plugin manager, connector service and ETL: the
//! Microsoft 365 contacts spec from a plugin directory, against a local Graph.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{GraphServer, TOKEN};
use tributary_kit::testing::Accept;
use tributary_proto::events::{EventKind, SyncEvent};

use crate::support::{Harness, TempDir};

const LIVE: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'm365' AND NOT deleted";
const SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'm365'";
const PERSONS: &str = "SELECT count(*) FROM person WHERE deleted_at IS NULL";

/// The built-in Microsoft 365 plugin as a directory plugin `com.example.m365`: its spec
/// pointed at `graph`, with a bearer token from config instead of the OAuth broker.
fn write_plugin(dir: &Path, graph: &GraphServer) {
    let builtin = tributary_declarative::builtin_spec("tributary.microsoft-365").unwrap();
    let base = graph.base_url();
    let host = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let spec = builtin
        .spec
        .replace("https://graph.microsoft.com/v1.0", &base)
        .replace(
            "type = \"oauth\"",
            "type = \"bearer\"\ntoken = \"{{ config.token }}\"",
        );
    let mut manifest: serde_json::Value = serde_json::from_str(builtin.manifest).unwrap();
    manifest["id"] = json!("com.example.m365");
    manifest["permissions"] = json!([format!("network:outbound:{host}"), "data:write:persons"]);
    manifest.as_object_mut().unwrap().remove("auth");
    manifest["configSchema"]["properties"]["token"] = json!({"type": "string", "writeOnly": true});
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join("contacts.toml"), spec).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_365_contacts_sync_then_changes_then_a_deletion_then_a_full_resync() {
    let graph = GraphServer::start().await;
    for (id, given) in ["ada", "bob", "cy", "dee", "eve"].iter().enumerate() {
        graph.put(
            &format!("AAMk-{id}"),
            given,
            "Example",
            &format!("{given}@contoso.example"),
        );
    }
    let plugins = TempDir::new("declarative-plugins");
    write_plugin(&plugins.0.join("m365"), &graph);
    let dir = plugins.0.clone();
    let mesh = Harness::start_with(true, move |env| {
        env.config.plugin_manager.plugin_dirs.push(dir);
    })
    .await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(
        "com.example.m365",
        "m365",
        json!({"tenantId": "common", "pageSize": 2, "token": TOKEN}),
        Accept::Requested,
    )
    .await;
    mesh.enable("m365").await;

    // The first sync: every contact, three pages.
    let done = completed.next_of("m365", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    mesh.wait_for_rows(LIVE, 5, Duration::from_secs(30)).await;
    mesh.wait_for_rows(PERSONS, 5, Duration::from_secs(30))
        .await;

    // Only the changes travel.
    graph.put("AAMk-1", "bob", "Changed", "bob@contoso.example");
    mesh.sync_now(json!({ "instance_id": "m365" })).await;
    let done = completed.next_of("m365", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE family_name = 'Changed'",
        1,
        Duration::from_secs(30),
    )
    .await;

    // A removed contact is a deletion.
    graph.delete("AAMk-3");
    mesh.sync_now(json!({ "instance_id": "m365" })).await;
    let done = completed.next_of("m365", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(LIVE, 4, Duration::from_secs(30)).await;
    mesh.wait_for_rows(PERSONS, 4, Duration::from_secs(30))
        .await;

    // An expired delta token: everything again, nothing twice.
    graph.put("AAMk-2", "cy", "Resynced", "cy@contoso.example");
    graph.expire_tokens();
    mesh.sync_now(json!({ "instance_id": "m365" })).await;
    let done = completed.next_of("m365", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 4, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE family_name = 'Resynced'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(SOURCES, 5, Duration::from_secs(5)).await;
    mesh.wait_for_rows(LIVE, 4, Duration::from_secs(5)).await;
    mesh.wait_for_rows(PERSONS, 4, Duration::from_secs(5)).await;
    assert!(
        graph.requests().iter().all(|(_, authorized)| *authorized),
        "every request carried the configured token"
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declarative_sync_stopped_half_way_resumes_from_its_checkpoint_and_stores_each_contact_once(
) {
    let graph = GraphServer::start().await;
    for n in 0..20 {
        graph.put(
            &format!("AAMk-{n:02}"),
            &format!("p{n}"),
            "Example",
            &format!("p{n}@contoso.example"),
        );
    }
    graph.slow_down(Duration::from_millis(150));
    let plugins = TempDir::new("declarative-plugins");
    write_plugin(&plugins.0.join("m365"), &graph);
    let dir = plugins.0.clone();
    let mut mesh = Harness::start_with(true, move |env| {
        env.config.plugin_manager.plugin_dirs.push(dir);
    })
    .await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(
        "com.example.m365",
        "m365",
        json!({"tenantId": "common", "pageSize": 2, "token": TOKEN}),
        Accept::Requested,
    )
    .await;
    mesh.enable("m365").await;
    let pool = mesh.env.pool().await;
    // Wait for a checkpoint a few pages in, then stop the service mid-sync.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let checkpoint = loop {
        let cursor: Option<String> = sqlx::query_scalar(
            "SELECT cursor::text FROM connector_sync_state WHERE instance_id = 'm365'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .flatten();
        if let Some(cursor) = cursor.filter(|c| c.contains("skiptoken=0.6")) {
            break cursor;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint at page 4 within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    mesh.stop_connector().await;
    let status: String =
        sqlx::query_scalar("SELECT status FROM connector_sync_state WHERE instance_id = 'm365'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        status, "running",
        "an interrupted sync stays running, to resume"
    );

    mesh.start_connector().await;
    let done = completed.next_of("m365", Duration::from_secs(60)).await;
    assert!(
        done.data["items"].as_u64().unwrap() < 20,
        "{done:?} after {checkpoint}"
    );
    mesh.wait_for_rows(SOURCES, 20, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(PERSONS, 20, Duration::from_secs(30))
        .await;
    // One fresh listing only: the restarted sync went on from a skip token.
    let fresh = graph
        .requests()
        .iter()
        .filter(|(query, _)| !query.contains("skiptoken"))
        .count();
    assert_eq!(fresh, 1, "{:?}", graph.requests());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mesh.stored_on("data.PersonCreated").await, 20);
    assert_eq!(mesh.stored_on("data.PersonUpdated").await, 0);
    mesh.stop().await;
}
