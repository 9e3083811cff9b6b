//! The connector service against the real NATS and PostgreSQL, with the real plugin manager
//! and ETL, driving a test connector, the built-in ones, and hostile WebAssembly connectors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod builtin;
mod declarative;
mod failures;
mod hostile;
mod numbers;
mod reconnect;
mod support;
mod syncing;
