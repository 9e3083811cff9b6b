//! `tributary plugins package <DIR>`: builds the plugin, and writes a `.tar.gz` of what an
//! installation needs (`plugin.json`, the component, the README and licence files), checked
//! exactly as `tributary plugins add` will check it: manifest, component digest, imports and
//! the permissions they need.

use std::fs::File;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::build::{build, BuildOptions, Built};
use super::KitError;
use tributary_plugin_manager::adding::{stage_and_check, Staging, DEFAULT_MAX_BYTES};

/// A written package.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Packaged {
    /// The build it holds.
    pub built: Built,
    /// The archive.
    pub archive: PathBuf,
    /// The archive's size in bytes.
    pub archive_bytes: u64,
    /// The files in it.
    pub files: Vec<String>,
}

/// Builds and packages the plugin in `dir` into `out_dir` (`<dir>/dist/` when none).
pub fn package(
    dir: &Path,
    out_dir: Option<&Path>,
    options: BuildOptions,
) -> Result<Packaged, KitError> {
    let built = build(dir, options)?;
    let out_dir = out_dir.map_or_else(|| dir.join("dist"), Path::to_path_buf);
    std::fs::create_dir_all(&out_dir).map_err(|e| KitError::io("create", &out_dir, e))?;
    let short = built.id.rsplit('.').next().unwrap_or(&built.id).to_owned();
    let archive = out_dir.join(format!("{}-{}.tar.gz", built.id, built.version));
    let component_name = built
        .component
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = vec!["plugin.json".to_owned(), component_name];
    let mut extra: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| KitError::io("read", dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with("README")
                || upper.starts_with("LICENSE")
                || upper.starts_with("CHANGELOG")
        })
        .filter(|name| dir.join(name).is_file())
        .collect();
    extra.sort();
    files.extend(extra);
    write_archive(&archive, dir, &short, &files)?;

    let staging_root =
        std::env::temp_dir().join(format!("tributary-package-{}", std::process::id()));
    // The plugin may unpack to as much as `plugins add` takes by default.
    let checked = Staging::new(&staging_root)
        .and_then(|staging| stage_and_check(&archive, DEFAULT_MAX_BYTES, &staging).map(|_| ()));
    let _ = std::fs::remove_dir_all(&staging_root);
    if let Err(refusal) = checked {
        let _ = std::fs::remove_file(&archive);
        return Err(KitError::plugin(
            dir,
            format!("`tributary plugins add` would refuse it: {refusal}"),
        ));
    }
    let archive_bytes = std::fs::metadata(&archive)
        .map_err(|e| KitError::io("read", &archive, e))?
        .len();
    Ok(Packaged {
        built,
        archive,
        archive_bytes,
        files,
    })
}

/// Writes `files` of `dir` under `<top>/` into the gzip-compressed tar `archive`, with fixed
/// times and modes so the same plugin makes the same archive.
fn write_archive(archive: &Path, dir: &Path, top: &str, files: &[String]) -> Result<(), KitError> {
    let out = File::create(archive).map_err(|e| KitError::io("create", archive, e))?;
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    for name in files {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| KitError::io("read", &path, e))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{top}/{name}"), bytes.as_slice())
            .map_err(|e| KitError::io("write", archive, e))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| KitError::io("write", archive, e))?;
    gz.finish().map_err(|e| KitError::io("write", archive, e))?;
    Ok(())
}
