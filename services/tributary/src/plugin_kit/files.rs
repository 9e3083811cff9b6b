//! The guest SDKs and the WIT package embedded in the binary, and the cache they (and
//! everything else the kit makes) are written to.
//!
//! The cache is `$TRIBUTARY_CACHE_DIR`, else `$XDG_CACHE_HOME`, else `~/.cache`. Each entry is
//! a directory named by a hash of its inputs, made under a temporary name and renamed into
//! place complete, so an entry that exists is whole, and several processes (the tests of one
//! run) can race to make the same one. Entries no run has used for 30 days are removed.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use super::KitError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/kit_files.rs"));
}

/// The embedded files below `prefix` (`sdk/typescript/templates/connector/`), with their paths
/// relative to it.
pub fn embedded_under(prefix: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    embedded::FILES
        .iter()
        .filter_map(move |(path, bytes)| path.strip_prefix(prefix).map(|rest| (rest, *bytes)))
}

/// Where the kit keeps what it makes.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRIBUTARY_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache")
}

/// The first 16 hex digits of the SHA-256 of `bytes`: a cache entry's name.
pub fn short_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_owned()
}

/// A hash over named parts (each name and content delimited, so parts cannot run together).
#[derive(Default)]
pub struct InputHash(Sha256);

impl InputHash {
    /// Adds the part `name` with content `bytes`.
    pub fn add(&mut self, name: &str, bytes: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The first 16 hex digits of the hash.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())[..16].to_owned()
    }
}

/// The cache entry `<cache>/<kind>/<name>`, made by `fill` into an empty directory when it
/// does not exist yet. One process at a time fills entries of a kind; the others wait, then
/// find the entry made.
pub fn cache_entry(
    kind: &str,
    name: &str,
    fill: impl FnOnce(&Path) -> Result<(), KitError>,
) -> Result<PathBuf, KitError> {
    let parent = cache_root().join(kind);
    let entry = parent.join(name);
    if entry.is_dir() {
        touch(&entry);
        return Ok(entry);
    }
    std::fs::create_dir_all(&parent).map_err(|e| KitError::io("create", &parent, e))?;
    let lock_path = parent.join(".lock");
    let lock_file = File::create(&lock_path).map_err(|e| KitError::io("create", &lock_path, e))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| KitError::io("lock", &lock_path, e.into()))?;
    if entry.is_dir() {
        return Ok(entry);
    }
    prune(&parent);
    let partial = parent.join(format!("{name}.partial.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| KitError::io("create", &partial, e))?;
    if let Err(e) = fill(&partial) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &entry).map_err(|e| KitError::io("create", &entry, e))?;
    Ok(entry)
}

/// How long an entry no run has used is kept.
const UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Marks `entry` used now, so [`prune`] keeps it.
fn touch(entry: &Path) {
    if let Ok(dir) = File::open(entry) {
        let _ = dir.set_modified(std::time::SystemTime::now());
    }
}

/// Removes the entries of `parent` unused for [`UNUSED_FOR`], and what a stopped run left
/// half made; called holding the kind's lock.
fn prune(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let stale = name.to_string_lossy().contains(".partial.")
            || entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > UNUSED_FOR);
        if stale && path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Writes `bytes` to `path`, making its folders.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), KitError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| KitError::io("create", parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| KitError::io("write", path, e))
}

/// The embedded SDKs and WIT package, written out to the cache.
#[derive(Debug, Clone)]
pub struct KitFiles {
    root: PathBuf,
    hash: String,
}

impl KitFiles {
    /// Writes the embedded files to `<cache>/tributary-sdk/<hash>/` unless they are there.
    pub fn materialize() -> Result<Self, KitError> {
        let mut hash = InputHash::default();
        for (path, bytes) in embedded::FILES {
            hash.add(path, bytes);
        }
        let hash = hash.finish();
        let root = cache_entry("tributary-sdk", &hash, |dir| {
            for (path, bytes) in embedded::FILES {
                write_file(&dir.join(path), bytes)?;
            }
            Ok(())
        })?;
        Ok(KitFiles { root, hash })
    }

    /// The WIT package (`proto/wit`).
    pub fn wit(&self) -> PathBuf {
        self.root.join("proto/wit")
    }

    /// The TypeScript SDK (`sdk/typescript`).
    pub fn typescript(&self) -> PathBuf {
        self.root.join("sdk/typescript")
    }

    /// The Python SDK (`sdk/python`).
    pub fn python(&self) -> PathBuf {
        self.root.join("sdk/python")
    }

    /// A hash of every embedded file: part of every build's cache key.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}
