//! One service as its own OS process: the real binary, configured only through its
//! environment (`TRIBUTARY__…` variables, and `TRIBUTARY_CONFIG` naming a file for what a
//! variable cannot carry), its output in a log file, its HTTP address read from that log,
//! killed when dropped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tributary_proto::ServiceName;

/// How long a service gets to log that it started and to answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The name of a service's binary: `tributary-etl`, `tributary-plugin-manager`, ….
pub fn binary_name(service: ServiceName) -> String {
    format!("tributary-{}", service.as_str())
}

/// The directory cargo put this executable's package binaries in: a test or bench executable
/// lives in `target/<profile>/deps/`, the binaries in `target/<profile>/`.
pub fn binary_dir() -> PathBuf {
    let exe =
        std::env::current_exe().unwrap_or_else(|e| panic!("cannot find this executable: {e}"));
    let dir = exe
        .parent()
        .unwrap_or_else(|| panic!("{} has no directory", exe.display()));
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a service's binary; panics with what to build when it is missing.
pub fn binary(service: ServiceName) -> PathBuf {
    let name = binary_name(service);
    let path = binary_dir().join(&name);
    if !path.is_file() {
        let release = binary_dir().file_name().is_some_and(|n| n == "release");
        let build = if release {
            "cargo build --release --workspace --bins"
        } else {
            "cargo build --workspace --bins (scripts/test builds them: it runs `cargo nextest run --workspace --lib --bins --examples --tests`)"
        };
        panic!(
            "the end-to-end tests run the service binaries, and `{name}` is not built: {} does not exist. Build the five with {build}",
            path.display()
        );
    }
    path
}

/// Whether `setpriv --pdeathsig` is there to tie a child's life to this process's, so a test
/// killed by a timeout leaves no service behind.
fn setpriv() -> Option<&'static Path> {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    SETPRIV
        .get_or_init(|| {
            let candidates = ["/usr/bin/setpriv", "/bin/setpriv"];
            candidates
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .filter(|p| {
                    Command::new(p)
                        .args(["--pdeathsig", "KILL", "--", "true"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
        })
        .as_deref()
}

/// A command for `program`, killed with SIGKILL when the thread that spawns it ends (through
/// `setpriv --pdeathsig`, when the system has it).
pub fn command_dying_with_parent(program: &Path) -> Command {
    match setpriv() {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "KILL", "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Opens `path` for appending, for a child's standard output and error.
pub fn log_file(path: &Path) -> (File, File) {
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open the log {}: {e}", path.display()))
    };
    (open(), open())
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..]
                .iter()
                .map(|l| {
                    // JSON log lines can be long; the start says enough.
                    if l.len() > 600 {
                        let mut cut = 600;
                        while !l.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        format!("{}…", &l[..cut])
                    } else {
                        (*l).to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A running service process.
#[derive(Debug)]
pub struct ServiceProcess {
    service: ServiceName,
    child: Child,
    log: PathBuf,
    http_addr: SocketAddr,
    exited: Option<ExitStatus>,
}

impl ServiceProcess {
    /// Starts `service`'s binary with exactly `vars` as its `TRIBUTARY…` configuration
    /// (inherited ones are removed), its output appended to `log`; waits until it has logged
    /// its HTTP address and answers `/readyz` with 200. Panics with the log's tail when it
    /// exits or does not get ready in time.
    pub async fn start(
        service: ServiceName,
        vars: &BTreeMap<String, String>,
        log: &Path,
        http: &reqwest::Client,
    ) -> Self {
        let mut process = Self::spawn(service, vars, log);
        process.wait_ready(http).await;
        process
    }

    /// Starts the binary without waiting for it; [`ServiceProcess::wait_ready`] waits.
    pub fn spawn(service: ServiceName, vars: &BTreeMap<String, String>, log: &Path) -> Self {
        let program = binary(service);
        let (stdout, stderr) = log_file(log);
        let mut command = command_dying_with_parent(&program);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TRIBUTARY") {
                command.env_remove(key);
            }
        }
        command
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self {
            service,
            child,
            log: log.to_path_buf(),
            http_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            exited: None,
        }
    }

    /// Waits until the process has logged `Service started.` with its address and answers
    /// `GET /readyz` with 200 (its `build` has finished: consumers, endpoints and routes are
    /// in place).
    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            self.fail_if_exited("while starting");
            if let Some(addr) = started_at(&self.log) {
                self.http_addr = addr;
                break;
            }
            self.fail_if_late(deadline, "log `Service started.`");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let url = format!("http://{}/readyz", self.http_addr);
        loop {
            self.fail_if_exited("before it was ready");
            if let Ok(response) = http.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            self.fail_if_late(deadline, "answer /readyz with 200");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn fail_if_exited(&mut self, when: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = Some(status);
            panic!(
                "{} exited {when} ({status}); its log {}:\n{}",
                binary_name(self.service),
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }

    fn fail_if_late(&self, deadline: tokio::time::Instant, what: &str) {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{} did not {what} within {} s; its log {}:\n{}",
                binary_name(self.service),
                START_TIMEOUT.as_secs(),
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }

    /// Which service it is.
    pub fn service(&self) -> ServiceName {
        self.service
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its HTTP listener is bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Its log file (standard output and error).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exited = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
    }

    /// SIGTERM (a graceful shutdown that finishes in-flight work), waits up to `grace` for it
    /// to exit, then SIGKILL; the exit status.
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.is_running() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = tokio::time::Instant::now() + grace;
            while self.is_running() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        self.kill();
        self.exited
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The HTTP address in a `Service started.` line of a JSON log.
fn started_at(log: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = value.get("fields")?;
        if fields.get("message")?.as_str()? != "Service started." {
            return None;
        }
        fields.get("http_addr")?.as_str()?.parse().ok()
    })
}
