//! Integration tests of the kit against the real NATS and PostgreSQL of this machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod batch_retry;
mod config;
mod consume;
mod database_tls;
mod exposure;
mod mesh;
mod outbox;
mod provisioning;
mod readiness;
mod readme;
mod requests;
mod trace_context;
