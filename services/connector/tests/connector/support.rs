//! The services a connector test runs: the real plugin manager, connector service and (when
//! asked) ETL on this test's NATS prefix and database, with the test connector registered;
//! the test drives them through kit's one mesh handle ([`Mesh`]), which [`Harness`] derefs to.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tributary_connector::ConnectorRegistry;
use tributary_kit::client::CallError;
use tributary_kit::testing::{Mesh, RunningService, TestEnv};
use tributary_proto::requests::connector::{StateQuery, SyncCommand};
use tributary_proto::requests::{ApiError, Request};

use crate::numbers::{self, Numbers};

/// The test connector's plugin, allowed the host of its `url`.
pub const NUMBERS: &str = "test.numbers";
/// The same connector under a manifest granting only `api.example.com`.
pub const NUMBERS_FIXED_HOST: &str = "test.numbers.fixed";
/// A plugin whose entrypoint no connector of this service runs.
pub const UNRUNNABLE: &str = "test.unrunnable";
/// [`UNRUNNABLE`]'s entrypoint.
pub const UNRUNNABLE_ENTRYPOINT: &str = "builtin:test-nowhere";

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory.
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{what}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running services of one test, and its handle on the mesh (install, enable, watch,
/// wait for rows), which the harness derefs to.
pub struct Harness {
    pub env: TestEnv,
    /// The test's handle on the mesh.
    pub mesh: Mesh,
    pub numbers: Numbers,
    pub plugin_manager: Option<RunningService>,
    pub connector: Option<RunningService>,
    pub etl: Option<RunningService>,
    _plugins: TempDir,
}

impl Deref for Harness {
    type Target = Mesh;

    fn deref(&self) -> &Mesh {
        &self.mesh
    }
}

impl Harness {
    /// The plugin manager and the connector service, and the ETL when `with_etl`.
    pub async fn start(with_etl: bool) -> Self {
        Self::start_with(with_etl, |_| {}).await
    }

    /// [`Harness::start`] with the configuration adjusted by `adjust` first (more plugin
    /// directories, other limits), once the test plugins' directory is in it.
    pub async fn start_with(with_etl: bool, adjust: impl FnOnce(&mut TestEnv)) -> Self {
        let mut env = TestEnv::new().await;
        let plugins = TempDir::new("connector-plugins");
        for (dir, id, entrypoint, permissions) in [
            (
                "numbers",
                NUMBERS,
                numbers::ENTRYPOINT,
                &["network:outbound:${url}", "data:write:persons"][..],
            ),
            (
                "numbers-fixed",
                NUMBERS_FIXED_HOST,
                numbers::ENTRYPOINT,
                &["network:outbound:api.example.com", "data:write:persons"][..],
            ),
            (
                "unrunnable",
                UNRUNNABLE,
                UNRUNNABLE_ENTRYPOINT,
                &["data:write:persons"][..],
            ),
        ] {
            let dir = plugins.0.join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("plugin.json"),
                numbers::manifest(id, entrypoint, permissions),
            )
            .unwrap();
        }
        env.config.plugin_manager.plugin_dirs = vec![plugins.0.clone()];
        env.config.connector.heartbeat_interval_ms = 200;
        adjust(&mut env);
        let plugin_manager =
            RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
        let etl = if with_etl {
            Some(RunningService::start(tributary_etl::build, env.config.clone()).await)
        } else {
            None
        };
        let mut harness = Harness {
            mesh: Mesh::of(&env).await,
            env,
            numbers: Numbers::default(),
            plugin_manager: Some(plugin_manager),
            connector: None,
            etl,
            _plugins: plugins,
        };
        harness.start_connector().await;
        harness
    }

    /// Starts the connector service (again).
    pub async fn start_connector(&mut self) {
        let registry =
            ConnectorRegistry::builtin().with(numbers::ENTRYPOINT, Arc::new(self.numbers.clone()));
        let config = self.env.config.clone();
        let connector = RunningService::start(
            move |config| tributary_connector::build_with(config, registry),
            config,
        )
        .await;
        self.connector = Some(connector);
    }

    /// Stops the connector service and waits until it has.
    pub async fn stop_connector(&mut self) {
        if let Some(connector) = self.connector.take() {
            connector.stop().await;
        }
    }

    /// Stops everything.
    pub async fn stop(mut self) {
        self.stop_connector().await;
        for service in [self.etl.take(), self.plugin_manager.take()]
            .into_iter()
            .flatten()
        {
            service.stop().await;
        }
    }

    /// Asks request `R` over NATS with `body`, any JSON, reading the reply as `T`.
    pub async fn ask<R: Request, T: DeserializeOwned>(
        &self,
        body: impl Serialize,
    ) -> Result<T, ApiError> {
        match self.client().call_with_body::<R, T>(&body).await {
            Ok(value) => Ok(value),
            Err(CallError::Api(e)) => Err(e),
            Err(e) => panic!("{}: {e}", R::VERB),
        }
    }

    /// `connector.sync` with `body`; a sync that just ended may still hold the instance for
    /// a moment after its event, so a conflict is asked again for up to 5 s.
    pub async fn sync_now(&self, body: Value) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.ask::<SyncCommand, Value>(body.clone()).await {
                Ok(accepted) => return accepted,
                Err(e)
                    if e.error == tributary_proto::requests::ErrorCode::Conflict
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("sync {body}: {e:?}"),
            }
        }
    }

    /// `connector.state` of `instance`.
    pub async fn state(&self, instance: &str) -> Value {
        self.ask::<StateQuery, _>(json!({ "instance_id": instance }))
            .await
            .unwrap_or_else(|e| panic!("state {instance}: {e:?}"))
    }

    /// Waits up to 30 s until the cursor `instance` has checkpointed, as text, contains
    /// `mark` (a sync some pages in), and returns it; `what` names that point in the failure.
    pub async fn wait_for_checkpoint(&self, instance: &str, mark: &str, what: &str) -> String {
        let pool = self.env.pool().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let cursor: Option<String> = sqlx::query_scalar(
                "SELECT cursor::text FROM connector_sync_state WHERE instance_id = $1",
            )
            .bind(instance)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten();
            if let Some(cursor) = cursor.filter(|c| c.contains(mark)) {
                return cursor;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{instance}: no checkpoint at {what} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits up to `secs` until `instance`'s state satisfies `done`.
    pub async fn wait_state(
        &self,
        instance: &str,
        secs: u64,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let state = self
                .ask::<StateQuery, Value>(json!({ "instance_id": instance }))
                .await
                .unwrap_or(Value::Null);
            if done(&state) {
                return state;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{instance}: the state did not come within {secs} s; last: {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
