//! [`TodoistServer`], a local Todoist API v1 answering `POST /api/v1/sync` (read requests
//! only: no `commands`) as its reference documents it
//! (https://developer.todoist.com/api/v1/#tag/Sync, and the Sync API's
//! https://developer.todoist.com/sync/v9/#read-resources whose semantics v1 keeps):
//!
//! - a form body (`application/x-www-form-urlencoded`) with `sync_token` and
//!   `resource_types`, a JSON list (`["items"]`, `["all"]`); without `sync_token` it is `400
//!   ARGUMENT_MISSING`;
//! - `sync_token=*` is a full sync: every task neither completed nor deleted, `full_sync:
//!   true`; a token from an earlier answer lists only the tasks written since, completed ones
//!   (`checked: true`) and deleted ones (`is_deleted: true`) among them, `full_sync: false`;
//!   every answer carries the `sync_token` of the next, and nothing is paged;
//! - a token it no longer accepts is `400 INVALID_ARGUMENT_VALUE` naming the `sync_token`
//!   argument; it may also answer a token with a full sync of its own (`full_sync: true`);
//! - every error is `{"error", "error_code", "error_extra", "error_tag", "http_code"}`; a
//!   request without the bearer token is `401 AUTH_INVALID_TOKEN`; throttling is `429
//!   LIMITS_REACHED` with `Retry-After` and `error_extra.retry_after` (seconds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{bearer, gate};

#[derive(Default)]
struct Todoist {
    /// Id → (task, change number of its last write).
    tasks: BTreeMap<String, (Value, u64)>,
    /// The last change number.
    version: u64,
    /// Tokens below this are refused (400 `INVALID_ARGUMENT_VALUE`).
    oldest_token: u64,
    /// Answers the next token with a full sync, as Todoist may.
    full_sync_next: bool,
    /// Answers 429 to this many requests before serving again.
    throttle: u32,
    /// Every request's form fields and whether it carried the token.
    requests: Vec<(String, bool)>,
}

/// A handle on the local Todoist.
#[derive(Clone)]
pub struct TodoistServer {
    state: Arc<Mutex<Todoist>>,
    base: String,
}

fn time(version: u64) -> String {
    format!("2026-11-{:02}T10:00:00.000000Z", version.clamp(1, 28))
}

fn token(version: u64) -> String {
    format!("VRyFHr0Qo3Hr--pzINyT6nax4vW7X2YG5RQlw3lB-{version}")
}

impl TodoistServer {
    /// Listens on `127.0.0.1`, a port of its own, holding no tasks.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Todoist::default()));
        let app = Router::new()
            .route("/api/v1/sync", post(sync))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TodoistServer { state, base }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Creates or updates task `id` with `content` and `fields` (`description`, `due`,
    /// `labels`, `priority`…); the server adds the others with their defaults.
    pub fn put(&self, id: &str, content: &str, fields: Value) {
        let mut t = self.state.lock().unwrap();
        t.version += 1;
        let version = t.version;
        let mut task = json!({
            "id": id,
            "user_id": "2671355",
            "project_id": "6Jf8VQXxpwv56VQ7",
            "section_id": null,
            "parent_id": null,
            "added_by_uid": "2671355",
            "assigned_by_uid": null,
            "responsible_uid": null,
            "labels": [],
            "deadline": null,
            "duration": null,
            "checked": false,
            "is_deleted": false,
            "is_collapsed": false,
            "added_at": "2026-10-01T09:00:00.000000Z",
            "completed_at": null,
            "updated_at": time(version),
            "due": null,
            "priority": 1,
            "child_order": 1,
            "content": content,
            "description": "",
            "note_count": 0,
            "day_order": -1,
        });
        if let (Some(task), Some(fields)) = (task.as_object_mut(), fields.as_object()) {
            for (key, value) in fields {
                task.insert(key.clone(), value.clone());
            }
        }
        t.tasks.insert(id.to_owned(), (task, version));
    }

    /// Completes task `id` (`item_complete`).
    pub fn complete(&self, id: &str) {
        self.change(id, |task, at| {
            task["checked"] = json!(true);
            task["completed_at"] = json!(at);
        });
    }

    /// Deletes task `id` (`item_delete`): later syncs list it with `is_deleted: true`.
    pub fn delete(&self, id: &str) {
        self.change(id, |task, _| task["is_deleted"] = json!(true));
    }

    fn change(&self, id: &str, change: impl FnOnce(&mut Value, &str)) {
        let mut t = self.state.lock().unwrap();
        t.version += 1;
        let version = t.version;
        if let Some((task, v)) = t.tasks.get_mut(id) {
            change(task, &time(version));
            task["updated_at"] = json!(time(version));
            *v = version;
        }
    }

    /// Refuses every sync token issued so far.
    pub fn expire_tokens(&self) {
        let mut t = self.state.lock().unwrap();
        t.version += 1;
        t.oldest_token = t.version;
    }

    /// Answers the next incremental sync with a full one (`full_sync: true`).
    pub fn full_sync_next(&self) {
        self.state.lock().unwrap().full_sync_next = true;
    }

    /// Answers the next `n` requests with 429.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// The form bodies sent, in order, and whether each carried the token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn error(status: StatusCode, tag: &str, message: &str) -> Response {
    let (code, extra) = match tag {
        "AUTH_INVALID_TOKEN" => (401, json!({})),
        "LIMITS_REACHED" => (35, json!({"retry_after": 1})),
        "ARGUMENT_MISSING" => (19, json!({"argument": "sync_token"})),
        _ => (20, json!({"argument": "sync_token"})),
    };
    let mut extra = extra;
    extra["event_id"] = json!("c2f8a1b0e4d34b5a9d7e6f1a2b3c4d5e");
    let body = json!({
        "error": message,
        "error_code": code,
        "error_extra": extra,
        "error_tag": tag,
        "http_code": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

async fn sync(
    State(state): State<Arc<Mutex<Todoist>>>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let mut t = state.lock().unwrap();
    let t = &mut *t;
    if let Some(refused) = gate(
        &mut t.requests,
        &mut t.throttle,
        bearer(&headers),
        &form,
        error,
        ("AUTH_INVALID_TOKEN", "Invalid token"),
        ("LIMITS_REACHED", "Too many requests"),
    ) {
        return refused;
    }
    let Some(asked) = form.get("sync_token") else {
        return error(
            StatusCode::BAD_REQUEST,
            "ARGUMENT_MISSING",
            "Required argument is missing",
        );
    };
    let since = match asked.as_str() {
        "*" => None,
        asked => {
            let known = (t.oldest_token..=t.version).find(|v| token(*v) == asked);
            match known {
                Some(v) => Some(v),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ARGUMENT_VALUE",
                        "Invalid argument value",
                    )
                }
            }
        }
    };
    let since = if std::mem::take(&mut t.full_sync_next) {
        None
    } else {
        since
    };
    let types: Vec<String> = form
        .get("resource_types")
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let mut body = json!({
        "full_sync": since.is_none(),
        "full_sync_date_utc": "2026-11-01T09:00:00Z",
        "sync_token": token(t.version),
        "temp_id_mapping": {},
    });
    if types.iter().any(|r| r == "items" || r == "all") {
        let mut changed: Vec<&(Value, u64)> = t
            .tasks
            .values()
            .filter(|(task, v)| match since {
                Some(since) => *v > since,
                None => task["checked"] == false && task["is_deleted"] == false,
            })
            .collect();
        changed.sort_by_key(|(_, v)| *v);
        let items: Vec<Value> = changed.into_iter().map(|(task, _)| task.clone()).collect();
        body["items"] = json!(items);
    }
    (StatusCode::OK, Json(body)).into_response()
}
