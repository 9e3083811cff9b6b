//! A `nats-server` with JetStream that `tributary up` starts for itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::nats_users::{NatsUsers, SERVER_CONF};
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
    /// With users: the configuration file it runs, and the environment that file reads.
    secured: Option<(PathBuf, Vec<(String, String)>)>,
    child: Option<Child>,
}

impl LocalNats {
    /// Starts `nats-server` as [`LocalNats::start`] does, running `deploy/nats-server.conf`
    /// ([`SERVER_CONF`]) with `users`' passwords: no anonymous client is let in, and each user
    /// may do what that file says. The file is written to `<data_dir>/nats/nats-server.conf`;
    /// the passwords reach the server in its environment only. Its monitoring port is a free
    /// one on 127.0.0.1.
    pub async fn start_with_users(
        data_dir: &Path,
        port: u16,
        users: &NatsUsers,
    ) -> Result<Self, LocalServerError> {
        let mut nats = Self::prepare(data_dir, port)?;
        let conf = nats.dir.join("nats-server.conf");
        std::fs::write(&conf, SERVER_CONF).map_err(|e| LocalServerError::io(&conf, e))?;
        nats.secured = Some((conf, users.server_environment()));
        nats.launch().await?;
        Ok(nats)
    }

    /// Starts `nats-server` (found on the `PATH`) on `port`, or on a free port when `port` is
    /// 0, with JetStream storing under `<data_dir>/nats`, and waits until it answers. Anyone
    /// who reaches the port may do anything: for tests and tools. `tributary up` runs
    /// [`LocalNats::start_with_users`].
    pub async fn start(data_dir: &Path, port: u16) -> Result<Self, LocalServerError> {
        let mut nats = Self::prepare(data_dir, port)?;
        nats.launch().await?;
        Ok(nats)
    }

    fn prepare(data_dir: &Path, port: u16) -> Result<Self, LocalServerError> {
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
        Ok(LocalNats {
            program,
            dir,
            port,
            secured: None,
            child: None,
        })
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
        let mut command = Command::new(&self.program);
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        match &self.secured {
            // The file's `port` and `http_port` give way to the flags; it enables JetStream
            // itself, storing in `$NATS_STORE_DIR` (a `-sd` beside it is refused as a
            // duplicate).
            Some((conf, environment)) => command
                .arg("-c")
                .arg(conf)
                .args(["-m", &free_port()?.to_string()])
                .env("NATS_STORE_DIR", &store)
                .envs(environment.iter().map(|(k, v)| (k, v))),
            None => command.args(["-js", "-sd"]).arg(&store),
        };
        // What it says before its log is open (a configuration it refuses) goes here.
        let early = self.dir.join("server.stderr");
        let early_file =
            std::fs::File::create(&early).map_err(|e| LocalServerError::io(&early, e))?;
        let mut child = command
            .arg("-l")
            .arg(&log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(early_file)
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
                Ok(Some(status)) => Some(format!(
                    "it exited with {status}{}{}",
                    log_tail(&early),
                    log_tail(&log)
                )),
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
