//! The tools that turn a plugin's source into a component, installed on first use into the
//! cache from the lock files the SDKs carry, so every machine builds with the same versions:
//! - TypeScript and JavaScript: componentize-js, jco, esbuild and TypeScript, with
//!   `npm ci` of `sdk/typescript/toolchain/` into `<cache>/tributary-npm/<hash of the lock>/`;
//! - Python: componentize-py, with `pip install --target` of `sdk/python/requirements.txt`
//!   into `<cache>/tributary-pip/<hash of the requirements>/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::files::{cache_entry, short_hash, KitFiles};
use super::KitError;

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// TypeScript or JavaScript, built with componentize-js.
    TypeScript,
    /// Python, built with componentize-py.
    Python,
}

impl Language {
    /// Its name on the command line (`ts`, `python`).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::TypeScript => "ts",
            Language::Python => "python",
        }
    }
}

/// Installed tools for `language`: the directory holding them.
pub fn ensure(language: Language, kit: &KitFiles) -> Result<PathBuf, KitError> {
    match language {
        Language::TypeScript => {
            let source = kit.typescript().join("toolchain");
            let lock = read(&source.join("package-lock.json"))?;
            cache_entry("tributary-npm", &short_hash(&lock), |dir| {
                for file in ["package.json", "package-lock.json"] {
                    std::fs::copy(source.join(file), dir.join(file))
                        .map_err(|e| KitError::io("copy", &source.join(file), e))?;
                }
                eprintln!(
                    "Installing componentize-js, jco, esbuild and TypeScript (npm ci), once…"
                );
                let mut npm = Command::new("npm");
                npm.args(["ci", "--no-audit", "--no-fund", "--no-update-notifier"])
                    .args(["--ignore-scripts", "--loglevel=error"])
                    .current_dir(dir);
                run(
                    npm,
                    "npm",
                    NODE_HINT,
                    "installing the TypeScript toolchain (npm ci)",
                )?;
                Ok(())
            })
        }
        Language::Python => {
            let requirements = kit.python().join("requirements.txt");
            let pinned = read(&requirements)?;
            cache_entry("tributary-pip", &short_hash(&pinned), |dir| {
                eprintln!("Installing componentize-py (pip install), once…");
                let mut pip = Command::new(python());
                pip.args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-warn-script-location", "--target"])
                .arg(dir)
                .arg("-r")
                .arg(&requirements);
                run(
                    pip,
                    &python(),
                    PYTHON_HINT,
                    "installing componentize-py (pip install)",
                )?;
                Ok(())
            })
        }
    }
}

/// The Python interpreter: `$TRIBUTARY_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("TRIBUTARY_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned())
}

/// How to install Node.js.
pub const NODE_HINT: &str =
    "install Node.js 20 or newer with npm (Debian: `sudo apt-get install nodejs npm`)";
/// How to install Python.
pub const PYTHON_HINT: &str =
    "install Python 3.10 or newer with pip (Debian: `sudo apt-get install python3 python3-pip`), or set TRIBUTARY_PYTHON";

/// Runs `command` (the program `program`) to completion; its output on success.
pub fn run(
    mut command: Command,
    program: &str,
    hint: &str,
    what: &str,
) -> Result<Output, KitError> {
    let output = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KitError::ToolMissing {
            program: program.to_owned(),
            hint: hint.to_owned(),
        },
        _ => KitError::ToolFailed {
            what: what.to_owned(),
            status: "not started".to_owned(),
            output: e.to_string(),
        },
    })?;
    if output.status.success() {
        return Ok(output);
    }
    let mut printed = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.trim().is_empty() {
        if !printed.is_empty() {
            printed.push('\n');
        }
        printed.push_str(stdout.trim());
    }
    Err(KitError::ToolFailed {
        what: what.to_owned(),
        status: output.status.to_string(),
        output: printed,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, KitError> {
    std::fs::read(path).map_err(|e| KitError::io("read", path, e))
}
