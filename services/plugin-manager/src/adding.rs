//! Adding a third-party plugin (WebAssembly, or a declarative connector: `plugin.json` and its
//! TOML spec): checked, then moved into the managed plugin directory
//! `<data_dir>/plugins/<id>/<version>/`, which the plugin manager scans. `tributary plugins add`
//! (a directory or a `.tar.gz`) and [`crate::PluginManager::add_plugin_archive`] (the bytes of
//! an uploaded `.tar.gz`, for the admin API and the console) both run what is here.
//!
//! What is checked, on the copy made in a staging directory (so what is checked is what is
//! kept): the manifest; a `wasm:` entrypoint whose component file is in the directory; the
//! component's SHA-256 against the manifest's `sha256`; its imports, against what a plugin
//! may import at all (`tributary_wasm::imports::check`) and against the manifest's
//! permissions (outgoing HTTP needs a `network:outbound` one). For a `declarative:` entrypoint,
//! its spec against the manifest (`tributary_declarative::check_plugin_dir`: every problem
//! with its path in the spec). The same id and version already added is refused unless
//! replacing. Every refusal is a [`Refusal`] naming its reason.

mod files;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use tributary_kit::Config;
use tributary_proto::manifest::PluginManifest;
use tributary_proto::requests::plugins::PluginList;

use files::Budget;

/// The most a plugin's files may add up to, unpacked, unless told otherwise (`plugins add
/// --max-size`): 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// How an uploaded archive is named in refusals.
pub const UPLOADED: &str = "the uploaded archive";

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

    /// The message for a caller of the admin API or the console: the same as the CLI's
    /// ([`std::fmt::Display`]), but a refusal that names a CLI flag names the API's way
    /// instead (`?replace=true`), and a failed file operation names no path of the server's
    /// (the log has it).
    pub fn api_message(&self) -> String {
        match self {
            Self::TooBig { cap } => format!(
                "the plugin's files add up to more than {cap} bytes, the most the plugin manager takes"
            ),
            Self::AlreadyAdded { id, version, .. } => {
                format!("`{id}` {version} is already added; `?replace=true` replaces it")
            }
            Self::Io { .. } => {
                "the plugin manager could not write the plugin's files; its log has the cause"
                    .to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Where added plugins go: the managed plugin directory, and the data directory that holds
/// it, under which each addition gets its [`Staging`] directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedDir {
    /// `<data_dir>/plugins`, laid out `<id>/<version>/`, which the plugin manager scans.
    pub plugins: PathBuf,
    /// `data_dir`, beside the plugins, for the staging directories.
    pub data_dir: PathBuf,
}

impl ManagedDir {
    /// The managed plugin directory of `config` ([`Config::managed_plugin_dir`]).
    pub fn of(config: &Config) -> Self {
        Self {
            plugins: config.managed_plugin_dir(),
            data_dir: config.data_dir.clone(),
        }
    }

    /// Where the plugin of `manifest` goes: `<plugins>/<id>/<version>`.
    pub fn target_of(&self, manifest: &PluginManifest) -> PathBuf {
        self.plugins
            .join(&manifest.id)
            .join(manifest.version.to_string())
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

/// Copies the directory, or unpacks the `.tar.gz`, at `source` into the staging directory
/// (at most `max_bytes`), and checks the copy.
pub fn stage_and_check(
    source: &Path,
    max_bytes: u64,
    staging: &Staging,
) -> Result<Checked, Refusal> {
    let shown = source.display().to_string();
    if source.is_dir() {
        let copy = staging.path.join("plugin");
        files::copy_tree(source, &copy, &shown, &mut Budget::new(max_bytes))?;
        let base = shown.trim_end_matches('/').to_owned();
        return check(&copy, &move |file| format!("{base}/{file}"));
    }
    if !source.is_file() {
        return Err(Refusal::Missing(shown));
    }
    let name = source.to_string_lossy();
    if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        return Err(Refusal::NotAPlugin(shown));
    }
    let file = std::fs::File::open(source).map_err(|e| Refusal::io("cannot read", source, e))?;
    stage_and_check_archive(BufReader::new(file), &shown, max_bytes, staging)
}

/// Unpacks the `.tar.gz` read from `archive` into the staging directory (at most `max_bytes`
/// unpacked), and checks the copy; `shown` names the archive in refusals (its path, or
/// [`UPLOADED`]).
pub fn stage_and_check_archive(
    archive: impl Read,
    shown: &str,
    max_bytes: u64,
    staging: &Staging,
) -> Result<Checked, Refusal> {
    let unpacked = staging.path.join("unpacked");
    files::unpack(archive, shown, &unpacked, &mut Budget::new(max_bytes))?;
    let (root, top) = plugin_root(&unpacked).ok_or_else(|| {
        Refusal::NoManifest(format!(
            "{shown} (at its top, or in its one top-level directory)"
        ))
    })?;
    // Links the archive held are resolved now, inside the unpacked tree only.
    let copy = staging.path.join("plugin");
    files::copy_tree(&root, &copy, shown, &mut Budget::new(max_bytes))?;
    check(&copy, &|file| format!("{top}{file} in {shown}"))
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
/// `replace` (moved aside into the staging directory first, so a failure keeps it, and
/// [`Staging::take_back`] can put it back). Answers whether one was replaced.
pub fn place(
    checked: &Checked,
    target: &Path,
    replace: bool,
    staging: &Staging,
) -> Result<bool, Refusal> {
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
        let aside = staging.replaced();
        std::fs::rename(target, &aside).map_err(|e| Refusal::io("cannot move aside", target, e))?;
        if let Err(e) = std::fs::rename(&checked.dir, target) {
            let _ = std::fs::rename(&aside, target);
            return Err(Refusal::io("cannot move the plugin to", target, e));
        }
        return Ok(true);
    }
    std::fs::rename(&checked.dir, target)
        .map_err(|e| Refusal::io("cannot move the plugin to", target, e))?;
    Ok(false)
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

    /// Where [`place`] keeps what it replaced until the staging directory goes.
    fn replaced(&self) -> PathBuf {
        self.path.join("replaced")
    }

    /// Takes the plugin [`place`]d at `target` out again (the plugin manager would not load
    /// it), and puts back what it replaced, if anything.
    pub fn take_back(&self, target: &Path) {
        let _ = std::fs::remove_dir_all(target);
        let aside = self.replaced();
        if aside.exists() {
            let _ = std::fs::rename(&aside, target);
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The problems the plugin manager lists for the plugin `id` it found at `target`, when it
/// found it invalid there.
pub fn not_loaded(list: &PluginList, id: &str, target: &Path) -> Option<String> {
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
pub fn found_there(list: &PluginList, id: &str, version: &str, target: &Path) -> bool {
    list.plugins
        .iter()
        .any(|p| p.id == id && p.version == version && same_place(&p.location, target))
}

/// Whether a plugin's `location`, as the catalog lists it, is `target`.
pub fn same_place(location: &str, target: &Path) -> bool {
    let location = Path::new(location);
    location == target
        || matches!((location.canonicalize(), target.canonicalize()), (Ok(a), Ok(b)) if a == b)
}
