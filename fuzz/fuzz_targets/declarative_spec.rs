//! A declarative connector's spec (TOML), as a third-party plugin directory brings it,
//! validated against its manifest: the TOML, the spec's schema, its templates and expressions
//! compiled. The manifest is the Microsoft 365 connector's, whose grants a spec's URLs must
//! fall under.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tributary_proto::manifest::PluginManifest;

static MANIFEST: OnceLock<PluginManifest> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let manifest = MANIFEST.get_or_init(|| {
        match PluginManifest::parse(include_str!(
            "../../plugins/connectors/microsoft-365/plugin.json"
        )) {
            Ok(manifest) => manifest,
            Err(errors) => panic!("the Microsoft 365 manifest does not parse: {errors:?}"),
        }
    });
    let _ = tributary_declarative::validate(text, manifest);
});
