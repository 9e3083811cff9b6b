//! The built-in Google specs against a local Google Calendar API and People API: events
//! per calendar, and contacts, each through sync tokens (expired → full resync); a kill
//! mid-sync of the contacts resumes from its page token.

use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{CalendarServer, PeopleServer, TOKEN};

use super::{start_enabled, write_builtin, EVENTS, PERSONS};
use crate::support::TempDir;

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

const CONTACTS_LIVE: &str =
    "SELECT count(*) FROM source_record WHERE instance_id = 'gcontacts' AND NOT deleted";
const CONTACTS_SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'gcontacts'";

/// The built-in Google Contacts plugin as a directory plugin `com.example.gcontacts`,
/// against `people`.
fn write_contacts(plugins: &TempDir, people: &PeopleServer) {
    write_builtin(
        &plugins.0.join("gcontacts"),
        "tributary.google-contacts",
        "com.example.gcontacts",
        "https://people.googleapis.com/v1",
        &people.base_url(),
        &["data:write:persons"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_contacts_sync_then_changes_then_a_deletion_then_a_full_resync() {
    let people = PeopleServer::start().await;
    for (n, given) in ["ada", "bob", "cy", "dee", "eve"].iter().enumerate() {
        people.put(
            &format!("c{n}"),
            given,
            "Example",
            &format!("{given}@example.com"),
        );
    }
    let plugins = TempDir::new("declarative-plugins");
    write_contacts(&plugins, &people);
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.gcontacts",
        "gcontacts",
        json!({"pageSize": 2, "token": TOKEN}),
    )
    .await;

    // The first sync: every contact, three pages.
    let done = completed
        .next_of("gcontacts", Duration::from_secs(30))
        .await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    mesh.wait_for_rows(CONTACTS_LIVE, 5, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(PERSONS, 5, Duration::from_secs(30))
        .await;

    // Only the changes travel: the sync token asks for them.
    people.put("c1", "bob", "Changed", "bob@example.com");
    mesh.sync_now(json!({ "instance_id": "gcontacts" })).await;
    let done = completed
        .next_of("gcontacts", Duration::from_secs(30))
        .await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE family_name = 'Changed'",
        1,
        Duration::from_secs(30),
    )
    .await;

    // A deleted contact (`metadata.deleted`) is a deletion.
    people.delete("c3");
    mesh.sync_now(json!({ "instance_id": "gcontacts" })).await;
    let done = completed
        .next_of("gcontacts", Duration::from_secs(30))
        .await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    mesh.wait_for_rows(CONTACTS_LIVE, 4, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(PERSONS, 4, Duration::from_secs(30))
        .await;

    // An expired sync token (400 FAILED_PRECONDITION): everything again, nothing twice.
    people.put("c2", "cy", "Resynced", "cy@example.com");
    people.expire_tokens();
    mesh.sync_now(json!({ "instance_id": "gcontacts" })).await;
    let done = completed
        .next_of("gcontacts", Duration::from_secs(30))
        .await;
    assert_eq!(done.data["items"], 4, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE family_name = 'Resynced'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.wait_for_rows(CONTACTS_SOURCES, 5, Duration::from_secs(5))
        .await;
    mesh.wait_for_rows(CONTACTS_LIVE, 4, Duration::from_secs(5))
        .await;
    mesh.wait_for_rows(PERSONS, 4, Duration::from_secs(5)).await;
    let requests = people.requests();
    assert!(
        requests.iter().all(|(_, authorized)| *authorized),
        "every request carried the configured token"
    );
    assert!(
        requests
            .iter()
            .rev()
            .take(2)
            .all(|(q, _)| !q.contains("syncToken")),
        "the full resync asked without the expired token: {requests:?}"
    );
    mesh.stop().await;
}

/// A kill mid-sync of a sync-token connector: the page token it checkpointed is where the
/// restarted sync goes on, and the sync token the finished listing keeps asks for only the
/// changes next. The engine's resume path is the same for every spec (each page's items,
/// then a checkpoint holding the next page's position); `microsoft_365` covers it for
/// next links, this for a page token followed by a sync token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_contacts_sync_killed_half_way_resumes_from_its_page_token_and_stores_each_contact_once(
) {
    let people = PeopleServer::start().await;
    for n in 0..20 {
        people.put(
            &format!("c{n:02}"),
            &format!("p{n}"),
            "Example",
            &format!("p{n}@example.com"),
        );
    }
    people.slow_down(Duration::from_millis(150));
    let plugins = TempDir::new("declarative-plugins");
    write_contacts(&plugins, &people);
    let (mut mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.gcontacts",
        "gcontacts",
        json!({"pageSize": 2, "token": TOKEN}),
    )
    .await;
    let pool = mesh.env.pool().await;
    // Wait for a checkpoint a few pages in (page token `<since>.<offset>`), then stop the
    // service mid-sync.
    let checkpoint = mesh
        .wait_for_checkpoint("gcontacts", "\"0.6\"", "page 4")
        .await;
    mesh.stop_connector().await;
    let status: String = sqlx::query_scalar(
        "SELECT status FROM connector_sync_state WHERE instance_id = 'gcontacts'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        status, "running",
        "an interrupted sync stays running, to resume"
    );

    mesh.start_connector().await;
    let done = completed
        .next_of("gcontacts", Duration::from_secs(60))
        .await;
    assert!(
        done.data["items"].as_u64().unwrap() < 20,
        "{done:?} after {checkpoint}"
    );
    mesh.wait_for_rows(CONTACTS_SOURCES, 20, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(PERSONS, 20, Duration::from_secs(30))
        .await;
    // One fresh listing only: the restarted sync went on from a page token.
    let fresh = people
        .requests()
        .iter()
        .filter(|(query, _)| !query.contains("pageToken"))
        .count();
    assert_eq!(fresh, 1, "{:?}", people.requests());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mesh.stored_on("data.PersonCreated").await, 20);
    assert_eq!(mesh.stored_on("data.PersonUpdated").await, 0);

    // The resumed listing kept its sync token: the next sync sends only the change.
    people.slow_down(Duration::ZERO);
    people.put("c07", "p7", "Changed", "p7@example.com");
    mesh.sync_now(json!({ "instance_id": "gcontacts" })).await;
    let done = completed
        .next_of("gcontacts", Duration::from_secs(30))
        .await;
    assert_eq!(done.data["items"], 1, "{done:?}");
    let last = people.requests().last().cloned().unwrap();
    assert!(last.0.contains("syncToken="), "{last:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE family_name = 'Changed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    mesh.stop().await;
}
