//! A declarative plugin as files: `plugin.json` naming `declarative:<file>.toml`, and the
//! spec beside it. What the plugin manager checks when it finds one (and so before any
//! install), and what the host reads to run an instance.

use std::path::Path;

use sha2::{Digest, Sha256};
use tributary_proto::manifest::PluginManifest;

use crate::validate::{validate, SpecErrors, SpecProblem};
use crate::{Spec, DECLARATIVE_PREFIX};

/// The spec file a `declarative:<file>` entrypoint names, if it is one.
pub fn spec_file(entrypoint: &str) -> Option<&str> {
    entrypoint.strip_prefix(DECLARATIVE_PREFIX)
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks the spec of the declarative plugin in `dir`: readable, of the digest the
/// manifest's `sha256` names when it names one, and valid against the manifest
/// ([`validate`]). Answers the spec and its digest, which the plugin manager keeps as the
/// manifest's `sha256` so that the host runs exactly the spec that was checked.
pub fn check_plugin_dir(
    dir: &Path,
    manifest: &PluginManifest,
) -> Result<(Spec, String), SpecErrors> {
    let one = |message: String| SpecErrors {
        problems: vec![SpecProblem {
            path: String::new(),
            message,
        }],
    };
    let Some(file) = spec_file(&manifest.entrypoint) else {
        return Err(one(format!(
            "`{}` is not a declarative entrypoint",
            manifest.entrypoint
        )));
    };
    let path = dir.join(file);
    let bytes = std::fs::read(&path)
        .map_err(|e| one(format!("cannot read the spec {}: {e}", path.display())))?;
    let digest = sha256_hex(&bytes);
    if let Some(expected) = &manifest.sha256 {
        if !expected.eq_ignore_ascii_case(&digest) {
            return Err(one(format!(
                "{} has SHA-256 {digest}, and the manifest's sha256 says {expected}",
                path.display()
            )));
        }
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| one(format!("{} is not UTF-8 text", path.display())))?;
    let spec = validate(&text, manifest)?;
    Ok((spec, digest))
}

/// Reads the spec at `path` for an instance to run: its content must hash to `sha256` (what
/// the plugin manager checked), and it must read as a spec. The checks against the manifest
/// were made when the plugin was found; at run time the instance's grants apply anyway.
pub fn load_spec(path: &Path, sha256: &str) -> Result<Spec, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read the spec {}: {e}", path.display()))?;
    let digest = sha256_hex(&bytes);
    if !digest.eq_ignore_ascii_case(sha256) {
        return Err(format!(
            "{} has changed since it was checked (SHA-256 {digest}, checked {sha256}); upgrade the plugin",
            path.display()
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    parse_spec(&text)
}

/// Reads spec `text` as serde does, with the path of the first problem; [`validate`] reports
/// them all.
pub fn parse_spec(text: &str) -> Result<Spec, String> {
    let document: toml::Value = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    serde_path_to_error::deserialize(document).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}
