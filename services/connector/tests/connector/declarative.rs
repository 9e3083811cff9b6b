//! Declarative connectors run by the real plugin manager, connector service and ETL: the
//! built-in Microsoft 365, Google Calendar and Zendesk specs from a plugin directory, against
//! a local Graph, a local Calendar API and a local Zendesk.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{
    CalendarServer, GraphServer, ZendeskServer, TOKEN, ZENDESK_AGENT,
};
use tributary_kit::testing::{Accept, Events};
use tributary_proto::events::{EventKind, SyncEvent};

use crate::support::{Harness, TempDir};

const LIVE: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'm365' AND NOT deleted";
const SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'm365'";
const PERSONS: &str = "SELECT count(*) FROM person WHERE deleted_at IS NULL";

/// The built-in plugin `builtin_id` as a directory plugin `id`: its spec pointed from
/// `real_base` at `local_base`, with a bearer token from config instead of the OAuth broker,
/// and granted that host and `data` (`data:write:…`).
fn write_builtin(
    dir: &Path,
    builtin_id: &str,
    id: &str,
    real_base: &str,
    local_base: &str,
    data: &[&str],
) {
    let builtin = tributary_declarative::builtin_spec(builtin_id).unwrap();
    let host = local_base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let spec = builtin.spec.replace(real_base, local_base).replace(
        "type = \"oauth\"",
        "type = \"bearer\"\ntoken = \"{{ config.token }}\"",
    );
    let mut manifest: serde_json::Value = serde_json::from_str(builtin.manifest).unwrap();
    manifest["id"] = json!(id);
    let mut permissions = vec![format!("network:outbound:{host}")];
    permissions.extend(data.iter().map(|d| (*d).to_owned()));
    manifest["permissions"] = json!(permissions);
    manifest.as_object_mut().unwrap().remove("auth");
    manifest["configSchema"]["properties"]["token"] = json!({"type": "string", "writeOnly": true});
    let file = manifest["entrypoint"]
        .as_str()
        .and_then(tributary_declarative::spec_file)
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join(file), spec).unwrap();
}

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

/// The services (with the ETL) reading the plugin directories under `plugins`, a watch on
/// completed syncs, and `instance` of `plugin_id` installed with `config` and enabled.
async fn start_enabled(
    plugins: &TempDir,
    plugin_id: &str,
    instance: &str,
    config: serde_json::Value,
) -> (Harness, Events) {
    let dir = plugins.0.clone();
    let mesh = Harness::start_with(true, move |env| {
        env.config.plugin_manager.plugin_dirs.push(dir);
    })
    .await;
    let completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(plugin_id, instance, config, Accept::Requested)
        .await;
    mesh.enable(instance).await;
    (mesh, completed)
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

const EVENTS: &str = "SELECT count(*) FROM calendar_event WHERE deleted_at IS NULL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_calendar_events_sync_then_changes_then_a_deletion_then_a_full_resync() {
    let calendar = CalendarServer::start().await;
    calendar.add_calendar("ada@example.com", "Ada", "Europe/Zurich");
    calendar.add_calendar("team@group.calendar.google.com", "Team", "America/New_York");
    calendar.put(
        "ada@example.com",
        "launch",
        json!({"summary": "Launch review",
               "start": {"dateTime": "2026-12-03T10:00:00+01:00", "timeZone": "Europe/Zurich"},
               "end": {"dateTime": "2026-12-03T11:30:00+01:00", "timeZone": "Europe/Zurich"},
               "attendees": [{"email": "Bob@Example.com"}]}),
    );
    calendar.put(
        "ada@example.com",
        "holiday",
        json!({"summary": "Holiday", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-27"}}),
    );
    calendar.put(
        "ada@example.com",
        "standup",
        json!({"summary": "Standup",
               "start": {"dateTime": "2026-12-07T09:00:00+01:00", "timeZone": "Europe/Zurich"},
               "end": {"dateTime": "2026-12-07T09:15:00+01:00", "timeZone": "Europe/Zurich"},
               "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO"]}),
    );
    for id in ["plan", "retro"] {
        calendar.put(
            "team@group.calendar.google.com",
            id,
            json!({"summary": id,
                   "start": {"dateTime": "2026-12-04T15:00:00-05:00", "timeZone": "America/New_York"},
                   "end": {"dateTime": "2026-12-04T16:00:00-05:00", "timeZone": "America/New_York"}}),
        );
    }
    let plugins = TempDir::new("declarative-plugins");
    write_builtin(
        &plugins.0.join("gcal"),
        "tributary.google-calendar",
        "com.example.gcal",
        "https://www.googleapis.com/calendar/v3",
        &calendar.base_url(),
        &["data:write:calendar_events"],
    );
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.gcal",
        "gcal",
        json!({"pageSize": 2, "token": TOKEN}),
    )
    .await;

    // The first sync: both calendars, every event, stored with its zone, rule and day.
    let done = completed.next_of("gcal", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    mesh.wait_for_rows(EVENTS, 5, Duration::from_secs(30)).await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM calendar_event WHERE title = 'Launch review' \
         AND starts_at = '2026-12-03T09:00:00Z' AND original_timezone = 'Europe/Zurich' \
         AND attendees = '{bob@example.com}'",
        1,
        Duration::from_secs(5),
    )
    .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM calendar_event WHERE all_day AND starts_at = '2026-12-24T00:00:00Z' \
         AND ends_at = '2026-12-27T00:00:00Z'",
        1,
        Duration::from_secs(5),
    )
    .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM calendar_event WHERE recurrence = 'FREQ=WEEKLY;BYDAY=MO'",
        1,
        Duration::from_secs(5),
    )
    .await;

    // Only the changes travel.
    calendar.put(
        "team@group.calendar.google.com",
        "plan",
        json!({"summary": "Planning (moved)",
               "start": {"dateTime": "2026-12-05T15:00:00-05:00"},
               "end": {"dateTime": "2026-12-05T16:00:00-05:00"}}),
    );
    mesh.sync_now(json!({ "instance_id": "gcal" })).await;
    let done = completed.next_of("gcal", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM calendar_event WHERE title = 'Planning (moved)'",
        1,
        Duration::from_secs(30),
    )
    .await;

    // A cancelled event is a deletion.
    calendar.cancel("ada@example.com", "launch");
    mesh.sync_now(json!({ "instance_id": "gcal" })).await;
    let done = completed.next_of("gcal", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(EVENTS, 4, Duration::from_secs(30)).await;

    // An expired sync token: every calendar again, nothing twice.
    calendar.expire_tokens();
    mesh.sync_now(json!({ "instance_id": "gcal" })).await;
    let done = completed.next_of("gcal", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 4, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM source_record WHERE instance_id = 'gcal'",
        5,
        Duration::from_secs(5),
    )
    .await;
    mesh.wait_for_rows(EVENTS, 4, Duration::from_secs(5)).await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM calendar_event",
        5,
        Duration::from_secs(5),
    )
    .await;
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
