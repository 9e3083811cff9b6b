//! The five services of one test, each its own process, on a slice of NATS and PostgreSQL
//! that belongs to that test alone: its own subject prefix (so its own streams), its own
//! database and its own data directory, all removed when the stack is dropped. The test
//! drives the mesh through kit's one handle ([`Mesh`]), which the stack derefs to.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tributary_kit::client::CallError;
use tributary_kit::config::config_section;
use tributary_kit::testing::oauth::ProviderServer;
use tributary_kit::testing::{guests, Mesh};
use tributary_kit::{Config, ConfigSources};
use tributary_proto::requests::channel::RoutesQuery;
use tributary_proto::requests::search::StatsQuery;
use tributary_proto::requests::{ApiError, Request};
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::{ServiceName, Subjects};

use crate::admin::AdminApi;
use crate::eventually;
use crate::process::{tail, ServiceProcess};

/// Where the NATS and PostgreSQL servers of a stack are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Servers {
    /// `nats://host:port` of a NATS server with JetStream, or the servers of a cluster
    /// separated by commas.
    pub nats_url: String,
    /// PostgreSQL's host.
    pub pg_host: String,
    /// PostgreSQL's port.
    pub pg_port: u16,
    /// The PostgreSQL role, allowed to create databases.
    pub pg_user: String,
    /// Its password; empty for trust authentication.
    pub pg_password: String,
}

impl Servers {
    /// The machine's NATS (127.0.0.1:4222) and PostgreSQL (127.0.0.1:5432, user `postgres`)
    /// that `scripts/services-up` starts.
    pub fn shared() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            pg_host: "127.0.0.1".to_owned(),
            pg_port: 5432,
            pg_user: "postgres".to_owned(),
            pg_password: String::new(),
        }
    }
}

/// One message kept by a stream.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its subject, without the stack's prefix.
    pub subject: String,
    /// Its payload, parsed as JSON (`Null` when it is not JSON).
    pub json: Value,
}

/// The services of one test as separate processes, with what the test talks to them through:
/// its own HTTP calls (the admin API, webhooks, `GET /search`) and the mesh handle it derefs
/// to (requests, events, items, rows).
///
/// Dropping it kills every process it started, prints the tail of each log when the test is
/// failing, deletes the test's streams and database, and removes its directory.
pub struct Stack {
    servers: Servers,
    prefix: String,
    database: String,
    dir: Option<tempfile::TempDir>,
    vars: BTreeMap<String, String>,
    config: Config,
    running: BTreeMap<ServiceName, ServiceProcess>,
    finished: Vec<ServiceProcess>,
    started: BTreeMap<ServiceName, usize>,
    /// The test's handle on the mesh, over its own NATS connection, prefix and database.
    mesh: Mesh,
    http: reqwest::Client,
}

impl Deref for Stack {
    type Target = Mesh;

    fn deref(&self) -> &Mesh {
        &self.mesh
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("prefix", &self.prefix)
            .field("database", &self.database)
            .field("dir", &self.dir())
            .field("running", &self.running.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// A stack on the machine's shared NATS and PostgreSQL, tuned for tests
    /// ([`Stack::tuned_for_tests`]); nothing started yet.
    pub async fn new() -> Self {
        let mut stack = Self::on(Servers::shared()).await;
        stack.tuned_for_tests();
        stack
    }

    /// A stack on `servers` with the built-in defaults but for what isolates it: a fresh
    /// prefix, database (created and migrated here) and data directory, fresh secrets, and
    /// every HTTP listener on a free port. Nothing started yet.
    pub async fn on(servers: Servers) -> Self {
        // Every binary there before anything starts, or one message naming the missing one.
        for service in ServiceName::ALL {
            crate::process::binary(service);
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("e2e{}", &token[..12]);
        let database = format!("e2e_{token}");
        let dir = tempfile::Builder::new()
            .prefix(&format!("tributary-{prefix}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"));
        std::fs::create_dir_all(dir.path().join("logs"))
            .unwrap_or_else(|e| panic!("cannot make the log directory: {e}"));
        let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        let mut vars = BTreeMap::new();
        let mut set = |key: &str, value: String| {
            vars.insert(key.to_owned(), value);
        };
        set("TRIBUTARY__NATS__URL", servers.nats_url.clone());
        set("TRIBUTARY__NATS__SUBJECT_PREFIX", prefix.clone());
        // nats-server reserves each stream's size against its store when the stream is made,
        // and many stacks share the machine's server: 32 MiB a stream, as kit's TestEnv.
        for stream in tributary_proto::streams::StreamKey::ALL {
            set(
                &format!(
                    "TRIBUTARY__NATS__MAX_BYTES__{}",
                    stream.base_name().to_uppercase()
                ),
                tributary_kit::testing::TEST_STREAM_BYTES.to_string(),
            );
        }
        set("TRIBUTARY__DATABASE__HOST", servers.pg_host.clone());
        set("TRIBUTARY__DATABASE__PORT", servers.pg_port.to_string());
        set("TRIBUTARY__DATABASE__USER", servers.pg_user.clone());
        set("TRIBUTARY__DATABASE__NAME", database.clone());
        if !servers.pg_password.is_empty() {
            set("TRIBUTARY__DATABASE__PASSWORD", servers.pg_password.clone());
        }
        set(
            "TRIBUTARY__DATA_DIR",
            dir.path().join("data").display().to_string(),
        );
        set(
            "TRIBUTARY__PLUGIN_MANAGER__MASTER_KEY",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key),
        );
        set(
            "TRIBUTARY__PLUGIN_MANAGER__ADMIN_TOKEN",
            format!("admin-{}", uuid::Uuid::new_v4().simple()),
        );
        set(
            "TRIBUTARY__SEARCH__API_TOKEN",
            format!("search-{}", uuid::Uuid::new_v4().simple()),
        );
        // Every API a plugin reaches here is a mock on loopback, which a deployment refuses;
        // each `${field}` grant names the mock's address and port exactly.
        set(
            "TRIBUTARY__PLUGINS__ALLOW_PRIVATE_NETWORK",
            "true".to_owned(),
        );
        // JSON lines: the harness reads each process's HTTP address from its log.
        set("TRIBUTARY__TELEMETRY__LOG_FORMAT", "json".to_owned());
        set("TRIBUTARY__TELEMETRY__LOG_FILTER", "info".to_owned());
        for service in ServiceName::ALL {
            set(
                &format!(
                    "TRIBUTARY__{}__HTTP_ADDR",
                    config_section(service).to_uppercase()
                ),
                "127.0.0.1:0".to_owned(),
            );
        }
        let config = load(&vars);
        let pool = tributary_kit::db::connect_and_migrate(&config.database)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database: {e}"));
        let nats = connect_nats(&servers.nats_url).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
        let mesh = Mesh::new(nats, Subjects::new(prefix.clone()))
            .with_pool(pool)
            .with_timeout(Duration::from_secs(20));
        Self {
            servers,
            prefix,
            database,
            dir: Some(dir),
            vars,
            config,
            running: BTreeMap::new(),
            finished: Vec::new(),
            started: BTreeMap::new(),
            mesh,
            http,
        }
    }

    /// Turns waits and redelivery times down so tests run fast: batches wait 20 ms to fill,
    /// JetStream redelivers after 5 s, syncs report every 500 ms, shutdown takes at most 5 s.
    pub fn tuned_for_tests(&mut self) -> &mut Self {
        self.set("shutdown_timeout_secs", 5)
            .set("etl.batch_wait_ms", 20)
            .set("etl.ack_wait_secs", 5)
            .set("etl.retry_initial_ms", 50)
            .set("etl.retry_max_ms", 1000)
            .set("search.batch_wait_ms", 20)
            .set("search.ack_wait_secs", 5)
            .set("channel.ack_wait_secs", 5)
            .set("connector.heartbeat_interval_ms", 500)
    }

    /// Sets a configuration key (`etl.batch_size`) for the processes started from now on, as
    /// its `TRIBUTARY__ETL__BATCH_SIZE` variable.
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        let var = format!(
            "TRIBUTARY__{}",
            key.split('.')
                .map(str::to_uppercase)
                .collect::<Vec<_>>()
                .join("__")
        );
        self.vars.insert(var, value.to_string());
        self.config = load(&self.vars);
        self
    }

    /// Sets a configuration key that takes a list (`plugin_manager.plugin_dirs`), which no
    /// environment variable can carry: in the stack's configuration file, which every process
    /// started from now on reads (its path is their `TRIBUTARY_CONFIG`), under the
    /// `TRIBUTARY__…` variables of [`Stack::set`].
    pub fn set_list(&mut self, key: &str, values: &[impl AsRef<str>]) -> &mut Self {
        let file = self.dir().join("config.toml");
        let assignment = format!("{key} = ");
        let mut lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.starts_with(&assignment))
            .map(str::to_owned)
            .collect();
        // A JSON array of strings is a TOML array of basic strings, escapes included.
        let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        lines.push(format!("{assignment}{}", Value::from(values)));
        std::fs::write(&file, lines.join("\n") + "\n")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        self.vars
            .insert(CONFIG_FILE_VAR.to_owned(), file.display().to_string());
        self.config = load(&self.vars);
        self
    }

    /// Makes the processes started from now on serve the WebAssembly guest plugins built from
    /// `plugins/wasm` ([`guests::guests_dir`]): the plugin manager discovers them there, and
    /// the connector and channel processes cache compiled components in the directory every
    /// test shares ([`guests::compiled_cache_dir`]), so each is compiled once per machine.
    pub fn serve_wasm_guests(&mut self) -> &mut Self {
        let guests = guests::guests_dir().display().to_string();
        let cache = guests::compiled_cache_dir().display().to_string();
        self.set_list("plugin_manager.plugin_dirs", &[guests])
            .set("wasm.cache_dir", cache)
    }

    /// Adds `dir` to the directories the plugin manager discovers plugins in, for the
    /// processes started from now on (after those set so far, the built guests' included).
    pub fn add_plugin_dir(&mut self, dir: &Path) -> &mut Self {
        let mut dirs: Vec<String> = self
            .config
            .plugin_manager
            .plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        dirs.push(dir.display().to_string());
        self.set_list("plugin_manager.plugin_dirs", &dirs)
    }

    /// Makes `provider` (a local server playing an OAuth provider) the deployment's client
    /// at that provider for the processes started from now on: its
    /// `[oauth.providers.<name>]` client and endpoints, as `TRIBUTARY__OAUTH__…` variables.
    pub fn use_oauth_provider(&mut self, provider: &ProviderServer) -> &mut Self {
        let section = provider.provider_config();
        let key = |field: &str| format!("oauth.providers.{}.{field}", provider.provider().name());
        self.set(&key("client_id"), section.client_id)
            .set(&key("client_secret"), section.client_secret.expose_secret())
            .set(&key("authorization_url"), section.authorization_url)
            .set(&key("token_url"), section.token_url);
        if !section.tenant.is_empty() {
            self.set(&key("tenant"), section.tenant);
        }
        self
    }

    /// The variables each process is started with: the `TRIBUTARY__…` configuration, and
    /// `TRIBUTARY_CONFIG` once [`Stack::set_list`] has written a configuration file.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The configuration those variables make.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The servers it runs on.
    pub fn servers(&self) -> &Servers {
        &self.servers
    }

    /// Its subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Its database's name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Its directory (data and logs).
    pub fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    /// Starts every service not running yet: the plugin manager first (the others ask it for
    /// their instances), then the other four side by side; returns when all answer `/readyz`.
    pub async fn start_all(&mut self) {
        self.provision().await;
        if !self.running.contains_key(&ServiceName::PluginManager) {
            self.start(ServiceName::PluginManager).await;
        }
        let rest: Vec<ServiceName> = ServiceName::ALL
            .into_iter()
            .filter(|s| !self.running.contains_key(s))
            .collect();
        let mut spawned: Vec<ServiceProcess> = rest.iter().map(|s| self.spawn(*s)).collect();
        let http = self.http.clone();
        futures::future::join_all(spawned.iter_mut().map(|p| p.wait_ready(&http))).await;
        for process in spawned {
            self.running.insert(process.service(), process);
        }
    }

    /// Starts `service` (again) and waits until it answers `/readyz`.
    pub async fn start(&mut self, service: ServiceName) {
        assert!(
            !self.running.contains_key(&service),
            "{service} already runs"
        );
        self.provision().await;
        let mut process = self.spawn(service);
        process.wait_ready(&self.http).await;
        self.running.insert(service, process);
    }

    /// Creates or updates the stack's streams and consumers with its configuration, as a
    /// deployment's provisioning step (`tributary nats provision`) does before the services
    /// start: they create none themselves.
    async fn provision(&self) {
        tributary_kit::provision::provision_all(&self.config)
            .await
            .unwrap_or_else(|e| panic!("cannot provision the stack's streams and consumers: {e}"));
    }

    fn spawn(&mut self, service: ServiceName) -> ServiceProcess {
        let n = {
            let n = self.started.entry(service).or_insert(0);
            *n += 1;
            *n
        };
        let log = self
            .dir()
            .join("logs")
            .join(format!("{}-{n}.log", service.as_str()));
        ServiceProcess::spawn(service, &self.vars, &log)
    }

    /// SIGKILLs `service`: no shutdown, nothing flushed, nothing acked.
    pub fn kill(&mut self, service: ServiceName) {
        let mut process = self
            .running
            .remove(&service)
            .unwrap_or_else(|| panic!("{service} does not run"));
        process.kill();
        self.finished.push(process);
    }

    /// Stops `service` with SIGTERM (it finishes in-flight work), SIGKILL after 20 s.
    pub async fn stop(&mut self, service: ServiceName) {
        let mut process = self
            .running
            .remove(&service)
            .unwrap_or_else(|| panic!("{service} does not run"));
        process.terminate(Duration::from_secs(20)).await;
        self.finished.push(process);
    }

    /// The process of a running service.
    pub fn process(&self, service: ServiceName) -> &ServiceProcess {
        self.running
            .get(&service)
            .unwrap_or_else(|| panic!("{service} does not run"))
    }

    /// Where a running service's HTTP listener is.
    pub fn http_addr(&self, service: ServiceName) -> SocketAddr {
        self.process(service).http_addr()
    }

    /// What a running service has logged so far (JSON lines).
    pub fn log_text(&self, service: ServiceName) -> String {
        std::fs::read_to_string(self.process(service).log()).unwrap_or_default()
    }

    /// Fails the test, with the logs, if a service it started has exited on its own.
    pub fn assert_all_running(&mut self) {
        let dead: Vec<String> = self
            .running
            .iter_mut()
            .filter_map(|(service, p)| (!p.is_running()).then(|| service.to_string()))
            .collect();
        assert!(dead.is_empty(), "these services exited: {dead:?}");
    }

    /// The test's handle on the mesh, to hand a clone to a task.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// Asks `request` of its service over NATS; the service's answer as JSON, or its
    /// refusal. Panics when nobody answers.
    pub async fn ask<R: Request>(&self, request: &R) -> Result<Value, ApiError> {
        match self.client().call(request).await {
            Ok(reply) => Ok(serde_json::to_value(reply).unwrap_or(Value::Null)),
            Err(CallError::Api(e)) => Err(e),
            Err(e) => panic!("{}.{}: {e}", R::SERVICE.request_domain(), R::VERB),
        }
    }

    /// The admin API of the plugin manager process running now, to hand to a task that goes on
    /// calling it while the test kills the process ([`AdminApi`]).
    pub fn admin_api(&self) -> AdminApi {
        AdminApi::new(
            self.http.clone(),
            format!("http://{}", self.http_addr(ServiceName::PluginManager)),
            self.config.plugin_manager.admin_token.clone(),
        )
    }

    /// `method path` on the plugin manager's admin API with the admin token; the status and
    /// the JSON answer.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.admin_api()
            .call(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Installs `plugin` as `instance` with `config` through the admin API, accepting every
    /// permission the plugin asks for; not enabled.
    pub async fn admin_install(&self, plugin: &str, instance: &str, config: Value) {
        let api = self.admin_api();
        let permissions = api
            .permissions(plugin)
            .await
            .unwrap_or_else(|e| panic!("GET plugin {plugin}: {e}"));
        let (status, body) = api
            .install(plugin, instance, config, &permissions)
            .await
            .unwrap_or_else(|e| panic!("install {instance}: {e}"));
        assert_eq!(status, 201, "install {instance}: {body}");
    }

    /// Installs the demo connector as `instance`, not enabled (it never syncs): the ETL stores
    /// only an installed instance's items, held to its grants, so a bench that publishes
    /// items itself on `connector.items.<instance>` installs the instance first. The demo
    /// connector is granted every entity type.
    pub async fn install_item_source(&self, instance: &str) {
        self.admin_install(
            "tributary.demo",
            instance,
            serde_json::json!({"schedule": "24h"}),
        )
        .await;
    }

    /// How the admin API shows `instance` now (`GET /api/v1/instances/<id>`), which must
    /// answer 200.
    pub async fn admin_instance(&self, instance: &str) -> Value {
        let (status, view) = self
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/instances/{instance}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "GET instance {instance}: {view}");
        view
    }

    /// Enables `instance` through the admin API.
    pub async fn admin_enable(&self, instance: &str) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/v1/instances/{instance}/enable"),
                None,
            )
            .await;
        assert_eq!(status, 200, "enable {instance}: {body}");
        assert_eq!(body["state"], "enabled", "{body}");
    }

    /// Disables `instance` through the admin API.
    pub async fn admin_disable(&self, instance: &str) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/v1/instances/{instance}/disable"),
                None,
            )
            .await;
        assert_eq!(status, 200, "disable {instance}: {body}");
        assert_eq!(body["state"], "disabled", "{body}");
    }

    /// `GET /search` on the search process with the API token and `params`; the status and
    /// the JSON answer.
    pub async fn search_http(&self, params: &[(&str, &str)], token: Option<&str>) -> (u16, Value) {
        let url = format!("http://{}/search", self.http_addr(ServiceName::Search));
        let mut request = self.http.get(&url).query(params);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /search: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET /search` with `params`, which must answer 200.
    pub async fn search(&self, params: &[(&str, &str)]) -> Value {
        let token = self.config.search.api_token.expose_secret().to_owned();
        let (status, body) = self.search_http(params, Some(&token)).await;
        assert_eq!(status, 200, "GET /search {params:?}: {body}");
        body
    }

    /// Waits up to `secs` until `GET /search` with `params` finds `want` hits in total.
    pub async fn wait_search_total(&self, params: &[(&str, &str)], want: u64, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let results = self.search(params).await;
            if results["total"].as_u64() == Some(want) {
                return results;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET /search {params:?} did not find {want} hits within {secs} s; last: {}",
                truncate(&results.to_string(), 2000)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many documents the index holds, from `search.stats`.
    pub async fn indexed(&self) -> u64 {
        match self.client().call(&StatsQuery {}).await {
            Ok(stats) => stats.documents,
            Err(_) => 0,
        }
    }

    /// The webhook URL the channel service serves for `instance`, once it serves it.
    pub async fn webhook_url(&self, instance: &str) -> String {
        eventually(20, &format!("a webhook route for {instance}"), || async {
            let routes = self.ask(&RoutesQuery {}).await.ok()?;
            routes["routes"]
                .as_array()?
                .iter()
                .find(|r| r["instance_id"] == instance)?["webhook_url"]
                .as_str()
                .map(str::to_owned)
        })
        .await
    }

    /// POSTs `body` to `url` with `headers`; the status and the text answered.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = self.http.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// How many messages a stream holds now.
    pub async fn stream_len(&self, key: StreamKey) -> u64 {
        let name = key.name(self.subjects());
        let mut stream = self
            .jetstream()
            .get_stream(&name)
            .await
            .unwrap_or_else(|e| panic!("stream {name}: {e}"));
        stream
            .info()
            .await
            .unwrap_or_else(|e| panic!("stream {name}: {e}"))
            .state
            .messages
    }

    /// What JetStream says of a durable consumer now: deliveries (`delivered`, redeliveries
    /// included), what is pending and what is delivered but unacked.
    pub async fn consumer_info(&self, consumer: ConsumerKey) -> jetstream::consumer::Info {
        self.jetstream()
            .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                consumer.durable_name(),
                consumer.stream().name(self.subjects()),
            )
            .await
            .unwrap_or_else(|e| panic!("consumer {}: {e}", consumer.durable_name()))
            .cached_info()
            .clone()
    }

    /// The id of every hit of `GET /search` with `params`, read page after page (as many as
    /// a page may hold), in the order found: an entity indexed twice would be in it twice.
    pub async fn search_ids(&self, params: &[(&str, &str)]) -> Vec<String> {
        let limit = tributary_proto::requests::search::MAX_LIMIT;
        let mut ids = Vec::new();
        loop {
            let offset = ids.len().to_string();
            let limit_text = limit.to_string();
            let mut page_params = params.to_vec();
            page_params.extend([("limit", limit_text.as_str()), ("offset", offset.as_str())]);
            let page = self.search(&page_params).await;
            let hits = page["hits"].as_array().cloned().unwrap_or_default();
            ids.extend(
                hits.iter()
                    .filter_map(|hit| hit["id"].as_str().map(str::to_owned)),
            );
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            if hits.len() < limit || ids.len() >= total {
                return ids;
            }
        }
    }

    /// Every message a stream holds now, in order.
    pub async fn stream_messages(&self, key: StreamKey) -> Vec<StoredMessage> {
        let js = self.jetstream();
        let stream = js
            .get_stream(key.name(self.subjects()))
            .await
            .unwrap_or_else(|e| panic!("stream {}: {e}", key.name(self.subjects())));
        let state = stream.cached_info().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(message) = stream.get_raw_message(seq).await {
                out.push(StoredMessage {
                    subject: self.subjects().unqualify(&message.subject).to_owned(),
                    json: serde_json::from_slice(&message.payload).unwrap_or(Value::Null),
                });
            }
        }
        out
    }

    /// Whether a durable consumer has handed out everything its stream holds and has every
    /// delivery acknowledged; if not, what is outstanding (or why it cannot be asked).
    pub async fn consumer_settled(&self, consumer: ConsumerKey) -> Result<(), String> {
        let found = self
            .jetstream()
            .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                consumer.durable_name(),
                consumer.stream().name(self.subjects()),
            )
            .await
            .map_err(|e| e.to_string())?;
        // Fetched with the consumer, so fresh.
        let info = found.cached_info();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} pending, {} unacked",
                info.num_pending, info.num_ack_pending
            ))
        }
    }

    /// Waits up to `secs` until a durable consumer has handed out everything its stream holds
    /// and has every delivery acknowledged.
    pub async fn wait_consumer_settled(&self, consumer: ConsumerKey, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let Err(state) = self.consumer_settled(consumer).await else {
                return;
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "consumer {} did not settle within {secs} s: {state}",
                consumer.durable_name()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The ids of the persons stored from `instance` (through its source rows).
    pub async fn person_ids(&self, instance: &str) -> std::collections::BTreeSet<String> {
        sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT p.id FROM person p JOIN source_record s ON s.entity_id = p.id \
             AND s.entity_type = 'person' WHERE s.instance_id = $1",
        )
        .bind(instance)
        .fetch_all(self.pool())
        .await
        .unwrap_or_else(|e| panic!("reading person ids: {e}"))
        .into_iter()
        .map(|id| id.to_string())
        .collect()
    }

    /// Asserts that the `n` persons of `instance` each made it exactly once everywhere,
    /// waiting up to `secs` for each stage to settle: one source row per external id and one
    /// person per source row in PostgreSQL, nothing left in the outbox or unacked, exactly one
    /// `data.PersonCreated` on the data stream per stored person (and no other event of the
    /// instance), and `n` documents of the instance in the search index.
    pub async fn assert_persons_once(&self, instance: &str, n: usize, secs: u64) {
        let persons = format!(
            "SELECT count(*) FROM person p JOIN source_record s \
             ON s.entity_id = p.id AND s.entity_type = 'person' WHERE s.instance_id = '{instance}'"
        );
        self.wait_for_rows(&persons, n as i64, Duration::from_secs(secs))
            .await;
        self.wait_consumer_settled(ConsumerKey::EtlItems, secs)
            .await;
        self.wait_for_rows("SELECT count(*) FROM outbox", 0, Duration::from_secs(secs))
            .await;
        let (rows, distinct): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT external_id) FROM source_record WHERE instance_id = $1",
        )
        .bind(instance)
        .fetch_one(self.pool())
        .await
        .unwrap_or_else(|e| panic!("counting source rows: {e}"));
        assert_eq!(
            (rows, distinct),
            (n as i64, n as i64),
            "one source row per external id"
        );
        let ids = self.person_ids(instance).await;
        assert_eq!(ids.len(), n, "one person per source row");

        self.wait_search_total(&[("source", instance)], n as u64, secs)
            .await;
        self.wait_consumer_settled(ConsumerKey::SearchIndexer, secs)
            .await;
        let found = self.search(&[("source", instance)]).await;
        assert_eq!(found["total"], n, "nothing indexed twice: {found}");

        let events: Vec<StoredMessage> = self
            .stream_messages(StreamKey::DataEvents)
            .await
            .into_iter()
            .filter(|e| e.json["source"]["instance"] == instance)
            .collect();
        let kinds: std::collections::BTreeSet<&str> =
            events.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(
            kinds,
            std::collections::BTreeSet::from(["data.PersonCreated"]),
            "only creations"
        );
        assert_eq!(events.len(), n, "one event per person, none twice");
        let announced: std::collections::BTreeSet<String> = events
            .iter()
            .filter_map(|e| e.json["entity_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(announced, ids, "each stored person announced exactly once");
    }

    /// Prints the last lines of every log of this stack to standard error.
    pub fn print_logs(&self) {
        let mut logs: Vec<PathBuf> = self
            .running
            .values()
            .chain(self.finished.iter())
            .map(|p| p.log().to_path_buf())
            .collect();
        logs.sort();
        for log in logs {
            eprintln!(
                "----- {} (last 40 lines) -----\n{}",
                log.display(),
                tail(&log, 40)
            );
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, mut process) in std::mem::take(&mut self.running) {
            process.kill();
            self.finished.push(process);
        }
        if std::thread::panicking() {
            self.print_logs();
        }
        if std::env::var_os("TRIBUTARY_E2E_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("The stack's directory is kept: {}", dir.keep().display());
            }
        }
        self.finished.clear();
        let (servers, prefix, database) = (
            self.servers.clone(),
            self.prefix.clone(),
            self.database.clone(),
        );
        let pool = self.mesh.pool().clone();
        // Its own thread and runtime: works from inside a test's runtime and after a panic.
        let cleaner = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let cleaning = async {
                        pool.close().await;
                        cleanup(&servers, &prefix, &database).await;
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(30), cleaning).await;
                });
            }
        });
        let _ = cleaner.join();
    }
}

/// Deletes the streams of `prefix` and drops `database`.
async fn cleanup(servers: &Servers, prefix: &str, database: &str) {
    let options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(3));
    if let Ok(client) = options
        .connect(tributary_kit::nats::server_urls(&servers.nats_url))
        .await
    {
        let js = jetstream::new(client);
        let mut names = js.stream_names();
        let mut ours = Vec::new();
        while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
            if name.starts_with(&format!("{prefix}_")) {
                ours.push(name);
            }
        }
        for name in ours {
            let _ = js.delete_stream(&name).await;
        }
    }
    let mut options = sqlx::postgres::PgConnectOptions::new()
        .host(&servers.pg_host)
        .port(servers.pg_port)
        .username(&servers.pg_user)
        .database("postgres");
    if !servers.pg_password.is_empty() {
        options = options.password(&servers.pg_password);
    }
    let connecting = PgConnection::connect_with(&options);
    if let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(5), connecting).await {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

/// The variable naming a configuration file for a process, as `main` reads it.
const CONFIG_FILE_VAR: &str = "TRIBUTARY_CONFIG";

/// The configuration a process started with `vars` loads: the defaults, the file
/// `TRIBUTARY_CONFIG` names, then the `TRIBUTARY__…` variables.
fn load(vars: &BTreeMap<String, String>) -> Config {
    Config::load(&ConfigSources {
        file: vars.get(CONFIG_FILE_VAR).map(PathBuf::from),
        env: Some(vars.clone().into_iter().collect()),
    })
    .unwrap_or_else(|e| panic!("the stack's configuration: {e}"))
}

async fn connect_nats(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(tributary_kit::nats::server_urls(url))
        .await
        .unwrap_or_else(|e| panic!("NATS must run at {url}: {e}"))
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}
