//! A calendar object as a CalDAV server sends it, mapped into a calendar event the way a sync
//! maps every member of a calendar: time zones, recurrences, overrides, durations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        tributary_connector_dav::fuzzing::map_icalendar(text);
    }
});
