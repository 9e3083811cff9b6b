//! Installing a missing server program with the system's package manager, so that the first
//! `tributary up` on a fresh Debian or Ubuntu machine does the set-up itself.
//!
//! [`plan`] decides, from what the machine offers ([`Host`]), whether `tributary up` can
//! install a package (`apt-get`, as root or with passwordless `sudo`) or can only name the
//! one command that does; [`install_if_missing`] carries it out. `up --no-install` turns it
//! off. Elsewhere (no `apt-get`), the advice of each program's error stays as it was.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;

use super::{find_program, LocalServerError};

/// A server program `tributary up` may install, and the package it comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// What is looked for (`nats-server`, `initdb`).
    pub name: &'static str,
    /// The Debian and Ubuntu package that brings it.
    pub package: &'static str,
}

/// `nats-server`, from the package `nats-server`.
pub const NATS_SERVER: Program = Program {
    name: "nats-server",
    package: "nats-server",
};

/// PostgreSQL's `initdb`, from the package `postgresql`.
pub const POSTGRESQL: Program = Program {
    name: "initdb",
    package: "postgresql",
};

/// What the machine offers for installing packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `apt-get`, when it is on the PATH.
    pub apt_get: Option<PathBuf>,
    /// Whether this process runs as root.
    pub root: bool,
    /// Whether `sudo -n true` succeeds (sudo without a password); only asked when it matters.
    pub passwordless_sudo: bool,
}

impl Host {
    /// Looks at this machine: `apt-get` on `path_var`, the effective user, and (when not root
    /// and `apt-get` is there) whether `sudo` works without a password.
    pub fn detect(path_var: Option<&OsStr>) -> Self {
        let apt_get = find_program("apt-get", path_var, &[], "").ok();
        let root = nix::unistd::geteuid().is_root();
        let passwordless_sudo = apt_get.is_some()
            && !root
            && find_program("sudo", path_var, &[], "").is_ok_and(|sudo| {
                std::process::Command::new(sudo)
                    .args(["-n", "true"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
        Host {
            apt_get,
            root,
            passwordless_sudo,
        }
    }
}

/// What to do about a missing package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run these commands in order (each program and its arguments), then look again.
    Run(Vec<Vec<String>>),
    /// This process cannot install it: the one command a person can run.
    Tell(String),
    /// No package manager known here: the program's own advice stands.
    Advise,
}

/// How `package` gets installed on `host`: with `apt-get` as root, or through `sudo -n` when
/// sudo needs no password, each after `apt-get update` (a fresh machine's package lists are
/// empty); with `apt-get` but neither, the command to run by hand; without `apt-get`, nothing.
pub fn plan(package: &str, host: &Host) -> Plan {
    if host.apt_get.is_none() {
        return Plan::Advise;
    }
    let apt = |args: &[&str]| -> Vec<String> {
        let sudo: &[&str] = if host.root { &[] } else { &["sudo", "-n"] };
        sudo.iter()
            .chain(&["apt-get"])
            .chain(args)
            .map(|s| (*s).to_owned())
            .collect()
    };
    if host.root || host.passwordless_sudo {
        Plan::Run(vec![apt(&["update"]), apt(&["install", "-y", package])])
    } else {
        Plan::Tell(format!(
            "sudo apt-get update && sudo apt-get install -y {package}"
        ))
    }
}

/// Finds `program` on `path_var` (and in `extra_dirs`); when it is missing and `allowed`,
/// installs its package as [`plan`] says, logging each step, and looks again. A program that
/// cannot be installed here is [`LocalServerError::Missing`] naming the command to run (or
/// `advice`, where no package manager is known).
pub async fn install_if_missing(
    program: Program,
    path_var: Option<&OsStr>,
    extra_dirs: impl Fn() -> Vec<PathBuf>,
    advice: &str,
    allowed: bool,
) -> Result<PathBuf, LocalServerError> {
    if let Ok(found) = find_program(program.name, path_var, &extra_dirs(), advice) {
        return Ok(found);
    }
    if !allowed {
        return find_program(program.name, path_var, &extra_dirs(), advice);
    }
    match plan(program.package, &Host::detect(path_var)) {
        Plan::Advise => find_program(program.name, path_var, &extra_dirs(), advice),
        Plan::Tell(command) => find_program(
            program.name,
            path_var,
            &extra_dirs(),
            &format!("Install it with `{command}` (tributary up cannot: it is not root and sudo asks for a password). {advice}"),
        ),
        Plan::Run(commands) => {
            tracing::info!(
                program = program.name,
                package = program.package,
                "Installing {} with apt-get (`tributary up --no-install` skips this)…",
                program.package
            );
            for command in &commands {
                run(command).await?;
            }
            tracing::info!(package = program.package, "Installed {}.", program.package);
            find_program(program.name, path_var, &extra_dirs(), advice)
        }
    }
}

/// Runs one installation command, its output on this process's standard error.
async fn run(command: &[String]) -> Result<(), LocalServerError> {
    let text = command.join(" ");
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    let status = tokio::process::Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| LocalServerError::failed(text.clone(), e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(LocalServerError::failed(
            text,
            format!("it exited with {status}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(apt_get: bool, root: bool, passwordless_sudo: bool) -> Host {
        Host {
            apt_get: apt_get.then(|| PathBuf::from("/usr/bin/apt-get")),
            root,
            passwordless_sudo,
        }
    }

    fn commands(lines: &[&str]) -> Plan {
        Plan::Run(
            lines
                .iter()
                .map(|l| l.split(' ').map(str::to_owned).collect())
                .collect(),
        )
    }

    #[test]
    fn as_root_with_apt_get_it_updates_then_installs() {
        assert_eq!(
            plan("nats-server", &host(true, true, false)),
            commands(&["apt-get update", "apt-get install -y nats-server"])
        );
    }

    #[test]
    fn not_root_with_passwordless_sudo_it_installs_through_sudo() {
        assert_eq!(
            plan("postgresql", &host(true, false, true)),
            commands(&[
                "sudo -n apt-get update",
                "sudo -n apt-get install -y postgresql"
            ])
        );
    }

    #[test]
    fn not_root_and_no_passwordless_sudo_it_prints_the_command() {
        assert_eq!(
            plan("nats-server", &host(true, false, false)),
            Plan::Tell("sudo apt-get update && sudo apt-get install -y nats-server".to_owned())
        );
    }

    #[test]
    fn without_apt_get_the_programs_own_advice_stands() {
        assert_eq!(plan("postgresql", &host(false, true, true)), Plan::Advise);
    }

    #[tokio::test]
    async fn a_program_that_is_there_is_not_installed_and_no_install_only_looks() {
        // `sh` is on every PATH this runs with; a program that is missing with installs off
        // is reported with the advice, without looking for a package manager.
        let path_var = std::env::var_os("PATH");
        let sh = Program {
            name: "sh",
            package: "dash",
        };
        assert!(
            install_if_missing(sh, path_var.as_deref(), Vec::new, "advice", true)
                .await
                .is_ok()
        );
        let missing = Program {
            name: "no-such-program-here",
            package: "no-such-package",
        };
        let error = install_if_missing(missing, path_var.as_deref(), Vec::new, "advice", false)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.ends_with(". advice"), "{error}");
    }
}
