//! Finding the server programs: on the `PATH`, then where packages put them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::LocalServerError;

/// The directories PostgreSQL's server programs are usually installed in, newest version
/// first: Debian and Ubuntu (`/usr/lib/postgresql/<version>/bin`), the PGDG packages for Red
/// Hat (`/usr/pgsql-<version>/bin`), source builds (`/usr/local/pgsql/bin`) and Homebrew.
pub fn postgres_search_dirs() -> Vec<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = Vec::new();
    for (parent, prefix, suffix) in [
        ("/usr/lib/postgresql", "", "bin"),
        ("/usr", "pgsql-", "bin"),
        ("/opt/homebrew/opt", "postgresql@", "bin"),
        ("/usr/local/opt", "postgresql@", "bin"),
    ] {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix(prefix) else {
                continue;
            };
            let major = version
                .split('.')
                .next()
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(major) = major {
                versioned.push((major, entry.path().join(suffix)));
            }
        }
    }
    versioned.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    let mut dirs: Vec<PathBuf> = versioned.into_iter().map(|(_, dir)| dir).collect();
    dirs.extend(
        [
            "/usr/local/pgsql/bin",
            "/opt/homebrew/bin",
            "/usr/local/bin",
        ]
        .map(PathBuf::from),
    );
    dirs
}

/// Finds `program` in the directories of `path_var` (a `PATH` value), then in `extra_dirs`;
/// when it is in none, [`LocalServerError::Missing`] carries `install`, the advice on what
/// to install.
pub fn find_program(
    program: &str,
    path_var: Option<&OsStr>,
    extra_dirs: &[PathBuf],
    install: &str,
) -> Result<PathBuf, LocalServerError> {
    let on_path = path_var
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .iter()
        .chain(extra_dirs)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| LocalServerError::Missing {
            program: program.to_owned(),
            searched: where_searched(path_var.is_some(), extra_dirs),
            install: install.to_owned(),
        })
}

/// Where [`find_program`] looked, for its error: "on the PATH", "in <dirs>", both, or
/// nowhere.
fn where_searched(path: bool, extra_dirs: &[PathBuf]) -> String {
    let dirs = extra_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match (path, dirs.is_empty()) {
        (true, true) => "on the PATH".to_owned(),
        (true, false) => format!("on the PATH nor in {dirs}"),
        (false, false) => format!("in {dirs}"),
        (false, true) => "anywhere: there was no PATH and no directory to look in".to_owned(),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn dir_with(program: &str, mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(program);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    #[test]
    fn the_path_comes_first_then_the_extra_directories() {
        let on_path = dir_with("initdb", 0o755);
        let extra = dir_with("initdb", 0o755);
        let path_var = std::env::join_paths([on_path.path()]).unwrap();
        let found = find_program(
            "initdb",
            Some(&path_var),
            &[extra.path().to_owned()],
            "install it",
        )
        .unwrap();
        assert_eq!(found, on_path.path().join("initdb"));
        let found = find_program("initdb", None, &[extra.path().to_owned()], "install it").unwrap();
        assert_eq!(found, extra.path().join("initdb"));
    }

    #[test]
    fn a_missing_or_unexecutable_program_says_what_to_install_and_where_it_looked() {
        let not_executable = dir_with("nats-server", 0o644);
        let path_var = std::env::join_paths([not_executable.path()]).unwrap();
        let error = find_program(
            "nats-server",
            Some(&path_var),
            &[PathBuf::from("/nowhere/bin")],
            "Install NATS: `apt install nats-server`.",
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("nats-server was not found on the PATH nor in /nowhere/bin."),
            "{message}"
        );
        assert!(message.contains("apt install nats-server"), "{message}");
    }

    #[test]
    fn a_program_looked_for_only_beside_another_does_not_claim_the_path_was_searched() {
        // pg_ctl is looked for only in initdb's directory, so that their versions match.
        let beside = dir_with("initdb", 0o755);
        let error = find_program("pg_ctl", None, &[beside.path().to_owned()], "install it")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "pg_ctl was not found in {}. install it",
                beside.path().display()
            )
        );
        let path_var = std::env::join_paths([beside.path()]).unwrap();
        let error = find_program("pg_ctl", Some(&path_var), &[], "install it")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "pg_ctl was not found on the PATH. install it");
        let error = find_program("pg_ctl", None, &[], "install it")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "pg_ctl was not found anywhere: there was no PATH and no directory to look in. install it"
        );
    }
}
