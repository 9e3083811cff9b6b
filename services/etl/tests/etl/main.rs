#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The ETL against the real NATS and PostgreSQL: items in, rows and events out.

mod support;

mod calendar;
mod conversations;
mod crash;
mod dead_letters;
mod end_to_end;
mod merge;
mod nul;
mod outage;
mod people;
mod people_api;
mod purge;
mod sources;
mod versions;
mod write_grants;
