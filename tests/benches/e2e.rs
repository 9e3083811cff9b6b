//! End-to-end figures (placeholder).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
fn main() {}
