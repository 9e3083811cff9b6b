//! The search service against the real NATS and PostgreSQL, with the embedded index, and with
//! the Meilisearch backend on the local server answering as Meilisearch's API documents.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod embedded;
mod indexing;
#[path = "../meili_mock/mod.rs"]
mod meili_mock;
mod meilisearch;
mod reindex;
mod support;
