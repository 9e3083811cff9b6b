//! The declarative engine: each built-in spec against a local server answering as its
//! provider's API reference documents, and bad specs each refused with its path.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod docs;
mod engine;
mod google_calendar;
mod google_contacts;
mod hubspot;
mod microsoft_365;
mod specs;
mod support;
mod todoist;
mod zendesk;
