//! The host against the real NATS and PostgreSQL, and the workspace's dependency rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod context;
mod dependencies;
mod health;
