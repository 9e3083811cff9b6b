use chrono::TimeZone;
use serde_json::json;

use super::*;

/// A calendar object around `body` (the lines of its components), with CRLF line ends.
fn calendar(body: &str) -> String {
    format!("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}END:VCALENDAR\n")
        .replace('\n', "\r\n")
}

fn event(body: &str) -> (CalendarEventFields, Option<DateTime<Utc>>) {
    let mapped = map_icalendar(&calendar(body)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mapped.entity_type, EntityType::CalendarEvent);
    (
        serde_json::from_value(mapped.data).unwrap(),
        mapped.modified_at,
    )
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

const BERLIN: &str = "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:DAYLIGHT\nTZOFFSETFROM:+0100\n\
TZOFFSETTO:+0200\nTZNAME:CEST\nDTSTART:19700329T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\n\
END:DAYLIGHT\nBEGIN:STANDARD\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET\n\
DTSTART:19701025T030000\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\nEND:VTIMEZONE\n";

#[test]
fn a_time_with_tzid_is_stored_in_utc_with_its_zone() {
    let (e, version) = event(&format!(
        "{BERLIN}BEGIN:VEVENT\nUID:1\nDTSTAMP:20240101T000000Z\nLAST-MODIFIED:20240105T080000Z\n\
         DTSTART;TZID=Europe/Berlin:20240615T100000\nDTEND;TZID=Europe/Berlin:20240615T113000\n\
         SUMMARY:Review\nLOCATION:Room 1\nEND:VEVENT\n"
    ));
    assert_eq!(e.title, "Review");
    assert_eq!(e.location.as_deref(), Some("Room 1"));
    assert_eq!(e.starts_at, utc(2024, 6, 15, 8, 0));
    assert_eq!(e.ends_at, Some(utc(2024, 6, 15, 9, 30)));
    assert_eq!(e.original_timezone.as_deref(), Some("Europe/Berlin"));
    assert!(!e.all_day);
    assert_eq!(e.extra["uid"], "1");
    // LAST-MODIFIED wins over DTSTAMP.
    assert_eq!(version, Some(utc(2024, 1, 5, 8, 0)));
}

#[test]
fn a_windows_zone_name_resolves_and_an_unknown_one_is_flagged() {
    let (e, _) = event(
        "BEGIN:VEVENT\nUID:1\nDTSTART;TZID=W. Europe Standard Time:20240115T100000\nEND:VEVENT\n",
    );
    assert_eq!(e.starts_at, utc(2024, 1, 15, 9, 0));
    assert_eq!(e.original_timezone.as_deref(), Some("Europe/Berlin"));

    let (e, _) =
        event("BEGIN:VEVENT\nUID:1\nDTSTART;TZID=Mars/Olympus:20240115T100000\nEND:VEVENT\n");
    assert_eq!(e.starts_at, utc(2024, 1, 15, 10, 0));
    assert_eq!(
        e.original_timezone, None,
        "the ETL refuses a zone it cannot read"
    );
    assert_eq!(e.extra["unknown_timezone"], "Mars/Olympus");
}

#[test]
fn utc_offset_and_floating_times() {
    let (e, _) = event("BEGIN:VEVENT\nUID:1\nDTSTART:20240115T100000Z\nEND:VEVENT\n");
    assert_eq!(e.starts_at, utc(2024, 1, 15, 10, 0));
    assert_eq!(e.original_timezone, None);
    assert_eq!(
        e.ends_at, None,
        "a timed event without an end is an instant"
    );

    let (e, _) = event("BEGIN:VEVENT\nUID:1\nDTSTART:20240115T100000\nEND:VEVENT\n");
    assert_eq!(e.starts_at, utc(2024, 1, 15, 10, 0));
    assert_eq!(e.extra["floating_time"], true);
}

#[test]
fn a_date_makes_an_all_day_event() {
    let (e, _) = event(
        "BEGIN:VEVENT\nUID:1\nDTSTART;VALUE=DATE:20240704\nDTEND;VALUE=DATE:20240706\nSUMMARY:Trip\nEND:VEVENT\n",
    );
    assert!(e.all_day);
    assert_eq!(e.starts_at, utc(2024, 7, 4, 0, 0));
    assert_eq!(e.ends_at, Some(utc(2024, 7, 6, 0, 0)));
    assert_eq!(e.original_timezone, None);
    assert!(!e.extra.contains_key("floating_time"));

    let (e, _) = event("BEGIN:VEVENT\nUID:1\nDTSTART;VALUE=DATE:20240704\nEND:VEVENT\n");
    assert!(e.all_day);
    assert_eq!(
        e.ends_at,
        Some(utc(2024, 7, 5, 0, 0)),
        "one day when no end is given"
    );
}

#[test]
fn a_duration_gives_the_end() {
    let (e, _) =
        event("BEGIN:VEVENT\nUID:1\nDTSTART:20240115T100000Z\nDURATION:PT1H30M\nEND:VEVENT\n");
    assert_eq!(e.ends_at, Some(utc(2024, 1, 15, 11, 30)));

    // A day across the change to summer time is 23 hours long.
    let (e, _) = event(&format!(
        "{BERLIN}BEGIN:VEVENT\nUID:1\nDTSTART;TZID=Europe/Berlin:20240330T120000\nDURATION:P1D\nEND:VEVENT\n"
    ));
    assert_eq!(e.starts_at, utc(2024, 3, 30, 11, 0));
    assert_eq!(e.ends_at, Some(utc(2024, 3, 31, 10, 0)));

    let (e, _) =
        event("BEGIN:VEVENT\nUID:1\nDTSTART;VALUE=DATE:20240704\nDURATION:P2D\nEND:VEVENT\n");
    assert_eq!(e.ends_at, Some(utc(2024, 7, 6, 0, 0)));
}

#[test]
fn a_recurring_event_keeps_its_rule_verbatim_and_its_exceptions() {
    let (e, _) = event(&format!(
        "{BERLIN}BEGIN:VEVENT\nUID:r\nDTSTART;TZID=Europe/Berlin:20240603T090000\nDURATION:PT15M\n\
         SUMMARY:Stand-up\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20241231T235959Z;X-NAME=x\n\
         EXDATE;TZID=Europe/Berlin:20240605T090000,20240610T090000\nRDATE;VALUE=DATE:20240608\nEND:VEVENT\n"
    ));
    assert_eq!(
        e.recurrence.as_deref(),
        Some("FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20241231T235959Z;X-NAME=x")
    );
    assert_eq!(
        e.extra["exdates"],
        json!(["2024-06-05T07:00:00Z", "2024-06-10T07:00:00Z"])
    );
    assert_eq!(e.extra["rdates"], json!(["2024-06-08"]));
}

#[test]
fn overrides_of_a_recurring_event_go_into_extra() {
    let (e, version) = event(
        "BEGIN:VEVENT\nUID:r\nDTSTAMP:20240101T000000Z\nDTSTART:20240603T090000Z\nSUMMARY:Stand-up\n\
         RRULE:FREQ=DAILY;COUNT=5\nEND:VEVENT\n\
         BEGIN:VEVENT\nUID:r\nDTSTAMP:20240201T000000Z\nRECURRENCE-ID:20240604T090000Z\n\
         DTSTART:20240604T100000Z\nSUMMARY:Stand-up (late)\nEND:VEVENT\n",
    );
    assert_eq!(e.title, "Stand-up");
    assert_eq!(e.recurrence.as_deref(), Some("FREQ=DAILY;COUNT=5"));
    let overrides = e.extra["overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0]["title"], "Stand-up (late)");
    assert_eq!(overrides[0]["starts_at"], "2024-06-04T10:00:00Z");
    assert_eq!(
        overrides[0]["extra"]["recurrence_id"],
        "2024-06-04T09:00:00Z"
    );
    assert!(overrides[0]["recurrence"].is_null());
    // The latest version of the resource's events.
    assert_eq!(version, Some(utc(2024, 2, 1, 0, 0)));
}

#[test]
fn an_override_without_its_master_is_the_event() {
    let (e, _) = event(
        "BEGIN:VEVENT\nUID:r\nRECURRENCE-ID;VALUE=DATE:20240604\nDTSTART;VALUE=DATE:20240605\nSUMMARY:Moved\nEND:VEVENT\n",
    );
    assert_eq!(e.title, "Moved");
    assert_eq!(e.extra["recurrence_id"], "2024-06-04");
}

#[test]
fn folding_escaping_and_addresses() {
    let (e, _) = event(
        "BEGIN:VEVENT\nUID:1\nDTSTART:20240115T100000Z\nSUMMARY:Plan\\, budget\n  and hiring\n\
         DESCRIPTION:first\\nsecond\\;third\\\\\nORGANIZER;CN=Bob:mailto:bob@example.com\n\
         ATTENDEE;CN=\"Doe, Jane\";PARTSTAT=ACCEPTED:MAILTO:jane@example.com\n\
         ATTENDEE;CUTYPE=ROOM:urn:x-room:1\nEND:VEVENT\n",
    );
    assert_eq!(e.title, "Plan, budget and hiring");
    assert_eq!(e.description.as_deref(), Some("first\nsecond;third\\"));
    assert_eq!(e.organizer.as_deref(), Some("bob@example.com"));
    assert_eq!(e.extra["organizer_name"], "Bob");
    assert_eq!(e.attendees, ["jane@example.com", "urn:x-room:1"]);
    assert_eq!(e.extra["attendee_details"][0]["name"], "Doe, Jane");
    assert_eq!(e.extra["attendee_details"][0]["status"], "ACCEPTED");
}

#[test]
fn an_end_before_the_start_is_dropped() {
    let (e, _) = event(
        "BEGIN:VEVENT\nUID:1\nDTSTART:20240115T100000Z\nDTEND:20240115T090000Z\nEND:VEVENT\n",
    );
    assert_eq!(e.ends_at, None);
}

#[test]
fn an_object_without_an_event_or_a_start_is_not_an_event() {
    let todo = calendar("BEGIN:VTODO\nUID:t\nSUMMARY:Buy milk\nEND:VTODO\n");
    assert_eq!(map_icalendar(&todo), Err(MapError::NoEvent));
    let no_start = calendar("BEGIN:VEVENT\nUID:1\nSUMMARY:x\nEND:VEVENT\n");
    assert!(matches!(
        map_icalendar(&no_start),
        Err(MapError::Invalid(_))
    ));
    assert!(matches!(
        map_icalendar("nonsense"),
        Err(MapError::Invalid(_))
    ));
}

#[test]
fn a_duration_past_the_last_representable_time_leaves_the_event_without_an_end() {
    // Proves: a server's `DURATION` too long for chrono (found by the icalendar fuzz target,
    // fuzz/regressions/icalendar/) no longer panics the sync; the event keeps its start.
    for duration in ["PT4294967295H", "P4294967295W", "-P4294967295W"] {
        let (e, _) = event(&format!(
            "BEGIN:VEVENT\nUID:1\nDTSTART:20240101T090000Z\nDURATION:{duration}\nEND:VEVENT\n"
        ));
        assert_eq!(e.starts_at, utc(2024, 1, 1, 9, 0), "{duration}");
        assert_eq!(e.ends_at, None, "{duration}");
    }
    let (e, _) = event(
        "BEGIN:VEVENT\nUID:1\nDTSTART;VALUE=DATE:20240101\nDURATION:P4294967295W\nEND:VEVENT\n",
    );
    assert_eq!(e.ends_at, None);
}
