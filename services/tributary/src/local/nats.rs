//! A `nats-server` with JetStream that `tributary up` starts for itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{find_program, free_port, log_tail, make_dir, wait_for_port, LocalServerError};

/// What to do when `nats-server` is missing.
pub(super) const INSTALL_NATS: &str =
    "Install the NATS server (Debian and Ubuntu: `apt install nats-server`; \
macOS: `brew install nats-server`; or a release from https://github.com/nats-io/nats-server), \
or set nats.url (TRIBUTARY__NATS__URL) to a NATS server with JetStream that you run.";

/// How long a stopping server gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A `nats-server -js` child process listening on 127.0.0.1, its JetStream store and log under
/// `<data_dir>/nats`. Dropping it stops the server.
#[derive(Debug)]
pub struct LocalNats {
    program: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl LocalNats {
    /// Starts `nats-server` (found on the `PATH`) on `port`, or on a free port when `port` is
    /// 0, with JetStream storing under `<data_dir>/nats`, and waits until it answers.
    pub async fn start(data_dir: &Path, port: u16) -> Result<Self, LocalServerError> {
        let program = find_program(
            "nats-server",
            std::env::var_os("PATH").as_deref(),
            &[],
            INSTALL_NATS,
        )?;
        let port = if port == 0 { free_port()? } else { port };
        let dir = data_dir.join("nats");
        make_dir(&dir)?;
        let dir = std::path::absolute(&dir).map_err(|e| LocalServerError::io(&dir, e))?;
        let mut nats = LocalNats {
            program,
            dir,
            port,
            child: None,
        };
        nats.launch().await?;
        Ok(nats)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where its JetStream store and log are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server cleanly (SIGTERM, so JetStream flushes), killing it if it has not
    /// stopped after ten seconds.
    pub async fn stop(&mut self) -> Result<(), LocalServerError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(LocalServerError::failed(
                "stopping nats-server",
                e.to_string(),
            )),
            Err(_) => {
                let _ = child.kill().await;
                Err(LocalServerError::failed(
                    "stopping nats-server",
                    format!("it did not stop within {STOP_GRACE:?} and was killed"),
                ))
            }
        }
    }

    /// Stops the server and starts it again on the same port with the same store.
    pub async fn restart(&mut self) -> Result<(), LocalServerError> {
        self.stop().await?;
        self.launch().await
    }

    async fn launch(&mut self) -> Result<(), LocalServerError> {
        let store = self.dir.join("jetstream");
        make_dir(&store)?;
        let log = self.dir.join("server.log");
        let mut child = Command::new(&self.program)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&store)
            .arg("-l")
            .arg(&log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own process group: ctrl-c in the terminal reaches `tributary up`, which stops
            // the services first and this server last.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                LocalServerError::failed(
                    format!("starting {}", self.program.display()),
                    e.to_string(),
                )
            })?;
        let ready = wait_for_port(
            "starting nats-server",
            self.port,
            Duration::from_secs(30),
            || match child.try_wait() {
                Ok(Some(status)) => Some(format!("it exited with {status}{}", log_tail(&log))),
                _ => None,
            },
        )
        .await;
        if let Err(e) = ready {
            let _ = child.kill().await;
            return Err(e);
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
}
