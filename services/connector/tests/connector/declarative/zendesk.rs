//! The built-in Zendesk spec against a local incremental ticket export.

use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{ZendeskServer, TOKEN, ZENDESK_AGENT};

use super::{start_enabled, write_builtin};
use crate::support::TempDir;

const TICKETS_LIVE: &str =
    "SELECT count(*) FROM source_record WHERE instance_id = 'zendesk' AND NOT deleted";
const TICKETS_SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'zendesk'";
const CONVERSATIONS: &str = "SELECT count(*) FROM conversation WHERE deleted_at IS NULL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_tickets_sync_then_changes_then_a_deletion_then_a_full_export() {
    let zendesk = ZendeskServer::start().await;
    for (id, subject) in [
        (1, "Printer on fire"),
        (2, "Password reset"),
        (3, "New laptop"),
    ] {
        zendesk.put(
            id,
            subject,
            json!({"description": format!("About: {subject}")}),
        );
    }
    let plugins = TempDir::new("declarative-plugins");
    // The spec's URL comes from config; the directory plugin's points at the local Zendesk.
    write_builtin(
        &plugins.0.join("zendesk"),
        "tributary.zendesk",
        "com.example.zendesk",
        "{{ config.url | trim('/') }}",
        &zendesk.base_url(),
        &["data:write:conversations"],
    );
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.zendesk",
        "zendesk",
        json!({"url": zendesk.base_url(), "email": ZENDESK_AGENT, "apiToken": TOKEN, "pageSize": 2}),
    )
    .await;

    // The first sync: every ticket, two pages, as conversations.
    let done = completed.next_of("zendesk", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 3, "{done:?}");
    mesh.wait_for_rows(CONVERSATIONS, 3, Duration::from_secs(30))
        .await;

    // Only the changes travel, a deleted ticket as a deletion.
    zendesk.put(2, "Password reset (solved)", json!({"status": "solved"}));
    zendesk.delete(3);
    mesh.sync_now(json!({ "instance_id": "zendesk" })).await;
    let done = completed.next_of("zendesk", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 2, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM conversation WHERE title = 'Password reset (solved)'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(CONVERSATIONS, 2, Duration::from_secs(30))
        .await;

    // A cursor Zendesk no longer reads: the whole export again, nothing twice.
    zendesk.put(1, "Printer on fire (again)", json!({}));
    zendesk.expire_cursors();
    mesh.sync_now(json!({ "instance_id": "zendesk" })).await;
    let done = completed.next_of("zendesk", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 3, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM conversation WHERE title = 'Printer on fire (again)'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(TICKETS_SOURCES, 3, Duration::from_secs(5))
        .await;
    mesh.wait_for_rows(TICKETS_LIVE, 2, Duration::from_secs(5))
        .await;
    mesh.wait_for_rows(CONVERSATIONS, 2, Duration::from_secs(5))
        .await;
    assert!(
        zendesk.requests().iter().all(|(_, authorized)| *authorized),
        "every request carried the configured credentials"
    );
    mesh.stop().await;
}
