//! The built-in Microsoft 365 spec against a local Microsoft Graph: contacts through their
//! delta query (and a kill mid-sync), calendar events and mail with their conversations.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{GraphServer, TOKEN};

use super::{start_enabled, write_builtin, EVENTS, PERSONS};
use crate::support::TempDir;

const LIVE: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'm365' AND NOT deleted";
const SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'm365'";

/// The built-in Microsoft 365 plugin as a directory plugin `com.example.m365`, against
/// `graph`, granted `data`.
fn write_m365(dir: &Path, graph: &GraphServer, data: &[&str]) {
    write_builtin(
        dir,
        "tributary.microsoft-365",
        "com.example.m365",
        "https://graph.microsoft.com/v1.0",
        &graph.base_url(),
        data,
    );
}

/// [`write_m365`] granted persons only: its calendar and mail are empty.
fn write_plugin(dir: &Path, graph: &GraphServer) {
    write_m365(dir, graph, &["data:write:persons"]);
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
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.m365",
        "m365",
        json!({"tenantId": "common", "pageSize": 2, "token": TOKEN}),
    )
    .await;

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
    let (mut mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.m365",
        "m365",
        json!({"tenantId": "common", "pageSize": 2, "token": TOKEN}),
    )
    .await;
    let pool = mesh.env.pool().await;
    // Wait for a checkpoint a few pages in, then stop the service mid-sync.
    let checkpoint = mesh
        .wait_for_checkpoint("m365", "skiptoken=0.6", "page 4")
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_365_calendar_and_mail_are_stored_with_messages_linked_to_their_conversations() {
    let graph = GraphServer::start().await;
    graph.put_event(
        "AAMkEv-0",
        json!({"subject": "Launch review",
               "start": {"dateTime": "2026-12-03T09:00:00.0000000", "timeZone": "UTC"},
               "end": {"dateTime": "2026-12-03T10:30:00.0000000", "timeZone": "UTC"}}),
    );
    graph.put_event(
        "AAMkEv-1",
        json!({"subject": "Holiday", "isAllDay": true,
               "start": {"dateTime": "2026-12-24T00:00:00.0000000", "timeZone": "UTC"},
               "end": {"dateTime": "2026-12-27T00:00:00.0000000", "timeZone": "UTC"}}),
    );
    let who = |address: &str| json!({"emailAddress": {"address": address}});
    for (folder, id, from, to, conversation) in [
        (
            "inbox",
            "AAMkMsg-0",
            "bob@contoso.example",
            "ada@contoso.example",
            "AAQkConv-1",
        ),
        (
            "sentitems",
            "AAMkMsg-1",
            "ada@contoso.example",
            "bob@contoso.example",
            "AAQkConv-1",
        ),
        (
            "inbox",
            "AAMkMsg-2",
            "cy@contoso.example",
            "ada@contoso.example",
            "AAQkConv-2",
        ),
    ] {
        graph.put_message(
            folder,
            id,
            json!({"subject": "Launch", "conversationId": conversation, "from": who(from),
                   "toRecipients": [who(to)],
                   "body": {"contentType": "html", "content": "<p>Shall we <b>launch</b>?</p>"}}),
        );
    }
    let plugins = TempDir::new("declarative-plugins");
    write_m365(
        &plugins.0.join("m365"),
        &graph,
        &[
            "data:write:persons",
            "data:write:calendar_events",
            "data:write:messages",
            "data:write:conversations",
        ],
    );
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.m365",
        "m365",
        json!({"tenantId": "common", "pageSize": 2, "token": TOKEN}),
    )
    .await;

    // Two events; three messages and their conversations (one per message, two distinct).
    let done = completed.next_of("m365", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 8, "{done:?}");
    mesh.wait_for_rows(EVENTS, 2, Duration::from_secs(30)).await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM calendar_event WHERE starts_at = '2026-12-03T09:00:00Z' \
         AND ends_at = '2026-12-03T10:30:00Z'",
        1,
        Duration::from_secs(5),
    )
    .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM conversation WHERE channel = 'email' AND deleted_at IS NULL",
        2,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM message m JOIN conversation c ON c.id = m.conversation_id \
         WHERE m.deleted_at IS NULL AND m.body_text = 'Shall we launch?'",
        3,
        Duration::from_secs(30),
    )
    .await;

    // A removed message and a removed event are deletions.
    graph.delete_message("sentitems", "AAMkMsg-1");
    graph.delete_event("AAMkEv-1");
    mesh.sync_now(json!({ "instance_id": "m365" })).await;
    let done = completed.next_of("m365", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 2, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM message WHERE deleted_at IS NULL",
        2,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(EVENTS, 1, Duration::from_secs(30)).await;
    mesh.stop().await;
}
