//! Listing the folder: which files are candidates, with their metadata, in path order.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use walkdir::{DirEntry, WalkDir};

use crate::config::{ExcludeRules, FolderConfig, ProtectedDir};

/// A file the folder holds that the configuration selects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListedFile {
    /// Its path relative to the root, `/`-separated: its external id.
    pub relative: String,
    /// Its full path.
    pub path: PathBuf,
    /// Its modification time.
    pub mtime: DateTime<Utc>,
    /// Its size in bytes.
    pub size: u64,
    /// The device and inode of the file listed: the file read must be this one
    /// ([`crate::document::read`]), not whatever was put at its path since.
    pub identity: (u64, u64),
}

/// What a listing found.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// The files selected, sorted by relative path.
    pub files: Vec<ListedFile>,
    /// Relative paths of files and directories that exist but could not be read (permission
    /// denied, vanished mid-walk): what the index knows under them is kept, not deleted.
    pub unreadable: Vec<String>,
}

impl Listing {
    /// Whether `relative` is, or is under, something that could not be read.
    pub fn is_unreadable(&self, relative: &str) -> bool {
        self.unreadable.iter().any(|u| {
            relative == u
                || (relative.len() > u.len()
                    && relative.starts_with(u.as_str())
                    && relative.as_bytes().get(u.len()) == Some(&b'/'))
        })
    }
}

/// The root could not be listed at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot list `{root}`: {source}")]
pub(crate) struct ListingError {
    /// The configured folder.
    pub root: String,
    /// Why.
    #[source]
    pub source: walkdir::Error,
}

/// Lists the files under the configured folder that are synced: the configured extensions,
/// no hidden or excluded path, no symbolic link, no file over `maxFileBytes`. Reads
/// metadata only. Symbolic links are not followed, each skipped with its reason in the log
/// (the root is walked as resolved when the config was checked), so nothing outside the
/// folder is listed and a link cannot loop; the host's protected directories (its
/// `data_dir`) are never entered.
pub(crate) fn list(config: &FolderConfig, exclude: &ExcludeRules) -> Result<Listing, ListingError> {
    let root = config.root.as_path();
    let protected = config.protected.as_slice();
    let mut listing = Listing::default();
    let walker = WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| {
            if entry.depth() == 0 {
                return !is_protected(entry, protected);
            }
            enters(root, entry, exclude, protected)
        });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) if error.depth() == 0 => {
                return Err(ListingError {
                    root: root.display().to_string(),
                    source: error,
                })
            }
            Err(error) => {
                let relative = error.path().and_then(|p| relative_path(root, p));
                warn!(path = ?relative, error = %error, "Cannot read part of the folder; what it held before is kept.");
                if let Some(relative) = relative {
                    listing.unreadable.push(relative);
                }
                continue;
            }
        };
        if entry.file_type().is_symlink() {
            info!(
                path = ?relative_path(root, entry.path()),
                "Skipped a symbolic link: links are never followed, so that nothing outside the folder is read."
            );
            continue;
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(relative) = relative_path(root, entry.path()) else {
            warn!(path = %entry.path().display(), "Skipped a file whose name is not UTF-8.");
            continue;
        };
        let wanted = entry
            .path()
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| config.wants_extension(e));
        if !wanted || exclude.excludes_file(&relative) {
            continue;
        }
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(error) => {
                warn!(path = %relative, error = %error, "Cannot read a file's metadata; what it held before is kept.");
                listing.unreadable.push(relative);
                continue;
            }
        };
        if metadata.len() > config.max_file_bytes {
            warn!(
                path = %relative,
                size = metadata.len(),
                max_file_bytes = config.max_file_bytes,
                "Skipped a file larger than maxFileBytes."
            );
            continue;
        }
        let mtime = match metadata.modified() {
            Ok(mtime) => DateTime::<Utc>::from(mtime),
            Err(error) => {
                warn!(path = %relative, error = %error, "Cannot read a file's modification time; what it held before is kept.");
                listing.unreadable.push(relative);
                continue;
            }
        };
        listing.files.push(ListedFile {
            relative,
            path: entry.into_path(),
            mtime,
            size: metadata.len(),
            identity: (metadata.dev(), metadata.ino()),
        });
    }
    // Path order, as strings: the order of the index, and what `after` in a cursor means.
    listing.files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(listing)
}

/// Whether the walk looks at `entry` (and, for a directory, goes into it): not hidden, not
/// excluded, not one of the host's protected directories; files are checked further by the
/// caller.
fn enters(
    root: &Path,
    entry: &DirEntry,
    exclude: &ExcludeRules,
    protected: &[ProtectedDir],
) -> bool {
    if entry
        .file_name()
        .to_str()
        .is_some_and(|n| n.starts_with('.'))
    {
        return false;
    }
    if entry.file_type().is_dir() {
        if is_protected(entry, protected) {
            return false;
        }
        return match relative_path(root, entry.path()) {
            Some(relative) => !exclude.excludes_dir(&relative),
            None => {
                warn!(path = %entry.path().display(), "Skipped a directory whose name is not UTF-8.");
                false
            }
        };
    }
    true
}

/// Whether the directory `entry` is one of the host's protected directories, which the scan
/// leaves out with everything in it (and says so); a directory whose metadata cannot be
/// read is left to the walk, which reports it.
fn is_protected(entry: &DirEntry, protected: &[ProtectedDir]) -> bool {
    if protected.is_empty() || !entry.file_type().is_dir() {
        return false;
    }
    let Ok(meta) = entry.metadata() else {
        return false;
    };
    let found = protected.iter().any(|dir| dir.is(&meta));
    if found {
        warn!(
            path = %entry.path().display(),
            "Skipped the service's data directory inside the folder: its keys and NATS passwords are never synced."
        );
    }
    found
}

/// `path` relative to `root`, `/`-separated; `None` when a component is not UTF-8.
fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_paths_cover_what_is_under_them_only() {
        let listing = Listing {
            files: Vec::new(),
            unreadable: vec!["private".into()],
        };
        assert!(listing.is_unreadable("private"));
        assert!(listing.is_unreadable("private/a.md"));
        assert!(!listing.is_unreadable("private-notes.md"));
        assert!(!listing.is_unreadable("privat"));
    }
}
