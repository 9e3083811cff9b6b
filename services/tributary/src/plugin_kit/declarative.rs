//! `tributary plugins test` of a declarative connector (`"entrypoint": "declarative:<file>"`):
//! nothing to build; the spec is checked exactly as the plugin manager checks it at install
//! ([`tributary_declarative::check_plugin_dir`]: every problem at once, each with its path in
//! the spec), and each case is run by the same engine the host runs it with.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use tributary_declarative::{check_plugin_dir, spec_file, DeclarativeConnector};
use tributary_proto::manifest::PluginManifest;

use super::KitError;

/// A declarative plugin whose spec passed the install checks.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckedSpec {
    /// The plugin's directory.
    pub dir: PathBuf,
    /// Its manifest, as written.
    #[serde(skip)]
    pub manifest: Value,
    /// Its id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// Always `connector`: a spec runs a connector.
    pub plugin_type: String,
    /// The spec file its entrypoint names.
    pub spec: PathBuf,
    /// The spec's SHA-256, lower-case hex (what the plugin manager would keep).
    pub sha256: String,
    /// The spec's streams, by name, in the order they sync.
    pub streams: Vec<String>,
    /// The engine, running the checked spec.
    #[serde(skip)]
    pub connector: DeclarativeConnector,
}

/// Whether the plugin in `dir` is a declarative one: its `plugin.json` names a
/// `declarative:` entrypoint. (A manifest that cannot be read is left to the wasm path,
/// which says what is wrong with it.)
pub fn is_declarative(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("plugin.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|manifest| {
            manifest
                .get("entrypoint")
                .and_then(Value::as_str)
                .map(|e| spec_file(e).is_some())
        })
        .unwrap_or(false)
}

/// Reads the declarative plugin in `dir` and checks its manifest and spec as an install does.
pub fn check(dir: &Path) -> Result<CheckedSpec, KitError> {
    let manifest_path = dir.join("plugin.json");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| KitError::io("read", &manifest_path, e))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| KitError::plugin(&manifest_path, format!("not valid JSON: {e}")))?;
    let manifest = PluginManifest::from_value(&value)
        .map_err(|errors| KitError::plugin(&manifest_path, errors.to_string()))?;
    let file = spec_file(&manifest.entrypoint)
        .unwrap_or_default()
        .to_owned();
    let (spec, sha256) = check_plugin_dir(dir, &manifest).map_err(|errors| KitError::Spec {
        path: dir.join(&file),
        problems: errors.problems.iter().map(ToString::to_string).collect(),
    })?;
    Ok(CheckedSpec {
        dir: dir.to_path_buf(),
        manifest: value,
        id: manifest.id.clone(),
        version: manifest.version.to_string(),
        plugin_type: manifest.plugin_type.as_str().to_owned(),
        spec: dir.join(file),
        sha256,
        streams: spec.streams.iter().map(|s| s.name.clone()).collect(),
        connector: DeclarativeConnector::new(spec),
    })
}

/// The spec's `base_url` when it is a URL as written (no template): the fixture server (or
/// a recording proxy) stands in for it in a test run, as it does for a `${field}` URL of the
/// configuration. A templated one comes from the configuration, whose granted URL fields are
/// pointed already.
pub fn literal_base_url(connector: &DeclarativeConnector) -> Option<&str> {
    connector
        .spec()
        .base_url
        .as_deref()
        .filter(|url| !url.contains("{{") && url.contains("://"))
}

/// One line on a checked spec, as `plugins test` prints it before the cases.
pub fn describe(checked: &CheckedSpec) -> String {
    format!(
        "Checked {} {} (declarative connector, {}: {} stream{}: {}), sha256 {}; nothing to build.",
        checked.id,
        checked.version,
        checked.spec.display(),
        checked.streams.len(),
        if checked.streams.len() == 1 { "" } else { "s" },
        checked.streams.join(", "),
        &checked.sha256[..12.min(checked.sha256.len())],
    )
}
