//! The services a channel test runs (the real plugin manager and channel service, and the
//! ETL when asked, on this test's NATS prefix and database) and signed requests to send them;
//! the test drives the mesh through kit's one handle ([`Mesh`]), which [`Harness`] derefs to.

use std::ops::Deref;
use std::time::Duration;

use serde_json::Value;
use tributary_channel::api::RoutesQuery;
use tributary_kit::testing::{Accept, Mesh, RunningService, TestEnv};
use tributary_proto::events::{CommunicationEvent, EventKind};

/// A request to a webhook route: path below the route's base URL, headers and body.
#[derive(Debug, Clone)]
pub struct Signed {
    /// `/webhooks/<channel>/<instance>` and any query string.
    pub path: String,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Signed {
    /// A request to `path` with `headers` and `body`.
    pub fn new(path: &str, headers: Vec<(&str, String)>, body: impl Into<Vec<u8>>) -> Self {
        Signed {
            path: path.to_owned(),
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
            body: body.into(),
        }
    }

    /// The same request sent to another path (another instance's route).
    pub fn to(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// The same request with another body and the same headers (so the old signature).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// The running services of one test, and its handle on the mesh (install, enable, watch,
/// wait for rows), which the harness derefs to.
pub struct Harness {
    pub env: TestEnv,
    /// The test's handle on the mesh.
    pub mesh: Mesh,
    pub plugin_manager: Option<RunningService>,
    pub channel: Option<RunningService>,
    pub etl: Option<RunningService>,
    pub http: reqwest::Client,
}

impl Deref for Harness {
    type Target = Mesh;

    fn deref(&self) -> &Mesh {
        &self.mesh
    }
}

impl Harness {
    /// The plugin manager and the channel service, and the ETL when `with_etl`.
    pub async fn start(with_etl: bool) -> Self {
        Self::start_with(with_etl, |_| {}).await
    }

    /// [`Harness::start`] with the configuration adjusted by `adjust` first.
    pub async fn start_with(with_etl: bool, adjust: impl FnOnce(&mut TestEnv)) -> Self {
        let mut env = TestEnv::new().await;
        adjust(&mut env);
        let plugin_manager =
            RunningService::start(tributary_plugin_manager::build, env.config.clone()).await;
        let etl = if with_etl {
            Some(RunningService::start(tributary_etl::build, env.config.clone()).await)
        } else {
            None
        };
        let channel = RunningService::start(tributary_channel::build, env.config.clone()).await;
        Harness {
            mesh: Mesh::of(&env).await,
            env,
            plugin_manager: Some(plugin_manager),
            channel: Some(channel),
            etl,
            http: reqwest::Client::new(),
        }
    }

    /// Stops everything.
    pub async fn stop(mut self) {
        for service in [
            self.channel.take(),
            self.etl.take(),
            self.plugin_manager.take(),
        ]
        .into_iter()
        .flatten()
        {
            service.stop().await;
        }
    }

    /// The channel service's base URL.
    pub fn base_url(&self) -> String {
        let addr = self
            .channel
            .as_ref()
            .expect("the channel service runs")
            .http_addr;
        format!("http://{addr}")
    }

    /// Installs `plugin` as `instance` with `config` and every permission accepted, enables
    /// it, and waits until the channel service serves it.
    pub async fn serve(&self, plugin: &str, instance: &str, config: Value) {
        self.serve_within(plugin, instance, config, Duration::from_secs(10))
            .await;
    }

    /// [`Harness::serve`], waiting up to `within` for the route (a WebAssembly plugin's first
    /// route compiles its component when the shared cache does not have it yet).
    pub async fn serve_within(
        &self,
        plugin: &str,
        instance: &str,
        config: Value,
        within: Duration,
    ) {
        self.install(plugin, instance, config, Accept::Requested)
            .await;
        self.enable(instance).await;
        self.wait_route_within(instance, true, within).await;
    }

    /// Waits until the channel service serves `instance` (or, with `served` false, stops).
    pub async fn wait_route(&self, instance: &str, served: bool) {
        self.wait_route_within(instance, served, Duration::from_secs(10))
            .await;
    }

    /// [`Harness::wait_route`], for up to `within`.
    pub async fn wait_route_within(&self, instance: &str, served: bool, within: Duration) {
        let client = self.client();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let routes: Value = match client.call(&RoutesQuery {}).await {
                Ok(routes) => serde_json::to_value(routes).unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let found = routes["routes"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["instance_id"] == instance));
            if found == served {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{instance} is {}served after {within:?}",
                if served { "not " } else { "still " }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `request` to the channel service; the status and body.
    pub async fn post(&self, request: &Signed) -> (u16, String) {
        let mut builder = self
            .http
            .post(format!("{}{}", self.base_url(), request.path))
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// How many webhooks of `instance` the inbound stream holds.
    pub async fn stored_webhooks(&self, channel: &str, instance: &str) -> u64 {
        self.stored_on(&format!("channel.inbound.{channel}.{instance}"))
            .await
    }

    /// How many `communication.<event>` events the stream holds.
    pub async fn stored_events(&self, event: CommunicationEvent) -> u64 {
        self.stored_on(&EventKind::Communication(event).subject())
            .await
    }
}

/// Now, as a Unix timestamp in seconds.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}
