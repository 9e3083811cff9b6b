//! Bringing a plugin's files in safely: copying a directory, or unpacking a `.tar.gz`, into a
//! staging directory of our own, so the checks and the managed directory only ever see
//! regular files and directories that were written there, never a link to elsewhere.
//!
//! An archive's entries are refused when their path is absolute or climbs out (`..`), when
//! they pass through or replace something an earlier entry made, when they are hard links,
//! devices or pipes, and when a link points outside. Copying then resolves every link left and
//! copies what it points to, refusing any that leads outside the plugin's directory. Both stop
//! at a size cap counted on the bytes actually written, so a small archive that inflates
//! into gigabytes is stopped at the cap.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::Refusal;

/// The most files and directories one plugin may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// How much may still be written, and how many entries.
#[derive(Debug)]
pub struct Budget {
    /// The cap, for messages.
    cap: u64,
    /// Bytes still allowed.
    bytes_left: u64,
    /// Entries still allowed.
    entries_left: usize,
}

impl Budget {
    /// A budget of `cap` bytes and [`MAX_ENTRIES`] entries.
    pub fn new(cap: u64) -> Self {
        Self {
            cap,
            bytes_left: cap,
            entries_left: MAX_ENTRIES,
        }
    }

    fn entry(&mut self) -> Result<(), Refusal> {
        self.entries_left = self
            .entries_left
            .checked_sub(1)
            .ok_or(Refusal::TooManyEntries { max: MAX_ENTRIES })?;
        Ok(())
    }

    /// Copies `from` into a new file `to`, at most the bytes left.
    fn copy(&mut self, from: &mut impl Read, to: &Path) -> Result<(), Refusal> {
        let mut out = File::create_new(to).map_err(|e| Refusal::io("cannot write", to, e))?;
        let copied = io::copy(&mut from.by_ref().take(self.bytes_left + 1), &mut out)
            .map_err(|e| Refusal::io("cannot copy into", to, e))?;
        if copied > self.bytes_left {
            return Err(Refusal::TooBig { cap: self.cap });
        }
        self.bytes_left -= copied;
        Ok(())
    }
}

/// Copies the tree at `root` into the new directory `to`: directories and regular files, a
/// link as a copy of the file it points to. `shown` names `root` in refusals.
pub fn copy_tree(root: &Path, to: &Path, shown: &str, budget: &mut Budget) -> Result<(), Refusal> {
    let inside = root
        .canonicalize()
        .map_err(|e| Refusal::io("cannot read", root, e))?;
    fs::create_dir(to).map_err(|e| Refusal::io("cannot create", to, e))?;
    copy_dir(&inside, &inside, Path::new(""), to, shown, budget)
}

fn copy_dir(
    inside: &Path,
    dir: &Path,
    relative: &Path,
    to: &Path,
    shown: &str,
    budget: &mut Budget,
) -> Result<(), Refusal> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Refusal::io("cannot read", dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| Refusal::io("cannot read", dir, e))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        budget.entry()?;
        let path = entry.path();
        let name = relative.join(entry.file_name());
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| Refusal::io("cannot read", &path, e))?;
        if kind.is_dir() {
            fs::create_dir(&target).map_err(|e| Refusal::io("cannot create", &target, e))?;
            copy_dir(inside, &path, &name, &target, shown, budget)?;
        } else if kind.is_file() {
            copy_file(&path, &target, budget)?;
        } else if kind.is_symlink() {
            let resolved = path.canonicalize().map_err(|_| Refusal::BrokenLink {
                path: format!("{shown}/{}", name.display()),
            })?;
            if !resolved.starts_with(inside) {
                return Err(Refusal::LinkOutside {
                    path: format!("{shown}/{}", name.display()),
                    target: resolved.display().to_string(),
                });
            }
            if !resolved.is_file() {
                return Err(Refusal::NotAFile {
                    path: format!("{shown}/{}", name.display()),
                    kind: "a link to a directory",
                });
            }
            copy_file(&resolved, &target, budget)?;
        } else {
            return Err(Refusal::NotAFile {
                path: format!("{shown}/{}", name.display()),
                kind: "neither a file nor a directory (a device, pipe or socket)",
            });
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path, budget: &mut Budget) -> Result<(), Refusal> {
    let mut file = File::open(from).map_err(|e| Refusal::io("cannot read", from, e))?;
    budget.copy(&mut file, to)
}

/// Unpacks the gzip-compressed tar read from `archive` into the new directory `to`, refusing
/// what could reach outside it (see the module documentation). `shown` names the archive in
/// refusals (its path, or "the uploaded archive").
pub fn unpack(
    archive: impl Read,
    shown: &str,
    to: &Path,
    budget: &mut Budget,
) -> Result<(), Refusal> {
    let unreadable = |e: io::Error| Refusal::Unreadable {
        archive: shown.to_owned(),
        problem: e.to_string(),
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    fs::create_dir(to).map_err(|e| Refusal::io("cannot create", to, e))?;
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        budget.entry()?;
        let raw = entry.path().map_err(unreadable)?.into_owned();
        let named = format!("`{}` in {shown}", raw.display());
        let climbs = raw
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        let relative = confined(&raw)
            .filter(|_| !climbs)
            .ok_or_else(|| Refusal::Escapes {
                entry: named.clone(),
            })?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = to.join(&relative);
        fresh_path(to, &relative, &named)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target)
                    .map_err(|e| Refusal::io("cannot create", &target, e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                make_parent(&target)?;
                budget.copy(&mut entry, &target)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(unreadable)?
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let parent = relative.parent().unwrap_or(Path::new(""));
                if link.is_absolute() || confined(&parent.join(&link)).is_none() {
                    return Err(Refusal::LinkOutside {
                        path: named,
                        target: link.display().to_string(),
                    });
                }
                make_parent(&target)?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| Refusal::io("cannot create", &target, e))?;
            }
            tar::EntryType::Link => {
                return Err(Refusal::NotAFile {
                    path: named,
                    kind: "a hard link (archive the file itself)",
                })
            }
            _ => {
                return Err(Refusal::NotAFile {
                    path: named,
                    kind: "neither a file, a directory nor a link",
                })
            }
        }
    }
    Ok(())
}

/// `path` with its `.` and `..` resolved, when it is relative and never climbs above where it
/// starts (`sub/../file` is `file`; `../file` and `/file` are `None`).
fn confined(path: &Path) -> Option<PathBuf> {
    let mut kept = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => kept.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !kept.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(kept)
}

/// Refuses an archive entry at `relative` under `root` that goes through a link an earlier
/// entry made, or that would replace a file or link one made: so an entry is only ever
/// written to a new path in a real directory under `root`.
fn fresh_path(root: &Path, relative: &Path, named: &str) -> Result<(), Refusal> {
    let mut at = root.to_path_buf();
    let parts: Vec<Component> = relative.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = fs::symlink_metadata(&at) else {
            return Ok(());
        };
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() || (!meta.is_dir() && !last) {
            return Err(Refusal::ThroughLink {
                entry: named.to_owned(),
                through: at.strip_prefix(root).unwrap_or(&at).display().to_string(),
            });
        }
        if last && !meta.is_dir() {
            return Err(Refusal::Duplicate {
                entry: named.to_owned(),
            });
        }
    }
    Ok(())
}

fn make_parent(path: &Path) -> Result<(), Refusal> {
    match path.parent() {
        Some(parent) => {
            fs::create_dir_all(parent).map_err(|e| Refusal::io("cannot create", parent, e))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_paths_stay_below_where_they_start() {
        assert_eq!(confined(Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(confined(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(confined(Path::new("../a")), None);
        assert_eq!(confined(Path::new("a/../../b")), None);
        assert_eq!(confined(Path::new("/etc/passwd")), None);
    }
}
