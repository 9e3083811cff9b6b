//! The declarative engine: the built-in Microsoft 365 spec against a local Graph, and bad
//! specs each refused with its path.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod google_calendar;
mod google_contacts;
mod microsoft_365;
mod specs;
