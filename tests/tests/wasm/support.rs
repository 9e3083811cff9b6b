//! What the wasm tests share: a stack serving the built guest plugins, an instance installed
//! and enabled through the admin API, the end of a sync, a served webhook route, and a tasks
//! API answering as `plugins/wasm/README.md` documents.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_kit::serve::LocalServer;

use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use tributary_e2e::{eventually, Stack};
use tributary_kit::testing::{guests, Events};
use tributary_plugin_sdk::signatures::meta;
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{EventKind, SyncEvent, SyncMode};
use tributary_proto::requests::channel::WebhookRequest;
use tributary_proto::requests::connector::SyncCommand;

/// How long a component may take to load in a service the first time: compiling a 12 MB
/// JavaScript component takes tens of seconds on a busy two-core machine; read back from the
/// shared cache it takes a second.
pub const FIRST_LOAD: Duration = Duration::from_secs(300);

/// A stack of the five services serving the built guest plugins, all started.
pub async fn stack() -> Stack {
    let mut stack = Stack::new().await;
    stack.serve_wasm_guests();
    // What every process is started with, read back as they read it.
    assert_eq!(
        stack.config().plugin_manager.plugin_dirs,
        [guests::guests_dir()]
    );
    assert_eq!(stack.config().wasm.cache_dir, guests::compiled_cache_dir());
    stack.start_all().await;
    stack
}

/// Installs `plugin` as `instance` with `config` through the admin API, accepting the
/// permissions it asks for, after checking that the plugin manager found it among the built
/// guests; then enables it. When it was enabled.
pub async fn install_and_enable(
    stack: &Stack,
    plugin: &str,
    instance: &str,
    config: Value,
) -> Instant {
    let (status, info) = stack
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/plugins/{plugin}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{plugin} is discovered: {info}");
    let location = info["location"].as_str().unwrap_or_default();
    assert!(
        std::path::Path::new(location).starts_with(guests::guests_dir()),
        "{plugin} is found among the built guests ({}), not at {location}",
        guests::guests_dir().display()
    );
    stack.admin_install(plugin, instance, config).await;
    let enabled = Instant::now();
    stack.admin_enable(instance).await;
    enabled
}

/// The events a sync ends with, watched before it starts.
pub struct SyncEnds {
    completed: Events,
    failed: Events,
}

impl SyncEnds {
    /// Watches `connector.SyncCompleted` and `connector.SyncFailed` from now on.
    pub async fn watch(stack: &Stack) -> Self {
        Self {
            completed: stack.watch(EventKind::Sync(SyncEvent::Completed)).await,
            failed: stack.watch(EventKind::Sync(SyncEvent::Failed)).await,
        }
    }

    /// The next `SyncCompleted` of `instance` within `within`; fails the test with the error
    /// when its sync fails instead.
    pub async fn completed(&mut self, instance: &str, within: Duration) -> Envelope<Value> {
        match self.next(instance, within).await {
            SyncEnd::Completed(done) => done,
            SyncEnd::Failed(failed) => panic!("the sync of {instance} failed: {}", failed.data),
        }
    }

    /// The next `SyncFailed` of `instance` within `within`; fails the test when its sync
    /// completes instead.
    pub async fn failed(&mut self, instance: &str, within: Duration) -> Envelope<Value> {
        match self.next(instance, within).await {
            SyncEnd::Completed(done) => {
                panic!(
                    "the sync of {instance} was to fail, and completed: {}",
                    done.data
                )
            }
            SyncEnd::Failed(failed) => failed,
        }
    }

    /// The next end of a sync of `instance`.
    async fn next(&mut self, instance: &str, within: Duration) -> SyncEnd {
        let of = |e: &Envelope<Value>| e.data["instance_id"] == instance;
        let ended = tokio::select! {
            mut done = self.completed.collect(1, within, of) => done.pop().map(SyncEnd::Completed),
            mut failed = self.failed.collect(1, within, of) => failed.pop().map(SyncEnd::Failed),
        };
        ended.unwrap_or_else(|| panic!("no sync of {instance} ended within {within:?}"))
    }
}

/// How a sync ended: its `SyncCompleted` or its `SyncFailed`.
enum SyncEnd {
    Completed(Envelope<Value>),
    Failed(Envelope<Value>),
}

/// Asks for an incremental sync of `instance` over NATS (`connector.sync`); one that just
/// ended may hold the instance a moment longer than its event, so a conflict is asked again.
pub async fn sync_now(stack: &Stack, instance: &str) {
    eventually(
        20,
        &format!("connector.sync of {instance} to be accepted"),
        || async {
            stack
                .ask(&SyncCommand {
                    instance_id: instance.to_owned(),
                    mode: SyncMode::Incremental,
                    since: None,
                })
                .await
                .ok()
        },
    )
    .await;
}

/// The webhook URL of channel `instance` once the channel process serves it (its component
/// loaded), within `within`; fails the test at once when the instance has failed instead.
pub async fn served_webhook_url(stack: &Stack, instance: &str, within: Duration) -> String {
    let what = format!("the webhook route of {instance} to be served");
    eventually(within.as_secs(), &what, || async {
        let instance_view = stack.admin_instance(instance).await;
        assert_ne!(instance_view["state"], "failed", "{instance_view}");
        let view = stack
            .ask(&WebhookRequest {
                instance_id: instance.to_owned(),
            })
            .await
            .ok()?;
        if view["served"] != true {
            return None;
        }
        view["webhook_url"].as_str().map(str::to_owned)
    })
    .await
}

/// The `x-signature` of a `com.example.js-chat` webhook: the hex HMAC-SHA256 of the body
/// under the signing secret, Meta's scheme without its `sha256=` prefix.
pub fn chat_signature(signing_secret: &str, body: &[u8]) -> String {
    let signed = meta::sign(&SecretString::from(signing_secret.to_owned()), body);
    signed
        .strip_prefix("sha256=")
        .map(str::to_owned)
        .unwrap_or(signed)
}

/// One task of the tasks API.
pub fn task(id: &str, title: &str, description: &str, updated_at: &str) -> Value {
    json!({
        "id": id,
        "title": title,
        "description": description,
        "status": "open",
        "assignee": "Ada",
        "updated_at": updated_at,
    })
}

/// A tasks API on `127.0.0.1` answering as `plugins/wasm/README.md` documents for
/// `com.example.js-tasks`: `GET /tasks?page=N[&since=<RFC 3339>]` answers
/// `{"tasks": [...], "next": N+1 | null}`, the tasks updated at or after `since` in order of
/// `updated_at`, a fixed number a page. It records every query it is asked and the status of
/// every answer, can be told to redirect every request elsewhere, and can want a bearer token
/// ([`TasksApi::start_with_bearer`]). Stops when dropped.
pub struct TasksApi {
    addr: SocketAddr,
    state: Arc<Mutex<TasksState>>,
    /// Dropping it stops the server.
    _server: LocalServer,
}

struct TasksState {
    /// By id.
    tasks: BTreeMap<String, Value>,
    page_size: usize,
    /// Where every request is redirected to (the same path and query on that base URL).
    redirect_to: Option<String>,
    /// The query of every request, in order.
    queries: Vec<String>,
    /// The status of every answer, in order.
    statuses: Vec<u16>,
    /// Whether a bearer token is good; `None`: no token is wanted. A request without a good
    /// one is answered 401, as an OAuth-protected API does.
    bearer: Option<BearerCheck>,
}

/// Whether an access token is accepted now (a provider's
/// [`accepts_access_token`](tributary_kit::testing::oauth::ProviderServer::accepts_access_token)).
pub type BearerCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl TasksApi {
    /// Serves `tasks`, `page_size` a page, on a free port.
    pub async fn start(tasks: Vec<Value>, page_size: usize) -> Self {
        Self::serve(tasks, page_size, None).await
    }

    /// Serves `tasks` like [`TasksApi::start`] to requests carrying
    /// `Authorization: Bearer <token>` with a token `check` accepts; any other is answered 401
    /// with a `WWW-Authenticate: Bearer error="invalid_token"` challenge (RFC 6750).
    pub async fn start_with_bearer(
        tasks: Vec<Value>,
        page_size: usize,
        check: BearerCheck,
    ) -> Self {
        Self::serve(tasks, page_size, Some(check)).await
    }

    async fn serve(tasks: Vec<Value>, page_size: usize, bearer: Option<BearerCheck>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(TasksState {
            tasks: tasks
                .into_iter()
                .map(|t| (t["id"].as_str().unwrap().to_owned(), t))
                .collect(),
            page_size,
            redirect_to: None,
            queries: Vec::new(),
            statuses: Vec::new(),
            bearer,
        }));
        let app = Router::new()
            .route("/tasks", get(list_tasks))
            .with_state(state.clone());
        let server = LocalServer::serve_on(listener, app).unwrap();
        Self {
            addr,
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// From now on, every request is answered with a redirect to the same path and query on
    /// `base_url`.
    pub fn redirect_to(&self, base_url: String) {
        self.state.lock().unwrap().redirect_to = Some(base_url);
    }

    /// The query of every request so far, in order.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().unwrap().queries.clone()
    }

    /// How many answers so far had `status`.
    pub fn answered(&self, status: u16) -> usize {
        let state = self.state.lock().unwrap();
        state.statuses.iter().filter(|s| **s == status).count()
    }

    /// The status of every answer so far, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.state.lock().unwrap().statuses.clone()
    }
}

async fn list_tasks(
    State(state): State<Arc<Mutex<TasksState>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let mut state = state.lock().unwrap();
    state.queries.push(query.clone());
    let response = answer(&state, &headers, &query);
    state.statuses.push(response.status().as_u16());
    response
}

/// The answer to `GET /tasks?<query>`.
fn answer(state: &TasksState, headers: &HeaderMap, query: &str) -> Response {
    if let Some(check) = &state.bearer {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !token.is_some_and(|t| check(t)) {
            return (
                StatusCode::UNAUTHORIZED,
                [(WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
                "the access token is missing, expired or revoked",
            )
                .into_response();
        }
    }
    if let Some(base) = &state.redirect_to {
        return Redirect::temporary(&format!("{base}/tasks?{query}")).into_response();
    }
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let Some(page) = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
    else {
        return (
            StatusCode::BAD_REQUEST,
            "`page` must be a page number from 1",
        )
            .into_response();
    };
    let since = match params.get("since").map(|s| DateTime::parse_from_rfc3339(s)) {
        None => None,
        Some(Ok(since)) => Some(since.with_timezone(&Utc)),
        Some(Err(e)) => {
            return (StatusCode::BAD_REQUEST, format!("`since`: {e}")).into_response();
        }
    };
    let updated =
        |t: &Value| -> DateTime<Utc> { t["updated_at"].as_str().unwrap().parse().unwrap() };
    let mut tasks: Vec<&Value> = state
        .tasks
        .values()
        .filter(|t| since.is_none_or(|since| updated(t) >= since))
        .collect();
    tasks.sort_by_key(|t| updated(t));
    let start = (page - 1) * state.page_size;
    let this_page: Vec<&Value> = tasks
        .iter()
        .skip(start)
        .take(state.page_size)
        .copied()
        .collect();
    let next = (start + state.page_size < tasks.len()).then_some(page + 1);
    Json(json!({"tasks": this_page, "next": next})).into_response()
}
