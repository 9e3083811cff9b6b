//! `tributary plugins add <directory | .tar.gz>`: a third-party plugin (WebAssembly, or a
//! declarative connector: `plugin.json` and its TOML spec), checked
//! and copied into the managed plugin directory `<data_dir>/plugins/<id>/<version>/`, which the
//! plugin manager scans; then a rescan, and what to do next.
//!
//! What is checked, on the copy made in a staging directory (so what is checked is what is
//! kept): the manifest; a `wasm:` entrypoint whose component file is in the directory; the
//! component's SHA-256 against the manifest's `sha256`; its imports, against what a plugin
//! may import at all (`tributary_wasm::imports::check`) and against the manifest's
//! permissions (outgoing HTTP needs a `network:outbound` one). For a `declarative:` entrypoint,
//! its spec against the manifest (`tributary_declarative::check_plugin_dir`: every problem
//! with its path in the spec). The same id and version already
//! added is refused unless `--replace`. Every refusal is a [`Refusal`] naming its reason.

mod files;

use crate::outln;
use std::path::{Path, PathBuf};

use serde_json::json;
use tributary_kit::client::{self, MeshClient};
use tributary_kit::Config;
use tributary_proto::manifest::PluginManifest;
use tributary_proto::requests::plugins::PluginList;

use super::print_json;
use files::Budget;

/// What `plugins add` was asked.
#[derive(Debug, Clone)]
pub struct Add {
    /// The plugin's directory, or a `.tar.gz` of it.
    pub source: PathBuf,
    /// Replace the same id and version when it was added before.
    pub replace: bool,
    /// The most the plugin's files may add up to, in bytes.
    pub max_bytes: u64,
}

/// Why a plugin was not added.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The source is not there.
    #[error("{0} does not exist")]
    Missing(String),
    /// The source is a file that is not a `.tar.gz`.
    #[error("{0} is neither a plugin directory nor a .tar.gz archive of one")]
    NotAPlugin(String),
    /// The archive cannot be read as a gzip-compressed tar.
    #[error("{archive} is not a readable .tar.gz: {problem}")]
    Unreadable {
        /// The archive.
        archive: String,
        /// What the reader said.
        problem: String,
    },
    /// An archive entry's path is absolute or climbs out with `..`.
    #[error("{entry} would be written outside the plugin's directory: an archive entry must be a relative path without `..`")]
    Escapes {
        /// The entry and its archive.
        entry: String,
    },
    /// An archive entry goes through a link (or file) an earlier entry made.
    #[error("{entry} goes through `{through}`, which an earlier entry made a link or a file: an archive entry must not be written through a link")]
    ThroughLink {
        /// The entry and its archive.
        entry: String,
        /// The link or file on its path.
        through: String,
    },
    /// An archive entry comes a second time.
    #[error("{entry} is in the archive twice")]
    Duplicate {
        /// The entry and its archive.
        entry: String,
    },
    /// A link leads outside the plugin's directory.
    #[error("{path} is a link to {target}, outside the plugin's directory")]
    LinkOutside {
        /// The link.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A link leads nowhere.
    #[error("{path} is a link to nothing")]
    BrokenLink {
        /// The link.
        path: String,
    },
    /// An entry that is not a regular file or directory.
    #[error("{path} is {kind}: a plugin is made of files and directories")]
    NotAFile {
        /// The entry.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// Over the size cap.
    #[error("the plugin's files add up to more than {cap} bytes, the most `plugins add` takes (--max-size, in MiB)")]
    TooBig {
        /// The cap in bytes.
        cap: u64,
    },
    /// Too many files.
    #[error("the plugin holds more than {max} files and directories")]
    TooManyEntries {
        /// The most allowed.
        max: usize,
    },
    /// No `plugin.json` where one is looked for.
    #[error("{0} holds no plugin.json")]
    NoManifest(String),
    /// The manifest has problems.
    #[error("{path}: {errors}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// Every problem.
        errors: tributary_proto::manifest::ManifestErrors,
    },
    /// A manifest that is not a WebAssembly plugin's.
    #[error("{path} has the entrypoint `{entrypoint}`: only a WebAssembly plugin (`\"entrypoint\": \"wasm:<file>.wasm\"`) or a declarative connector (`\"declarative:<file>.toml\"`) can be added; `builtin:` plugins are compiled into Tributary")]
    NotWasm {
        /// The manifest file.
        path: String,
        /// Its entrypoint.
        entrypoint: String,
    },
    /// The component the entrypoint names fails a check: missing, not what the manifest's
    /// digest says, not a component, or importing what its permissions cannot grant (the
    /// plugin manager's discovery runs the same check).
    #[error("{0}")]
    Component(tributary_wasm::component::ComponentProblem),
    /// The connector spec a `declarative:` entrypoint names is missing, not what the
    /// manifest's digest says, or does not validate against the manifest (the plugin
    /// manager's discovery runs the same check); every problem with its path in the spec.
    #[error("{path}: {errors}")]
    Spec {
        /// The spec file.
        path: String,
        /// Every problem.
        errors: tributary_declarative::SpecErrors,
    },
    /// The same id and version was added before.
    #[error("`{id}` {version} is already added, at {path}; `--replace` replaces it")]
    AlreadyAdded {
        /// The plugin.
        id: String,
        /// Its version.
        version: String,
        /// Where it is.
        path: String,
    },
    /// The plugin manager found the copy and would not load it.
    #[error(
        "the plugin manager does not load `{id}` {version} (the copy is removed again): {problems}"
    )]
    NotLoaded {
        /// The plugin.
        id: String,
        /// Its version.
        version: String,
        /// Its problems, as the plugin manager lists them.
        problems: String,
    },
    /// A file operation failed.
    #[error("{what} {path}: {cause}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: String,
        /// Why it failed (in the message, so not also a source).
        cause: std::io::Error,
    },
}

impl Refusal {
    fn io(what: &'static str, path: &Path, cause: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.display().to_string(),
            cause,
        }
    }
}

/// A plugin that passed the checks, in its staging directory.
#[derive(Debug)]
pub struct Checked {
    /// Its manifest.
    pub manifest: PluginManifest,
    /// The staged copy.
    pub dir: PathBuf,
}

/// `plugins add`: checks and copies the plugin, asks the plugin manager to rescan, and says
/// what to do next.
pub async fn add(config: &Config, args: Add, json: bool) -> anyhow::Result<()> {
    let managed = config.managed_plugin_dir();
    let staging = Staging::new(&config.data_dir)?;
    let checked = stage_and_check(&args, &staging)?;
    let (id, version) = (
        checked.manifest.id.clone(),
        checked.manifest.version.to_string(),
    );
    let target = managed.join(&id).join(&version);
    place(&checked, &target, args.replace, &staging)?;
    drop(staging);

    let rescanned = rescan(config).await;
    let mut upgradable = Vec::new();
    let mut note = None;
    match &rescanned {
        Ok((client, list)) => {
            if let Some(problems) = not_loaded(list, &id, &target) {
                let _ = std::fs::remove_dir_all(&target);
                let _ = client.rescan().await;
                return Err(Refusal::NotLoaded {
                    id,
                    version,
                    problems,
                }
                .into());
            }
            if !found_there(list, &id, &version, &target) {
                note = Some(format!(
                    "the plugin manager does not list `{id}` {version} from {}: it scans `<data_dir>/plugins` of its own configuration, so add the plugin where it runs, with the same data_dir",
                    target.display()
                ));
            }
            if let Ok(instances) = client.instances().await {
                upgradable = instances
                    .into_iter()
                    .filter(|i| {
                        i.plugin_id == id
                            && i.state != "uninstalled"
                            && older(&i.version, &checked.manifest.version)
                    })
                    .map(|i| i.id)
                    .collect();
            }
        }
        Err(e) => {
            note = Some(format!(
                "the plugin manager was not asked to rescan ({e}); it finds the plugin when it starts, or on `tributary plugins rescan`"
            ))
        }
    }
    let permissions: Vec<String> = checked
        .manifest
        .permissions
        .iter()
        .map(ToString::to_string)
        .collect();
    if json {
        return print_json(&json!({
            "plugin": {
                "id": id,
                "version": version,
                "location": target.display().to_string(),
                "permissions": permissions,
                "sha256": checked.manifest.sha256,
            },
            "rescanned": rescanned.is_ok(),
            "upgradable": upgradable,
            "note": note,
        }));
    }
    outln!("Added `{id}` {version} at {}.", target.display());
    if let Some(note) = &note {
        eprintln!("note: {note}");
    }
    if permissions.is_empty() {
        outln!("It asks for no permissions. Install it: `tributary plugins install {id}`.");
    } else {
        outln!("It asks for these permissions:");
        for permission in &permissions {
            outln!("  {permission}");
        }
        outln!("Install it, accepting them: `tributary plugins install {id}` (it asks; `--accept-permissions` accepts them at once).");
    }
    for instance in &upgradable {
        outln!("Move `{instance}` to this version: `tributary plugins upgrade {instance}`.");
    }
    Ok(())
}

/// Copies or unpacks the source into the staging directory and checks the copy.
pub fn stage_and_check(args: &Add, staging: &Staging) -> Result<Checked, Refusal> {
    let source = &args.source;
    let shown = source.display().to_string();
    let mut budget = Budget::new(args.max_bytes);
    let copy = staging.path.join("plugin");
    let name_of: Box<dyn Fn(&str) -> String>;
    if source.is_dir() {
        files::copy_tree(source, &copy, &shown, &mut budget)?;
        let base = shown.trim_end_matches('/').to_owned();
        name_of = Box::new(move |file| format!("{base}/{file}"));
    } else if source.is_file() {
        let name = source.to_string_lossy();
        if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            return Err(Refusal::NotAPlugin(shown));
        }
        let unpacked = staging.path.join("unpacked");
        files::unpack(source, &unpacked, &mut budget)?;
        let (root, top) = plugin_root(&unpacked).ok_or_else(|| {
            Refusal::NoManifest(format!(
                "{shown} (at its top, or in its one top-level directory)"
            ))
        })?;
        // Links the archive held are resolved now, inside the unpacked tree only.
        files::copy_tree(&root, &copy, &shown, &mut Budget::new(args.max_bytes))?;
        name_of = Box::new(move |file| format!("{top}{file} in {shown}"));
    } else {
        return Err(Refusal::Missing(shown));
    }
    check(&copy, name_of.as_ref())
}

/// The directory of an unpacked archive that is the plugin: the top when it holds a
/// `plugin.json`, else its one directory that does; with the prefix naming files in it.
fn plugin_root(unpacked: &Path) -> Option<(PathBuf, String)> {
    if unpacked.join("plugin.json").is_file() {
        return Some((unpacked.to_path_buf(), String::new()));
    }
    let mut entries = std::fs::read_dir(unpacked).ok()?.filter_map(Result::ok);
    let only = entries.next()?;
    if entries.next().is_some() || !only.path().join("plugin.json").is_file() {
        return None;
    }
    let top = format!("{}/", only.file_name().to_string_lossy());
    Some((only.path(), top))
}

/// The checks on a staged copy `dir`; `name_of` names one of its files for a refusal.
fn check(dir: &Path, name_of: &dyn Fn(&str) -> String) -> Result<Checked, Refusal> {
    let manifest_path = dir.join("plugin.json");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|_| Refusal::NoManifest(name_of("").trim_end_matches('/').to_owned()))?;
    let manifest = PluginManifest::parse(&text).map_err(|errors| Refusal::Manifest {
        path: name_of("plugin.json"),
        errors,
    })?;
    if let Some(file) = tributary_declarative::spec_file(&manifest.entrypoint) {
        tributary_declarative::check_plugin_dir(dir, &manifest).map_err(|errors| {
            Refusal::Spec {
                path: name_of(file),
                errors,
            }
        })?;
        return Ok(Checked {
            manifest,
            dir: dir.to_path_buf(),
        });
    }
    if !manifest.entrypoint.starts_with("wasm:") {
        return Err(Refusal::NotWasm {
            path: name_of("plugin.json"),
            entrypoint: manifest.entrypoint.clone(),
        });
    }
    tributary_wasm::component::check(dir, &manifest, name_of).map_err(Refusal::Component)?;
    Ok(Checked {
        manifest,
        dir: dir.to_path_buf(),
    })
}

/// Moves the checked copy to `target`; an existing one is refused, or replaced with
/// `replace` (moved aside into the staging directory first, so a failure keeps it).
fn place(
    checked: &Checked,
    target: &Path,
    replace: bool,
    staging: &Staging,
) -> Result<(), Refusal> {
    let parent = target.parent().unwrap_or(target);
    std::fs::create_dir_all(parent).map_err(|e| Refusal::io("cannot create", parent, e))?;
    if target.exists() {
        if !replace {
            return Err(Refusal::AlreadyAdded {
                id: checked.manifest.id.clone(),
                version: checked.manifest.version.to_string(),
                path: target.display().to_string(),
            });
        }
        let aside = staging.path.join("replaced");
        std::fs::rename(target, &aside).map_err(|e| Refusal::io("cannot move aside", target, e))?;
        if let Err(e) = std::fs::rename(&checked.dir, target) {
            let _ = std::fs::rename(&aside, target);
            return Err(Refusal::io("cannot move the plugin to", target, e));
        }
        return Ok(());
    }
    std::fs::rename(&checked.dir, target)
        .map_err(|e| Refusal::io("cannot move the plugin to", target, e))
}

/// The staging directory `<data_dir>/.plugins-incoming/<random>/`, beside the managed one
/// (so moving a plugin into place is a rename) and outside it (so no scan ever sees a half
/// copy); removed with everything in it when dropped.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
}

impl Staging {
    /// Makes a fresh one under `data_dir`.
    pub fn new(data_dir: &Path) -> Result<Self, Refusal> {
        let path = data_dir
            .join(".plugins-incoming")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&path).map_err(|e| Refusal::io("cannot create", &path, e))?;
        Ok(Self { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Asks the plugin manager to scan again; its client and answer, or why it could not.
async fn rescan(config: &Config) -> anyhow::Result<(MeshClient, PluginList)> {
    let client = MeshClient::connect(config, client::actor_from_env()).await?;
    let list = client.rescan().await?;
    Ok((client, list))
}

/// The problems the plugin manager lists for the plugin `id` it found at `target`, when it
/// found it invalid there.
fn not_loaded(list: &PluginList, id: &str, target: &Path) -> Option<String> {
    let invalid = list
        .invalid
        .iter()
        .find(|i| i.id.as_deref() == Some(id) && same_place(&i.location, target))?;
    let problems: Vec<String> = invalid
        .problems
        .iter()
        .map(|p| format!("`{}`: {}", p.field, p.message))
        .collect();
    Some(problems.join("; "))
}

/// Whether the plugin manager lists `id` `version` from `target`.
fn found_there(list: &PluginList, id: &str, version: &str, target: &Path) -> bool {
    list.plugins
        .iter()
        .any(|p| p.id == id && p.version == version && same_place(&p.location, target))
}

fn same_place(location: &str, target: &Path) -> bool {
    let location = Path::new(location);
    location == target
        || matches!((location.canonicalize(), target.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Whether `version` (an instance's) is older than `than`.
fn older(version: &str, than: &semver::Version) -> bool {
    semver::Version::parse(version).is_ok_and(|v| v < *than)
}
