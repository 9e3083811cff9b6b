//! Servers `tributary up` runs for itself on one machine: NATS with JetStream
//! ([`LocalNats`]) and a private PostgreSQL cluster ([`LocalPostgres`]), each with its data
//! under Tributary's data directory, each stopped again when `tributary up` stops.
//!
//! The programs are found on the `PATH` (and, for PostgreSQL, in the directories its
//! packages install to); when one is missing, [`install`] installs its package with `apt-get`
//! where it can (`up --no-install` says not to), and otherwise [`LocalServerError::Missing`]
//! says what to install.

pub mod database_roles;
pub mod install;
mod nats;
pub mod nats_users;
mod passwords;
mod postgres;
mod programs;
mod servers;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use nats::LocalNats;
pub use postgres::LocalPostgres;
pub use programs::{find_program, postgres_search_dirs};
pub use servers::{probe_nats, LocalServers, NatsProbe};

/// Why a local server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    /// A program it needs is not installed.
    #[error("{program} was not found {searched}. {install}")]
    Missing {
        /// The program (`nats-server`, `initdb`).
        program: String,
        /// Where it was looked for, as text for the message ("on the PATH nor in /usr/…").
        searched: String,
        /// What to install, or what to configure instead.
        install: String,
    },
    /// A program ran and failed.
    #[error("{what} failed: {reason}")]
    Failed {
        /// What was being done (`initdb`, `starting nats-server`).
        what: String,
        /// Why, with the end of its log where there is one.
        reason: String,
    },
    /// A file or directory under the data directory could not be made or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl LocalServerError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        LocalServerError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn failed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        LocalServerError::Failed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn answers_on(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// A port on 127.0.0.1 nothing listens on right now.
pub fn free_port() -> Result<u16, LocalServerError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| LocalServerError::failed("finding a free port", e.to_string()))
}

/// Waits until `port` answers, `exited` reports the server gone, or `timeout` passes.
async fn wait_for_port(
    what: &str,
    port: u16,
    timeout: Duration,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(), LocalServerError> {
    let deadline = Instant::now() + timeout;
    loop {
        if answers_on(port) {
            return Ok(());
        }
        if let Some(reason) = exited() {
            return Err(LocalServerError::failed(what, reason));
        }
        if Instant::now() > deadline {
            return Err(LocalServerError::failed(
                what,
                format!("nothing answered on 127.0.0.1:{port} within {timeout:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of a log file, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(8)..].join("\n");
    if tail.is_empty() {
        String::new()
    } else {
        format!("; the end of {}:\n{tail}", path.display())
    }
}

/// Makes `dir` and its parents.
fn make_dir(dir: &Path) -> Result<(), LocalServerError> {
    std::fs::create_dir_all(dir).map_err(|e| LocalServerError::io(dir, e))
}
