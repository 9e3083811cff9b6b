//! A plugin's `plugin.json`, as a third-party plugin directory or an install request brings
//! it: the manifest's fields, permissions, auth section and `configSchema` (checked against
//! its meta-schema and compiled). A manifest that passes has its schema used the way the
//! plugin manager uses it: its secret fields found, an empty config checked against it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_fuzz::config_schema;
use tributary_proto::manifest::PluginManifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = PluginManifest::parse(text) else {
        return;
    };
    let schema = &manifest.config_schema;
    let _ = config_schema::secret_fields(schema);
    let _ = config_schema::top_level_secret_fields(schema);
    let _ = config_schema::validate(schema, &json!({}), &[]);
});
