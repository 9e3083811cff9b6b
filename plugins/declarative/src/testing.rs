//! Test helpers, with the `testing` feature: [`PeopleServer`] (Google's People API),
//! [`CalendarServer`] (Google Calendar API v3), [`HubSpotServer`] (HubSpot's CRM API v3),
//! [`TodoistServer`] (Todoist API v1's sync), [`ZendeskServer`] (Zendesk's incremental
//! ticket export), and [`GraphServer`], a local Microsoft Graph
//! answering its delta queries as Graph's reference documents them
//! (https://learn.microsoft.com/en-us/graph/delta-query-overview,
//! https://learn.microsoft.com/en-us/graph/api/contact-delta,
//! https://learn.microsoft.com/en-us/graph/api/event-delta,
//! https://learn.microsoft.com/en-us/graph/api/message-delta):
//!
//! - `/v1.0/me/contacts/delta`, `/v1.0/me/calendarView/delta` and
//!   `/v1.0/me/mailFolders/{id}/messages/delta` (`inbox`, `sentitems` and any folder a test
//!   writes to; another is `404 ErrorItemNotFound`), each a collection of its own;
//! - a first call lists every item, a page at a time (`Prefer: odata.maxpagesize=<n>`),
//!   each page but the last with `@odata.nextLink` (`$skiptoken`), the last with
//!   `@odata.deltaLink` (`$deltatoken`); a first `calendarView/delta` without
//!   `startDateTime` and `endDateTime` is `400 ErrorInvalidParameter`, and one lists only
//!   the events that overlap that window, which its tokens then keep;
//! - calling the delta link lists what changed since it was issued: items created or
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

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

mod calendar;
mod hubspot;
mod people;
mod todoist;
mod zendesk;
pub use calendar::CalendarServer;
pub use hubspot::HubSpotServer;
pub use people::PeopleServer;
pub use todoist::TodoistServer;
pub use zendesk::{ZendeskServer, ZENDESK_AGENT};

/// The token the test's token source hands out.
pub const TOKEN: &str = "graph-access-token";

/// The collection of contacts.
const CONTACTS: &str = "contacts";
/// The collection of events.
const EVENTS: &str = "events";

/// One delta-queried collection: its items and its removals.
#[derive(Default)]
struct Collection {
    /// Id → (item, change number of its last write).
    items: BTreeMap<String, (Value, u64)>,
    /// Removed ids, with the change number of their removal.
    removed: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Graph {
    /// By name: `contacts`, `events`, `mail/<folder>`.
    collections: BTreeMap<String, Collection>,
    /// The last change number, across collections.
    version: u64,
    /// Delta tokens below this are forgotten (410).
    oldest_token: u64,
    /// Answers 429 to this many requests before serving again.
    throttle: u32,
    /// How long each answer takes, so a test can stop a sync between pages.
    delay: std::time::Duration,
    /// Every request's collection, query string and whether it carried the token.
    requests: Vec<(String, String, bool)>,
    /// The base the links point to (`http://127.0.0.1:<port>/v1.0`).
    base: String,
    /// Where `@odata.nextLink` points instead, to test a link to an ungranted host.
    next_link_base: Option<String>,
}

impl Graph {
    fn write(&mut self, collection: &str, id: &str, body: Value) {
        self.version += 1;
        let version = self.version;
        let c = self.collections.entry(collection.to_owned()).or_default();
        c.removed.remove(id);
        c.items.insert(id.to_owned(), (body, version));
    }

    fn remove(&mut self, collection: &str, id: &str) {
        self.version += 1;
        let version = self.version;
        let c = self.collections.entry(collection.to_owned()).or_default();
        c.items.remove(id);
        c.removed.insert(id.to_owned(), version);
    }
}

/// A handle on the local Graph.
#[derive(Clone)]
pub struct GraphServer {
    state: Arc<Mutex<Graph>>,
    base: String,
}

impl GraphServer {
    /// Listens on `127.0.0.1`, a port of its own, holding no contacts, events or messages.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1.0", listener.local_addr().unwrap());
        let mut graph = Graph {
            base: base.clone(),
            ..Graph::default()
        };
        for collection in [CONTACTS, EVENTS, "mail/inbox", "mail/sentitems"] {
            graph
                .collections
                .insert(collection.to_owned(), Collection::default());
        }
        let state = Arc::new(Mutex::new(graph));
        let app = Router::new()
            .route("/v1.0/me/contacts/delta", get(contacts_delta))
            .route("/v1.0/me/calendarView/delta", get(events_delta))
            .route(
                "/v1.0/me/mailFolders/{folder}/messages/delta",
                get(messages_delta),
            )
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
        let version = g.version + 1;
        // A number of each contact's own: the ETL merges persons who share one.
        let digits: String = id.chars().filter(char::is_ascii_digit).collect();
        let phone = format!("+1 425 555 {:0>4}", digits);
        let body = json!({
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
        });
        g.write(CONTACTS, id, body);
    }

    /// Deletes contact `id`.
    pub fn delete(&self, id: &str) {
        self.state.lock().unwrap().remove(CONTACTS, id);
    }

    /// Creates or updates event `id` of the default calendar with `fields` (`subject`,
    /// `start`, `end`, `isAllDay`, `attendees`, `type`, `seriesMasterId`…); the server adds
    /// `@odata.etag`, `id`, `changeKey`, `createdDateTime`, `lastModifiedDateTime`,
    /// `iCalUId`, `webLink`, and the defaults of the others.
    pub fn put_event(&self, id: &str, fields: Value) {
        let mut g = self.state.lock().unwrap();
        let version = g.version + 1;
        let mut event = json!({
            "@odata.etag": format!("W/\"DwAAABYAAAB{version}\""),
            "id": id,
            "createdDateTime": "2026-10-01T09:00:00.0000000Z",
            "lastModifiedDateTime": format!("2026-11-{:02}T10:00:00.0000000Z", version.min(28)),
            "changeKey": format!("DwAAABYAAAB{version}"),
            "categories": [],
            "originalStartTimeZone": "W. Europe Standard Time",
            "originalEndTimeZone": "W. Europe Standard Time",
            "iCalUId": format!("040000008200E00074C5B7101A82E008{id}"),
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": true,
            "hasAttachments": false,
            "subject": "",
            "bodyPreview": "",
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": false,
            "isCancelled": false,
            "isOrganizer": true,
            "responseRequested": true,
            "seriesMasterId": null,
            "showAs": "busy",
            "type": "singleInstance",
            "webLink": format!("https://outlook.office365.com/owa/?itemid={id}&exvsurl=1&path=/calendar/item"),
            "onlineMeetingUrl": null,
            "recurrence": null,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "html", "content": ""},
            "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown"},
            "locations": [],
            "attendees": [],
            "organizer": {"emailAddress": {"name": "Ada Lovelace", "address": "ada@contoso.example"}},
        });
        if let (Some(event), Some(fields)) = (event.as_object_mut(), fields.as_object()) {
            for (key, value) in fields {
                event.insert(key.clone(), value.clone());
            }
        }
        g.write(EVENTS, id, event);
    }

    /// Deletes event `id`.
    pub fn delete_event(&self, id: &str) {
        self.state.lock().unwrap().remove(EVENTS, id);
    }

    /// Creates or updates message `id` in mail folder `folder` (`inbox`, `sentitems`) with
    /// `fields` (`subject`, `from`, `toRecipients`, `conversationId`, `body`…); the server
    /// adds `@odata.etag`, `id`, `lastModifiedDateTime`, `parentFolderId`, `webLink` and the
    /// defaults of the others.
    pub fn put_message(&self, folder: &str, id: &str, fields: Value) {
        let mut g = self.state.lock().unwrap();
        let version = g.version + 1;
        let mut message = json!({
            "@odata.etag": format!("W/\"CQAAABYAAAB{version}\""),
            "id": id,
            "createdDateTime": "2026-11-01T08:00:00Z",
            "lastModifiedDateTime": format!("2026-11-{:02}T10:00:00Z", version.min(28)),
            "receivedDateTime": "2026-11-01T08:00:00Z",
            "sentDateTime": "2026-11-01T07:59:58Z",
            "hasAttachments": false,
            "internetMessageId": format!("<{id}@contoso.example>"),
            "subject": "",
            "bodyPreview": "",
            "importance": "normal",
            "parentFolderId": format!("AAMkAGI2-{folder}"),
            "conversationId": null,
            "isRead": false,
            "isDraft": false,
            "webLink": format!("https://outlook.office365.com/owa/?ItemID={id}&exvsurl=1&viewmodel=ReadMessageItem"),
            "body": {"contentType": "html", "content": ""},
            "sender": null,
            "from": null,
            "toRecipients": [],
            "ccRecipients": [],
            "bccRecipients": [],
        });
        if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
            for (key, value) in fields {
                message.insert(key.clone(), value.clone());
            }
        }
        g.write(&format!("mail/{folder}"), id, message);
    }

    /// Deletes message `id` from mail folder `folder`.
    pub fn delete_message(&self, folder: &str, id: &str) {
        self.state
            .lock()
            .unwrap()
            .remove(&format!("mail/{folder}"), id);
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

    /// The query strings asked of the contacts, in order, and whether each carried the token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.requests_of(CONTACTS)
    }

    /// The query strings asked of `collection` (`contacts`, `events`, `mail/inbox`), in
    /// order, and whether each carried the token.
    pub fn requests_of(&self, collection: &str) -> Vec<(String, bool)> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(c, _, _)| c == collection)
            .map(|(_, q, authorized)| (q.clone(), *authorized))
            .collect()
    }

    /// How many requests it was asked, of every collection.
    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }
}

/// Whether a request carries `Authorization: Bearer <TOKEN>`.
fn bearer(headers: &HeaderMap) -> bool {
    authorization(headers) == Some(&format!("Bearer {TOKEN}"))
}

/// Whether a request carries HTTP basic credentials `user:password` (RFC 7617).
fn basic(headers: &HeaderMap, user: &str, password: &str) -> bool {
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    authorization(headers) == Some(&format!("Basic {expected}"))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok())
}

/// What each local API does before it lists anything: records the request (its query and
/// whether it was `authorized`, which [`bearer`] or [`basic`] tells), then answers 401
/// without the credentials, or 429 with `Retry-After: 1` while `throttle` lasts, each made
/// by `error` in the provider's own shape from its `(code, message)`; `None` lets the
/// listing go on.
fn gate(
    requests: &mut Vec<(String, bool)>,
    throttle: &mut u32,
    authorized: bool,
    query: &BTreeMap<String, String>,
    error: fn(StatusCode, &str, &str) -> Response,
    unauthorized: (&str, &str),
    throttled: (&str, &str),
) -> Option<Response> {
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

async fn contacts_delta(
    State(state): State<Arc<Mutex<Graph>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    delta(
        state,
        CONTACTS,
        "/me/contacts/delta".into(),
        "contact",
        headers,
        query,
    )
    .await
}

async fn events_delta(
    State(state): State<Arc<Mutex<Graph>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    delta(
        state,
        EVENTS,
        "/me/calendarView/delta".into(),
        "event",
        headers,
        query,
    )
    .await
}

async fn messages_delta(
    State(state): State<Arc<Mutex<Graph>>>,
    Path(folder): Path<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let collection = format!("mail/{folder}");
    let link = format!("/me/mailFolders/{folder}/messages/delta");
    delta(state, &collection, link, "message", headers, query).await
}

/// A delta query on `collection`, whose links go to `link` under the base.
async fn delta(
    state: Arc<Mutex<Graph>>,
    collection: &str,
    link: String,
    odata_type: &str,
    headers: HeaderMap,
    query: BTreeMap<String, String>,
) -> Response {
    let delay = state.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut g = state.lock().unwrap();
    let g = &mut *g;
    let mut asked = Vec::new();
    let refused = gate(
        &mut asked,
        &mut g.throttle,
        bearer(&headers),
        &query,
        error,
        ("InvalidAuthenticationToken", "Access token is empty."),
        ("TooManyRequests", "Too many requests."),
    );
    g.requests.extend(
        asked
            .into_iter()
            .map(|(q, authorized)| (collection.to_owned(), q, authorized)),
    );
    if let Some(refused) = refused {
        return refused;
    }
    let Some(items) = g.collections.get(collection) else {
        return error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    let page_size: usize = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("odata.maxpagesize="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // A skip token is `<since>.<offset>.<window>`: the listing it continues, where, and the
    // window of a calendar view; a delta token `<change number>.<window>`.
    let state_token = query.get("$skiptoken").or_else(|| query.get("$deltatoken"));
    let (since, offset, window) = match state_token {
        Some(token) => {
            let mut parts = token.splitn(3, '.');
            let since = parts
                .next()
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(0);
            let offset = if query.contains_key("$skiptoken") {
                parts
                    .next()
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(0)
            } else {
                0
            };
            let window = parts.next().unwrap_or("").to_owned();
            (since, offset, window)
        }
        None if collection == EVENTS => {
            match (query.get("startDateTime"), query.get("endDateTime")) {
                (Some(start), Some(end)) => (0, 0, format!("{start}~{end}")),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "ErrorInvalidParameter",
                        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
                    )
                }
            }
        }
        None => (0, 0, String::new()),
    };
    if since > 0 && since < g.oldest_token {
        return error(
            StatusCode::GONE,
            "syncStateNotFound",
            "The sync state generation is not found.",
        );
    }
    let in_window = |item: &Value| match window.split_once('~') {
        // Both sides are RFC 3339 in UTC, which order as text; an event's times are UTC.
        Some((start, end)) => {
            let starts = item["start"]["dateTime"].as_str().unwrap_or("");
            let ends = item["end"]["dateTime"].as_str().unwrap_or("");
            starts < end.trim_end_matches('Z') && ends > start.trim_end_matches('Z')
        }
        None => true,
    };
    let mut changes: Vec<(u64, Value)> = items
        .items
        .values()
        .filter(|(item, v)| *v > since && in_window(item))
        .map(|(item, v)| {
            let mut body = item.clone();
            // Graph names each item's type in a delta answer.
            body["@odata.type"] = json!(format!("#microsoft.graph.{odata_type}"));
            (*v, body)
        })
        .collect();
    if since > 0 {
        changes.extend(items.removed.iter().filter(|(_, v)| **v > since).map(|(id, v)| {
            (
                *v,
                json!({"@odata.type": format!("#microsoft.graph.{odata_type}"), "id": id, "@removed": {"reason": "deleted"}}),
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
        "@odata.context": format!("{}/$metadata#Collection({odata_type})", g.base),
        "value": page,
    });
    let window = if window.is_empty() {
        String::new()
    } else {
        format!(".{window}")
    };
    if offset + page_size < changes.len() {
        let base = g.next_link_base.clone().unwrap_or_else(|| g.base.clone());
        body["@odata.nextLink"] = json!(format!(
            "{base}{link}?$skiptoken={since}.{}{window}",
            offset + page_size
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!(
            "{}{link}?$deltatoken={}{}",
            g.base,
            g.version,
            if window.is_empty() {
                String::new()
            } else {
                format!(".0{window}")
            }
        ));
    }
    (StatusCode::OK, Json(body)).into_response()
}
