//! The local server a test case's HTTP fixtures are served from.
//!
//! A request is matched on its method and its path with query, exactly. When several
//! fixtures match, the first not yet used answers, and once all are used the last one answers
//! again: so "403 with `Retry-After`, then 200" is two fixtures of the same request. A request
//! no fixture answers gets 404 and is remembered, and the case fails naming it.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tributary_kit::serve::LocalServer;

use super::cases::Fixture;
use super::KitError;

/// `${key}` and the value it stands for in a run.
pub type Substitutions = Vec<(String, String)>;

/// Replaces each placeholder of `substitutions` in `text`.
pub fn substitute(text: &str, substitutions: &Substitutions) -> String {
    substitutions
        .iter()
        .fold(text.to_owned(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        })
}

/// A request the plugin made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Its method.
    pub method: String,
    /// Its path and query.
    pub path: String,
    /// Whether a fixture answered it.
    pub answered: bool,
}

impl std::fmt::Display for SeenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[derive(Default)]
struct Served {
    used: Vec<bool>,
    seen: Vec<SeenRequest>,
}

struct State {
    fixtures: Vec<Fixture>,
    substitutions: Mutex<Substitutions>,
    served: Mutex<Served>,
}

/// A running fixture server; it stops when dropped.
pub struct FixtureServer {
    server: LocalServer,
    state: Arc<State>,
}

impl FixtureServer {
    /// Serves `fixtures` on a free loopback port.
    pub async fn start(fixtures: Vec<Fixture>) -> Result<Self, KitError> {
        let state = Arc::new(State {
            served: Mutex::new(Served {
                used: vec![false; fixtures.len()],
                seen: Vec::new(),
            }),
            fixtures,
            substitutions: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri| {
            let state = shared.clone();
            async move { answer(&state, &method, &uri) }
        });
        let server = LocalServer::start(app)
            .await
            .map_err(|e| KitError::Host(format!("cannot start the fixture server: {e}")))?;
        Ok(FixtureServer { server, state })
    }

    /// Its origin, `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// Sets what `${key}` placeholders in the answers become.
    pub fn set_substitutions(&self, substitutions: Substitutions) {
        if let Ok(mut current) = self.state.substitutions.lock() {
            *current = substitutions;
        }
    }

    /// The requests it received, in order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state
            .served
            .lock()
            .map(|served| served.seen.clone())
            .unwrap_or_default()
    }
}

fn answer(state: &State, method: &Method, uri: &Uri) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let Ok(mut served) = state.served.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let matching: Vec<usize> = state
        .fixtures
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.request.method.eq_ignore_ascii_case(method.as_str()) && f.request.path == path
        })
        .map(|(i, _)| i)
        .collect();
    let chosen = matching
        .iter()
        .copied()
        .find(|&i| !served.used[i])
        .or_else(|| matching.last().copied());
    served.seen.push(SeenRequest {
        method: method.to_string(),
        path: path.clone(),
        answered: chosen.is_some(),
    });
    let Some(index) = chosen else {
        let text = format!("no fixture answers {method} {path}: add one to the case, or record it with `tributary plugins test --record`\n");
        return (StatusCode::NOT_FOUND, text).into_response();
    };
    served.used[index] = true;
    drop(served);
    let substitutions = state
        .substitutions
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let response = &state.fixtures[index].response;
    let mut headers = HeaderMap::new();
    for (name, value) in &response.headers {
        let value = substitute(value, &substitutions);
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value),
        ) {
            headers.append(name, value);
        }
    }
    let body = match (&response.body, &response.json) {
        (Some(text), _) => substitute(text, &substitutions),
        (None, Some(json)) => {
            if !headers.contains_key("content-type") {
                headers.insert("content-type", HeaderValue::from_static("application/json"));
            }
            substitute(&json.to_string(), &json_escaped(&substitutions))
        }
        (None, None) => String::new(),
    };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, headers, Bytes::from(body)).into_response()
}

/// The substitutions with their values escaped for the inside of a JSON string.
fn json_escaped(substitutions: &Substitutions) -> Substitutions {
    substitutions
        .iter()
        .map(|(placeholder, value)| {
            let quoted = serde_json::to_string(value).unwrap_or_default();
            (
                placeholder.clone(),
                quoted[1..quoted.len().saturating_sub(1)].to_owned(),
            )
        })
        .collect()
}
