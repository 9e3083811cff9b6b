//! Third-party Tributary plugins: WebAssembly components run by wasmtime against the WIT
//! package `tributary:plugin@0.1.0` (`proto/wit`).
//!
//! A component reaches the world only through the instance's
//! [`PluginContext`](tributary_plugin_sdk::PluginContext): the `host` interface of the WIT
//! package, and standard `wasi:http` requests that pass the very same checks. Nothing else is
//! linked: no filesystem, sockets, environment or process; a component importing one is
//! refused before it is compiled ([`imports`]).
//!
//! - [`WasmRuntime`]: one per service; the engine (epoch interruption, the pooling
//!   allocator, the on-disk cache of compiled components), the linker, and the loaded
//!   components by digest.
//! - [`WasmConnector`] and [`WasmChannel`]: a loaded component as the
//!   [`ConnectorPlugin`](tributary_plugin_sdk::ConnectorPlugin) or
//!   [`ChannelPlugin`](tributary_plugin_sdk::ChannelPlugin) the services already run.
//! - [`Limits`]: memory, CPU per call and per sync, item size, log line size and rate.

mod bindings;
mod channel;
pub mod component;
mod connector;
mod error;
mod host;
mod http;
pub mod imports;
mod limits;
mod runtime;
mod state;

pub use channel::WasmChannel;
pub use connector::WasmConnector;
pub use error::WasmError;
pub use limits::{LimitExceeded, Limits};
pub use runtime::{sha256_hex, IdleGuest, LoadedComponent, WasmRuntime};
