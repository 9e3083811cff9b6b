//! What the CLI tests share: asking the mesh, and running the real `tributary` binary
//! against this test's prefix and database.
#![allow(dead_code)]

use serde_json::Value;
use tributary_kit::testing::TestEnv;
use tributary_plugin_manager::client::MeshClient;
use tributary_proto::ServiceName;

pub async fn ask(env: &TestEnv, service: ServiceName, verb: &str, body: Value) -> Value {
    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());
    client
        .request(service, verb, &body)
        .await
        .unwrap_or_else(|e| panic!("{verb}: {e}"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub async fn cli(env: &TestEnv, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &env.prefix)
        .env("TRIBUTARY__DATABASE__NAME", &env.database)
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
