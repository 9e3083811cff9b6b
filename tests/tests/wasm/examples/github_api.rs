//! A local server answering as GitHub's REST API documents the two lists
//! `com.example.github-issues` reads, for one repository:
//!
//! - `GET /repos/{owner}/{repo}/issues`: `state` (`open` by default, `closed`, `all`), `since`
//!   (updated at or after), `sort` (`created` by default, `updated`, `comments`), `direction`
//!   (`desc` by default), `per_page` (30 by default, at most 100) and `page`;
//! - `GET /repos/{owner}/{repo}/issues/comments`: `sort` (`created` by default, `updated`),
//!   `direction` (`asc` by default), `since`, `per_page`, `page`;
//!
//! each paged by a `Link` header (`first`, `prev`, `next`, `last`), with the `x-ratelimit-*`
//! headers. A request needs a `User-Agent` (403 without, as GitHub says) and the token as
//! `Authorization: Bearer` (or `token`); another is `401 Bad credentials`. A rate limit can be
//! queued for a list: a primary one (403, `x-ratelimit-remaining: 0`, `x-ratelimit-reset` a
//! moment ahead) or a secondary one (403 with `retry-after`), answered to the list's next
//! request instead of the page. Every request is recorded.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tributary_kit::serve::LocalServer;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The REST API version GitHub answers with.
const API_VERSION: &str = "2022-11-28";

/// A rate limit answered instead of a list's next page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    /// The primary limit exhausted: 403 with `x-ratelimit-remaining: 0` and
    /// `x-ratelimit-reset` this far ahead, rounded up to the next whole second as GitHub's
    /// epoch seconds are.
    Primary(Duration),
    /// A secondary limit: 403 with `retry-after` this many seconds.
    Secondary(u64),
}

/// Which list a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum List {
    Issues,
    Comments,
}

/// A request the API answered.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub list: List,
    /// Its query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Its headers, names lower-case.
    pub headers: BTreeMap<String, String>,
    /// When it arrived, by the system clock (the one `x-ratelimit-reset` counts on).
    pub at: SystemTime,
    pub status: u16,
    /// The `x-ratelimit-reset` of a primary rate limit answered, in epoch seconds.
    pub reset: Option<u64>,
}

struct ApiState {
    /// `http://127.0.0.1:<port>`, what `Link` URLs start with.
    base_url: String,
    owner: String,
    repo: String,
    token: String,
    /// By number.
    issues: BTreeMap<u64, Value>,
    /// By id.
    comments: BTreeMap<u64, Value>,
    limits: BTreeMap<List, VecDeque<RateLimit>>,
    requests: Vec<ApiRequest>,
    served: u64,
}

/// The server; stops when dropped.
pub struct GitHubApi {
    addr: SocketAddr,
    state: Arc<Mutex<ApiState>>,
    _server: LocalServer,
}

impl GitHubApi {
    /// Serves repository `owner/repo` (no issues yet) to whoever has `token`, on a free port.
    pub async fn start(owner: &str, repo: &str, token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ApiState {
            base_url: format!("http://{addr}"),
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            token: token.to_owned(),
            issues: BTreeMap::new(),
            comments: BTreeMap::new(),
            limits: BTreeMap::new(),
            requests: Vec::new(),
            served: 0,
        }));
        let app = Router::new()
            .route("/repos/{owner}/{repo}/issues", get(list_issues))
            .route("/repos/{owner}/{repo}/issues/comments", get(list_comments))
            .with_state(state.clone());
        let server = LocalServer::serve_on(listener, app).unwrap();
        Self {
            addr,
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:<port>`: the instance's `baseUrl`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds or replaces an issue (or pull request), by its `number`.
    pub fn put_issue(&self, issue: Value) {
        let number = issue["number"].as_u64().unwrap();
        self.state.lock().unwrap().issues.insert(number, issue);
    }

    /// Adds or replaces a comment, by its `id`.
    pub fn put_comment(&self, comment: Value) {
        let id = comment["id"].as_u64().unwrap();
        self.state.lock().unwrap().comments.insert(id, comment);
    }

    /// Answers the next request for `list` with `limit` instead of its page.
    pub fn limit_next(&self, list: List, limit: RateLimit) {
        self.state
            .lock()
            .unwrap()
            .limits
            .entry(list)
            .or_default()
            .push_back(limit);
    }

    /// The requests answered since the last call.
    pub fn take_requests(&self) -> Vec<ApiRequest> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }
}

/// A GitHub error answer.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, Json(body)).into_response()
}

fn epoch_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn time(value: &Value, field: &str) -> DateTime<Utc> {
    value[field].as_str().unwrap().parse().unwrap()
}

/// What both lists share: the checks, the rate limits, paging and the headers.
fn answer(
    state: &Arc<Mutex<ApiState>>,
    list: List,
    (owner, repo): (String, String),
    query: Option<String>,
    headers: &HeaderMap,
    select: impl FnOnce(&ApiState, &BTreeMap<String, String>) -> Result<Vec<Value>, String>,
) -> Response {
    let at = SystemTime::now();
    let raw_query = query.unwrap_or_default();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let params: BTreeMap<String, String> = query.iter().cloned().collect();
    let recorded: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut state = state.lock().unwrap();
    let mut reset = None;
    let response = (|| {
        if !recorded.contains_key("user-agent") {
            return error(
                StatusCode::FORBIDDEN,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
            );
        }
        let authorization = recorded.get("authorization").map(String::as_str);
        let bearer = format!("Bearer {}", state.token);
        let classic = format!("token {}", state.token);
        if authorization != Some(bearer.as_str()) && authorization != Some(classic.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "Bad credentials");
        }
        if owner != state.owner || repo != state.repo {
            return error(StatusCode::NOT_FOUND, "Not Found");
        }
        let limit = state.limits.get_mut(&list).and_then(VecDeque::pop_front);
        match limit {
            Some(RateLimit::Primary(ahead)) => {
                let at_reset = epoch_secs(at + ahead) + 1;
                reset = Some(at_reset);
                let mut response = error(
                    StatusCode::FORBIDDEN,
                    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID 8B9A:1F0E:2C3D4E:5F6A7B:661E2A00.",
                );
                for (name, value) in [
                    ("x-ratelimit-limit", "5000".to_owned()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", at_reset.to_string()),
                    ("x-ratelimit-used", "5000".to_owned()),
                    ("x-ratelimit-resource", "core".to_owned()),
                ] {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                return response;
            }
            Some(RateLimit::Secondary(seconds)) => {
                let mut response = error(
                    StatusCode::FORBIDDEN,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 8B9A:1F0E:2C3D4E:5F6A7B:661E2A01.",
                );
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
                return response;
            }
            None => {}
        }
        let selected = match select(&state, &params) {
            Ok(selected) => selected,
            Err(message) => return error(StatusCode::UNPROCESSABLE_ENTITY, &message),
        };
        let per_page = params
            .get("per_page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page = params
            .get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let last = selected.len().div_ceil(per_page).max(1);
        let this_page: Vec<Value> = selected
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let path = match list {
            List::Issues => format!("/repos/{owner}/{repo}/issues"),
            List::Comments => format!("/repos/{owner}/{repo}/issues/comments"),
        };
        let link_to = |n: usize| {
            let mut params: Vec<(String, String)> =
                query.iter().filter(|(k, _)| k != "page").cloned().collect();
            params.push(("page".to_owned(), n.to_string()));
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            format!("<{}{path}?{query}>", state.base_url)
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
        }
        if page < last {
            links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
            links.push(format!("{}; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            links.push(format!("{}; rel=\"first\"", link_to(1)));
        }
        state.served += 1;
        let mut response = Json(this_page).into_response();
        let reset_at = epoch_secs(at) + 3600;
        let mut headers = vec![
            ("content-type", "application/json; charset=utf-8".to_owned()),
            ("x-github-api-version-selected", API_VERSION.to_owned()),
            ("x-github-media-type", "github.v3; format=json".to_owned()),
            ("x-ratelimit-limit", "5000".to_owned()),
            ("x-ratelimit-remaining", (5000 - state.served).to_string()),
            ("x-ratelimit-reset", reset_at.to_string()),
            ("x-ratelimit-used", state.served.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
        ];
        if !links.is_empty() {
            headers.push(("link", links.join(", ")));
        }
        for (name, value) in headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    })();
    state.requests.push(ApiRequest {
        list,
        query,
        headers: recorded,
        at,
        status: response.status().as_u16(),
        reset,
    });
    response
}

/// `since` read as GitHub reads it (ISO 8601), or the 422 it answers.
fn since_of(params: &BTreeMap<String, String>) -> Result<Option<DateTime<Utc>>, String> {
    params
        .get("since")
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("Validation Failed: since {s:?}: {e}"))
        })
        .transpose()
}

/// Sorts `values` by `sort` (a field) in `direction`, ties by `tie`.
fn sort_by(values: &mut [Value], sort: &str, descending: bool, tie: &str) {
    values.sort_by(|a, b| {
        let key = |v: &Value| match sort {
            "comments" => (v["comments"].as_i64().unwrap_or(0), 0, v[tie].as_u64()),
            field => (0, time(v, field).timestamp_millis(), v[tie].as_u64()),
        };
        let order = key(a).cmp(&key(b));
        if descending {
            order.reverse()
        } else {
            order
        }
    });
}

async fn list_issues(
    State(state): State<Arc<Mutex<ApiState>>>,
    Path(repository): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(
        &state,
        List::Issues,
        repository,
        query,
        &headers,
        |state, params| {
            let since = since_of(params)?;
            let wanted = params.get("state").map_or("open", String::as_str);
            if !["open", "closed", "all"].contains(&wanted) {
                return Err(format!("Validation Failed: state {wanted:?}"));
            }
            let mut issues: Vec<Value> = state
                .issues
                .values()
                .filter(|i| wanted == "all" || i["state"] == wanted)
                .filter(|i| since.is_none_or(|since| time(i, "updated_at") >= since))
                .cloned()
                .collect();
            let sort = match params.get("sort").map_or("created", String::as_str) {
                "created" => "created_at",
                "updated" => "updated_at",
                "comments" => "comments",
                other => return Err(format!("Validation Failed: sort {other:?}")),
            };
            let descending = params.get("direction").map_or("desc", String::as_str) == "desc";
            sort_by(&mut issues, sort, descending, "number");
            Ok(issues)
        },
    )
}

async fn list_comments(
    State(state): State<Arc<Mutex<ApiState>>>,
    Path(repository): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(
        &state,
        List::Comments,
        repository,
        query,
        &headers,
        |state, params| {
            let since = since_of(params)?;
            let mut comments: Vec<Value> = state
                .comments
                .values()
                .filter(|c| since.is_none_or(|since| time(c, "updated_at") >= since))
                .cloned()
                .collect();
            let sort = match params.get("sort").map_or("created", String::as_str) {
                "created" => "created_at",
                "updated" => "updated_at",
                other => return Err(format!("Validation Failed: sort {other:?}")),
            };
            let descending = params.get("direction").map_or("asc", String::as_str) == "desc";
            sort_by(&mut comments, sort, descending, "id");
            Ok(comments)
        },
    )
}

/// A GitHub user object (the simple user of the issues API).
pub fn user(login: &str, id: u64, kind: &str) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("https://api.github.com/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("https://api.github.com/users/{login}/followers"),
        "repos_url": format!("https://api.github.com/users/{login}/repos"),
        "type": kind,
        "site_admin": false,
    })
}

/// GitHub's timestamp format.
pub fn github_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An issue of `owner/repo` as the issues API lists it; a pull request when `pull_request`.
#[allow(clippy::too_many_arguments)]
pub fn issue(
    repository: &str,
    number: u64,
    title: &str,
    body: &str,
    author: &Value,
    (created, updated): (DateTime<Utc>, DateTime<Utc>),
    closed: bool,
    pull_request: bool,
) -> Value {
    let api = format!("https://api.github.com/repos/{repository}");
    let kind = if pull_request { "pull" } else { "issues" };
    let mut issue = json!({
        "id": 1_000_000 + number,
        "node_id": format!("I_kwDOAbc{number}"),
        "url": format!("{api}/issues/{number}"),
        "repository_url": api,
        "labels_url": format!("{api}/issues/{number}/labels{{/name}}"),
        "comments_url": format!("{api}/issues/{number}/comments"),
        "events_url": format!("{api}/issues/{number}/events"),
        "html_url": format!("https://github.com/{repository}/{kind}/{number}"),
        "number": number,
        "state": if closed { "closed" } else { "open" },
        "state_reason": if closed { json!("completed") } else { Value::Null },
        "title": title,
        "body": body,
        "user": author,
        "labels": [],
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "locked": false,
        "active_lock_reason": null,
        "comments": 0,
        "closed_at": if closed { json!(github_time(updated)) } else { Value::Null },
        "created_at": github_time(created),
        "updated_at": github_time(updated),
        "closed_by": if closed { author.clone() } else { Value::Null },
        "author_association": "MEMBER",
    });
    if pull_request {
        issue["pull_request"] = json!({
            "url": format!("{api}/pulls/{number}"),
            "html_url": format!("https://github.com/{repository}/pull/{number}"),
            "diff_url": format!("https://github.com/{repository}/pull/{number}.diff"),
            "patch_url": format!("https://github.com/{repository}/pull/{number}.patch"),
            "merged_at": null,
        });
    }
    issue
}

/// A comment on issue `number` as the issue comments API lists it; `author` null for a
/// deleted account.
pub fn comment(
    repository: &str,
    id: u64,
    number: u64,
    body: &str,
    author: Value,
    (created, updated): (DateTime<Utc>, DateTime<Utc>),
) -> Value {
    let api = format!("https://api.github.com/repos/{repository}");
    json!({
        "id": id,
        "node_id": format!("IC_kwDOAbc{id}"),
        "url": format!("{api}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{repository}/issues/{number}#issuecomment-{id}"),
        "body": body,
        "user": author,
        "created_at": github_time(created),
        "updated_at": github_time(updated),
        "issue_url": format!("{api}/issues/{number}"),
        "author_association": "CONTRIBUTOR",
    })
}
