//! The instance configuration: which folder, which files in it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use tributary_plugin_sdk::{require_config, PluginContext, PluginError};

/// Files larger than this are skipped unless `maxFileBytes` says otherwise: 256 KiB, so an
/// item (Markdown carries its text twice) fits NATS's default 1 MB message.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024;

/// The extensions synced unless `extensions` says otherwise.
pub const DEFAULT_EXTENSIONS: [&str; 3] = ["md", "markdown", "txt"];

/// An instance's configuration, as `plugin.json` describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FolderConfig {
    /// The folder to sync; absolute.
    pub path: PathBuf,
    /// The file extensions to sync, without the dot.
    #[serde(default = "default_extensions")]
    pub extensions: Vec<String>,
    /// Glob patterns of relative paths to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Files larger than this are skipped.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// When to sync; read by the connector service, ignored here. Declared so that a config
    /// carrying it is not refused as having an unknown field.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `path` with every link resolved, as checked: what the scan walks, so a link swapped
    /// in for the folder after the check is not followed.
    #[serde(skip)]
    pub root: PathBuf,
    /// The host's directories the scan never enters ([`PluginContext::protected_paths`]).
    #[serde(skip)]
    pub protected: Vec<ProtectedDir>,
}

/// One of the host's own directories (the service's `data_dir`), which no instance may
/// read: known by its resolved path, to refuse a folder inside it, and by its device and
/// inode, to leave it out of a folder that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedDir {
    /// Its path, every link resolved.
    pub path: PathBuf,
    /// The device it is on.
    pub dev: u64,
    /// Its inode.
    pub ino: u64,
}

impl ProtectedDir {
    /// `path` resolved, when it exists (what does not exist holds nothing to protect).
    fn find(path: &Path) -> Option<Self> {
        let path = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        Some(ProtectedDir {
            dev: meta.dev(),
            ino: meta.ino(),
            path,
        })
    }

    /// Whether a directory with `meta` (its own, not a link's) is this one.
    pub fn is(&self, meta: &std::fs::Metadata) -> bool {
        meta.dev() == self.dev && meta.ino() == self.ino
    }
}

fn default_extensions() -> Vec<String> {
    DEFAULT_EXTENSIONS.iter().map(|e| (*e).to_owned()).collect()
}

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

impl FolderConfig {
    /// The instance's config, checked: every error is [`PluginError::Config`] naming its
    /// field. Checks that `path` is an absolute path to a directory, so it touches the file
    /// system: call it off the async runtime.
    pub fn from_context(ctx: &PluginContext) -> Result<Self, PluginError> {
        let mut config: FolderConfig = require_config(ctx).map_err(name_unknown_field)?;
        config.check(ctx.protected_paths())?;
        Ok(config)
    }

    fn check(&mut self, protected_paths: &[PathBuf]) -> Result<(), PluginError> {
        if !self.path.is_absolute() {
            return Err(config_error(
                "path",
                format!("`{}` is not an absolute path", self.path.display()),
            ));
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(config_error(
                    "path",
                    format!("`{}` is not a directory", self.path.display()),
                ))
            }
            Err(e) => {
                return Err(config_error(
                    "path",
                    format!("cannot read `{}`: {e}", self.path.display()),
                ))
            }
        }
        self.root = std::fs::canonicalize(&self.path).map_err(|e| {
            config_error(
                "path",
                format!("cannot read `{}`: {e}", self.path.display()),
            )
        })?;
        self.protected = protected_paths
            .iter()
            .filter_map(|p| ProtectedDir::find(p))
            .collect();
        // The service's data directory holds the master key and the NATS passwords
        // (`secrets/`): a folder there, or the directory itself, would hand them to whoever
        // may configure an instance. A folder that holds it is synced without it (scan.rs).
        if let Some(dir) = self
            .protected
            .iter()
            .find(|d| self.root.starts_with(&d.path))
        {
            return Err(config_error(
                "path",
                format!(
                    "`{}` is the service's data directory `{}` or inside it, where its keys and NATS passwords are kept (`secrets/`); the folder connector may not sync it: choose a folder outside it",
                    self.path.display(),
                    dir.path.display()
                ),
            ));
        }
        if self.extensions.is_empty() {
            return Err(config_error(
                "extensions",
                "must name at least one extension",
            ));
        }
        if let Some(i) = self.extensions.iter().position(|e| normalise(e).is_empty()) {
            return Err(config_error(
                format!("extensions[{i}]"),
                "must not be empty",
            ));
        }
        if self.max_file_bytes == 0 {
            return Err(config_error("maxFileBytes", "must be at least 1"));
        }
        ExcludeRules::new(&self.exclude)?;
        Ok(())
    }

    /// Whether a file with extension `extension` (as found, any case) is synced.
    pub fn wants_extension(&self, extension: &str) -> bool {
        self.extensions
            .iter()
            .any(|wanted| normalise(wanted).eq_ignore_ascii_case(extension))
    }
}

/// An extension as configured, without a leading dot.
fn normalise(extension: &str) -> &str {
    extension.trim().trim_start_matches('.')
}

fn config_error(field: impl Into<String>, message: impl Into<String>) -> PluginError {
    PluginError::Config {
        field: field.into(),
        message: message.into(),
    }
}

/// `deny_unknown_fields` reports an unknown field at the object that holds it (`.`); name the
/// field itself, so the error says which one to remove.
fn name_unknown_field(error: PluginError) -> PluginError {
    match error {
        PluginError::Config { field, message } if field == "." => {
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned);
            PluginError::Config {
                field: unknown.unwrap_or(field),
                message,
            }
        }
        other => other,
    }
}

/// The compiled `exclude` patterns.
#[derive(Debug, Clone)]
pub struct ExcludeRules {
    /// Every pattern: a file matching one is left out.
    files: GlobSet,
    /// Every pattern, plus `dir` for each `dir/**`: a directory matching one is not entered.
    dirs: GlobSet,
}

impl ExcludeRules {
    /// Compiles `patterns`; one that does not compile is [`PluginError::Config`] naming it
    /// (`exclude[2]`).
    pub fn new(patterns: &[String]) -> Result<Self, PluginError> {
        let mut files = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let glob = |pattern: &str| {
                GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| config_error(format!("exclude[{i}]"), e.to_string()))
            };
            let compiled = glob(pattern)?;
            files.add(compiled.clone());
            dirs.add(compiled);
            if let Some(dir) = pattern.strip_suffix("/**") {
                if !dir.is_empty() {
                    dirs.add(glob(dir)?);
                }
            }
        }
        let build = |set: GlobSetBuilder| {
            set.build()
                .map_err(|e| config_error("exclude", e.to_string()))
        };
        Ok(ExcludeRules {
            files: build(files)?,
            dirs: build(dirs)?,
        })
    }

    /// Whether the file at `relative` (`/`-separated) is left out.
    pub fn excludes_file(&self, relative: &str) -> bool {
        self.files.is_match(relative)
    }

    /// Whether the directory at `relative` is left out with everything in it.
    pub fn excludes_dir(&self, relative: &str) -> bool {
        self.dirs.is_match(relative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(patterns: &[&str]) -> ExcludeRules {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        ExcludeRules::new(&patterns).unwrap()
    }

    #[test]
    fn a_star_stays_within_one_directory() {
        let rules = rules(&["*.tmp", "**/*.bak"]);
        assert!(rules.excludes_file("a.tmp"));
        assert!(!rules.excludes_file("notes/a.tmp"));
        assert!(rules.excludes_file("notes/deep/a.bak"));
    }

    #[test]
    fn a_double_star_suffix_excludes_the_directory_itself() {
        let rules = rules(&["drafts/**"]);
        assert!(rules.excludes_dir("drafts"));
        assert!(rules.excludes_file("drafts/a.md"));
        assert!(!rules.excludes_dir("published"));
    }

    #[test]
    fn a_bad_pattern_names_its_index() {
        let patterns = vec!["ok/**".to_owned(), "[unclosed".to_owned()];
        match ExcludeRules::new(&patterns) {
            Err(PluginError::Config { field, .. }) => assert_eq!(field, "exclude[1]"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
