//! What the CLI tests share: asking the mesh, and running the real `tributary` binary
//! against this test's prefix and database.
#![allow(dead_code)]

use serde_json::Value;
use tributary_kit::client::MeshClient;
use tributary_kit::testing::TestEnv;
use tributary_proto::requests::Request;
use tributary_proto::ServiceName;

/// Asks request `R` over NATS with `body`, any JSON; the reply as JSON.
pub async fn ask<R: Request>(env: &TestEnv, body: Value) -> Value {
    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());
    client
        .call_with_body::<R, Value>(&body)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", R::VERB))
}

/// Publishes `items` (connector items as JSON) on their instances' `connector.items.*`, as a
/// connector would, each acknowledged by JetStream.
pub async fn publish_items(env: &TestEnv, items: &[Value]) {
    let js = async_nats::jetstream::new(env.nats().await);
    for item in items {
        let instance = item["instance_id"].as_str().unwrap();
        js.publish(
            env.subjects().connector_items(instance),
            serde_json::to_vec(item).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `tributary <args>` with nothing of the caller's environment but the PATH, on this test's
/// prefix and database.
fn command(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &env.prefix)
        .env("TRIBUTARY__DATABASE__NAME", &env.database);
    command
}

pub async fn cli(env: &TestEnv, args: &[&str]) -> Run {
    let output = command(env, args).output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `tributary <args>` like [`cli`], with its standard output a pipe whose reading end
/// is closed before the command starts, as `tributary … | head` leaves it once `head` has
/// read enough: every write to it fails with EPIPE.
pub async fn cli_into_closed_pipe(env: &TestEnv, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = command(env, args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        // Not `output()`: tokio's replaces the standard output given here with a pipe of its own.
        .spawn()
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `tributary up` from this crate's binary with nothing of the caller's environment but
/// `path_var` as the PATH: logs at `warn`, and every service's HTTP listener on a free port.
pub fn up_command(path_var: &std::ffi::OsStr) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .arg("up")
        .env_clear()
        .env("PATH", path_var)
        .env("TRIBUTARY__TELEMETRY__LOG_FILTER", "warn");
    for service in ServiceName::ALL {
        let section = tributary_kit::config::config_section(service).to_uppercase();
        command.env(format!("TRIBUTARY__{section}__HTTP_ADDR"), "127.0.0.1:0");
    }
    command
}

/// Sends `signal` (`INT`, `TERM`) to `child` and waits up to `secs` for it to exit.
pub fn signal_and_wait(
    child: &mut std::process::Child,
    signal: &str,
    secs: u64,
) -> std::process::ExitStatus {
    std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tributary up did not stop on SIG{signal} within {secs} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
