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
mod json_object;
mod plugin_dir;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;

pub use builtin::{builtin_spec, BuiltinSpec, BUILTIN_SPECS};
pub use engine::DeclarativeConnector;
pub use plugin_dir::{check_plugin_dir, load_spec, parse_spec, sha256_hex, spec_file};
pub use spec::Spec;
pub use validate::{spec_schema, validate, SpecErrors, SpecProblem};

/// The prefix of a declarative plugin's entrypoint.
pub const DECLARATIVE_PREFIX: &str = "declarative:";

/// The connector for the built-in declarative plugin `plugin_id`, from its compiled-in spec;
/// `None` when it is not one (or, which a test rules out, its spec does not validate).
pub fn builtin_connector(plugin_id: &str) -> Option<DeclarativeConnector> {
    let builtin = builtin_spec(plugin_id)?;
    let manifest = tributary_proto::manifest::PluginManifest::parse(builtin.manifest).ok()?;
    validate(builtin.spec, &manifest)
        .ok()
        .map(DeclarativeConnector::new)
}
