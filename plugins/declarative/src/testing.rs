//! Test helpers, with the `testing` feature: [`PeopleServer`] (Google's People API),
//! [`CalendarServer`] (Google Calendar API v3), and [`GraphServer`], a local Microsoft Graph
//! answering `/v1.0/me/contacts/delta` as Graph's reference documents
//! it (https://learn.microsoft.com/en-us/graph/api/contact-delta,
//! https://learn.microsoft.com/en-us/graph/delta-query-overview):
//!
//! - a first call lists every contact, a page at a time (`Prefer: odata.maxpagesize=<n>`),
//!   each page but the last with `@odata.nextLink` (`$skiptoken`), the last with
//!   `@odata.deltaLink` (`$deltatoken`);
//! - calling the delta link lists what changed since it was issued: contacts created or
//!   updated, and removed ones as `{"@odata.type", "id", "@removed": {"reason": "deleted"}}`;
//! - a delta token it no longer keeps is answered `410 Gone` with error code
//!   `syncStateNotFound`;
//! - throttling is `429 Too Many Requests` with `Retry-After` (seconds) and error code
//!   `TooManyRequests`;
//! - a request without the bearer token is `401` with `InvalidAuthenticationToken`.
//!
//! # Panics
//!
//! Its methods panic when its lock was poisoned by a panicking test, and `start` when it
//! cannot listen on `127.0.0.1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

mod calendar;
mod people;
pub use calendar::CalendarServer;
pub use people::PeopleServer;

/// The token the test's token source hands out.
pub const TOKEN: &str = "graph-access-token";

#[derive(Default)]
struct Contact {
    body: Value,
    /// The change number at which it was last written.
    version: u64,
}

#[derive(Default)]
struct Graph {
    contacts: BTreeMap<String, Contact>,
    /// Removed ids, with the change number of their removal.
    removed: BTreeMap<String, u64>,
    /// The last change number.
    version: u64,
    /// Delta tokens below this are forgotten (410).
    oldest_token: u64,
    /// Answers 429 to this many requests before serving again.
    throttle: u32,
    /// How long each answer takes, so a test can stop a sync between pages.
    delay: std::time::Duration,
    /// Every request's query string and whether it carried the token.
    requests: Vec<(String, bool)>,
    /// The base the links point to (`http://127.0.0.1:<port>/v1.0`).
    base: String,
    /// Where `@odata.nextLink` points instead, to test a link to an ungranted host.
    next_link_base: Option<String>,
}

/// A handle on the local Graph.
#[derive(Clone)]
pub struct GraphServer {
    state: Arc<Mutex<Graph>>,
    base: String,
}

impl GraphServer {
    /// Listens on `127.0.0.1`, a port of its own, holding no contacts.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1.0", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Graph {
            base: base.clone(),
            ..Graph::default()
        }));
        let app = Router::new()
            .route("/v1.0/me/contacts/delta", get(delta))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        GraphServer { state, base }
    }

    /// `http://127.0.0.1:<port>/v1.0`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Creates or updates contact `id`.
    pub fn put(&self, id: &str, given: &str, surname: &str, email: &str) {
        let mut g = self.state.lock().unwrap();
        g.version += 1;
        let version = g.version;
        g.removed.remove(id);
        // A number of each contact's own: the ETL merges persons who share one.
        let digits: String = id.chars().filter(char::is_ascii_digit).collect();
        let phone = format!("+1 425 555 {:0>4}", digits);
        g.contacts.insert(
            id.to_owned(),
            Contact {
                version,
                body: json!({
                    "@odata.etag": format!("W/\"{version}\""),
                    "id": id,
                    "lastModifiedDateTime": format!("2026-11-{:02}T10:00:00Z", version.min(28)),
                    "displayName": format!("{given} {surname}"),
                    "givenName": given,
                    "surname": surname,
                    "middleName": null,
                    "nickName": null,
                    "companyName": "Contoso",
                    "jobTitle": null,
                    "department": null,
                    "birthday": null,
                    "personalNotes": "",
                    "businessPhones": [phone],
                    "homePhone": null,
                    "mobilePhone": null,
                    "emailAddresses": [{"name": format!("{given} {surname}"), "address": email}],
                }),
            },
        );
    }

    /// Deletes contact `id`.
    pub fn delete(&self, id: &str) {
        let mut g = self.state.lock().unwrap();
        g.version += 1;
        let version = g.version;
        g.contacts.remove(id);
        g.removed.insert(id.to_owned(), version);
    }

    /// Forgets every delta token issued so far.
    pub fn expire_tokens(&self) {
        let mut g = self.state.lock().unwrap();
        // A new change number, so the tokens issued from now on are not among the forgotten.
        g.version += 1;
        g.oldest_token = g.version;
    }

    /// Answers the next `n` requests with 429.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// Makes each answer take `delay`.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Points `@odata.nextLink` at another base.
    pub fn send_next_links_to(&self, base: &str) {
        self.state.lock().unwrap().next_link_base = Some(base.to_owned());
    }

    /// The query strings asked, in order, and whether each carried the token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// What each local API does before it lists anything: records the request (its query and
/// whether it carried the bearer token), then answers 401 without the token, or 429 with
/// `Retry-After: 1` while `throttle` lasts, each made by `error` in the provider's own shape
/// from its `(code, message)`; `None` lets the listing go on.
fn gate(
    requests: &mut Vec<(String, bool)>,
    throttle: &mut u32,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    error: fn(StatusCode, &str, &str) -> Response,
    unauthorized: (&str, &str),
    throttled: (&str, &str),
) -> Option<Response> {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    let asked: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    requests.push((asked.join("&"), authorized));
    if !authorized {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            unauthorized.0,
            unauthorized.1,
        ));
    }
    if *throttle > 0 {
        *throttle -= 1;
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, throttled.0, throttled.1);
        response
            .headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        return Some(response);
    }
    None
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": "2026-12-01T10:00:00", "request-id": "00000000-0000-0000-0000-000000000000"}}});
    (status, Json(body)).into_response()
}

async fn delta(
    State(state): State<Arc<Mutex<Graph>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let delay = state.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut g = state.lock().unwrap();
    let g = &mut *g;
    if let Some(refused) = gate(
        &mut g.requests,
        &mut g.throttle,
        &headers,
        &query,
        error,
        ("InvalidAuthenticationToken", "Access token is empty."),
        ("TooManyRequests", "Too many requests."),
    ) {
        return refused;
    }
    let page_size: usize = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("odata.maxpagesize="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // A skip token is `<since>.<offset>`: the listing it continues and where; a delta token
    // is the change number it was issued at.
    let (since, offset) = if let Some(skip) = query.get("$skiptoken") {
        let (since, offset) = skip.split_once('.').unwrap();
        (
            since.parse::<u64>().unwrap(),
            offset.parse::<usize>().unwrap(),
        )
    } else if let Some(token) = query.get("$deltatoken") {
        (token.parse::<u64>().unwrap(), 0)
    } else {
        (0, 0)
    };
    if since > 0 && since < g.oldest_token {
        return error(
            StatusCode::GONE,
            "syncStateNotFound",
            "The sync state generation is not found.",
        );
    }
    let mut changes: Vec<(u64, Value)> = g
        .contacts
        .values()
        .filter(|c| c.version > since)
        .map(|c| {
            let mut body = c.body.clone();
            // Graph names each contact's type in a delta answer.
            body["@odata.type"] = json!("#microsoft.graph.contact");
            (c.version, body)
        })
        .collect();
    if since > 0 {
        changes.extend(g.removed.iter().filter(|(_, v)| **v > since).map(|(id, v)| {
            (
                *v,
                json!({"@odata.type": "#microsoft.graph.contact", "id": id, "@removed": {"reason": "deleted"}}),
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
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#Collection(contact)", g.base),
        "value": page,
    });
    if offset + page_size < changes.len() {
        let base = g.next_link_base.clone().unwrap_or_else(|| g.base.clone());
        body["@odata.nextLink"] = json!(format!(
            "{base}/me/contacts/delta?$skiptoken={since}.{}",
            offset + page_size
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!(
            "{}/me/contacts/delta?$deltatoken={}",
            g.base, g.version
        ));
    }
    (StatusCode::OK, Json(body)).into_response()
}
