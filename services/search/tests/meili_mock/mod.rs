//! A small in-memory Meilisearch serving the documented HTTP API on 127.0.0.1:0, recording every
//! request. Writes answer `202` with a summarized task and take effect at once; `GET /tasks/{uid}`
//! answers `processing` on the first poll and the finished task object after, and so does
//! `GET /tasks?uids=…` for each task it lists. With [`MockMeili::hold`], document tasks stay
//! `enqueued` (their documents unwritten) until [`MockMeili::process`] runs them, in order, as
//! Meilisearch's scheduler would. Filters are evaluated only as far as the backend uses them
//! (`id IN [...]`, `deleted = false`), search matches whole words case-insensitively, and
//! cropping keeps `cropLength` words from a little before the first match.

// Each test binary that includes it uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sha2::Digest;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl Recorded {
    /// `METHOD /path[?query]`.
    pub fn line(&self) -> String {
        match &self.query {
            Some(q) => format!("{} {}?{q}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

#[derive(Debug, Default)]
struct Index {
    settings: Map<String, Value>,
    documents: BTreeMap<String, Value>,
}

#[derive(Debug, Default)]
struct Inner {
    api_key: Option<String>,
    /// The master key: it alone may manage keys (besides keys granted `keys.*` or `*`).
    master_key: Option<String>,
    /// The API keys made with `POST /keys`, as Meilisearch shows them.
    keys: Vec<Value>,
    requests: Vec<Recorded>,
    indexes: BTreeMap<String, Index>,
    tasks: Vec<Value>,
    polls: HashMap<u64, u32>,
    /// The next task of this type fails with this code and message.
    fail_next: Option<(String, String, String)>,
    /// The next task of this type is cancelled.
    cancel_next: Option<String>,
    /// Tasks never finish.
    stalled: bool,
    /// Document tasks wait in `queue` until processed.
    holding: bool,
    /// Held document tasks, oldest first: their uid and what running them does.
    queue: VecDeque<(u64, Held)>,
    /// A document task with a document whose title holds this word fails.
    refused_word: Option<String>,
    /// The version `GET /version` answers; `None`: 1.50.0.
    version: Option<String>,
}

/// What a held task does when it is processed.
enum Held {
    Cancel,
    Fail(String, String),
    Run(Box<dyn FnOnce(&mut Inner) -> Effect + Send>),
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

type Shared = Arc<Mutex<Inner>>;

/// The running mock.
pub struct MockMeili {
    pub url: String,
    inner: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockMeili {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockMeili {
    /// Serves on a free port; with a key, every request must carry `Authorization: Bearer key`.
    pub async fn start(api_key: Option<&str>) -> MockMeili {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            api_key: api_key.map(str::to_owned),
            ..Inner::default()
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockMeili { url, inner, server }
    }

    /// Serves on a free port with a master key, as Meilisearch in production: every request
    /// must carry the master key or a key made with `POST /keys`, and only the master key and
    /// keys granted `*` or `keys.*` may use `/keys`.
    pub async fn start_with_master(master_key: &str) -> MockMeili {
        let mock = MockMeili::start(None).await;
        mock.lock().master_key = Some(master_key.to_owned());
        mock
    }

    /// The API keys made so far, as `GET /keys` shows them.
    pub fn keys(&self) -> Vec<Value> {
        self.lock().keys.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests so far, leaving out the task polls.
    pub fn calls(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| !r.path.starts_with("/tasks"))
            .collect()
    }

    /// From now on document tasks wait until [`MockMeili::process`] runs them.
    pub fn hold(&self) {
        self.lock().holding = true;
    }

    /// Document tasks enqueued and not yet processed.
    pub fn held(&self) -> usize {
        self.lock().queue.len()
    }

    /// Runs the `n` oldest held document tasks, in order.
    pub fn process(&self, n: usize) {
        let mut inner = self.lock();
        for _ in 0..n {
            let Some((uid, held)) = inner.queue.pop_front() else {
                break;
            };
            let (status, details, err) = match held {
                Held::Cancel => ("canceled", json!({}), Value::Null),
                Held::Fail(code, message) => ("failed", json!({}), task_error(&code, &message)),
                Held::Run(effect) => match effect(&mut inner) {
                    Ok(details) => ("succeeded", details, Value::Null),
                    Err((code, message)) => ("failed", json!({}), task_error(&code, &message)),
                },
            };
            let at = now();
            let task = &mut inner.tasks[uid as usize];
            task["status"] = json!(status);
            task["details"] = details;
            task["error"] = err;
            task["startedAt"] = json!(at);
            task["finishedAt"] = json!(at);
            task["duration"] = json!("PT0.001S");
            if status == "canceled" {
                task["canceledBy"] = json!(uid + 1000);
            }
        }
    }

    /// Answers `GET /version` with `version` from now on.
    pub fn answer_version(&self, version: &str) {
        self.lock().version = Some(version.to_owned());
    }

    /// From now on a document task fails (`invalid_document_fields`) when the title of one of
    /// its documents holds `word`.
    pub fn refuse_word(&self, word: &str) {
        self.lock().refused_word = Some(word.to_owned());
    }

    /// The `GET /tasks` polls so far.
    pub fn task_polls(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/tasks")
            .collect()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.lock().requests.clear();
    }

    /// The next task of `task_type` fails with `code` and `message`.
    pub fn fail_next(&self, task_type: &str, code: &str, message: &str) {
        self.lock().fail_next = Some((task_type.into(), code.into(), message.into()));
    }

    /// The next task of `task_type` is cancelled.
    pub fn cancel_next(&self, task_type: &str) {
        self.lock().cancel_next = Some(task_type.into());
    }

    /// From now on tasks stay `processing`.
    pub fn stall(&self) {
        self.lock().stalled = true;
    }

    /// The uids of the indexes.
    pub fn index_uids(&self) -> Vec<String> {
        self.lock().indexes.keys().cloned().collect()
    }

    /// An index's documents by id.
    pub fn documents(&self, index: &str) -> BTreeMap<String, Value> {
        self.lock().indexes[index].documents.clone()
    }

    /// An index's settings.
    pub fn settings(&self, index: &str) -> Map<String, Value> {
        self.lock().indexes[index].settings.clone()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let kind = if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        "auth"
    } else {
        "invalid_request"
    };
    let body = json!({"message": message, "code": code, "type": kind,
        "link": format!("https://docs.meilisearch.com/errors#{code}")});
    (status, Json(body)).into_response()
}

fn not_found(uid: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "index_not_found",
        &format!("Index `{uid}` not found."),
    )
}

/// The outcome of a task: its details, or an error code and message.
type Effect = Result<Value, (String, String)>;

/// Records a task (processed at once, shown as finished from the second poll on) and answers
/// with its summarized view. A failure or cancellation asked for takes the place of `effect`.
fn enqueue(
    inner: &mut Inner,
    kind: &str,
    index: Option<&str>,
    effect: impl FnOnce(&mut Inner) -> Effect,
) -> Response {
    let uid = inner.tasks.len() as u64;
    let mut canceled_by = Value::Null;
    let (status, details, err) = if inner.cancel_next.as_deref() == Some(kind) {
        inner.cancel_next = None;
        canceled_by = json!(uid + 1000);
        ("canceled", json!({}), Value::Null)
    } else if inner.fail_next.as_ref().is_some_and(|(t, _, _)| t == kind) {
        let (_, code, message) = inner.fail_next.take().unwrap();
        ("failed", json!({}), task_error(&code, &message))
    } else {
        match effect(inner) {
            Ok(details) => ("succeeded", details, Value::Null),
            Err((code, message)) => ("failed", json!({}), task_error(&code, &message)),
        }
    };
    let at = now();
    inner.tasks.push(json!({
        "uid": uid, "batchUid": uid, "indexUid": index, "status": status, "type": kind,
        "canceledBy": canceled_by, "details": details, "error": err, "duration": "PT0.001S",
        "enqueuedAt": at, "startedAt": at, "finishedAt": at,
    }));
    let summary = json!({"taskUid": uid, "indexUid": index, "status": "enqueued",
        "type": kind, "enqueuedAt": at});
    (StatusCode::ACCEPTED, Json(summary)).into_response()
}

fn task_error(code: &str, message: &str) -> Value {
    json!({"message": message, "code": code, "type": "invalid_request",
        "link": format!("https://docs.meilisearch.com/errors#{code}")})
}

/// Enqueues a document task; held, it runs when processed, else at once.
fn enqueue_documents(inner: &mut Inner, uid: &str, body: Value) -> Response {
    let kind = "documentAdditionOrUpdate";
    let index = uid.to_owned();
    let refused = inner.refused_word.clone();
    let effect = move |inner: &mut Inner| -> Effect {
        let docs = body.as_array().cloned().unwrap_or_default();
        if let Some(word) = refused {
            if let Some(doc) = docs
                .iter()
                .find(|d| d["title"].as_str().is_some_and(|t| t.contains(&word)))
            {
                return Err((
                    "invalid_document_fields".into(),
                    format!(
                        "Document `{}` is refused: its title holds `{word}`.",
                        doc["id"]
                    ),
                ));
            }
        }
        let index = inner.indexes.entry(index).or_insert_with(new_index);
        for doc in &docs {
            let id = match &doc["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            index.documents.insert(id, doc.clone());
        }
        Ok(json!({"receivedDocuments": docs.len(), "indexedDocuments": docs.len()}))
    };
    if !inner.holding {
        return enqueue(inner, kind, Some(uid), effect);
    }
    let task_uid = inner.tasks.len() as u64;
    let held = if inner.cancel_next.as_deref() == Some(kind) {
        inner.cancel_next = None;
        Held::Cancel
    } else if inner.fail_next.as_ref().is_some_and(|(t, _, _)| t == kind) {
        let (_, code, message) = inner.fail_next.take().unwrap();
        Held::Fail(code, message)
    } else {
        Held::Run(Box::new(effect))
    };
    inner.queue.push_back((task_uid, held));
    let at = now();
    inner.tasks.push(json!({
        "uid": task_uid, "batchUid": null, "indexUid": uid, "status": "enqueued", "type": kind,
        "canceledBy": null, "details": {}, "error": null, "duration": null,
        "enqueuedAt": at, "startedAt": null, "finishedAt": null,
    }));
    let summary = json!({"taskUid": task_uid, "indexUid": uid, "status": "enqueued",
        "type": kind, "enqueuedAt": at});
    (StatusCode::ACCEPTED, Json(summary)).into_response()
}

/// `GET /tasks?uids=…&limit=…`: the tasks named, newest first, as `GET /tasks/{uid}` shows each.
fn list_tasks(inner: &mut Inner, query: Option<&str>) -> Response {
    let mut uids: Vec<u64> = Vec::new();
    let mut limit = 20;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("uids", list)) => uids = list.split(',').filter_map(|u| u.parse().ok()).collect(),
            Some(("limit", n)) => limit = n.parse().unwrap_or(20),
            _ => {}
        }
    }
    uids.sort_unstable_by(|a, b| b.cmp(a));
    let mut results = Vec::new();
    for uid in uids.iter().take(limit) {
        if let Some(task) = shown_task(inner, *uid) {
            results.push(task);
        }
    }
    Json(
        json!({"results": results, "total": results.len(), "limit": limit, "from": uids.first(),
        "next": null}),
    )
    .into_response()
}

/// A task as a poll shows it: `processing` the first time a finished task is polled.
fn shown_task(inner: &mut Inner, uid: u64) -> Option<Value> {
    let mut task = inner.tasks.get(uid as usize)?.clone();
    let polls = inner.polls.entry(uid).or_insert(0);
    *polls += 1;
    let finished = !matches!(task["status"].as_str(), Some("enqueued" | "processing"));
    if finished && (*polls == 1 || inner.stalled) {
        task["status"] = json!("processing");
        task["error"] = Value::Null;
        task["finishedAt"] = Value::Null;
        task["duration"] = Value::Null;
    }
    Some(task)
}

fn get_task(inner: &mut Inner, uid: &str) -> Response {
    let Some(task) = uid
        .parse::<u64>()
        .ok()
        .and_then(|u| inner.tasks.get(u as usize))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "task_not_found",
            &format!("Task `{uid}` not found."),
        );
    };
    let mut task = task.clone();
    let uid = task["uid"].as_u64().unwrap();
    let polls = inner.polls.entry(uid).or_insert(0);
    *polls += 1;
    if *polls == 1 || inner.stalled {
        task["status"] = json!("processing");
        task["error"] = Value::Null;
        task["finishedAt"] = Value::Null;
        task["duration"] = Value::Null;
    }
    Json(task).into_response()
}

/// The ids in `id IN ["a", "b"]`.
fn ids_in(filter: &str) -> Option<Vec<String>> {
    let list = filter.strip_prefix("id IN [")?.strip_suffix(']')?;
    Some(
        list.split(',')
            .map(|id| id.trim().trim_matches('"').to_owned())
            .filter(|id| !id.is_empty())
            .collect(),
    )
}

/// Whether `attribute` is filterable: named on its own, or among the `attributePatterns` of a
/// granular entry with equality filters on.
fn filterable(index: &Index, attribute: &str) -> bool {
    index.settings["filterableAttributes"]
        .as_array()
        .is_some_and(|a| {
            a.iter().any(|v| {
                v == attribute
                    || (v["attributePatterns"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|p| p == attribute))
                        && v["features"]["filter"]["equality"] == true)
            })
        })
}

fn project(doc: &Value, fields: Option<&Value>) -> Value {
    match fields.and_then(Value::as_array) {
        Some(fields) if !fields.iter().any(|f| f == "*") => {
            let mut out = Map::new();
            for field in fields.iter().filter_map(Value::as_str) {
                if let Some(v) = doc.get(field) {
                    out.insert(field.to_owned(), v.clone());
                }
            }
            Value::Object(out)
        }
        _ => doc.clone(),
    }
}

fn fetch(inner: &Inner, uid: &str, body: &Value) -> Response {
    let Some(index) = inner.indexes.get(uid) else {
        return not_found(uid);
    };
    let filter = body["filter"].as_str().unwrap_or("");
    let matched: Vec<&Value> = if let Some(ids) = ids_in(filter) {
        if !filterable(index, "id") {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_document_filter",
                "Attribute `id` is not filterable.",
            );
        }
        ids.iter()
            .filter_map(|id| index.documents.get(id))
            .collect()
    } else if filter == "deleted = false" {
        if !filterable(index, "deleted") {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_document_filter",
                "Attribute `deleted` is not filterable.",
            );
        }
        index
            .documents
            .values()
            .filter(|d| d["deleted"] == false)
            .collect()
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_document_filter",
            &format!("the mock cannot evaluate `{filter}`"),
        );
    };
    let offset = body["offset"].as_u64().unwrap_or(0) as usize;
    let limit = body["limit"].as_u64().unwrap_or(20) as usize;
    let results: Vec<Value> = matched
        .iter()
        .skip(offset)
        .take(limit)
        .map(|d| project(d, body.get("fields")))
        .collect();
    Json(json!({"results": results, "offset": offset, "limit": limit, "total": matched.len()}))
        .into_response()
}

fn core(token: &str) -> &str {
    token.trim_matches(|c: char| !c.is_alphanumeric())
}

fn matches(words: &[String], text: &str) -> bool {
    text.split_whitespace()
        .any(|t| words.contains(&core(t).to_lowercase()))
}

/// `text` with each matched word wrapped in the tags, cropped to `crop` words when asked.
fn format(text: &str, words: &[String], tags: (&str, &str), crop: Option<(usize, &str)>) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let marked: Vec<String> = tokens
        .iter()
        .map(|t| {
            let c = core(t);
            if !c.is_empty() && words.contains(&c.to_lowercase()) {
                t.replacen(c, &format!("{}{c}{}", tags.0, tags.1), 1)
            } else {
                (*t).to_owned()
            }
        })
        .collect();
    let Some((length, marker)) = crop else {
        return marked.join(" ");
    };
    if marked.len() <= length {
        return marked.join(" ");
    }
    let first = tokens
        .iter()
        .position(|t| words.contains(&core(t).to_lowercase()))
        .unwrap_or(0);
    let start = first.saturating_sub(length / 3).min(marked.len() - length);
    let end = start + length;
    let mut out = marked[start..end].join(" ");
    if start > 0 {
        out = format!("{marker}{out}");
    }
    if end < marked.len() {
        out.push_str(marker);
    }
    out
}

fn search(inner: &Inner, uid: &str, body: &Value) -> Response {
    let Some(index) = inner.indexes.get(uid) else {
        return not_found(uid);
    };
    let q = body["q"].as_str().unwrap_or("");
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    let live_only = body["filter"]
        .as_str()
        .is_some_and(|f| f.starts_with("deleted = false"));
    let mut scored: Vec<(f64, &Value)> = index
        .documents
        .values()
        .filter(|d| !live_only || d["deleted"] == false)
        .filter_map(|d| {
            let title = d["title"].as_str().unwrap_or("");
            let text = d["text"].as_str().unwrap_or("");
            if words.is_empty() || matches(&words, title) {
                Some((1.0, d))
            } else if matches(&words, text) {
                Some((0.5, d))
            } else {
                None
            }
        })
        .collect();
    if body["sort"] == json!(["date:desc"]) {
        scored.sort_by_key(|(_, d)| std::cmp::Reverse(d["date"].as_i64()));
    } else {
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    }
    let paged = body.get("page").is_some() || body.get("hitsPerPage").is_some();
    let (offset, limit) = if paged {
        let per_page = body["hitsPerPage"].as_u64().unwrap_or(20) as usize;
        let page = body["page"].as_u64().unwrap_or(1) as usize;
        ((page.max(1) - 1) * per_page, per_page)
    } else {
        let offset = body["offset"].as_u64().unwrap_or(0) as usize;
        (offset, body["limit"].as_u64().unwrap_or(20) as usize)
    };
    let tags = (
        body["highlightPreTag"].as_str().unwrap_or("<em>"),
        body["highlightPostTag"].as_str().unwrap_or("</em>"),
    );
    let cropped = |attr: &str| {
        body["attributesToCrop"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == attr))
    };
    let crop_length = body["cropLength"].as_u64().unwrap_or(10) as usize;
    let marker = body["cropMarker"].as_str().unwrap_or("…");
    let hits: Vec<Value> = scored
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(score, doc)| {
            let mut hit = project(doc, body.get("attributesToRetrieve"));
            let mut formatted = hit.as_object().cloned().unwrap_or_default();
            for attr in ["title", "text"] {
                if let Some(text) = doc[attr].as_str() {
                    let crop = cropped(attr).then_some((crop_length, marker));
                    formatted.insert(attr.into(), json!(format(text, &words, tags, crop)));
                }
            }
            hit["_formatted"] = Value::Object(formatted);
            if body["showRankingScore"] == true {
                hit["_rankingScore"] = json!(score);
            }
            hit
        })
        .collect();
    let total = scored.len();
    let mut answer = json!({"hits": hits, "query": q, "processingTimeMs": 1});
    if paged {
        answer["hitsPerPage"] = json!(limit);
        answer["page"] = json!(offset / limit.max(1) + 1);
        answer["totalHits"] = json!(total);
        answer["totalPages"] = json!(total.div_ceil(limit.max(1)));
    } else {
        answer["offset"] = json!(offset);
        answer["limit"] = json!(limit);
        answer["estimatedTotalHits"] = json!(total);
    }
    Json(answer).into_response()
}

fn new_index() -> Index {
    let mut settings = Map::new();
    settings.insert("filterableAttributes".into(), json!([]));
    Index {
        settings,
        documents: BTreeMap::new(),
    }
}

async fn handle(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)))
    };
    let mut inner = inner.lock().unwrap();
    inner.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.clone(),
    });
    let path = uri.path().trim_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let keys_route = segments.first() == Some(&"keys");
    if inner.api_key.is_some() || inner.master_key.is_some() {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let Some(bearer) = bearer else {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing_authorization_header",
                "The Authorization header is missing. It must use the bearer authorization method.",
            );
        };
        let invalid = || {
            error(
                StatusCode::FORBIDDEN,
                "invalid_api_key",
                "The provided API key is invalid.",
            )
        };
        let is_master = inner.master_key.as_deref() == Some(bearer.as_str());
        let made = inner
            .keys
            .iter()
            .find(|k| k["key"].as_str() == Some(bearer.as_str()))
            .cloned();
        let allowed = if is_master {
            true
        } else if inner.api_key.as_deref() == Some(bearer.as_str()) {
            // The key a test starts the mock with: everything but key management.
            !keys_route
        } else if let Some(made) = made {
            let actions: Vec<&str> = made["actions"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            !keys_route
                || actions
                    .iter()
                    .any(|a| matches!(*a, "*" | "keys.*" | "keys.get"))
        } else {
            false
        };
        if !allowed {
            return invalid();
        }
    } else if keys_route {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing_master_key",
            "Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.",
        );
    }
    let inner = &mut *inner;
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["keys"]) => {
            let total = inner.keys.len();
            Json(json!({"results": inner.keys, "offset": 0, "limit": 20, "total": total}))
                .into_response()
        }
        ("GET", ["keys", id]) => match inner
            .keys
            .iter()
            .find(|k| k["uid"].as_str() == Some(*id) || k["key"].as_str() == Some(*id))
        {
            Some(key) => Json(key.clone()).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "api_key_not_found",
                &format!("API key `{id}` not found."),
            ),
        },
        ("POST", ["keys"]) => {
            let uid = body["uid"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if inner
                .keys
                .iter()
                .any(|k| k["uid"].as_str() == Some(uid.as_str()))
            {
                return error(
                    StatusCode::CONFLICT,
                    "api_key_already_exists",
                    &format!("`uid` field value `{uid}` is already an existing API key."),
                );
            }
            // Meilisearch derives a key's value from the master key and the uid.
            let master = inner.master_key.clone().unwrap_or_default();
            let value: String = sha2::Sha256::digest(format!("{master}{uid}").as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let key = json!({
                "uid": uid, "key": value, "name": body["name"], "description": body["description"],
                "actions": body["actions"], "indexes": body["indexes"], "expiresAt": body["expiresAt"],
                "createdAt": now(), "updatedAt": now(),
            });
            inner.keys.push(key.clone());
            (StatusCode::CREATED, Json(key)).into_response()
        }
        ("DELETE", ["keys", id]) => {
            let before = inner.keys.len();
            inner
                .keys
                .retain(|k| k["uid"].as_str() != Some(*id) && k["key"].as_str() != Some(*id));
            if inner.keys.len() == before {
                return error(
                    StatusCode::NOT_FOUND,
                    "api_key_not_found",
                    &format!("API key `{id}` not found."),
                );
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["health"]) => Json(json!({"status": "available"})).into_response(),
        ("GET", ["version"]) => Json(json!({
            "commitSha": "5cb2f2e9",
            "commitDate": "2026-10-01T00:00:00Z",
            "pkgVersion": inner.version.clone().unwrap_or_else(|| "1.50.0".to_owned()),
        }))
        .into_response(),
        ("GET", ["tasks", uid]) => get_task(inner, uid),
        ("GET", ["tasks"]) => list_tasks(inner, uri.query()),
        ("POST", ["indexes"]) => {
            let uid = body["uid"].as_str().unwrap_or("").to_owned();
            let primary_key = body["primaryKey"].clone();
            enqueue(inner, "indexCreation", Some(&uid.clone()), move |inner| {
                if inner.indexes.contains_key(&uid) {
                    return Err((
                        "index_already_exists".into(),
                        format!("Index `{uid}` already exists."),
                    ));
                }
                inner.indexes.insert(uid, new_index());
                Ok(json!({"primaryKey": primary_key}))
            })
        }
        ("DELETE", ["indexes", uid]) => enqueue(inner, "indexDeletion", Some(uid), |inner| {
            match inner.indexes.remove(*uid) {
                Some(index) => Ok(json!({"deletedDocuments": index.documents.len()})),
                None => Err((
                    "index_not_found".into(),
                    format!("Index `{uid}` not found."),
                )),
            }
        }),
        ("PATCH", ["indexes", uid, "settings"]) => {
            enqueue(inner, "settingsUpdate", Some(uid), |inner| {
                let index = inner
                    .indexes
                    .entry((*uid).to_owned())
                    .or_insert_with(new_index);
                for (k, v) in body.as_object().cloned().unwrap_or_default() {
                    index.settings.insert(k, v);
                }
                Ok(body.clone())
            })
        }
        ("POST", ["indexes", uid, "documents"]) => enqueue_documents(inner, uid, body),
        ("POST", ["indexes", uid, "documents", "fetch"]) => fetch(inner, uid, &body),
        ("POST", ["indexes", uid, "search"]) => search(inner, uid, &body),
        ("POST", ["swap-indexes"]) => {
            let pairs: Vec<(String, String)> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|s| {
                    let i = &s["indexes"];
                    (i[0].as_str().unwrap().into(), i[1].as_str().unwrap().into())
                })
                .collect();
            enqueue(inner, "indexSwap", None, |inner| {
                let missing = pairs
                    .iter()
                    .flat_map(|(a, b)| [a, b])
                    .find(|uid| !inner.indexes.contains_key(*uid));
                if let Some(uid) = missing {
                    return Err((
                        "index_not_found".into(),
                        format!("Index `{uid}` not found."),
                    ));
                }
                for (a, b) in &pairs {
                    let first = inner.indexes.remove(a).unwrap();
                    let second = inner.indexes.remove(b).unwrap();
                    inner.indexes.insert(a.clone(), second);
                    inner.indexes.insert(b.clone(), first);
                }
                Ok(json!({"swaps": body}))
            })
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("the mock has no route {method} /{path}"),
        ),
    }
}
