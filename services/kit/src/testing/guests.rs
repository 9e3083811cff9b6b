//! The WebAssembly guest plugins of `plugins/wasm` (JavaScript, built by
//! `scripts/build-wasm-guests`), for tests that run them through a service: where the built
//! plugins are, and where compiled components are cached.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::Config;

/// The directory of the built guest plugins, one `<plugin id>/` each (plugin.json with its
/// `sha256`, and the component): `TRIBUTARY_TEST_GUESTS` when set (`scripts/test` sets it), or
/// the directory `scripts/build-wasm-guests` prints (cached by its inputs: a tenth of a second
/// once built, about half a minute when not). Panics, with the script's log, when it fails.
pub fn guests_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("TRIBUTARY_TEST_GUESTS") {
            return PathBuf::from(dir);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-wasm-guests");
        let out = std::process::Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().last() {
            Some(dir) if out.status.success() => PathBuf::from(dir.trim()),
            _ => panic!(
                "{} failed ({}): {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    })
    .clone()
}

/// Where tests cache compiled components: `~/.cache/tributary-wasm-compiled`, shared by every
/// test on the machine (and kept by CI with its other caches), so a 12 MB JavaScript component
/// is compiled once per machine rather than once per test.
pub fn compiled_cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache/tributary-wasm-compiled")
}

/// Makes `config` serve the built guest plugins: their directory is one more of the plugin
/// manager's `plugin_dirs`, and compiled components come from [`compiled_cache_dir`].
pub fn serve_guests(config: &mut Config) {
    config.plugin_manager.plugin_dirs.push(guests_dir());
    config.wasm.cache_dir = compiled_cache_dir();
}
