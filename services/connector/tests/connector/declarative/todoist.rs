//! The built-in Todoist spec against a local sync endpoint: tasks as documents, each later
//! sync asking with the kept `sync_token` for the changes only.

use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{TodoistServer, TOKEN};

use super::{start_enabled, write_builtin};
use crate::support::TempDir;

const LIVE: &str =
    "SELECT count(*) FROM source_record WHERE instance_id = 'todoist' AND NOT deleted";
const SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'todoist'";
const DOCUMENTS: &str = "SELECT count(*) FROM document WHERE deleted_at IS NULL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todoist_tasks_sync_then_changes_then_a_deletion_then_a_full_resync() {
    let todoist = TodoistServer::start().await;
    todoist.put("6X7rM8997g3RQmvh", "Buy milk", json!({}));
    todoist.put(
        "6X7rfFVPjhvv84XG",
        "Call the plumber",
        json!({"description": "About the **kitchen** sink", "priority": 4}),
    );
    todoist.put("6X7rfEVP8hvv25ZQ", "File taxes", json!({}));
    let plugins = TempDir::new("declarative-plugins");
    write_builtin(
        &plugins.0.join("todoist"),
        "tributary.todoist",
        "com.example.todoist",
        "https://api.todoist.com",
        &todoist.base_url(),
        &["data:write:documents"],
    );
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.todoist",
        "todoist",
        json!({"apiToken": TOKEN}),
    )
    .await;

    // The first sync (`sync_token=*`): every open task, as documents.
    let done = completed.next_of("todoist", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 3, "{done:?}");
    mesh.wait_for_rows(DOCUMENTS, 3, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM document WHERE title = 'Call the plumber' \
         AND content = 'About the **kitchen** sink' AND mime_type = 'text/markdown'",
        1,
        Duration::from_secs(5),
    )
    .await;

    // Only the changes travel: the kept token asks for them.
    todoist.put("6X7rM8997g3RQmvh", "Buy oat milk", json!({}));
    mesh.sync_now(json!({ "instance_id": "todoist" })).await;
    let done = completed.next_of("todoist", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM document WHERE title = 'Buy oat milk'",
        1,
        Duration::from_secs(30),
    )
    .await;

    // A deleted task (`is_deleted`) is a deletion.
    todoist.delete("6X7rfEVP8hvv25ZQ");
    mesh.sync_now(json!({ "instance_id": "todoist" })).await;
    let done = completed.next_of("todoist", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(DOCUMENTS, 2, Duration::from_secs(30))
        .await;

    // A refused token (400 INVALID_ARGUMENT_VALUE): a full sync again, nothing twice.
    todoist.put("6X7rfFVPjhvv84XG", "Call the plumber (again)", json!({}));
    todoist.expire_tokens();
    mesh.sync_now(json!({ "instance_id": "todoist" })).await;
    let done = completed.next_of("todoist", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 2, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM document WHERE title = 'Call the plumber (again)'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(SOURCES, 3, Duration::from_secs(5)).await;
    mesh.wait_for_rows(LIVE, 2, Duration::from_secs(5)).await;
    mesh.wait_for_rows(DOCUMENTS, 2, Duration::from_secs(5))
        .await;
    mesh.wait_for_rows("SELECT count(*) FROM document", 3, Duration::from_secs(5))
        .await;
    let requests = todoist.requests();
    assert!(
        requests.iter().all(|(_, authorized)| *authorized),
        "every request carried the configured token"
    );
    // The refused token, then `*`.
    let n = requests.len();
    assert!(!requests[n - 2].0.contains("sync_token=*"), "{requests:?}");
    assert!(requests[n - 1].0.contains("sync_token=*"), "{requests:?}");
    mesh.stop().await;
}
