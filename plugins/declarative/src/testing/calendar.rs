//! [`CalendarServer`], a local Google Calendar API v3 answering as its reference documents
//! it (https://developers.google.com/calendar/api/v3/reference/calendarList/list,
//! https://developers.google.com/calendar/api/v3/reference/events/list,
//! https://developers.google.com/calendar/api/guides/sync,
//! https://developers.google.com/calendar/api/guides/errors):
//!
//! - `GET /calendar/v3/users/me/calendarList`: `{"kind": "calendar#calendarList", "items":
//!   [calendarListEntry…]}`, `maxResults` (100 by default, 250 at most) to a page, each page
//!   but the last with `nextPageToken`, the last with `nextSyncToken`;
//! - `GET /calendar/v3/calendars/{calendarId}/events`: `{"kind": "calendar#events", "summary",
//!   "timeZone", "items": [event…]}`, `maxResults` (250 by default, 2500 at most) to a page,
//!   each page but the last with `nextPageToken` (sent back as `pageToken`), the last with
//!   `nextSyncToken`; without a sync token, cancelled events are left out unless
//!   `showDeleted=true`; with `syncToken` only what changed since it was issued, deleted
//!   events as `{"kind", "etag", "id", "status": "cancelled"}`; `timeMin`, `timeMax`,
//!   `updatedMin`, `q`, `orderBy` or `iCalUID` beside a sync token are a `400`
//!   (`invalid`, "Sync token cannot be used with other request restrictions.");
//! - a sync token it no longer keeps is `410 Gone`, reason `fullSyncRequired` ("Sync token is
//!   no longer valid, a full sync is required.");
//! - a calendar it does not hold is `404`, reason `notFound`;
//! - every error body is `{"error": {"errors": [{"domain", "reason", "message"}], "code",
//!   "message"}}`; throttling is `429` with `Retry-After` (seconds), or `403` with reason
//!   `rateLimitExceeded` (domain `usageLimits`) and no `Retry-After`; a refusal is `403` with
//!   reason `insufficientPermissions`;
//! - a request without the bearer token is `401`, reason `authError` ("Invalid Credentials").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{bearer, gate};

/// The parameters the reference says a sync token cannot be combined with.
const RESTRICTIONS: &[&str] = &[
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "orderBy",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
];

#[derive(Default)]
struct Calendars {
    /// Calendar id → its list entry.
    list: BTreeMap<String, Value>,
    /// Calendar id → event id → (event, change number of its last write).
    events: BTreeMap<String, BTreeMap<String, (Value, u64)>>,
    version: u64,
    oldest_token: u64,
    throttle: u32,
    /// Answers this many requests `403 rateLimitExceeded` before serving again.
    rate_limited: u32,
    /// Answers every events request `403 insufficientPermissions`.
    refuse: bool,
    requests: Vec<(String, bool)>,
    /// The path of each request, in order.
    paths: Vec<String>,
}

/// A handle on the local Calendar API.
#[derive(Clone)]
pub struct CalendarServer {
    state: Arc<Mutex<Calendars>>,
    base: String,
}

impl CalendarServer {
    /// Listens on `127.0.0.1`, a port of its own, holding no calendar.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/calendar/v3", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Calendars::default()));
        let app = Router::new()
            .route("/calendar/v3/users/me/calendarList", get(calendar_list))
            .route("/calendar/v3/calendars/{calendar}/events", get(events))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        CalendarServer { state, base }
    }

    /// `http://127.0.0.1:<port>/calendar/v3`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Adds calendar `id` to the account's calendar list.
    pub fn add_calendar(&self, id: &str, summary: &str, time_zone: &str) {
        let mut c = self.state.lock().unwrap();
        let etag = format!("\"{}\"", 1_700_000_000_000u64 + c.list.len() as u64);
        c.list.insert(
            id.to_owned(),
            json!({
                "kind": "calendar#calendarListEntry",
                "etag": etag,
                "id": id,
                "summary": summary,
                "timeZone": time_zone,
                "colorId": "14",
                "backgroundColor": "#9fe1e7",
                "foregroundColor": "#000000",
                "selected": true,
                "accessRole": "owner",
                "defaultReminders": [{"method": "popup", "minutes": 10}],
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
            }),
        );
        c.events.entry(id.to_owned()).or_default();
    }

    /// Creates or updates event `id` of `calendar` with `fields` (`summary`, `start`, `end`,
    /// `recurrence`, `attendees`…); the server adds `kind`, `etag`, `id`, `status`,
    /// `htmlLink`, `created`, `updated`, `iCalUID`, `sequence`, `creator` and `organizer`.
    pub fn put(&self, calendar: &str, id: &str, fields: Value) {
        let mut c = self.state.lock().unwrap();
        c.version += 1;
        let version = c.version;
        let mut event = json!({
            "kind": "calendar#event",
            "etag": format!("\"{}\"", 3_400_000_000_000u64 + version),
            "id": id,
            "status": "confirmed",
            "htmlLink": format!("https://www.google.com/calendar/event?eid={id}"),
            "created": "2026-10-01T09:00:00.000Z",
            "updated": format!("2026-11-{:02}T10:00:00.000Z", version.min(28)),
            "creator": {"email": calendar, "self": true},
            "organizer": {"email": calendar, "self": true},
            "iCalUID": format!("{id}@google.com"),
            "sequence": 0,
            "reminders": {"useDefault": true},
            "eventType": "default",
        });
        if let (Some(event), Some(fields)) = (event.as_object_mut(), fields.as_object()) {
            for (key, value) in fields {
                event.insert(key.clone(), value.clone());
            }
        }
        c.events
            .entry(calendar.to_owned())
            .or_default()
            .insert(id.to_owned(), (event, version));
    }

    /// Deletes event `id` of `calendar`: it stays, `status: "cancelled"`, as Google keeps it.
    pub fn cancel(&self, calendar: &str, id: &str) {
        let mut c = self.state.lock().unwrap();
        c.version += 1;
        let version = c.version;
        let events = c.events.entry(calendar.to_owned()).or_default();
        events.insert(
            id.to_owned(),
            (
                json!({
                    "kind": "calendar#event",
                    "etag": format!("\"{}\"", 3_400_000_000_000u64 + version),
                    "id": id,
                    "status": "cancelled",
                }),
                version,
            ),
        );
    }

    /// Forgets every sync token issued so far.
    pub fn expire_tokens(&self) {
        let mut c = self.state.lock().unwrap();
        c.version += 1;
        c.oldest_token = c.version;
    }

    /// Answers the next `n` requests with `429` and `Retry-After: 1`.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// Answers the next `n` requests with `403` reason `rateLimitExceeded`.
    pub fn rate_limit(&self, n: u32) {
        self.state.lock().unwrap().rate_limited = n;
    }

    /// Answers every events request with `403` reason `insufficientPermissions`.
    pub fn refuse_events(&self) {
        self.state.lock().unwrap().refuse = true;
    }

    /// The query strings asked, in order, and whether each carried the token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The paths asked, in order (`/calendar/v3/calendars/ada%40example.com/events`).
    pub fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().paths.clone()
    }
}

/// An error in the Calendar API's shape.
fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    let domain = match reason {
        "rateLimitExceeded" | "userRateLimitExceeded" => "usageLimits",
        "invalid" | "timeRangeEmpty" => "calendar",
        _ => "global",
    };
    let mut detail = json!({"domain": domain, "reason": reason, "message": message});
    if reason == "authError" {
        detail["locationType"] = json!("header");
        detail["location"] = json!("Authorization");
    }
    let body = json!({"error": {"errors": [detail], "code": status.as_u16(), "message": message}});
    (status, Json(body)).into_response()
}

/// The gate every request passes: the bearer token, then `429`, then `403 rateLimitExceeded`.
fn admit(
    c: &mut Calendars,
    path: String,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
) -> Option<Response> {
    c.paths.push(path);
    if let Some(refused) = gate(
        &mut c.requests,
        &mut c.throttle,
        bearer(headers),
        query,
        error,
        ("authError", "Invalid Credentials"),
        ("rateLimitExceeded", "Rate Limit Exceeded"),
    ) {
        return Some(refused);
    }
    if c.rate_limited > 0 {
        c.rate_limited -= 1;
        return Some(error(
            StatusCode::FORBIDDEN,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        ));
    }
    None
}

/// A page of `items` from `offset`, `size` long, and whether more follow.
fn page(items: &[Value], offset: usize, size: usize) -> (Vec<Value>, bool) {
    let page = items.iter().skip(offset).take(size).cloned().collect();
    (page, offset + size < items.len())
}

fn page_size(query: &BTreeMap<String, String>, default: usize, max: usize) -> usize {
    query
        .get("maxResults")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

async fn calendar_list(
    State(state): State<Arc<Mutex<Calendars>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut c = state.lock().unwrap();
    let c = &mut *c;
    if let Some(refused) = admit(
        c,
        "/calendar/v3/users/me/calendarList".into(),
        &headers,
        &query,
    ) {
        return refused;
    }
    let size = page_size(&query, 100, 250);
    let offset = query
        .get("pageToken")
        .and_then(|t| t.strip_prefix("list."))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let items: Vec<Value> = c.list.values().cloned().collect();
    let (items, more) = page(&items, offset, size);
    let mut body =
        json!({"kind": "calendar#calendarList", "etag": "\"p33k9lxc3arbpg0g\"", "items": items});
    if more {
        body["nextPageToken"] = json!(format!("list.{}", offset + size));
    } else {
        body["nextSyncToken"] = json!(format!("list-sync-{}", c.version));
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn events(
    State(state): State<Arc<Mutex<Calendars>>>,
    Path(calendar): Path<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut c = state.lock().unwrap();
    let c = &mut *c;
    let path = format!(
        "/calendar/v3/calendars/{}/events",
        url::form_urlencoded::byte_serialize(calendar.as_bytes()).collect::<String>()
    );
    if let Some(refused) = admit(c, path, &headers, &query) {
        return refused;
    }
    if c.refuse {
        return error(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        );
    }
    let Some(calendar_events) = c.events.get(&calendar) else {
        return error(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    // A sync token is `s<change number>`; a page token `<since>.<offset>`.
    let sync = query.get("syncToken");
    if sync.is_some() && RESTRICTIONS.iter().any(|r| query.contains_key(*r)) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Sync token cannot be used with other request restrictions.",
        );
    }
    let since = match sync {
        Some(token) => match token.strip_prefix('s').and_then(|v| v.parse::<u64>().ok()) {
            Some(since) => since,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid sync token value.",
                )
            }
        },
        None => 0,
    };
    if sync.is_some() && since < c.oldest_token {
        return error(
            StatusCode::GONE,
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
        );
    }
    let offset = query
        .get("pageToken")
        .and_then(|t| t.split_once('.'))
        .and_then(|(_, o)| o.parse::<usize>().ok())
        .unwrap_or(0);
    let show_deleted =
        sync.is_some() || query.get("showDeleted").map(String::as_str) == Some("true");
    let mut changes: Vec<&(Value, u64)> = calendar_events
        .values()
        .filter(|(event, version)| {
            *version > since && (show_deleted || event["status"] != "cancelled")
        })
        .collect();
    changes.sort_by_key(|(_, v)| *v);
    let changes: Vec<Value> = changes.into_iter().map(|(e, _)| e.clone()).collect();
    let size = page_size(&query, 250, 2500);
    let (items, more) = page(&changes, offset, size);
    let entry = c.list.get(&calendar).cloned().unwrap_or_default();
    let mut body = json!({
        "kind": "calendar#events",
        "etag": format!("\"{}\"", 3_400_000_000_000u64 + c.version),
        "summary": entry["summary"],
        "description": "",
        "updated": format!("2026-11-{:02}T10:00:00.000Z", c.version.clamp(1, 28)),
        "timeZone": entry["timeZone"],
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": items,
    });
    if more {
        body["nextPageToken"] = json!(format!("{since}.{}", offset + size));
    } else {
        body["nextSyncToken"] = json!(format!("s{}", c.version));
    }
    (StatusCode::OK, Json(body)).into_response()
}
