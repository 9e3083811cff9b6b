//! The WebAssembly host against real components: the JavaScript guests CI builds with
//! componentize-js (`scripts/build-wasm-guests`), and hostile fixtures made from WAT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod guests;
mod hostile;
mod js;
