//! [`HubSpotServer`], a local HubSpot CRM API v3 answering `GET /crm/v3/objects/contacts` and
//! `GET /crm/v3/objects/companies` as its reference documents them
//! (https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts,
//! https://developers.hubspot.com/docs/api/usage-details):
//!
//! - `{"results": [{"id", "properties", "createdAt", "updatedAt", "archived"}…], "paging":
//!   {"next": {"after", "link"}}}`, `limit` (10 by default, at most 100; more is a `400
//!   VALIDATION_ERROR`) to a page, `paging` only when more follow;
//! - only the `properties` asked for (a missing value as `null`) and the defaults
//!   (`createdate`, `hs_object_id`, `lastmodifieddate`), in `properties` as strings;
//! - `archived=true` lists only the archived, with `archivedAt`; `false` (the default) only
//!   the others;
//! - every error is `{"status": "error", "message", "correlationId", "category"}`; a request
//!   without the bearer token is `401 INVALID_AUTHENTICATION`; throttling is `429` with
//!   `errorType: RATE_LIMIT` and `policyName`, and no `Retry-After`.
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

/// The properties HubSpot returns whatever is asked.
const DEFAULTS: &[&str] = &["createdate", "hs_object_id", "lastmodifieddate"];

struct Record {
    properties: BTreeMap<String, String>,
    version: u64,
    archived: bool,
}

#[derive(Default)]
struct Crm {
    /// By object type (`contacts`, `companies`), then id.
    objects: BTreeMap<String, BTreeMap<u64, Record>>,
    version: u64,
    throttle: u32,
    requests: Vec<(String, bool)>,
    base: String,
}

/// A handle on the local HubSpot.
#[derive(Clone)]
pub struct HubSpotServer {
    state: Arc<Mutex<Crm>>,
    base: String,
}

fn time(version: u64) -> String {
    format!("2026-11-{:02}T10:00:00.000Z", version.clamp(1, 28))
}

impl HubSpotServer {
    /// Listens on `127.0.0.1`, a port of its own, holding no records.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Crm {
            base: base.clone(),
            ..Crm::default()
        }));
        let app = Router::new()
            .route("/crm/v3/objects/{object}", get(list))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        HubSpotServer { state, base }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Creates or updates record `id` of `object` (`contacts`, `companies`) with
    /// `properties` (`firstname`, `email`, `name`, `domain`…).
    pub fn put(&self, object: &str, id: u64, properties: &[(&str, &str)]) {
        let mut c = self.state.lock().unwrap();
        c.version += 1;
        let version = c.version;
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        props.insert("hs_object_id".into(), id.to_string());
        props.insert("createdate".into(), "2026-10-01T09:00:00.000Z".into());
        props.insert("lastmodifieddate".into(), time(version));
        c.objects.entry(object.to_owned()).or_default().insert(
            id,
            Record {
                properties: props,
                version,
                archived: false,
            },
        );
    }

    /// Archives record `id` of `object`, as a delete in HubSpot does.
    pub fn archive(&self, object: &str, id: u64) {
        let mut c = self.state.lock().unwrap();
        c.version += 1;
        let version = c.version;
        if let Some(record) = c.objects.get_mut(object).and_then(|o| o.get_mut(&id)) {
            record.archived = true;
            record.version = version;
        }
    }

    /// Answers the next `n` requests with 429.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// The query strings asked, in order, and whether each carried the token.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    let mut body = json!({
        "status": "error",
        "message": message,
        "correlationId": "a1b2c3d4-0000-4000-8000-000000000000",
    });
    if category == "RATE_LIMIT" {
        body["errorType"] = json!("RATE_LIMIT");
        body["policyName"] = json!("SECONDLY");
    } else {
        body["category"] = json!(category);
    }
    (status, Json(body)).into_response()
}

async fn list(
    State(state): State<Arc<Mutex<Crm>>>,
    Path(object): Path<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut c = state.lock().unwrap();
    let c = &mut *c;
    if let Some(mut refused) = gate(
        &mut c.requests,
        &mut c.throttle,
        bearer(&headers),
        &query,
        error,
        (
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        ),
        ("RATE_LIMIT", "You have reached your secondly limit."),
    ) {
        // HubSpot's 429 names its policy, not a time to wait.
        refused.headers_mut().remove("retry-after");
        return refused;
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "limit must be between 1 and 100",
            )
        }
    };
    let archived = query.get("archived").map(String::as_str) == Some("true");
    let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let asked: Vec<&str> = query
        .get("properties")
        .map(|p| p.split(',').collect())
        .unwrap_or_default();
    let records: Vec<(&u64, &Record)> = c
        .objects
        .get(&object)
        .map(|o| {
            o.range(after..)
                .filter(|(_, r)| r.archived == archived)
                .collect()
        })
        .unwrap_or_default();
    let results: Vec<Value> = records
        .iter()
        .take(limit)
        .map(|(id, r)| {
            let mut properties = serde_json::Map::new();
            for name in DEFAULTS.iter().chain(asked.iter()) {
                properties.insert(
                    (*name).to_owned(),
                    r.properties.get(*name).map_or(Value::Null, |v| json!(v)),
                );
            }
            let mut result = json!({
                "id": id.to_string(),
                "properties": properties,
                "createdAt": "2026-10-01T09:00:00.000Z",
                "updatedAt": time(r.version),
                "archived": r.archived,
            });
            if r.archived {
                result["archivedAt"] = json!(time(r.version));
            }
            result
        })
        .collect();
    let mut body = json!({ "results": results });
    if let Some((next, _)) = records.get(limit) {
        body["paging"] = json!({"next": {
            "after": next.to_string(),
            "link": format!("{}/crm/v3/objects/{object}?after={next}", c.base),
        }});
    }
    (StatusCode::OK, Json(body)).into_response()
}
