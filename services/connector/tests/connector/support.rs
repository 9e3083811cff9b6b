//! The mesh a connector test runs: the real plugin manager, connector service and (when
//! asked) ETL on this test's NATS prefix and database, with the test connector registered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tributary_connector::ConnectorRegistry;
use tributary_kit::client::{CallError, MeshClient};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_proto::events::{EventKind, SyncEvent};
use tributary_proto::requests::ApiError;

use crate::numbers::{self, Numbers};
use tributary_proto::requests::connector::{StateQuery, SyncCommand};
use tributary_proto::requests::plugins::{
    Call, DisableRequest, EnableRequest, InstallRequest, InstanceCall, PluginInfo,
};
use tributary_proto::requests::Request;

/// The test connector's plugin, allowed the host of its `url`.
pub const NUMBERS: &str = "test.numbers";
/// The same connector under a manifest granting only `api.example.com`.
pub const NUMBERS_FIXED_HOST: &str = "test.numbers.fixed";

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

/// The running services of one test.
pub struct Mesh {
    pub env: TestEnv,
    pub numbers: Numbers,
    pub plugin_manager: Option<RunningService>,
    pub connector: Option<RunningService>,
    pub etl: Option<RunningService>,
    _plugins: TempDir,
}

impl Mesh {
    /// The plugin manager and the connector service, and the ETL when `with_etl`.
    pub async fn start(with_etl: bool) -> Self {
        let mut env = TestEnv::new().await;
        let plugins = TempDir::new("connector-plugins");
        for (dir, id, permissions) in [
            (
                "numbers",
                NUMBERS,
                &["network:outbound:${url}", "data:write:persons"][..],
            ),
            (
                "numbers-fixed",
                NUMBERS_FIXED_HOST,
                &["network:outbound:api.example.com", "data:write:persons"][..],
            ),
        ] {
            let dir = plugins.0.join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("plugin.json"), numbers::manifest(id, permissions)).unwrap();
        }
        env.config.plugin_manager.plugin_dirs = vec![plugins.0.clone()];
        env.config.connector.heartbeat_interval_ms = 200;
        let plugin_manager =
            RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
        let etl = if with_etl {
            Some(RunningService::start(tributary_etl::build, env.config.clone()).await)
        } else {
            None
        };
        let mut mesh = Mesh {
            env,
            numbers: Numbers::default(),
            plugin_manager: Some(plugin_manager),
            connector: None,
            etl,
            _plugins: plugins,
        };
        mesh.start_connector().await;
        mesh
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
        let client = MeshClient::new(self.env.nats().await, self.env.subjects(), "test".into());
        match client.call_with_body::<R, T>(&body).await {
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

    /// Installs `plugin` as `instance` with every permission accepted, enabled or not.
    pub async fn install(&self, plugin: &str, instance: &str, config: Value, enable: bool) {
        let info: Value = self
            .ask::<PluginInfo, _>(json!({ "plugin_id": plugin }))
            .await
            .unwrap_or_else(|e| panic!("info {plugin}: {e:?}"));
        let permissions = info["permissions"].clone();
        let _: Value = self
            .ask::<Call<InstallRequest>, _>(json!({
                "plugin_id": plugin,
                "instance_id": instance,
                "config": config,
                "accept_permissions": permissions,
                "actor": "test",
            }))
            .await
            .unwrap_or_else(|e| panic!("install {instance}: {e:?}"));
        if enable {
            self.set_enabled(instance, true).await;
        }
    }

    /// Enables or disables `instance`.
    pub async fn set_enabled(&self, instance: &str, enabled: bool) {
        let body = json!({ "instance_id": instance });
        let asked: Result<Value, _> = if enabled {
            self.ask::<InstanceCall<EnableRequest>, _>(body).await
        } else {
            self.ask::<InstanceCall<DisableRequest>, _>(body).await
        };
        asked.unwrap_or_else(|e| panic!("enabled={enabled} {instance}: {e:?}"));
    }

    /// `connector.state` of `instance`.
    pub async fn state(&self, instance: &str) -> Value {
        self.ask::<StateQuery, _>(json!({ "instance_id": instance }))
            .await
            .unwrap_or_else(|e| panic!("state {instance}: {e:?}"))
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

    /// A subscription to one kind of `connector.Sync*` event.
    pub async fn watch(&self, event: SyncEvent) -> async_nats::Subscriber {
        let client = self.env.nats().await;
        let subscriber = client
            .subscribe(self.env.subjects().event(EventKind::Sync(event)))
            .await
            .unwrap();
        client.flush().await.unwrap();
        subscriber
    }

    /// Waits up to `secs` until the database satisfies `count_sql` (a scalar bigint) = `want`.
    pub async fn wait_count(&self, sql: &str, want: i64, secs: u64) {
        self.env.wait_count(sql, want, secs).await;
    }

    /// How many messages JetStream holds on `subject` (unprefixed, such as
    /// `data.PersonCreated`).
    pub async fn stored_on(&self, subject: &str) -> u64 {
        self.env.stored_on(subject).await
    }
}

/// The next event on `subscriber` within `secs`, as JSON.
pub async fn next_event(subscriber: &mut async_nats::Subscriber, secs: u64) -> Value {
    tributary_kit::testing::next_json(subscriber, secs).await
}

/// The next event on `subscriber` about `instance`.
pub async fn next_event_of(
    subscriber: &mut async_nats::Subscriber,
    instance: &str,
    secs: u64,
) -> Value {
    loop {
        let event = next_event(subscriber, secs).await;
        if event["data"]["instance_id"] == instance {
            return event;
        }
    }
}
