//! The built-in Google Calendar connector, run by the engine against a local Calendar API.

use serde_json::json;
use tributary_declarative::testing::CalendarServer;
use tributary_declarative::DeclarativeConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{ConnectorItem, EntityType, ItemOperation};
use tributary_proto::model::CalendarEventFields;

use crate::support::{builtin, ids, oauth_context, run, sync};

const ADA: &str = "ada@example.com";
const TEAM: &str = "team#1@group.calendar.google.com";

fn connector(calendar: &CalendarServer) -> DeclarativeConnector {
    builtin("tributary.google-calendar", &calendar.base_url())
}

fn context_with(config: serde_json::Value) -> TestContext {
    oauth_context(
        &["network:outbound:127.0.0.1", "data:write:calendar_events"],
        config,
    )
}

fn context() -> TestContext {
    context_with(json!({"pageSize": 2}))
}

fn fields(item: &ConnectorItem) -> CalendarEventFields {
    serde_json::from_value(item.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", item.data))
}

/// Two calendars: Ada's own with three events (a timed one in Zurich, an all-day one, a
/// weekly series), the team's with two.
async fn two_calendars() -> CalendarServer {
    let calendar = CalendarServer::start().await;
    calendar.add_calendar(ADA, "Ada", "Europe/Zurich");
    calendar.add_calendar(TEAM, "Team", "America/New_York");
    calendar.put(
        ADA,
        "launch",
        json!({
            "summary": "Launch review",
            "description": "Bring the numbers",
            "location": "Room 4",
            "start": {"dateTime": "2026-12-03T10:00:00+01:00", "timeZone": "Europe/Zurich"},
            "end": {"dateTime": "2026-12-03T11:30:00+01:00", "timeZone": "Europe/Zurich"},
            "organizer": {"email": "bob@example.com", "displayName": "Bob"},
            "attendees": [
                {"email": "ada@example.com", "self": true, "responseStatus": "accepted"},
                {"email": "bob@example.com", "organizer": true, "responseStatus": "accepted"},
                {"email": "cy@example.com", "responseStatus": "needsAction", "optional": true}
            ],
        }),
    );
    calendar.put(
        ADA,
        "holiday",
        json!({"summary": "Holiday", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-27"},
               "transparency": "transparent"}),
    );
    calendar.put(
        ADA,
        "standup",
        json!({
            "summary": "Standup",
            "start": {"dateTime": "2026-12-07T09:00:00+01:00", "timeZone": "Europe/Zurich"},
            "end": {"dateTime": "2026-12-07T09:15:00+01:00", "timeZone": "Europe/Zurich"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR", "EXDATE;TZID=Europe/Zurich:20261209T090000"],
        }),
    );
    for (id, summary) in [("plan", "Planning"), ("retro", "Retro")] {
        calendar.put(
            TEAM,
            id,
            json!({"summary": summary,
                   "start": {"dateTime": "2026-12-04T15:00:00-05:00", "timeZone": "America/New_York"},
                   "end": {"dateTime": "2026-12-04T16:00:00-05:00", "timeZone": "America/New_York"}}),
        );
    }
    calendar
}

#[tokio::test]
async fn a_first_sync_lists_each_calendars_events_across_pages_as_calendar_events() {
    let calendar = two_calendars().await;
    let (items, cursor) = sync(&connector(&calendar), &context(), None).await;

    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        [
            "ada@example.com/holiday",
            "ada@example.com/launch",
            "ada@example.com/standup",
            "team#1@group.calendar.google.com/plan",
            "team#1@group.calendar.google.com/retro",
        ]
    );
    assert!(items
        .iter()
        .all(|i| i.entity_type == EntityType::CalendarEvent));
    let launch = items
        .iter()
        .find(|i| i.external_id.ends_with("/launch"))
        .unwrap();
    let f = fields(launch);
    assert_eq!(f.title, "Launch review");
    assert_eq!(f.description.as_deref(), Some("Bring the numbers"));
    assert_eq!(f.location.as_deref(), Some("Room 4"));
    assert_eq!(f.starts_at.to_rfc3339(), "2026-12-03T09:00:00+00:00");
    assert_eq!(f.ends_at.unwrap().to_rfc3339(), "2026-12-03T10:30:00+00:00");
    assert_eq!(f.original_timezone.as_deref(), Some("Europe/Zurich"));
    assert!(!f.all_day);
    assert_eq!(f.organizer.as_deref(), Some("bob@example.com"));
    assert_eq!(
        f.attendees,
        ["ada@example.com", "bob@example.com", "cy@example.com"]
    );
    assert_eq!(f.extra["calendar_id"], ADA);
    assert_eq!(f.extra["attendee_details"][2]["optional"], true);
    assert_eq!(launch.raw["id"], "launch");
    assert_eq!(
        launch.source_modified_at.to_rfc3339(),
        "2026-11-01T10:00:00+00:00"
    );

    let holiday = fields(
        items
            .iter()
            .find(|i| i.external_id.ends_with("/holiday"))
            .unwrap(),
    );
    assert!(holiday.all_day);
    assert_eq!(holiday.starts_at.to_rfc3339(), "2026-12-24T00:00:00+00:00");
    assert_eq!(
        holiday.ends_at.unwrap().to_rfc3339(),
        "2026-12-27T00:00:00+00:00"
    );
    assert_eq!(holiday.original_timezone, None);

    let standup = fields(
        items
            .iter()
            .find(|i| i.external_id.ends_with("/standup"))
            .unwrap(),
    );
    assert_eq!(
        standup.recurrence.as_deref(),
        Some("FREQ=WEEKLY;BYDAY=MO,WE,FR")
    );
    assert_eq!(
        standup.extra["recurrence_lines"][1],
        "EXDATE;TZID=Europe/Zurich:20261209T090000"
    );

    // The calendar list, then Ada's three events in two pages and the team's two in one,
    // every request with the broker's token and the calendar id escaped in the path.
    let paths = calendar.paths();
    assert_eq!(
        paths,
        [
            "/calendar/v3/users/me/calendarList",
            "/calendar/v3/calendars/ada%40example.com/events",
            "/calendar/v3/calendars/ada%40example.com/events",
            "/calendar/v3/calendars/team%231%40group.calendar.google.com/events",
        ]
    );
    let requests = calendar.requests();
    assert!(requests.iter().all(|(_, authorized)| *authorized));
    assert!(requests[2].0.contains("pageToken=0.2"), "{requests:?}");
    let cursor = cursor.unwrap().0;
    assert_eq!(cursor["streams"]["events"][ADA]["delta"], "s5");
    assert_eq!(cursor["streams"]["events"][TEAM]["delta"], "s5");
}

#[tokio::test]
async fn later_syncs_send_only_the_changes_and_cancelled_events_as_deletions() {
    let calendar = two_calendars().await;
    let connector = connector(&calendar);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;

    // Nothing changed: nothing sent.
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");

    calendar.put(
        TEAM,
        "plan",
        json!({"summary": "Planning (moved)",
               "start": {"dateTime": "2026-12-05T15:00:00-05:00"},
               "end": {"dateTime": "2026-12-05T16:00:00-05:00"}}),
    );
    // A changed occurrence of the weekly series is an event of its own.
    calendar.put(
        ADA,
        "standup_20261211T080000Z",
        json!({"summary": "Standup (long)", "recurringEventId": "standup",
               "originalStartTime": {"dateTime": "2026-12-11T09:00:00+01:00", "timeZone": "Europe/Zurich"},
               "start": {"dateTime": "2026-12-11T09:00:00+01:00", "timeZone": "Europe/Zurich"},
               "end": {"dateTime": "2026-12-11T10:00:00+01:00", "timeZone": "Europe/Zurich"}}),
    );
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        [
            "ada@example.com/standup_20261211T080000Z",
            "team#1@group.calendar.google.com/plan"
        ]
    );
    let occurrence = items
        .iter()
        .find(|i| i.external_id.contains("standup"))
        .unwrap();
    assert_eq!(fields(occurrence).extra["recurring_event_id"], "standup");
    let requests = calendar.requests();
    let incremental = &requests[requests.len() - 2..];
    assert!(
        incremental.iter().all(|(q, _)| q.contains("syncToken=s5")),
        "{requests:?}"
    );

    calendar.cancel(ADA, "launch");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&items, ItemOperation::Delete),
        ["ada@example.com/launch"]
    );
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].data, serde_json::Value::Null);
    assert_eq!(items[0].raw["status"], "cancelled");
}

#[tokio::test]
async fn a_410_gone_makes_a_full_resync_of_the_calendar_that_sends_each_event_once() {
    let calendar = two_calendars().await;
    let connector = connector(&calendar);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;
    calendar.cancel(ADA, "holiday");
    calendar.expire_tokens();

    let (items, cursor) = sync(&connector, &test, cursor).await;
    // Everything each calendar holds now, once each; the cancelled event is simply not
    // listed by a full sync.
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        [
            "ada@example.com/launch",
            "ada@example.com/standup",
            "team#1@group.calendar.google.com/plan",
            "team#1@group.calendar.google.com/retro",
        ]
    );
    assert_eq!(items.len(), 4, "nothing duplicated: {items:?}");
    let requests = calendar.requests();
    // List, two pages of Ada, one of the team; then the list, a 410 for Ada and her full
    // listing (two pages), a 410 for the team and its full listing.
    assert!(requests[5].0.contains("syncToken=s5"), "{requests:?}");
    assert!(!requests[6].0.contains("syncToken"), "{requests:?}");

    calendar.put(
        ADA,
        "standup",
        json!({"summary": "Standup", "start": {"dateTime": "2026-12-07T09:30:00+01:00"},
               "end": {"dateTime": "2026-12-07T09:45:00+01:00"}}),
    );
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["ada@example.com/standup"]
    );
}

#[tokio::test]
async fn a_429_and_a_403_rate_limit_exceeded_are_both_asked_again() {
    let calendar = two_calendars().await;
    calendar.throttle(1);
    let started = std::time::Instant::now();
    let (items, _) = sync(&connector(&calendar), &context(), None).await;
    assert_eq!(items.len(), 5);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(calendar.requests().len(), 5);

    // Google's other rate limit: a 403 whose reason says so, with no Retry-After.
    let calendar = two_calendars().await;
    calendar.rate_limit(2);
    let (items, _) = sync(&connector(&calendar), &context(), None).await;
    assert_eq!(items.len(), 5);
    assert_eq!(calendar.requests().len(), 6);
}

#[tokio::test]
async fn a_403_that_is_no_rate_limit_fails_the_sync_at_once_with_googles_message() {
    let calendar = two_calendars().await;
    calendar.refuse_events();
    let failure = run(&connector(&calendar), &context(), None)
        .await
        .expect_err("a refusal fails the sync");
    let message = failure.to_string();
    assert!(
        message.contains("Request had insufficient authentication scopes.")
            && message.contains("calendar.readonly"),
        "{message}"
    );
    // The list, and one events request: a refusal is not asked again.
    assert_eq!(calendar.requests().len(), 2);
}

#[tokio::test]
async fn the_calendars_config_narrows_the_sync_to_the_calendars_it_names() {
    let calendar = two_calendars().await;
    let test = context_with(json!({"calendars": [TEAM]}));
    let (items, _) = sync(&connector(&calendar), &test, None).await;
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        [
            "team#1@group.calendar.google.com/plan",
            "team#1@group.calendar.google.com/retro"
        ]
    );
    assert_eq!(calendar.paths().len(), 2);
}
