//! [`PeopleServer`], a local Google People API answering `GET /v1/people/me/connections` as
//! its reference documents it
//! (https://developers.google.com/people/api/rest/v1/people.connections/list):
//!
//! - pages of `pageSize` people (100 by default) in `connections`, each page but the last
//!   with `nextPageToken` (sent back as `pageToken`), the last with `nextSyncToken` when the
//!   request said `requestSyncToken=true`; a page holding nobody has no `connections`;
//! - `syncToken=<token>` lists what changed since it was issued: people created or updated,
//!   and deleted ones as `{"resourceName", "etag", "metadata": {"deleted": true}}`;
//! - a sync token it no longer keeps is answered `400` with `status: FAILED_PRECONDITION`
//!   and "Sync token is expired. Clear local cache and retry call without the sync token.";
//! - throttling is `429` with `status: RESOURCE_EXHAUSTED` and `Retry-After` (seconds);
//! - a request without the bearer token is `401` with `status: UNAUTHENTICATED`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{bearer, gate};

#[derive(Default)]
struct People {
    /// resourceName → (person, change number of its last write).
    people: BTreeMap<String, (Value, u64)>,
    deleted: BTreeMap<String, u64>,
    version: u64,
    oldest_token: u64,
    throttle: u32,
    /// How long each answer takes, so a test can stop a sync between pages.
    delay: std::time::Duration,
    requests: Vec<(String, bool)>,
}

/// A handle on the local People API.
#[derive(Clone)]
pub struct PeopleServer {
    state: Arc<Mutex<People>>,
    base: String,
}

impl PeopleServer {
    /// Listens on `127.0.0.1`, a port of its own, holding nobody.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(People::default()));
        let app = Router::new()
            .route("/v1/people/me/connections", get(connections))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        PeopleServer { state, base }
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Creates or updates `people/<id>`.
    pub fn put(&self, id: &str, given: &str, family: &str, email: &str) {
        let mut p = self.state.lock().unwrap();
        p.version += 1;
        let version = p.version;
        let name = format!("people/{id}");
        p.deleted.remove(&name);
        let digits: String = id.chars().filter(char::is_ascii_digit).collect();
        let person = json!({
            "resourceName": name,
            "etag": format!("%EgUBAi43PRo{version}"),
            "metadata": {
                "sources": [{"type": "CONTACT", "id": id, "etag": format!("#{version}"),
                    "updateTime": format!("2026-11-{:02}T10:00:00.000Z", version.min(28))}],
                "objectType": "PERSON"
            },
            "names": [{"metadata": {"primary": true, "source": {"type": "CONTACT", "id": id}},
                "displayName": format!("{given} {family}"), "familyName": family,
                "givenName": given, "displayNameLastFirst": format!("{family}, {given}"),
                "unstructuredName": format!("{given} {family}")}],
            "emailAddresses": [{"metadata": {"primary": true, "source": {"type": "CONTACT", "id": id}},
                "value": email}],
            "phoneNumbers": [{"metadata": {"primary": true, "source": {"type": "CONTACT", "id": id}},
                "value": format!("+1 650 555 {:0>4}", digits), "type": "mobile"}],
        });
        p.people.insert(name, (person, version));
    }

    /// Deletes `people/<id>`.
    pub fn delete(&self, id: &str) {
        let mut p = self.state.lock().unwrap();
        p.version += 1;
        let version = p.version;
        let name = format!("people/{id}");
        p.people.remove(&name);
        p.deleted.insert(name, version);
    }

    /// Forgets every sync token issued so far.
    pub fn expire_tokens(&self) {
        let mut p = self.state.lock().unwrap();
        p.version += 1;
        p.oldest_token = p.version;
    }

    /// Answers the next `n` requests with 429.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// Makes each answer take `delay`.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// The query strings asked, in order, and whether each carried the token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn error(status: StatusCode, name: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": name}});
    (status, Json(body)).into_response()
}

async fn connections(
    State(state): State<Arc<Mutex<People>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let delay = state.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut p = state.lock().unwrap();
    let p = &mut *p;
    if let Some(refused) = gate(
        &mut p.requests,
        &mut p.throttle,
        bearer(&headers),
        &query,
        error,
        (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        (
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Read requests'.",
        ),
    ) {
        return refused;
    }
    let page_size: usize = query
        .get("pageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // A sync token is `s<change number>`; a page token `<since>.<offset>`.
    let since = match query.get("syncToken") {
        Some(token) => token.trim_start_matches('s').parse::<u64>().unwrap_or(0),
        None => 0,
    };
    if query.contains_key("syncToken") && since < p.oldest_token {
        return error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            "Sync token is expired. Clear local cache and retry call without the sync token.",
        );
    }
    let offset = query
        .get("pageToken")
        .and_then(|t| t.split_once('.'))
        .and_then(|(_, o)| o.parse::<usize>().ok())
        .unwrap_or(0);
    let mut changes: Vec<(u64, Value)> = p
        .people
        .values()
        .filter(|(_, v)| *v > since)
        .map(|(b, v)| (*v, b.clone()))
        .collect();
    if since > 0 {
        changes.extend(p.deleted.iter().filter(|(_, v)| **v > since).map(|(n, v)| {
            (
                *v,
                json!({"resourceName": n, "etag": format!("%EgUBAi43PRo{v}"),
                "metadata": {"deleted": true}}),
            )
        }));
    }
    changes.sort_by_key(|(v, _)| *v);
    let page: Vec<Value> = changes
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(_, c)| c.clone())
        .collect();
    let mut body = json!({"totalPeople": p.people.len(), "totalItems": p.people.len()});
    if !page.is_empty() {
        body["connections"] = json!(page);
    }
    if offset + page_size < changes.len() {
        body["nextPageToken"] = json!(format!("{since}.{}", offset + page_size));
    } else if query.get("requestSyncToken").map(String::as_str) == Some("true") {
        body["nextSyncToken"] = json!(format!("s{}", p.version));
    }
    (StatusCode::OK, Json(body)).into_response()
}
