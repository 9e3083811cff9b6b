//! Finding plugins: the built-in manifests compiled into the binary, then every subdirectory
//! of the plugin directories that holds a `plugin.json`, and every subdirectory of one that
//! holds none (`<id>/<version>/`, versions side by side, as `tributary plugins add` lays them
//! out). Each manifest is checked on its own; an invalid one is listed with all its problems
//! and never stops the others.
//!
//! One id may be found in several versions (an instance keeps running the version it was
//! installed or upgraded to while a newer one waits for `plugins upgrade`); one id and
//! version twice is refused, and so is a directory plugin taking a built-in plugin's id or
//! naming a compiled-in plugin's `builtin:` entrypoint.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tributary_host::builtin::BUILTIN_PREFIX;
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
    /// Valid plugins, by id, then by version, oldest first.
    pub plugins: Vec<DiscoveredPlugin>,
    /// Invalid plugins, by location.
    pub invalid: Vec<InvalidPlugin>,
}

impl Catalog {
    /// The newest valid version of the plugin with this id: the highest semantic version
    /// (`1.10.0` above `1.9.0`, `2.0.0` above `2.0.0-rc.1`).
    pub fn newest(&self, id: &str) -> Option<&DiscoveredPlugin> {
        self.plugins
            .iter()
            .filter(|p| p.manifest.id == id)
            .max_by(|a, b| a.manifest.version.cmp(&b.manifest.version))
    }

    /// The valid plugin with this id at exactly `version`.
    pub fn version(&self, id: &str, version: &semver::Version) -> Option<&DiscoveredPlugin> {
        self.plugins
            .iter()
            .find(|p| p.manifest.id == id && p.manifest.version == *version)
    }

    /// The newest version of each plugin, by id.
    pub fn newest_of_each(&self) -> Vec<&DiscoveredPlugin> {
        let mut newest: Vec<&DiscoveredPlugin> = Vec::new();
        // `plugins` is sorted by id, then version: the last of each id is its newest.
        for plugin in &self.plugins {
            match newest.last_mut() {
                Some(last) if last.manifest.id == plugin.manifest.id => *last = plugin,
                _ => newest.push(plugin),
            }
        }
        newest
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

/// Scans the built-in manifests (their texts) and `dirs`. An id may come in several versions;
/// a later plugin with an id and version already found is listed as invalid, naming both
/// locations, and so is a plugin in a directory with the id of a built-in one.
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

    // The entrypoints of the plugins compiled in (`builtin:folder`): a manifest from a
    // directory naming one would run built-in code under its own id and permissions.
    let compiled: HashSet<String> = builtin
        .iter()
        .filter_map(|text| string_field(text, "entrypoint"))
        .filter(|entrypoint| entrypoint.starts_with(BUILTIN_PREFIX))
        .collect();

    let mut catalog = Catalog::default();
    // Where each id and version was found first, and the ids of the built-in plugins.
    let mut taken: HashMap<(String, semver::Version), String> = HashMap::new();
    let mut builtin_ids: HashMap<String, String> = HashMap::new();
    // The built-in manifests come first in `found`; known by that, not by their location's
    // text, which a relative plugin directory (`builtin-plugins/`) could begin with too.
    for (index, (location, parsed, id)) in found.into_iter().enumerate() {
        let compiled_in = index < builtin.len();
        match parsed {
            Ok(mut manifest) => {
                if !compiled_in && compiled.contains(&manifest.entrypoint) {
                    catalog.invalid.push(InvalidPlugin {
                        id: Some(manifest.id.clone()),
                        problems: vec![ManifestProblem {
                            field: "entrypoint".into(),
                            message: format!(
                                "`{}` is the code of a plugin compiled into Tributary; a plugin from a directory cannot name it (it would run that code under its own id and permissions): give it a `wasm:` or `declarative:` entrypoint",
                                manifest.entrypoint
                            ),
                        }],
                        location,
                    });
                    continue;
                }
                if let Some(problem) = taken_by_another(&manifest, &location, &taken, &builtin_ids)
                {
                    catalog.invalid.push(InvalidPlugin {
                        id: Some(manifest.id.clone()),
                        problems: vec![problem],
                        location,
                    });
                    continue;
                }
                taken.insert(
                    (manifest.id.clone(), manifest.version.clone()),
                    location.clone(),
                );
                // A component that is missing, is not what its manifest's digest says, or
                // imports what no permission can grant is never offered for install.
                if manifest.entrypoint.starts_with("wasm:") {
                    let dir = Path::new(&location);
                    let shown = |file: &str| dir.join(file).display().to_string();
                    if let Err(problem) = tributary_wasm::component::check(dir, &manifest, &shown) {
                        catalog.invalid.push(InvalidPlugin {
                            id: Some(manifest.id.clone()),
                            problems: vec![ManifestProblem {
                                field: problem.field().to_owned(),
                                message: problem.to_string(),
                            }],
                            location,
                        });
                        continue;
                    }
                }
                // A connector spec that does not validate against its manifest (an unknown
                // key, a config property the schema lacks, a host no permission grants) is
                // never offered for install either. Its digest is kept as the manifest's
                // `sha256`, so the host runs exactly the spec checked here. Built-in specs
                // are compiled in and held to their manifests by a test.
                if let Some(file) = tributary_declarative::spec_file(&manifest.entrypoint) {
                    if !compiled_in {
                        match tributary_declarative::check_plugin_dir(
                            Path::new(&location),
                            &manifest,
                        ) {
                            Ok((_, digest)) => manifest.sha256 = Some(digest),
                            Err(errors) => {
                                catalog.invalid.push(InvalidPlugin {
                                    id: Some(manifest.id.clone()),
                                    problems: errors
                                        .problems
                                        .into_iter()
                                        .map(|problem| ManifestProblem {
                                            field: spec_field(file, &problem.path),
                                            message: problem.message,
                                        })
                                        .collect(),
                                    location,
                                });
                                continue;
                            }
                        }
                    }
                }
                let location = if compiled_in {
                    builtin_ids.insert(manifest.id.clone(), location);
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
    catalog.plugins.sort_by(|a, b| {
        (&a.manifest.id, &a.manifest.version).cmp(&(&b.manifest.id, &b.manifest.version))
    });
    catalog.invalid.sort_by(|a, b| a.location.cmp(&b.location));
    for invalid in &catalog.invalid {
        tracing::warn!(location = %invalid.location, problems = ?invalid.problems, "Invalid plugin manifest; the plugin is not loaded.");
    }
    catalog
}

/// The field of a problem in a connector spec: the spec file and the path in it
/// (`contacts.toml:streams[0].request.url`).
fn spec_field(file: &str, path: &str) -> String {
    if path.is_empty() {
        file.to_owned()
    } else {
        format!("{file}:{path}")
    }
}

/// Why a valid plugin found at `location` cannot be loaded next to those found before it:
/// its id and version are already at `taken`'s location, or it takes a built-in's id.
fn taken_by_another(
    manifest: &PluginManifest,
    location: &str,
    taken: &HashMap<(String, semver::Version), String>,
    builtin_ids: &HashMap<String, String>,
) -> Option<ManifestProblem> {
    let id = &manifest.id;
    let version = &manifest.version;
    let message = if let Some(builtin) = builtin_ids.get(id) {
        format!("`{id}` is the id of the built-in plugin {builtin}; a plugin from a directory cannot take it")
    } else {
        let first = taken.get(&(id.clone(), version.clone()))?;
        format!("`{id}` {version} is at {first} already, so the copy at {location} is not loaded; give this one another version")
    };
    Some(ManifestProblem {
        field: "id".into(),
        message,
    })
}

/// The plugin directories under `dir`, in name order: each subdirectory that holds a
/// `plugin.json`, and each subdirectory of one that holds none (`<id>/<version>/`).
fn plugin_dirs_in(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for sub in subdirectories(dir) {
        if sub.join("plugin.json").exists() {
            dirs.push(sub);
        } else {
            dirs.extend(
                subdirectories(&sub)
                    .into_iter()
                    .filter(|v| v.join("plugin.json").exists()),
            );
        }
    }
    dirs
}

/// The directories in `dir`, in name order; none when it cannot be read.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
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

    /// A fresh directory under the system's temporary one, and a writer of
    /// `<it>/<relative>/plugin.json`.
    fn plugin_root() -> (PathBuf, impl Fn(&str, &str)) {
        let root = std::env::temp_dir().join(format!("pm-discovery-{}", uuid::Uuid::new_v4()));
        let at = root.clone();
        let write = move |relative: &str, text: &str| {
            std::fs::create_dir_all(at.join(relative)).unwrap();
            std::fs::write(at.join(relative).join("plugin.json"), text).unwrap();
        };
        (root, write)
    }

    #[test]
    fn a_declarative_plugin_loads_with_its_spec_digest_and_a_bad_spec_names_each_problem() {
        let (root, write) = plugin_root();
        let manifest = |id: &str| {
            format!(
                r#"{{"id": "{id}", "name": "Tasks", "version": "1.0.0", "type": "connector",
                    "entrypoint": "declarative:tasks.toml", "permissions": ["network:outbound:api.tasks.example"],
                    "configSchema": {{"type": "object", "properties": {{"token": {{"type": "string", "writeOnly": true}}}}}}}}"#
            )
        };
        let spec = r#"
version = 1
auth = { type = "bearer", token = "{{ config.token }}" }
[[streams]]
name = "tasks"
request = { url = "https://api.tasks.example/tasks" }
records = { path = "body.items" }
map = { entity = "document", id = "record.id", fields = { title = "record.title" } }
"#;
        write("good", &manifest("com.example.tasks"));
        std::fs::write(root.join("good/tasks.toml"), spec).unwrap();
        write("bad", &manifest("com.example.bad-tasks"));
        let bad = spec
            .replace("config.token", "config.tenant")
            .replace("https://api.tasks.example", "https://elsewhere.example");
        std::fs::write(root.join("bad/tasks.toml"), bad).unwrap();
        write("missing", &manifest("com.example.no-spec"));

        let catalog = discover(&[], std::slice::from_ref(&root));

        let good = catalog.newest("com.example.tasks").unwrap();
        assert_eq!(
            good.manifest.sha256.as_deref(),
            Some(tributary_declarative::sha256_hex(spec.as_bytes()).as_str())
        );
        let bad = catalog
            .invalid
            .iter()
            .find(|i| i.id.as_deref() == Some("com.example.bad-tasks"))
            .unwrap();
        let fields: Vec<&str> = bad.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["tasks.toml:auth.token", "tasks.toml:streams[0].request.url"],
            "{bad:?}"
        );
        let missing = catalog
            .invalid
            .iter()
            .find(|i| i.id.as_deref() == Some("com.example.no-spec"))
            .unwrap();
        assert!(
            missing.problems[0].message.contains("cannot read the spec"),
            "{missing:?}"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn invalid_and_duplicate_plugins_are_listed_and_the_rest_load() {
        let (root, write) = plugin_root();
        write("a-good", &manifest("com.example.good", "1.0.0"));
        write("b-bad", r#"{"id": "Bad Id", "version": "one"}"#);
        write("c-dup", &manifest("com.example.good", "1.0.0"));
        write("d-json", "{not json");
        std::fs::create_dir_all(root.join("e-no-manifest")).unwrap();
        write("f-builtin", &manifest("com.example.builtin", "9.0.0"));
        let builtin =
            manifest("com.example.builtin", "0.1.0").replace("builtin:test", "builtin:compiled");

        let catalog = discover(&[builtin.as_str()], std::slice::from_ref(&root));
        std::fs::remove_dir_all(&root).unwrap();

        let ids: Vec<&str> = catalog
            .plugins
            .iter()
            .map(|p| p.manifest.id.as_str())
            .collect();
        assert_eq!(ids, vec!["com.example.builtin", "com.example.good"]);
        assert_eq!(catalog.plugins[0].location, BUILTIN_LOCATION);
        assert!(catalog.plugins[1].location.ends_with("a-good"));
        assert_eq!(catalog.invalid.len(), 4, "{:#?}", catalog.invalid);
        let bad = &catalog.invalid[0];
        assert!(bad.location.ends_with("b-bad"));
        let fields: Vec<&str> = bad.problems.iter().map(|p| p.field.as_str()).collect();
        for field in ["id", "name", "version", "type", "entrypoint"] {
            assert!(fields.contains(&field), "{field} not named in {fields:?}");
        }
        // The same id and version twice: the second names where the first is, and itself.
        let dup = &catalog.invalid[1];
        assert!(dup.location.ends_with("c-dup"));
        assert_eq!(dup.problems[0].field, "id");
        let message = &dup.problems[0].message;
        assert!(
            message.contains("1.0.0") && message.contains("a-good") && message.contains("c-dup"),
            "{dup:?}"
        );
        assert!(catalog.invalid[2].problems[0].message.contains("JSON"));
        // A built-in's id stays the built-in's, whatever the version.
        let builtin_taken = &catalog.invalid[3];
        assert!(builtin_taken.location.ends_with("f-builtin"));
        assert!(
            builtin_taken.problems[0]
                .message
                .contains("is the id of the built-in plugin builtin:compiled"),
            "{builtin_taken:?}"
        );
    }

    #[test]
    fn a_directory_plugin_naming_a_compiled_in_entrypoint_is_refused_naming_it() {
        // The attack: a third-party manifest (a plugin directory, or an archive unpacked into
        // the managed one) runs the built-in folder connector's code under its own id and
        // permissions.
        let (root, write) = plugin_root();
        let compiled =
            manifest("tributary.example", "0.1.0").replace("builtin:test", "builtin:folder");
        write(
            "hijack",
            &manifest("com.example.hijack", "1.0.0").replace("builtin:test", "builtin:folder"),
        );
        write("test-only", &manifest("com.example.registered", "1.0.0"));

        let catalog = discover(&[compiled.as_str()], std::slice::from_ref(&root));
        std::fs::remove_dir_all(&root).unwrap();

        assert!(catalog.newest("com.example.hijack").is_none());
        let refused = &catalog.invalid[0];
        assert_eq!(refused.id.as_deref(), Some("com.example.hijack"));
        assert_eq!(refused.problems[0].field, "entrypoint");
        assert!(
            refused.problems[0].message.contains("`builtin:folder`"),
            "{refused:?}"
        );
        // An entrypoint nothing compiled in answers to runs nothing (only a test registers
        // one), so it is no way to built-in code.
        assert!(catalog.newest("com.example.registered").is_some());
        assert_eq!(catalog.invalid.len(), 1, "{:#?}", catalog.invalid);
    }

    #[test]
    fn versions_side_by_side_are_all_loaded_and_the_highest_semver_is_the_newest() {
        let (root, write) = plugin_root();
        // One version in a plugin directory of its own, two as `<id>/<version>/`.
        write("tasks", &manifest("com.example.tasks", "1.9.0"));
        write(
            "com.example.tasks/1.10.0",
            &manifest("com.example.tasks", "1.10.0"),
        );
        write(
            "com.example.tasks/1.2.0",
            &manifest("com.example.tasks", "1.2.0"),
        );
        write(
            "com.example.other/0.1.0",
            &manifest("com.example.other", "0.1.0"),
        );

        let catalog = discover(&[], std::slice::from_ref(&root));
        std::fs::remove_dir_all(&root).unwrap();

        assert!(catalog.invalid.is_empty(), "{:#?}", catalog.invalid);
        let listed: Vec<String> = catalog
            .plugins
            .iter()
            .map(|p| format!("{} {}", p.manifest.id, p.manifest.version))
            .collect();
        assert_eq!(
            listed,
            [
                "com.example.other 0.1.0",
                "com.example.tasks 1.2.0",
                "com.example.tasks 1.9.0",
                "com.example.tasks 1.10.0"
            ]
        );
        let newest = catalog.newest("com.example.tasks").unwrap();
        assert_eq!(newest.manifest.version.to_string(), "1.10.0");
        assert!(newest.location.ends_with("com.example.tasks/1.10.0"));
        let older = catalog
            .version("com.example.tasks", &semver::Version::new(1, 9, 0))
            .unwrap();
        assert!(older.location.ends_with("tasks"), "{older:?}");
        assert!(catalog
            .version("com.example.tasks", &semver::Version::new(1, 3, 0))
            .is_none());
        let newest_of_each: Vec<String> = catalog
            .newest_of_each()
            .iter()
            .map(|p| format!("{} {}", p.manifest.id, p.manifest.version))
            .collect();
        assert_eq!(
            newest_of_each,
            ["com.example.other 0.1.0", "com.example.tasks 1.10.0"]
        );
    }

    #[test]
    fn a_missing_plugin_dir_names_the_setting() {
        let err =
            check_dirs(&[std::env::temp_dir(), PathBuf::from("/nonexistent/plugins")]).unwrap_err();
        assert_eq!(err.key, "plugin_manager.plugin_dirs[1]");
    }
}
