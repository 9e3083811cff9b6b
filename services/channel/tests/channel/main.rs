//! The channel service against the real plugin manager, NATS, PostgreSQL and (where the
//! unified model is checked) ETL: webhook routes, each provider's signature scheme, durable
//! ingress, outbound sends against local servers that answer as the providers document, and a
//! hostile WebAssembly channel next to a well-behaved one.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod context;
mod durability;
mod hostile;
mod outbound;
mod replays;
mod routes;
mod schemes;
mod support;
