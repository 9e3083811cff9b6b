//! The DAV connector against a real Radicale server (`pip install radicale`).

// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/connectors/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod discovery;
mod failures;
mod fixtures;
mod support;
mod syncing;
