//! Declarative connectors: a REST API that follows the usual patterns becomes a connector
//! with no code. A plugin directory holds `plugin.json` with `"entrypoint":
//! "declarative:<file>.toml"` and the spec beside it; the host runs it with
//! [`DeclarativeConnector`], every request through the instance's grant-checked
//! [`tributary_plugin_sdk::PluginHttp`].
//!
//! The spec ([`Spec`]) is TOML, like the rest of Tributary's configuration: written by hand,
//! comments allowed, no indentation rules. (YAML was set aside: `serde_yaml` is unmaintained,
//! and its forks disagree on the YAML version.) Templates and expressions are minijinja's:
//! sandboxed, no I/O, one well-kept crate for both. [`validate`] checks a spec against its
//! manifest and reports every problem with its path. See `docs/declarative-connectors.md`.

mod builtin;
mod cursor;
mod engine;
mod expr;
pub mod spec;
mod validate;

pub use builtin::{builtin_spec, BuiltinSpec, BUILTIN_SPECS};
pub use engine::DeclarativeConnector;
pub use spec::Spec;
pub use validate::{spec_schema, validate, SpecErrors, SpecProblem};

/// The prefix of a declarative plugin's entrypoint.
pub const DECLARATIVE_PREFIX: &str = "declarative:";
