//! The one plugin host, shared by the connector and the channel service: where an instance's
//! plugin comes from and what it is handed.
//!
//! - [`builtin`]: the one list of plugins compiled in ([`BUILTINS`]); the plugin manager reads
//!   their manifests from it, the services their constructors.
//! - [`resolve`]: from an instance's entrypoint to the plugin that runs it
//!   ([`PluginRegistry::resolve`], the seam where `wasm:` and `declarative:` plug in).
//! - [`context`]: the [`tributary_plugin_sdk::PluginContext`] of every instance, connector
//!   or channel alike ([`InstanceContexts`]).
//! - [`follow`]: keeping a service's instances in line with the plugin manager's
//!   ([`follow_plugin_manager`]).
//! - [`tokens`]: the access token of an instance whose plugin has an `auth` section, from the
//!   plugin manager's broker ([`BrokeredTokens`]).
//! - [`health`]: reporting each instance's health to the plugin manager, a resolve failure
//!   included ([`InstanceHealth`]).

pub mod builtin;
pub mod context;
pub mod follow;
pub mod health;
pub mod resolve;
pub mod tokens;

pub use builtin::{BuiltinKind, BuiltinPlugin, BUILTINS};
pub use context::{InstanceContexts, NatsEventSink, PgDataReader, PgKeyValueStore};
pub use follow::{follow_plugin_manager, InstanceFollower};
pub use health::InstanceHealth;
pub use resolve::{
    ChannelRegistry, ConnectorRegistry, Entrypoint, HostedPlugin, PluginRegistry, ResolveError,
};
pub use tokens::BrokeredTokens;
