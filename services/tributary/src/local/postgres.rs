//! A private PostgreSQL cluster that `tributary up` makes with `initdb` and runs with
//! `pg_ctl`.
//!
//! The cluster lives in `<data_dir>/postgres/cluster`, listens only on 127.0.0.1 (no Unix
//! socket), and lets in one role, `tributary`, with a password made at `initdb` time and kept
//! in `<data_dir>/postgres/password`. PostgreSQL refuses to run as root; when Tributary runs
//! as root, the cluster belongs to the `postgres` user and the server runs as that user.

use std::path::{Path, PathBuf};
use std::process::Output;

use nix::unistd::{chown, Gid, Uid, User};
use secrecy::SecretString;
use tokio::process::Command;

use super::{find_program, free_port, log_tail, make_dir, postgres_search_dirs, LocalServerError};

/// What to do when PostgreSQL's programs are missing.
pub(super) const INSTALL_POSTGRES: &str =
    "Install the PostgreSQL server (Debian and Ubuntu: `apt install \
postgresql`; Fedora: `dnf install postgresql-server`; macOS: `brew install postgresql`), or set \
database.host and database.port (TRIBUTARY__DATABASE__HOST, …) to a PostgreSQL server you run.";

/// The role the cluster is made with.
const ROLE: &str = "tributary";

/// A PostgreSQL server on 127.0.0.1 over a cluster under `<data_dir>/postgres`. Dropping it
/// stops the server.
#[derive(Debug)]
pub struct LocalPostgres {
    bin_dir: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
    owner: Option<(Uid, Gid)>,
    running: bool,
}

impl LocalPostgres {
    /// Makes the cluster on first use (`initdb`), then starts it on `port`, or on a free port
    /// when `port` is 0, and waits until it accepts connections.
    pub async fn start(data_dir: &Path, port: u16) -> Result<Self, LocalServerError> {
        let path_var = std::env::var_os("PATH");
        let initdb = find_program(
            "initdb",
            path_var.as_deref(),
            &postgres_search_dirs(),
            INSTALL_POSTGRES,
        )?;
        let bin_dir = initdb.parent().map(Path::to_owned).unwrap_or_default();
        // pg_ctl from the same installation as initdb, so the versions match.
        find_program(
            "pg_ctl",
            None,
            std::slice::from_ref(&bin_dir),
            INSTALL_POSTGRES,
        )?;
        let owner = server_owner()?;
        let dir = data_dir.join("postgres");
        make_dir(&dir)?;
        // Absolute: the programs run from inside it.
        let dir = std::path::absolute(&dir).map_err(|e| LocalServerError::io(&dir, e))?;
        give_to(&dir, owner)?;
        let mut postgres = LocalPostgres {
            bin_dir,
            dir,
            port: if port == 0 { free_port()? } else { port },
            password: String::new(),
            owner,
            running: false,
        };
        postgres.password = postgres.make_cluster_once().await?;
        postgres.launch().await?;
        Ok(postgres)
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The role to connect as.
    pub fn user(&self) -> &str {
        ROLE
    }

    /// That role's password.
    pub fn password(&self) -> SecretString {
        SecretString::from(self.password.clone())
    }

    /// Where the cluster, its log and its password are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server with a fast shutdown (sessions are ended, every commit is kept).
    pub async fn stop(&mut self) -> Result<(), LocalServerError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let output = self
            .pg_ctl()
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .output()
            .await;
        self.check("stopping PostgreSQL", output)
    }

    /// Stops the server and starts it again on the same port.
    pub async fn restart(&mut self) -> Result<(), LocalServerError> {
        self.stop().await?;
        self.launch().await
    }

    fn cluster(&self) -> PathBuf {
        self.dir.join("cluster")
    }

    /// Whether an earlier run made a cluster under `data_dir`.
    pub fn cluster_exists(data_dir: &Path) -> bool {
        cluster_made(&data_dir.join("postgres").join("cluster"))
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Runs `initdb` unless the cluster is there, and returns the role's password.
    async fn make_cluster_once(&self) -> Result<String, LocalServerError> {
        let password_file = self.dir.join("password");
        if cluster_made(&self.cluster()) {
            return std::fs::read_to_string(&password_file)
                .map(|p| p.trim().to_owned())
                .map_err(|e| LocalServerError::io(&password_file, e));
        }
        let password = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        write_private(&password_file, &password, self.owner)?;
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.cluster())
            .args([
                "-U",
                ROLE,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", password_file.display()))
            .output()
            .await;
        self.check("initdb", output)?;
        // Only TCP on the loopback: no socket file, nothing reachable from elsewhere.
        let conf = self.cluster().join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(|e| LocalServerError::io(&conf, e))?;
        text.push_str(
            "\n# Added by tributary up.\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n",
        );
        std::fs::write(&conf, text).map_err(|e| LocalServerError::io(&conf, e))?;
        Ok(password)
    }

    async fn launch(&mut self) -> Result<(), LocalServerError> {
        let output = self
            .pg_ctl()
            .arg("-l")
            .arg(self.log())
            .args([
                "-w",
                "-t",
                "60",
                "-o",
                &format!("-p {}", self.port),
                "start",
            ])
            .output()
            .await;
        self.check("starting PostgreSQL", output)?;
        self.running = true;
        Ok(())
    }

    /// `pg_ctl -D <cluster>`, as the cluster's owner.
    fn pg_ctl(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(self.cluster());
        command
    }

    /// One of the installation's programs, run as the cluster's owner from its directory, in
    /// its own process group (so ctrl-c in the terminal does not stop the server before the
    /// services are done with it).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.owner {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        command
    }

    fn check(&self, what: &str, output: std::io::Result<Output>) -> Result<(), LocalServerError> {
        match output {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(LocalServerError::failed(
                what,
                format!(
                    "{}: {}{}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim(),
                    log_tail(&self.log()),
                    match self.owner {
                        Some(_) => format!(
                            " (as root, PostgreSQL runs as the `postgres` user, which must be able \
                             to reach {})",
                            self.dir.display()
                        ),
                        None => String::new(),
                    }
                ),
            )),
            Err(e) => Err(LocalServerError::failed(what, e.to_string())),
        }
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        if self.running {
            let mut pg_ctl = self.pg_ctl();
            let _ = pg_ctl
                .as_std_mut()
                .args(["-m", "fast", "-w", "stop"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Whether `cluster` holds a cluster `initdb` made.
fn cluster_made(cluster: &Path) -> bool {
    cluster.join("PG_VERSION").exists()
}

/// Who the server runs as: ourselves, or the `postgres` user when we are root.
fn server_owner() -> Result<Option<(Uid, Gid)>, LocalServerError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(LocalServerError::failed(
            "starting PostgreSQL",
            "PostgreSQL does not run as root, and there is no `postgres` user to run it as: \
             run tributary up as an ordinary user, or create that user",
        )),
    }
}

/// Hands `path` to the server's owner, when that is not us.
fn give_to(path: &Path, owner: Option<(Uid, Gid)>) -> Result<(), LocalServerError> {
    match owner {
        Some((uid, gid)) => {
            chown(path, Some(uid), Some(gid)).map_err(|e| LocalServerError::io(path, e.into()))
        }
        None => Ok(()),
    }
}

/// Writes a file only its owner can read.
fn write_private(
    path: &Path,
    text: &str,
    owner: Option<(Uid, Gid)>,
) -> Result<(), LocalServerError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| LocalServerError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| LocalServerError::io(path, e))?;
    give_to(path, owner)
}
