//! The plugin author's kit: `tributary plugins new | build | test | package`, for plugins
//! written in TypeScript (or JavaScript) and Python and built into WebAssembly components.
//!
//! None of it needs NATS or PostgreSQL. The guest SDKs and the WIT package are embedded in
//! the binary ([`files`]) and written out once per content to the cache; the tools that
//! build components (componentize-js with esbuild and TypeScript, componentize-py) are
//! installed on first use from the lock files in the SDKs ([`toolchain`]); a build is cached
//! by the content of its inputs ([`build`]); a test runs the plugin in the real wasm host
//! against recorded HTTP fixtures ([`run`]), or a declarative connector's spec, checked as an
//! install checks it, in the same engine the host runs it with ([`declarative`]); a package
//! is checked exactly as `tributary plugins add` checks it ([`package`]).

pub mod build;
pub mod cases;
pub mod declarative;
pub mod files;
pub mod fixtures;
pub mod package;
pub mod record;
pub mod run;
pub mod scaffold;
pub mod toolchain;
pub mod validate;

use std::path::{Path, PathBuf};

/// Why a kit command failed.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A file could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done (`read`, `write`, `create`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A program the build needs is not installed.
    #[error("`{program}` is not installed: {hint}")]
    ToolMissing {
        /// The program.
        program: String,
        /// How to install it.
        hint: String,
    },
    /// A program the kit ran failed.
    #[error("{what} failed ({status}):\n{output}")]
    ToolFailed {
        /// What it was doing.
        what: String,
        /// Its exit status.
        status: String,
        /// What it printed on standard error (and standard output), trimmed.
        output: String,
    },
    /// The plugin's directory is not a plugin the kit can work on.
    #[error("{path}: {problem}")]
    Plugin {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A test case file cannot be used.
    #[error("{path}: {problem}")]
    Case {
        /// The case file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A declarative plugin's spec does not pass the checks an install makes.
    #[error("{path} does not pass the install checks ({} problem{}):\n{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// Each problem, with its path in the spec (`streams[0].request.url: …`).
        problems: Vec<String>,
    },
    /// The wasm host could not load or run the plugin.
    #[error("{0}")]
    Host(String),
}

impl KitError {
    /// An I/O failure of `action` on `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        KitError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A problem with the plugin at `path`.
    pub fn plugin(path: &Path, problem: impl Into<String>) -> Self {
        KitError::Plugin {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}
