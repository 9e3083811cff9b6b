//! The checks a plugin's component passes before it is offered for install: the file its
//! `wasm:` entrypoint names is there, has the SHA-256 its manifest declares, is a component,
//! imports nothing no permission can grant, and imports outgoing HTTP only when the manifest
//! asks for a `network:outbound` permission. `tributary plugins add` and the plugin manager's
//! discovery both run them, so a plugin that fails one is never installed.

use std::path::Path;

use tributary_proto::manifest::{Capability, Direction, PluginManifest};

use crate::imports::{self, RefusedImport};
use crate::runtime::sha256_hex;

/// The interface a JavaScript `fetch()` compiles to.
pub const HTTP_IMPORT: &str = "wasi:http/outgoing-handler";

/// Why a plugin's component cannot be offered.
#[derive(Debug, thiserror::Error)]
pub enum ComponentProblem {
    /// The manifest's entrypoint is not `wasm:`.
    #[error("the entrypoint `{0}` names no WebAssembly component")]
    NotWasm(String),
    /// The file is not there.
    #[error(
        "{path} does not exist or is not a file; the manifest's entrypoint `{entrypoint}` names it"
    )]
    Missing {
        /// Where it was looked for.
        path: String,
        /// The entrypoint.
        entrypoint: String,
    },
    /// It cannot be read.
    #[error("cannot read the component file {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its content is not what the manifest says.
    #[error("the component {path} has SHA-256 {actual}, and its manifest says {expected}")]
    Digest {
        /// The file.
        path: String,
        /// The manifest's digest.
        expected: String,
        /// The file's.
        actual: String,
    },
    /// It is not a WebAssembly component.
    #[error("{path} is not a WebAssembly component: {problem}")]
    NotAComponent {
        /// The file.
        path: String,
        /// What it is instead.
        problem: String,
    },
    /// It imports what no permission can grant.
    #[error("{path}: {refused}")]
    Import {
        /// The file.
        path: String,
        /// The import and why.
        refused: RefusedImport,
    },
    /// It makes HTTP requests and the manifest asks for no host to send them to.
    #[error("{path}: the component imports `{import}` (outgoing HTTP requests), and its manifest grants no `network:outbound:<host>` permission: add one for each host it calls")]
    HttpWithoutNetwork {
        /// The file.
        path: String,
        /// The import, as written.
        import: String,
    },
}

impl ComponentProblem {
    /// The manifest field the problem is about: `sha256` for a digest, else `entrypoint`.
    pub fn field(&self) -> &'static str {
        match self {
            ComponentProblem::Digest { .. } => "sha256",
            _ => "entrypoint",
        }
    }
}

/// Checks the component of the plugin in `dir` described by `manifest`; its imports when it
/// passes. `shown` names the file in messages (a path as the user gave it).
pub fn check(
    dir: &Path,
    manifest: &PluginManifest,
    shown: &dyn Fn(&str) -> String,
) -> Result<Vec<String>, ComponentProblem> {
    let Some(relative) = manifest.entrypoint.strip_prefix("wasm:") else {
        return Err(ComponentProblem::NotWasm(manifest.entrypoint.clone()));
    };
    let file = dir.join(relative);
    let path = shown(relative);
    if !file.is_file() {
        return Err(ComponentProblem::Missing {
            path,
            entrypoint: manifest.entrypoint.clone(),
        });
    }
    let bytes = std::fs::read(&file).map_err(|source| ComponentProblem::Unreadable {
        path: path.clone(),
        source,
    })?;
    let expected = manifest.sha256.clone().unwrap_or_default();
    let actual = sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(&expected) {
        return Err(ComponentProblem::Digest {
            path,
            expected,
            actual,
        });
    }
    imports::imports_of(&bytes).map_err(|problem| ComponentProblem::NotAComponent {
        path: path.clone(),
        problem,
    })?;
    let imports = imports::check(&bytes).map_err(|refused| ComponentProblem::Import {
        path: path.clone(),
        refused,
    })?;
    let reaches_out = manifest
        .permissions
        .iter()
        .any(|p| p.capability == Capability::Network && p.direction == Direction::Outbound);
    let http = imports
        .iter()
        .find(|i| i.split_once('@').map_or(i.as_str(), |(name, _)| name) == HTTP_IMPORT);
    if let (Some(import), false) = (http, reaches_out) {
        return Err(ComponentProblem::HttpWithoutNetwork {
            path,
            import: import.clone(),
        });
    }
    Ok(imports)
}
