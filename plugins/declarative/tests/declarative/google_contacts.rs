//! The built-in Google Contacts connector: its spec is valid against its own manifest.
//! (A local People API server and the sync tests are still to come.)

use tributary_declarative::{builtin_spec, validate};
use tributary_plugin_sdk::PluginManifest;

#[test]
fn the_builtin_spec_validates_against_its_manifest() {
    let builtin = builtin_spec("tributary.google-contacts").unwrap();
    let manifest = PluginManifest::parse(builtin.manifest).unwrap();
    validate(builtin.spec, &manifest).unwrap_or_else(|e| panic!("{e}"));
}
