//! The DAV connector against a real Radicale server (`pip install radicale`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod discovery;
mod failures;
mod fixtures;
mod support;
mod syncing;
