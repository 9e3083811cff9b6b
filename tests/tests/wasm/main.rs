//! The JavaScript guest plugins of `plugins/wasm` (WebAssembly components built with
//! componentize-js by `scripts/build-wasm-guests`) through the real services, each its own
//! process: discovered by the plugin manager in its plugin directory, installed with their
//! permissions accepted and enabled through its admin API, then run by the connector and
//! channel processes under the wasm host. The connector's tasks become documents in
//! PostgreSQL and hits of the search process; the channel's signed webhooks are stored,
//! handled and announced once, its sends reach a provider answering as the README documents.
//!
//! The example third-party plugins of `examples/plugins` (TypeScript and Python, built with
//! the plugin kit) run the same way, against local servers answering as their real services
//! do (`examples`).
//!
//! Compiled components are cached where every test on the machine shares them, so only the
//! first test to load a component after it was built pays for compiling it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod channel;
mod connector;
mod examples;
mod oauth;
mod support;
