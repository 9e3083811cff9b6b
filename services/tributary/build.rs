//! Embeds the guest SDKs (`sdk/`) and the WIT package (`proto/wit/`) in the binary, so
//! `tributary plugins new|build|test|package` work on a machine without the repository: the
//! files are listed in `$OUT_DIR/kit_files.rs` as `include_bytes!`, which makes cargo rebuild
//! when one changes; a new or removed file is seen through `rerun-if-changed` on the folders.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The folders embedded, relative to the workspace root.
const ROOTS: &[&str] = &["sdk", "proto/wit"];

/// Names never embedded: installed packages, caches and build output.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "node_modules" | "__pycache__" | ".mypy_cache" | "dist"
    ) || name.ends_with(".wasm")
        || name.ends_with(".pyc")
        || name.starts_with('.') && name != ".gitignore"
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("services/tributary sits two levels below the workspace root")?
        .to_path_buf();
    let mut files = Vec::new();
    for root in ROOTS {
        let dir = workspace.join(root);
        println!("cargo:rerun-if-changed={}", dir.display());
        walk(&dir, &mut files);
    }
    let mut out = String::from(
        "/// Every embedded file: its path relative to the workspace root, and its bytes.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for file in &files {
        let relative = file
            .strip_prefix(&workspace)?
            .to_string_lossy()
            .replace('\\', "/");
        let _ = writeln!(
            out,
            "    ({relative:?}, include_bytes!({:?})),",
            file.display().to_string()
        );
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR")?).join("kit_files.rs");
    std::fs::write(target, out)?;
    Ok(())
}
