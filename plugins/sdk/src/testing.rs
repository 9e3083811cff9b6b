//! A test harness for plugins: a [`TestContext`] whose events are recorded and whose data is
//! in memory, and a [`FixtureServer`] that answers HTTP requests with canned responses and
//! records them.
//!
//! Available with the `testing` feature. The fixture server listens on `127.0.0.1`, so a
//! test grants `network:outbound:127.0.0.1`. A loopback address is one no plugin reaches in
//! a deployment unless the operator allows private targets, and its port is one the system
//! picks: a [`TestContext`]'s client is built with [`local_egress`], which allows both, as
//! an operator's `plugins.allow_private_network = true` would for the address itself.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tokio::sync::oneshot;
use tributary_proto::grants::Grants;
use tributary_proto::manifest::Permission;
use tributary_proto::EntityType;
use uuid::Uuid;

use crate::context::{DataReader, EventSink, PluginEvent};
use crate::http::PluginHttpBuilder;
use crate::{OutboundMessage, Participant, PluginContext, PluginError, RetryPolicy};

/// What a test's HTTP client allows beyond its grants: private targets (a fixture server on
/// `127.0.0.1`, which the test grants exactly, as an operator would with
/// `plugins.allow_private_network = true`) on any port (the one the system picked). A test
/// of what a deployment refuses turns them off again in [`TestContext::with_http`]
/// (`http.allow_private_network(false)`, `http.any_port_for_tests(false)`).
pub fn local_egress(http: PluginHttpBuilder) -> PluginHttpBuilder {
    http.allow_private_network(true).any_port_for_tests(true)
}

/// A retry policy for tests: three attempts, backing off 10 ms then at most 50 ms, honouring
/// a `Retry-After` of up to two seconds.
pub fn fast_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A plain-text message `id` with `text`, to the participants `recipients` (addresses alone)
/// in `conversation`; no subject, no reply, no status callback.
pub fn outbound_message(
    id: Uuid,
    conversation: Option<&str>,
    recipients: &[&str],
    text: &str,
) -> OutboundMessage {
    OutboundMessage {
        id,
        conversation_id: conversation.map(str::to_owned),
        recipients: recipients.iter().map(|r| Participant::new(*r)).collect(),
        subject: None,
        text: text.to_owned(),
        in_reply_to: None,
        status_callback_url: None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock has failed already; keep what it recorded.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A [`PluginContext`] for tests, with its event recorder and in-memory data.
pub struct TestContext {
    ctx: PluginContext,
    permissions: Vec<Permission>,
    config: Value,
    events: Arc<RecordingSink>,
    data: Arc<MemoryData>,
    protected_paths: Vec<std::path::PathBuf>,
}

impl TestContext {
    /// Plugin `test.plugin`, instance `test-instance`, granted `permissions` (manifest
    /// strings such as `network:outbound:127.0.0.1`), with `config`.
    ///
    /// # Panics
    ///
    /// If a permission does not parse, or the HTTP client cannot be built.
    pub fn new(permissions: &[&str], config: Value) -> Self {
        let permissions = permissions
            .iter()
            .map(|p| match p.parse::<Permission>() {
                Ok(permission) => permission,
                Err(e) => panic!("test permission `{p}` does not parse: {e}"),
            })
            .collect();
        let mut test = TestContext {
            ctx: placeholder(),
            permissions,
            config,
            events: Arc::new(RecordingSink::default()),
            data: Arc::new(MemoryData::default()),
            protected_paths: Vec::new(),
        };
        test.ctx = test.build(|b| b);
        test
    }

    /// Rebuilds the context with HTTP settings adjusted by `configure` (short timeouts, fast
    /// retries), applied after [`local_egress`]; recorded events and data are kept.
    pub fn with_http(
        mut self,
        configure: impl FnOnce(PluginHttpBuilder) -> PluginHttpBuilder,
    ) -> Self {
        self.ctx = self.build(configure);
        self
    }

    /// Rebuilds the context with [`fast_retry_policy`], so that retry tests take milliseconds.
    pub fn with_fast_retries(self) -> Self {
        self.with_http(|http| http.retry_policy(fast_retry_policy()))
    }

    /// Rebuilds the context with `paths` as the host's protected directories
    /// ([`PluginContext::protected_paths`]), as a service passes its `data_dir`.
    pub fn with_protected_paths(mut self, paths: Vec<std::path::PathBuf>) -> Self {
        self.protected_paths = paths;
        self.ctx = self.build(|b| b);
        self
    }

    /// Adds an entity the context's data reader returns.
    pub fn with_entity(self, entity: EntityType, id: Uuid, value: Value) -> Self {
        lock(&self.data.entities).insert((entity, id), value);
        self
    }

    /// The context to hand the plugin.
    pub fn ctx(&self) -> PluginContext {
        self.ctx.clone()
    }

    /// Every event emitted so far, in order.
    pub fn recorded_events(&self) -> Vec<PluginEvent> {
        lock(&self.events.events).clone()
    }

    fn build(
        &self,
        configure: impl FnOnce(PluginHttpBuilder) -> PluginHttpBuilder,
    ) -> PluginContext {
        let built = PluginContext::builder(
            "test.plugin",
            "test-instance",
            Grants::new(self.permissions.clone()),
        )
        .config(self.config.clone())
        .http(|http| configure(local_egress(http)))
        .event_sink(self.events.clone())
        .data_reader(self.data.clone())
        .protected_paths(self.protected_paths.clone())
        .build();
        match built {
            Ok(ctx) => ctx,
            Err(e) => panic!("cannot build the test context: {e}"),
        }
    }
}

/// A context that grants nothing, replaced as soon as the real one is built.
fn placeholder() -> PluginContext {
    match PluginContext::builder("test.plugin", "test-instance", Grants::default()).build() {
        Ok(ctx) => ctx,
        Err(e) => panic!("cannot build the test context: {e}"),
    }
}

/// Records every event published.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<PluginEvent>>,
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn publish(&self, event: PluginEvent) -> Result<(), PluginError> {
        lock(&self.events).push(event);
        Ok(())
    }
}

/// Entities held in memory.
#[derive(Debug, Default)]
pub struct MemoryData {
    entities: Mutex<HashMap<(EntityType, Uuid), Value>>,
}

#[async_trait]
impl DataReader for MemoryData {
    async fn get(&self, entity: EntityType, id: Uuid) -> Result<Option<Value>, PluginError> {
        Ok(lock(&self.entities).get(&(entity, id)).cloned())
    }
}

/// A canned HTTP response.
#[derive(Debug, Clone)]
pub struct Canned {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Canned {
    /// An empty response with `status`.
    pub fn status(status: u16) -> Self {
        Canned {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `body` as JSON, with `status`.
    pub fn json(status: u16, body: Value) -> Self {
        Canned::status(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits `delay` before answering, to make a client time out.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fixture server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, such as `/items`.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct FixtureState {
    /// Per path, the responses still to give; the last one repeats.
    responses: HashMap<String, VecDeque<Canned>>,
    requests: Vec<RecordedRequest>,
}

/// A local HTTP server on `127.0.0.1` with canned responses per path; stops when dropped.
///
/// A path without responses answers 404.
pub struct FixtureServer {
    addr: SocketAddr,
    state: Arc<Mutex<FixtureState>>,
    /// Dropping it stops the server.
    _shutdown: oneshot::Sender<()>,
}

impl FixtureServer {
    /// Starts a server on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(FixtureState::default()));
        let app = Router::new().fallback(answer).with_state(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "The fixture server failed.");
            }
        });
        Ok(FixtureServer {
            addr,
            state,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL followed by `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url())
    }

    /// Answers requests to `path` with `responses` in turn, then the last one again.
    pub fn respond(&self, path: &str, responses: impl IntoIterator<Item = Canned>) {
        lock(&self.state)
            .responses
            .insert(path.to_owned(), responses.into_iter().collect());
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The requests received on `path`.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn answer(
    State(state): State<Arc<Mutex<FixtureState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let canned = {
        let mut state = lock(&state);
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        state.responses.get_mut(&path).and_then(|queue| {
            if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            }
        })
    };
    let canned = canned.unwrap_or_else(|| Canned::status(404));
    if !canned.delay.is_zero() {
        tokio::time::sleep(canned.delay).await;
    }
    let mut response = Response::new(Body::from(canned.body));
    *response.status_mut() =
        StatusCode::from_u16(canned.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in canned.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
