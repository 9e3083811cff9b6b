//! Integration tests of the folder connector, on real temporary directories.

// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/connectors/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod config;
mod helpers;
mod modes;
mod protected;
mod resume;
mod selection;
mod sync;
