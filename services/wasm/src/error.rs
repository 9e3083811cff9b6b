//! Why a component cannot be run.

use crate::imports::RefusedImport;

/// A component that cannot be loaded or instantiated; the message names the reason.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The component file cannot be read.
    #[error("cannot read the component {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its content is not what the manifest says.
    #[error("the component {path} has SHA-256 {actual}, and its manifest says {expected}: refusing to run it")]
    Digest {
        /// The file.
        path: String,
        /// The manifest's digest.
        expected: String,
        /// The file's.
        actual: String,
    },
    /// It imports what no permission can grant.
    #[error(transparent)]
    Import(#[from] RefusedImport),
    /// wasmtime could not compile, link or instantiate it.
    #[error("{what}: {message}")]
    Wasmtime {
        /// What was being done.
        what: &'static str,
        /// wasmtime's error, with its causes.
        message: String,
    },
}

impl WasmError {
    /// A wasmtime error while doing `what`.
    pub(crate) fn wasmtime(what: &'static str, error: &wasmtime::Error) -> Self {
        WasmError::Wasmtime {
            what,
            message: format!("{error:#}"),
        }
    }
}
