//! Declarative against native: items per second of one stream (a CRM's contacts, shaped as
//! HubSpot's `GET /crm/v3/objects/contacts` answers them) synced from a local server serving
//! N pages, once through a spec run by the engine and once through a native connector written
//! in Rust that makes the same requests and the same mapping, in alternating rounds of the
//! same run, through the same grant-checked HTTP client.
//!
//! `cargo bench -p tributary-declarative --bench declarative [-- <pages>]` (200 pages of 100
//! records by default, 5 rounds of each). The server answers from page bodies prepared before
//! the first round, so what is measured is the client: the request, reading the JSON, the
//! mapping into items, the checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Value};
use tributary_declarative::{validate, DeclarativeConnector};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, EntityType, ItemOperation, PluginContext, PluginError,
    PluginManifest, SyncRequest, SyncStep,
};

const RECORDS_PER_PAGE: usize = 100;
const ROUNDS: usize = 5;
const TOKEN: &str = "bench-token";

/// The contacts stream of the built-in HubSpot spec (plugins/connectors/hubspot/crm.toml),
/// alone, with the base URL of the local server.
const SPEC: &str = r#"
version = 1
base_url = "BASE"

[auth]
type = "bearer"
token = "{{ config.accessToken }}"

[errors]
retry = [429, 500, 502, 503, 504]

[[streams]]
name = "contacts"

[streams.request]
url = "{{ base_url }}/crm/v3/objects/contacts"
query = { limit = "{{ config.pageSize or 100 }}", archived = "false", properties = "firstname,lastname,email,hs_additional_emails,phone,mobilephone,company,jobtitle,lastmodifieddate" }

[streams.records]
path = "body.results"

[streams.pagination]
type = "cursor"
token = "body.paging.next.after"
param = "after"

[streams.map]
entity = "person"
id = "record.id"
modified = "record.updatedAt"

[streams.map.fields]
display_name = "([record.properties.firstname, record.properties.lastname] | select | join(' ')) or record.properties.email or ('HubSpot contact ' ~ record.id)"
given_name = "record.properties.firstname"
family_name = "record.properties.lastname"
emails = "([record.properties.email] + ((record.properties.hs_additional_emails or '') | split(';') | list)) | select | list"
phones = "[record.properties.phone, record.properties.mobilephone] | select | list"
organization = "record.properties.company"
title = "record.properties.jobtitle"
extra = "{'hubspot_id': record.id, 'created_at': record.createdAt}"
"#;

fn manifest(port: u16) -> PluginManifest {
    PluginManifest::parse(
        &json!({
            "id": "bench.contacts", "name": "Bench contacts", "version": "1.0.0",
            "type": "connector", "entrypoint": "declarative:contacts.toml",
            "permissions": [format!("network:outbound:127.0.0.1:{port}"), "data:write:persons"],
            "configSchema": {"type": "object", "properties": {
                "accessToken": {"type": "string", "writeOnly": true},
                "pageSize": {"type": "integer"}
            }}
        })
        .to_string(),
    )
    .unwrap()
}

/// The page bodies, prepared: page `p` lists records `p * 100 ..`, and names `p + 1` as its
/// `after` unless it is the last.
fn pages(n: usize) -> Arc<Vec<Bytes>> {
    let pages = (0..n)
        .map(|p| {
            let results: Vec<Value> = (0..RECORDS_PER_PAGE)
                .map(|r| {
                    let id = p * RECORDS_PER_PAGE + r + 1;
                    json!({
                        "id": id.to_string(),
                        "properties": {
                            "createdate": "2026-10-01T09:00:00.000Z",
                            "hs_object_id": id.to_string(),
                            "lastmodifieddate": "2026-11-02T10:00:00.000Z",
                            "firstname": format!("Given{id}"),
                            "lastname": format!("Family{id}"),
                            "email": format!("person.{id}@example.com"),
                            "hs_additional_emails": if id.is_multiple_of(3) { Value::String(format!("p{id}@other.example;alt{id}@example.org")) } else { Value::Null },
                            "phone": format!("+44 20 7946 {:04}", id % 10_000),
                            "mobilephone": Value::Null,
                            "company": "Analytical Engines",
                            "jobtitle": if id.is_multiple_of(2) { Value::String("Engineer".into()) } else { Value::Null },
                        },
                        "createdAt": "2026-10-01T09:00:00.000Z",
                        "updatedAt": "2026-11-02T10:00:00.000Z",
                        "archived": false
                    })
                })
                .collect();
            let mut page = json!({ "results": results });
            if p + 1 < n {
                page["paging"] = json!({"next": {"after": (p + 1).to_string(), "link": "unused"}});
            }
            Bytes::from(serde_json::to_vec(&page).unwrap())
        })
        .collect();
    Arc::new(pages)
}

async fn contacts(
    State(pages): State<Arc<Vec<Bytes>>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let page: usize = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    match pages.get(page) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The same stream as a native connector: the same requests, the same mapping, a checkpoint
/// after each page.
struct NativeContacts {
    base_url: String,
}

const PROPERTIES: &str = "firstname,lastname,email,hs_additional_emails,phone,mobilephone,company,jobtitle,lastmodifieddate";

impl ConnectorPlugin for NativeContacts {
    fn sync(
        &self,
        ctx: PluginContext,
        _cursor: Option<Cursor>,
        _request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let url = format!("{}/crm/v3/objects/contacts", self.base_url);
        stream::try_unfold(
            (ctx, url, Some(None::<String>)),
            |(ctx, url, after)| async move {
                let Some(after) = after else {
                    return Ok(None);
                };
                let (steps, next) = native_page(&ctx, &url, after.as_deref()).await?;
                Ok::<_, PluginError>(Some((steps, (ctx, url, next.map(Some)))))
            },
        )
        .map(|page: Result<Vec<SyncStep>, PluginError>| match page {
            Ok(steps) => stream::iter(steps.into_iter().map(Ok)).left_stream(),
            Err(e) => stream::iter([Err(e)]).right_stream(),
        })
        .flatten()
        .boxed()
    }
}

async fn native_page(
    ctx: &PluginContext,
    url: &str,
    after: Option<&str>,
) -> Result<(Vec<SyncStep>, Option<String>), PluginError> {
    let token = SecretString::from(
        ctx.config()["accessToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let limit = ctx.config()["pageSize"].as_u64().unwrap_or(100).to_string();
    let mut query = vec![
        ("limit", limit.as_str()),
        ("archived", "false"),
        ("properties", PROPERTIES),
    ];
    if let Some(after) = after {
        query.push(("after", after));
    }
    let body: Value = ctx
        .http()
        .get(url)
        .bearer_auth(&token)
        .query(&query)
        .send_json()
        .await?;
    let now = Utc::now();
    let mut steps: Vec<SyncStep> = body["results"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|record| SyncStep::Item(native_item(ctx.instance_id(), record, now)))
                .collect()
        })
        .unwrap_or_default();
    let next = body["paging"]["next"]["after"].as_str().map(str::to_owned);
    steps.push(SyncStep::Checkpoint(Cursor(json!({ "after": next }))));
    Ok((steps, next))
}

fn native_item(instance_id: &str, record: &Value, now: DateTime<Utc>) -> ConnectorItem {
    let p = &record["properties"];
    let text = |name: &str| p[name].as_str().filter(|s| !s.is_empty());
    let id = record["id"].as_str().unwrap_or_default().to_owned();
    let names: Vec<&str> = [text("firstname"), text("lastname")]
        .into_iter()
        .flatten()
        .collect();
    let display_name = if names.is_empty() {
        text("email").map_or_else(|| format!("HubSpot contact {id}"), str::to_owned)
    } else {
        names.join(" ")
    };
    let mut emails: Vec<&str> = text("email").into_iter().collect();
    emails.extend(
        text("hs_additional_emails")
            .unwrap_or_default()
            .split(';')
            .filter(|e| !e.is_empty()),
    );
    let phones: Vec<&str> = [text("phone"), text("mobilephone")]
        .into_iter()
        .flatten()
        .collect();
    let mut data = serde_json::Map::new();
    data.insert("display_name".into(), json!(display_name));
    for (field, property) in [
        ("given_name", "firstname"),
        ("family_name", "lastname"),
        ("organization", "company"),
        ("title", "jobtitle"),
    ] {
        if let Some(value) = text(property) {
            data.insert(field.into(), json!(value));
        }
    }
    data.insert("emails".into(), json!(emails));
    data.insert("phones".into(), json!(phones));
    data.insert(
        "extra".into(),
        json!({"hubspot_id": id, "created_at": record["createdAt"]}),
    );
    let modified = record["updatedAt"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&Utc).min(now));
    ConnectorItem {
        instance_id: instance_id.to_owned(),
        entity_type: EntityType::Person,
        external_id: id,
        operation: ItemOperation::Upsert,
        source_modified_at: modified,
        data: Value::Object(data),
        raw: record.clone(),
    }
}

/// One sync to its end: items per second, and the items (to compare the two).
async fn sync(connector: &dyn ConnectorPlugin, test: &TestContext) -> (f64, Vec<ConnectorItem>) {
    let started = Instant::now();
    let mut steps = connector.sync(test.ctx(), None, SyncRequest::full());
    let mut items = Vec::new();
    while let Some(step) = steps.next().await {
        if let SyncStep::Item(item) = step.expect("the sync succeeds") {
            items.push(item);
        }
    }
    (items.len() as f64 / started.elapsed().as_secs_f64(), items)
}

/// The median and range of `figures`, with `decimals` after the point.
fn spread(figures: &[f64], decimals: usize) -> String {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "median {:.decimals$}, range {:.decimals$}–{:.decimals$}",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

#[tokio::main]
async fn main() {
    let n = count_argument(200);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base_url = format!("http://127.0.0.1:{port}");
    let app = Router::new()
        .route("/crm/v3/objects/contacts", get(contacts))
        .with_state(pages(n));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let spec = validate(&SPEC.replace("BASE", &base_url), &manifest(port))
        .unwrap_or_else(|e| panic!("{e}"));
    let declarative = DeclarativeConnector::new(spec);
    let native = NativeContacts {
        base_url: base_url.clone(),
    };
    // A test context allows the server's port as it allows any (`local_egress`): the grant
    // names the address.
    let test = TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:persons"],
        json!({"accessToken": TOKEN, "pageSize": RECORDS_PER_PAGE}),
    );

    // One warm-up of each, which also checks that both make the same items.
    let (_, from_spec) = sync(&declarative, &test).await;
    let (_, from_code) = sync(&native, &test).await;
    assert_eq!(from_spec.len(), n * RECORDS_PER_PAGE);
    assert_eq!(from_spec.len(), from_code.len());
    for (a, b) in from_spec.iter().zip(&from_code) {
        assert_eq!(
            (&a.external_id, &a.data, &a.raw, a.source_modified_at),
            (&b.external_id, &b.data, &b.raw, b.source_modified_at),
            "the two connectors map a record alike"
        );
    }

    println!(
        "declarative vs native: {n} pages of {RECORDS_PER_PAGE} contacts, {ROUNDS} rounds of each, alternating"
    );
    println!(
        "{:<8} {:>14} {:>14} {:>7}",
        "round", "declarative/s", "native/s", "ratio"
    );
    let (mut spec_rates, mut code_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (spec_rate, _) = sync(&declarative, &test).await;
        let (code_rate, _) = sync(&native, &test).await;
        println!(
            "{round:<8} {spec_rate:>14.0} {code_rate:>14.0} {:>7.2}",
            spec_rate / code_rate
        );
        spec_rates.push(spec_rate);
        code_rates.push(code_rate);
        ratios.push(spec_rate / code_rate);
    }
    println!("declarative items/s: {}", spread(&spec_rates, 0));
    println!("native items/s:      {}", spread(&code_rates, 0));
    println!("ratio: {} (aim ≥ 0.8)", spread(&ratios, 2));
}

/// The first number among the arguments (`cargo bench … -- 500`), or `default`.
fn count_argument(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(default)
}
