//! Starting the real plugin manager on this test's NATS prefix, database and plugin directory,
//! and talking to it over NATS and HTTP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tributary_kit::client::{CallError, MeshClient};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_kit::Config;
use tributary_proto::events::{EventKind, PluginEvent};
use tributary_proto::requests::plugins::{
    AuditQuery, Call, EnableRequest, InstallRequest, InstanceCall,
};
use tributary_proto::requests::ApiError;
use tributary_proto::requests::Request;

/// A temporary plugin directory, removed on drop.
pub struct PluginDir(pub PathBuf);

impl PluginDir {
    /// A new empty directory.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("pm-plugins-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `<dir>/<name>/plugin.json`.
    pub fn write(&self, name: &str, manifest: &str) {
        let dir = self.0.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plugin.json"), manifest).unwrap();
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test plugin's id.
pub const CONTACTS: &str = "com.example.contacts";

/// The test plugin's manifest at `version` with `permissions`.
pub fn contacts_manifest(version: &str, permissions: &[&str]) -> String {
    json!({
        "id": CONTACTS,
        "name": "Example Contacts",
        "version": version,
        "type": "connector",
        "entrypoint": "builtin:example",
        "permissions": permissions,
        "configSchema": {
            "type": "object",
            "properties": {
                "server": { "type": "string", "minLength": 8 },
                "pageSize": { "type": "integer", "minimum": 1, "maximum": 1000 },
                "username": { "type": "string" },
                "password": { "type": "string", "writeOnly": true }
            },
            "required": ["server", "password"],
            "additionalProperties": false
        }
    })
    .to_string()
}

/// The permissions of version 1.
pub const V1_PERMISSIONS: [&str; 2] = [
    "network:outbound:*.example.com",
    "event:publish:connector.items.*",
];

/// An environment with a plugin directory holding the contacts plugin at 1.0.0.
pub async fn env_with_plugin() -> (TestEnv, PluginDir) {
    let mut env = TestEnv::new().await;
    let dir = PluginDir::new();
    dir.write("contacts", &contacts_manifest("1.0.0", &V1_PERMISSIONS));
    env.config.plugin_manager.plugin_dirs = vec![dir.0.clone()];
    (env, dir)
}

/// The real plugin manager, running.
pub struct RunningPm;

impl RunningPm {
    /// Starts it with `config`.
    pub async fn start(config: Config) -> RunningService {
        RunningService::start(tributary_plugin_manager::build, config).await
    }
}

/// The contacts instance's usual config.
pub fn contacts_config() -> Value {
    json!({ "server": "https://dav.example.com", "password": "pw-0123456789" })
}

/// The plugin manager running with the contacts plugin, and an instance `work` of it
/// installed with [`contacts_config`] (and enabled, when asked).
pub async fn started_with_work(enabled: bool) -> (TestEnv, PluginDir, RunningService) {
    let (env, dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    install(&env, "work", contacts_config()).await;
    if enabled {
        ask::<InstanceCall<EnableRequest>, Value>(&env, json!({ "instance_id": "work" }))
            .await
            .unwrap();
    }
    (env, dir, pm)
}

/// Asks request `R` of the plugin manager over NATS with `body`, any JSON (tests send what
/// the type would not allow), reading the reply as `T`. `plugins.runtime` and `plugins.token`
/// are asked as the connector service asks them ([`ask_on`] asks as another).
pub async fn ask<R: Request, T: DeserializeOwned>(
    env: &TestEnv,
    body: impl Serialize,
) -> Result<T, ApiError> {
    // `plugins.runtime` and `plugins.token` as the connector service asks them.
    let token = if R::WILDCARD { "connector" } else { "" };
    ask_on::<R, T>(env, token, body).await
}

/// [`ask`] on `plugins.<verb>.<token>` for a request whose subject ends in a token
/// (`plugins.runtime.channel`: as the channel service asks); `""` for one whose does not.
pub async fn ask_on<R: Request, T: DeserializeOwned>(
    env: &TestEnv,
    token: &str,
    body: impl Serialize,
) -> Result<T, ApiError> {
    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());
    let asked = if token.is_empty() {
        client.call_with_body::<R, T>(&body).await
    } else {
        client.call_with_body_on::<R, T>(token, &body).await
    };
    match asked {
        Ok(value) => Ok(value),
        Err(CallError::Api(e)) => Err(e),
        Err(e) => panic!("plugins.{}: {e}", R::VERB),
    }
}

/// The admin API of a running service, with or without a token.
pub struct Admin {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Admin {
    /// With the configured token.
    pub fn new(env: &TestEnv, pm: &RunningService) -> Self {
        Self::with_token(
            pm,
            Some(
                env.config
                    .plugin_manager
                    .admin_token
                    .expose_secret()
                    .to_owned(),
            ),
        )
    }

    /// With the given token, or none.
    pub fn with_token(pm: &RunningService, token: Option<String>) -> Self {
        Self {
            base: format!("http://{}", pm.http_addr),
            token,
            client: reqwest::Client::new(),
        }
    }

    /// Sends a request; answers with the status and the body (JSON, or `Null` when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::answer(request).await
    }

    /// Sends `body` as it is, of `content_type`; answers as [`Admin::call`] does.
    pub async fn send_bytes(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let request = self
            .request(method, path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        Self::answer(request).await
    }

    /// The newest entry of `GET /api/v1/audit` whose action is `action`; panics, showing the
    /// log, when there is none.
    pub async fn audit_entry(&self, action: &str) -> Value {
        let (_, audit) = self.call("GET", "/api/v1/audit", None).await;
        audit
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} entry: {audit}"))
    }

    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }
}

/// Installs the contacts plugin as `instance` with all its permissions accepted and `config`.
pub async fn install(env: &TestEnv, instance: &str, config: Value) -> Value {
    ask::<Call<InstallRequest>, _>(
        env,
        json!({
            "plugin_id": CONTACTS,
            "instance_id": instance,
            "config": config,
            "accept_permissions": V1_PERMISSIONS,
            "actor": "test",
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("install {instance}: {e:?}"))
}

/// An instance's audit log, oldest first, and its actions in order.
pub async fn audit_of(env: &TestEnv, instance: &str) -> (Vec<Value>, Vec<String>) {
    let audit: Vec<Value> = ask::<AuditQuery, _>(env, json!({ "instance_id": instance }))
        .await
        .unwrap();
    let actions = audit
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .collect();
    (audit, actions)
}

/// A subscription to one kind of `plugins.*` event.
pub async fn watch(env: &TestEnv, event: PluginEvent) -> async_nats::Subscriber {
    let client = env.nats().await;
    let subscriber = client
        .subscribe(env.subjects().event(EventKind::Plugin(event)))
        .await
        .unwrap();
    client.flush().await.unwrap();
    subscriber
}

/// The next event on `subscriber`, as JSON.
pub async fn next_event(subscriber: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription is open");
    serde_json::from_slice(&message.payload).unwrap()
}

/// The bytes of `table`'s file on disk, after a checkpoint wrote everything out: what a
/// thief of the database's disk reads.
pub async fn table_bytes(pool: &sqlx::PgPool, table: &str) -> Vec<u8> {
    sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
    sqlx::query_scalar(&format!(
        "SELECT pg_read_binary_file(pg_relation_filepath('{table}'))"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The plugin manager's own binary.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tributary-plugin-manager"))
}
