//! [`ZendeskServer`], a local Zendesk Support answering the cursor-based incremental ticket
//! export, `GET /api/v2/incremental/tickets/cursor.json`, as its reference documents it
//! (https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-export-cursor-based,
//! https://developer.zendesk.com/documentation/ticketing/managing-tickets/using-the-incremental-export-api):
//!
//! - the first request names `start_time` (Unix seconds; one less than a minute ago is `400
//!   InvalidValue`), later ones only `cursor`; neither is `400 InvalidValue`;
//! - `{"tickets": […], "after_cursor", "after_url", "before_cursor", "before_url",
//!   "end_of_stream"}`, tickets in the order they changed (`generated_timestamp`),
//!   `per_page` of them (1000 by default and at most); `end_of_stream: true` on the page that
//!   reaches the present, whose `after_cursor` / `after_url` the next export starts from and
//!   lists only the tickets changed since;
//! - a deleted ticket is listed with `status: "deleted"` (unless `exclude_deleted=true`);
//! - a cursor it cannot read is `422 InvalidPaginationParameter`;
//! - every error is `{"error", "description"}`; a request without the agent's API token as
//!   basic credentials (`{email}/token:{token}`) is `401 {"error": "Couldn't authenticate
//!   you"}`; throttling (10 requests a minute for this endpoint) is `429` with `Retry-After`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use super::{basic, gate, TOKEN};

/// The agent whose API token the local Zendesk accepts, with [`TOKEN`].
pub const ZENDESK_AGENT: &str = "agent@example.com";

/// The path of the export.
const EXPORT: &str = "/api/v2/incremental/tickets/cursor.json";

#[derive(Default)]
struct Zendesk {
    /// Id → (ticket, change number of its last write).
    tickets: BTreeMap<u64, (Value, u64)>,
    /// The last change number.
    version: u64,
    /// Bumped by [`ZendeskServer::expire_cursors`]: cursors issued before are refused (422).
    epoch: u64,
    /// Answers 429 to this many requests before serving again.
    throttle: u32,
    /// How long each answer takes, so a test can stop a sync between pages.
    delay: std::time::Duration,
    /// Every request's query string and whether it carried the credentials.
    requests: Vec<(String, bool)>,
    /// `http://127.0.0.1:<port>`.
    base: String,
}

/// A handle on the local Zendesk.
#[derive(Clone)]
pub struct ZendeskServer {
    state: Arc<Mutex<Zendesk>>,
    base: String,
}

/// The Unix time of change `version`: a day apart from 2026-11-01, so every one is more
/// than a minute ago.
fn unix(version: u64) -> u64 {
    1_793_520_000 + version * 86_400
}

fn time(version: u64) -> String {
    format!("2026-11-{:02}T10:00:00Z", version.clamp(1, 28))
}

/// A cursor in Zendesk's own form, base64 of `<generated_timestamp>.0|<epoch>|<position>|`
/// (Zendesk's leaves the middle empty; here it says which cursors are still read).
fn cursor(epoch: u64, version: u64) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("{}.0|{epoch}|{version}|", unix(version)))
}

/// The epoch and position of a cursor.
fn read_cursor(cursor: &str) -> Option<(u64, u64)> {
    let text = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(text).ok()?;
    let mut parts = text.strip_suffix('|')?.split('|').skip(1);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl ZendeskServer {
    /// Listens on `127.0.0.1`, a port of its own, holding no tickets.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Zendesk {
            base: base.clone(),
            ..Zendesk::default()
        }));
        let app = Router::new()
            .route(EXPORT, get(export))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ZendeskServer { state, base }
    }

    /// `http://127.0.0.1:<port>`: the instance's `url`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Creates or updates ticket `id` with `subject` and `fields` (`description`, `status`,
    /// `priority`, `tags`, `requester_id`…); the server adds the others with their defaults.
    pub fn put(&self, id: u64, subject: &str, fields: Value) {
        let mut z = self.state.lock().unwrap();
        z.version += 1;
        let version = z.version;
        let mut ticket = json!({
            "url": format!("{}/api/v2/tickets/{id}.json", z.base),
            "id": id,
            "external_id": null,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": null}},
            "created_at": "2026-10-01T09:00:00Z",
            "updated_at": time(version),
            "generated_timestamp": unix(version),
            "type": "question",
            "subject": subject,
            "raw_subject": subject,
            "description": "",
            "priority": "normal",
            "status": "open",
            "recipient": null,
            "requester_id": 20978392,
            "submitter_id": 20978392,
            "assignee_id": 235323,
            "organization_id": 509974,
            "group_id": 98738,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": null,
            "problem_id": null,
            "has_incidents": false,
            "is_public": true,
            "due_at": null,
            "tags": [],
            "custom_fields": [],
            "satisfaction_rating": null,
            "sharing_agreement_ids": [],
            "custom_status_id": 1,
            "fields": [],
            "followup_ids": [],
            "ticket_form_id": 1,
            "brand_id": 1,
            "allow_channelback": false,
            "allow_attachments": true,
            "from_messaging_channel": false,
        });
        if let (Some(ticket), Some(fields)) = (ticket.as_object_mut(), fields.as_object()) {
            for (key, value) in fields {
                ticket.insert(key.clone(), value.clone());
            }
        }
        z.tickets.insert(id, (ticket, version));
    }

    /// Deletes ticket `id`: later exports list it with `status: "deleted"`.
    pub fn delete(&self, id: u64) {
        let mut z = self.state.lock().unwrap();
        z.version += 1;
        let version = z.version;
        if let Some((ticket, v)) = z.tickets.get_mut(&id) {
            ticket["status"] = json!("deleted");
            ticket["updated_at"] = json!(time(version));
            ticket["generated_timestamp"] = json!(unix(version));
            *v = version;
        }
    }

    /// Refuses every cursor issued so far.
    pub fn expire_cursors(&self) {
        self.state.lock().unwrap().epoch += 1;
    }

    /// Answers the next `n` requests with 429.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// Makes each answer take `delay`.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// The query strings asked, in order, and whether each carried the credentials.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = if status == StatusCode::UNAUTHORIZED {
        json!({ "error": description })
    } else {
        json!({ "error": error, "description": description })
    };
    (status, Json(body)).into_response()
}

async fn export(
    State(state): State<Arc<Mutex<Zendesk>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let delay = state.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut z = state.lock().unwrap();
    let z = &mut *z;
    if let Some(refused) = gate(
        &mut z.requests,
        &mut z.throttle,
        basic(&headers, &format!("{ZENDESK_AGENT}/token"), TOKEN),
        &query,
        error,
        ("Unauthorized", "Couldn't authenticate you"),
        (
            "APIRateLimitExceeded",
            "Number of allowed incremental export API requests per minute exceeded",
        ),
    ) {
        return refused;
    }
    let per_page = match query.get("per_page").map(|p| p.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "per_page must be between 1 and 1000",
            )
        }
    };
    let after = match (query.get("cursor"), query.get("start_time")) {
        (Some(c), _) => match read_cursor(c) {
            Some((epoch, v)) if epoch == z.epoch => v,
            _ => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "InvalidPaginationParameter",
                    "Invalid cursor",
                )
            }
        },
        (None, Some(start)) => match start.parse::<u64>() {
            // The day after the last change stands in for "a minute ago".
            Ok(start) if start <= unix(z.version + 1) => {
                // Every change on or after `start`.
                (1..=z.version)
                    .filter(|v| unix(*v) < start)
                    .max()
                    .unwrap_or(0)
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "Too recent start_time. Use a start_time older than 1 minute",
                )
            }
        },
        (None, None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "start_time or cursor is required",
            )
        }
    };
    let exclude_deleted = query.get("exclude_deleted").map(String::as_str) == Some("true");
    let mut changed: Vec<&(Value, u64)> = z
        .tickets
        .values()
        .filter(|(ticket, v)| *v > after && !(exclude_deleted && ticket["status"] == "deleted"))
        .collect();
    changed.sort_by_key(|(_, v)| *v);
    let page: Vec<Value> = changed
        .iter()
        .take(per_page)
        .map(|(t, _)| t.clone())
        .collect();
    let end_of_stream = changed.len() <= per_page;
    // The end of a listing that reached the present is where the next one starts, even when
    // later changes were skipped as deleted.
    let last = if end_of_stream {
        z.version.max(after)
    } else {
        changed
            .get(per_page.saturating_sub(1))
            .map_or(after, |(_, v)| *v)
    };
    let url = |c: &str| format!("{}{EXPORT}?cursor={c}", z.base);
    let after_cursor = cursor(z.epoch, last);
    let before_cursor = cursor(z.epoch, after);
    let body = json!({
        "tickets": page,
        "after_cursor": after_cursor,
        "after_url": url(&after_cursor),
        "before_cursor": before_cursor,
        "before_url": url(&before_cursor),
        "end_of_stream": end_of_stream,
    });
    (StatusCode::OK, Json(body)).into_response()
}
