//! Finding plugins: the built-in manifests compiled into the binary, then every subdirectory
//! of the configured plugin directories that holds a `plugin.json`. Each manifest is checked
//! on its own; an invalid one is listed with all its problems and never stops the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tributary_kit::ConfigError;
use tributary_proto::manifest::{ManifestProblem, PluginManifest};

/// Where built-in plugins are said to be found.
pub const BUILTIN_LOCATION: &str = "builtin";

/// The manifests of the plugins compiled into Tributary (the built-in connectors and
/// channels), from the host's one list, `tributary_host::BUILTINS`, which the connector and
/// channel services run their constructors from too.
pub const BUILTIN_MANIFESTS: &[&str] = &tributary_host::builtin::MANIFESTS;

/// A plugin whose manifest is valid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoveredPlugin {
    /// Its manifest.
    pub manifest: PluginManifest,
    /// `builtin` or its directory.
    pub location: String,
}

/// A plugin whose manifest has problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidPlugin {
    /// `builtin:<name>` or its directory.
    pub location: String,
    /// Its id, when the manifest has a readable one.
    pub id: Option<String>,
    /// Every problem, each naming its field.
    pub problems: Vec<ManifestProblem>,
}

/// Everything one scan found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Catalog {
    /// Valid plugins, by id order.
    pub plugins: Vec<DiscoveredPlugin>,
    /// Invalid plugins, by location.
    pub invalid: Vec<InvalidPlugin>,
}

impl Catalog {
    /// The valid plugin with this id.
    pub fn get(&self, id: &str) -> Option<&DiscoveredPlugin> {
        self.plugins.iter().find(|p| p.manifest.id == id)
    }
}

/// One manifest read: where, what it parsed to, and its id when readable.
type Found = (
    String,
    Result<PluginManifest, Vec<ManifestProblem>>,
    Option<String>,
);

/// Checks that every configured plugin directory exists, naming the setting when one does not.
pub fn check_dirs(dirs: &[PathBuf]) -> Result<(), ConfigError> {
    for (i, dir) in dirs.iter().enumerate() {
        if !dir.is_dir() {
            return Err(ConfigError::new(
                format!("plugin_manager.plugin_dirs[{i}]"),
                format!("{} is not a directory", dir.display()),
            ));
        }
    }
    Ok(())
}

/// Scans the built-in manifests (their texts) and `dirs`. Ids must be unique: a later plugin
/// with an id already taken is listed as invalid, naming where the first one is.
pub fn discover(builtin: &[&str], dirs: &[PathBuf]) -> Catalog {
    let mut found: Vec<Found> = Vec::new();
    for text in builtin {
        found.push((
            builtin_location(text),
            PluginManifest::parse(text).map_err(|e| e.problems),
            id_of(text),
        ));
    }
    for dir in dirs {
        for plugin_dir in plugin_dirs_in(dir) {
            let manifest = plugin_dir.join("plugin.json");
            let location = plugin_dir.display().to_string();
            match std::fs::read_to_string(&manifest) {
                Ok(text) => found.push((
                    location,
                    PluginManifest::parse(&text).map_err(|e| e.problems),
                    id_of(&text),
                )),
                Err(e) => found.push((
                    location,
                    Err(vec![ManifestProblem {
                        field: String::new(),
                        message: format!("cannot read {}: {e}", manifest.display()),
                    }]),
                    None,
                )),
            }
        }
    }

    let mut catalog = Catalog::default();
    let mut taken: HashMap<String, String> = HashMap::new();
    for (location, parsed, id) in found {
        match parsed {
            Ok(manifest) => {
                if let Some(first) = taken.get(&manifest.id) {
                    catalog.invalid.push(InvalidPlugin {
                        id: Some(manifest.id.clone()),
                        problems: vec![ManifestProblem {
                            field: "id".into(),
                            message: format!(
                                "`{}` is already the id of the plugin at {first}",
                                manifest.id
                            ),
                        }],
                        location,
                    });
                    continue;
                }
                taken.insert(manifest.id.clone(), location.clone());
                let location = if location.starts_with(BUILTIN_LOCATION) {
                    BUILTIN_LOCATION.to_owned()
                } else {
                    location
                };
                catalog
                    .plugins
                    .push(DiscoveredPlugin { manifest, location });
            }
            Err(problems) => catalog.invalid.push(InvalidPlugin {
                location,
                id,
                problems,
            }),
        }
    }
    catalog
        .plugins
        .sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id));
    catalog.invalid.sort_by(|a, b| a.location.cmp(&b.location));
    for invalid in &catalog.invalid {
        tracing::warn!(location = %invalid.location, problems = ?invalid.problems, "Invalid plugin manifest; the plugin is not loaded.");
    }
    catalog
}

/// The subdirectories of `dir` that hold a `plugin.json`, in name order.
fn plugin_dirs_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("plugin.json").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Where a built-in plugin is said to be: its entrypoint (`builtin:dav`), or `builtin` when
/// its manifest has no readable one.
fn builtin_location(text: &str) -> String {
    string_field(text, "entrypoint")
        .filter(|e| e.starts_with(&format!("{BUILTIN_LOCATION}:")))
        .unwrap_or_else(|| BUILTIN_LOCATION.to_owned())
}

/// The `id` of a manifest that may be invalid, when it has a string one.
fn id_of(text: &str) -> Option<String> {
    string_field(text, "id")
}

/// The string `field` of a manifest that may be invalid.
fn string_field(text: &str, field: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()?
        .get(field)?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn manifest(id: &str, version: &str) -> String {
        format!(
            r#"{{"id": "{id}", "name": "Test", "version": "{version}", "type": "connector",
                "entrypoint": "builtin:test", "permissions": ["network:outbound:api.example.com"]}}"#
        )
    }

    #[test]
    fn invalid_and_duplicate_plugins_are_listed_and_the_rest_load() {
        let root = std::env::temp_dir().join(format!("pm-discovery-{}", uuid::Uuid::new_v4()));
        let write = |name: &str, text: &str| {
            std::fs::create_dir_all(root.join(name)).unwrap();
            std::fs::write(root.join(name).join("plugin.json"), text).unwrap();
        };
        write("a-good", &manifest("com.example.good", "1.0.0"));
        write("b-bad", r#"{"id": "Bad Id", "version": "one"}"#);
        write("c-dup", &manifest("com.example.good", "2.0.0"));
        write("d-json", "{not json");
        std::fs::create_dir_all(root.join("e-no-manifest")).unwrap();
        let builtin = manifest("com.example.builtin", "0.1.0");

        let catalog = discover(&[builtin.as_str()], std::slice::from_ref(&root));
        std::fs::remove_dir_all(&root).unwrap();

        let ids: Vec<&str> = catalog
            .plugins
            .iter()
            .map(|p| p.manifest.id.as_str())
            .collect();
        assert_eq!(ids, vec!["com.example.builtin", "com.example.good"]);
        assert_eq!(catalog.plugins[0].location, BUILTIN_LOCATION);
        assert_eq!(catalog.invalid.len(), 3, "{:#?}", catalog.invalid);
        let bad = &catalog.invalid[0];
        assert!(bad.location.ends_with("b-bad"));
        let fields: Vec<&str> = bad.problems.iter().map(|p| p.field.as_str()).collect();
        for field in ["id", "name", "version", "type", "entrypoint"] {
            assert!(fields.contains(&field), "{field} not named in {fields:?}");
        }
        let dup = &catalog.invalid[1];
        assert!(dup.location.ends_with("c-dup"));
        assert_eq!(dup.problems[0].field, "id");
        assert!(dup.problems[0].message.contains("a-good"), "{dup:?}");
        assert!(catalog.invalid[2].problems[0].message.contains("JSON"));
    }

    #[test]
    fn a_missing_plugin_dir_names_the_setting() {
        let err =
            check_dirs(&[std::env::temp_dir(), PathBuf::from("/nonexistent/plugins")]).unwrap_err();
        assert_eq!(err.key, "plugin_manager.plugin_dirs[1]");
    }
}
