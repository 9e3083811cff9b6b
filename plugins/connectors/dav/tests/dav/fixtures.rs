//! Ada's address book and calendar, as a test fills them.

use crate::support::Radicale;

/// Ada's address book.
pub const CONTACTS: &str = "/ada/contacts/";
/// Ada's calendar.
pub const CALENDAR: &str = "/ada/calendar/";

/// A vCard 3.0 with a folded name, escapes, parameters and a group.
pub const LOVELACE_V3: &str = "BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
UID:lovelace-1\r\n\
FN:Augusta Ada King\\, Countess of\r\n  Lovelace\r\n\
N:King;Augusta Ada;;Countess of Lovelace;\r\n\
item1.EMAIL;TYPE=INTERNET,HOME:ada@home.example\r\n\
EMAIL;TYPE=INTERNET;TYPE=pref:ada@engines.example\r\n\
TEL;TYPE=CELL:+44 20 7946 0958\r\n\
ORG:Analytical Engines Ltd.;Research\r\n\
TITLE:Mathematician\r\n\
REV:2024-01-02T03:04:05Z\r\n\
END:VCARD\r\n";

/// A vCard 4.0 with `PREF` and a `tel:` URI, and no `REV`.
pub const HOPPER_V4: &str = "BEGIN:VCARD\r\n\
VERSION:4.0\r\n\
UID:hopper-1\r\n\
FN:Grace Hopper\r\n\
N:Hopper;Grace;;;\r\n\
EMAIL;PREF=1:grace@navy.example\r\n\
TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+1-415-555-0132\r\n\
TITLE:Rear Admiral\r\n\
END:VCARD\r\n";

/// [`HOPPER_V4`], changed.
pub const HOPPER_V4_CHANGED: &str = "BEGIN:VCARD\r\n\
VERSION:4.0\r\n\
UID:hopper-1\r\n\
FN:Grace Hopper\r\n\
N:Hopper;Grace;;;\r\n\
EMAIL;PREF=1:grace@cobol.example\r\n\
TITLE:Computer Scientist\r\n\
REV:20250301T120000Z\r\n\
END:VCARD\r\n";

/// A meeting in Berlin time, with its VTIMEZONE.
pub const MEETING_TZID: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//tributary//test//EN\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Europe/Berlin\r\n\
BEGIN:DAYLIGHT\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
TZNAME:CEST\r\n\
DTSTART:19700329T020000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
END:DAYLIGHT\r\n\
BEGIN:STANDARD\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
TZNAME:CET\r\n\
DTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
UID:meeting-1\r\n\
DTSTAMP:20240501T080000Z\r\n\
LAST-MODIFIED:20240502T090000Z\r\n\
DTSTART;TZID=Europe/Berlin:20240615T100000\r\n\
DTEND;TZID=Europe/Berlin:20240615T113000\r\n\
SUMMARY:Engine review\r\n\
LOCATION:Room 1\\, Babbage wing\r\n\
DESCRIPTION:Bring the\\nnotes.\r\n\
ORGANIZER;CN=Ada:mailto:ada@engines.example\r\n\
ATTENDEE;CN=Charles;PARTSTAT=ACCEPTED:mailto:charles@engines.example\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

/// An all-day event.
pub const HOLIDAY_ALL_DAY: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//tributary//test//EN\r\n\
BEGIN:VEVENT\r\n\
UID:holiday-1\r\n\
DTSTAMP:20231201T000000Z\r\n\
DTSTART;VALUE=DATE:20231225\r\n\
DTEND;VALUE=DATE:20231227\r\n\
SUMMARY:Holidays\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

/// A recurring event with an exception.
pub const STANDUP_RECURRING: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//tributary//test//EN\r\n\
BEGIN:VEVENT\r\n\
UID:standup-1\r\n\
DTSTAMP:20240101T000000Z\r\n\
DTSTART:20240108T090000Z\r\n\
DURATION:PT15M\r\n\
SUMMARY:Stand-up\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20241231T235959Z\r\n\
EXDATE:20240110T090000Z\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

/// An event added later.
pub const LUNCH: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//tributary//test//EN\r\n\
BEGIN:VEVENT\r\n\
UID:lunch-1\r\n\
DTSTAMP:20250301T000000Z\r\n\
DTSTART:20250305T120000Z\r\n\
DTEND:20250305T130000Z\r\n\
SUMMARY:Lunch\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

/// Fills `server` with Ada's address book (two contacts) and calendar (three events).
pub async fn fill(server: &Radicale) {
    server.create_address_book(CONTACTS, "Contacts").await;
    server.create_calendar(CALENDAR, "Work").await;
    server
        .put_vcard(&format!("{CONTACTS}lovelace.vcf"), LOVELACE_V3)
        .await;
    server
        .put_vcard(&format!("{CONTACTS}grace%20hopper.vcf"), HOPPER_V4)
        .await;
    server
        .put_icalendar(&format!("{CALENDAR}meeting.ics"), MEETING_TZID)
        .await;
    server
        .put_icalendar(&format!("{CALENDAR}holiday.ics"), HOLIDAY_ALL_DAY)
        .await;
    server
        .put_icalendar(&format!("{CALENDAR}standup.ics"), STANDUP_RECURRING)
        .await;
}
