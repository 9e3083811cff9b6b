//! The search service against the real NATS and PostgreSQL, with the embedded index.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod embedded;
mod indexing;
mod reindex;
mod support;
