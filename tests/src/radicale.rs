//! The DAV connector's test server ([`tributary_connector_dav::testing::Radicale`]) started
//! so that it dies with the test process, and the vCards and events the tests put on it.

pub use tributary_connector_dav::testing::{Radicale, PASSWORD, USER};

use crate::process::command_dying_with_parent;

/// A Radicale server started through [`command_dying_with_parent`]: even a test killed by a
/// timeout leaves none behind.
pub async fn start() -> Radicale {
    Radicale::start_with(command_dying_with_parent).await
}

/// A vCard 3.0 for `uid` with a full name, an e-mail address and an organization.
pub fn vcard(uid: &str, full_name: &str, family: &str, given: &str, email: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{full_name}\r\nN:{family};{given};;;\r\n\
         EMAIL;TYPE=INTERNET:{email}\r\nORG:Analytical Engines Ltd.\r\nREV:2024-01-02T03:04:05Z\r\nEND:VCARD\r\n"
    )
}

/// An event `uid` with `summary` on 15 June 2024, 10:00–11:30 UTC.
pub fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tributary//e2e//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20240501T080000Z\r\nLAST-MODIFIED:20240502T090000Z\r\nDTSTART:20240615T100000Z\r\n\
         DTEND:20240615T113000Z\r\nSUMMARY:{summary}\r\nLOCATION:Babbage wing\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}
