//! End-to-end harness: the five Tributary services (`tributary-plugin-manager`,
//! `tributary-connector`, `tributary-etl`, `tributary-channel`, `tributary-search`) each run as
//! its own OS process from the real binaries, configured only through `TRIBUTARY__…`
//! environment variables (and a configuration file `TRIBUTARY_CONFIG` names, for lists),
//! against a real NATS (JetStream) and PostgreSQL.
//!
//! A [`Stack`] is one test's mesh: its own subject prefix, database and data directory, so
//! tests run in parallel and leave nothing behind. It derefs to kit's mesh handle
//! ([`tributary_kit::testing::Mesh`]), which every suite shares: requests, watched events,
//! published items and waits for rows go through it. Each process writes its output to a log
//! file in the stack's directory; the harness reads the process's HTTP address from its
//! `Service started.` line and waits for `/readyz`. When a test fails, the tail of every log
//! is printed. Every process started is killed when the stack is dropped (and, through
//! `setpriv --pdeathsig`, when the test process dies).
//!
//! The binaries are looked up next to the test executable (`target/<profile>/`); cargo builds
//! them with `cargo build --workspace --bins`, and `scripts/test` (`cargo nextest run
//! --workspace --lib --bins --examples --tests`) builds them before running the tests.

pub mod admin;
pub mod figures;
pub mod items;
pub mod nats_cluster;
pub mod process;
pub mod radicale;
pub mod stack;
pub mod twilio;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use admin::AdminApi;
pub use nats_cluster::NatsCluster;
pub use process::{binary, binary_dir, ServiceProcess};
pub use radicale::Radicale;
pub use stack::{Servers, Stack, StoredMessage};
pub use tributary_proto::ServiceName;

/// The repository's root, for the scripts and files the tests use.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// What a test needs from outside the workspace, installed by one of `scripts/`: the path the
/// environment variable `env_var` names, or the one line `scripts/<script>` prints once it has
/// installed it (idempotently; its log goes to stderr). Panics naming the script and `what`
/// when it cannot: such a test fails, it is never skipped.
pub fn installed_by(script: &str, env_var: &str, what: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return path.into();
    }
    let out = std::process::Command::new(repo().join("scripts").join(script))
        .output()
        .unwrap_or_else(|e| panic!("scripts/{script} does not run: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} could not install {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Polls `check` every 50 ms until it returns `Some`, for up to `secs` seconds; `None` when
/// it never did.
pub async fn eventually_within<T, F, Fut>(secs: u64, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`eventually_within`], failing the test naming `what` when the time runs out.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(secs, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {secs} s waiting for {what}"))
}
