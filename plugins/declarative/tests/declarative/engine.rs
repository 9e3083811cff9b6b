//! The engine on a spec of the tests' own: a `base_url` templated from config, rendered as
//! validation renders it and still held to the grants; and a server that refuses sync state
//! mid-listing, which must fail the sync rather than make it start over forever.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tributary_declarative::{validate, DeclarativeConnector};
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{Cursor, ItemOperation, PluginError, PluginManifest};

use crate::support::{ids, run, sync};

/// Tasks from `{{ config.server }}/v2/tasks`, paged by `next_cursor` → `cursor`, with a sync
/// token for later syncs and the default expiry (410).
const SPEC: &str = r#"
version = 1
base_url = "{{ config.server | trim('/') }}/v2"

[[streams]]
name = "tasks"
request = { url = "{{ base_url }}/tasks" }
records = { path = "body.data" }
pagination = { type = "cursor", token = "body.next_cursor", param = "cursor" }
changes = { type = "sync_token", token = "body.sync_token", param = "sync_token" }

[streams.map]
entity = "document"
id = "record.id"
fields = { title = "record.title" }
"#;

fn manifest(permission: &str) -> PluginManifest {
    PluginManifest::from_value(&json!({
        "id": "com.example.tasks",
        "name": "Tasks",
        "version": "1.0.0",
        "type": "connector",
        "entrypoint": "declarative:tasks.toml",
        "permissions": [permission, "data:write:documents"],
        "configSchema": {
            "type": "object",
            "properties": {"server": {"type": "string"}, "subdomain": {"type": "string"}}
        }
    }))
    .unwrap_or_else(|e| panic!("{e:?}"))
}

/// `spec`, validated against a manifest granting `permission`.
fn connector(spec: &str, permission: &str) -> DeclarativeConnector {
    let spec = validate(spec, &manifest(permission)).unwrap_or_else(|e| panic!("{e}"));
    DeclarativeConnector::new(spec)
}

/// What the local task API refuses with `410 Gone`.
#[derive(Clone, Copy, PartialEq)]
enum Refuses {
    /// Nothing: two pages, then a sync token.
    Nothing,
    /// Every page cursor: the first page is served, the second never.
    PageCursors,
    /// Every request.
    Everything,
}

#[derive(Clone)]
struct Tasks {
    refuses: Refuses,
    /// Every request's query string, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

/// A local task API at `/v2/tasks`; its base URL.
async fn serve(tasks: Tasks) -> String {
    async fn list(
        State(tasks): State<Tasks>,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> Response {
        let asked: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tasks.requests.lock().unwrap().push(asked.join("&"));
        let gone = || {
            let body =
                json!({"error": {"code": "gone", "message": "The cursor is no longer valid."}});
            (StatusCode::GONE, Json(body)).into_response()
        };
        match (tasks.refuses, q.get("cursor")) {
            (Refuses::Everything, _) | (Refuses::PageCursors, Some(_)) => gone(),
            (_, None) => Json(json!({"data": [{"id": "t1", "title": "One"}], "next_cursor": "p2"}))
                .into_response(),
            (Refuses::Nothing, Some(_)) => {
                Json(json!({"data": [{"id": "t2", "title": "Two"}], "sync_token": "s1"}))
                    .into_response()
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v2/tasks", get(list))
        .with_state(tasks);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn tasks(refuses: Refuses) -> Tasks {
    Tasks {
        refuses,
        requests: Arc::default(),
    }
}

fn context(server: &str) -> TestContext {
    TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:documents"],
        json!({ "server": format!("{server}/") }),
    )
    .with_fast_retries()
}

/// A sync token the API has since forgotten.
fn kept_token() -> Cursor {
    Cursor::new(json!({"streams": {"tasks": {"": {"delta": "s0"}}}})).unwrap()
}

#[tokio::test]
async fn a_base_url_templated_from_config_is_rendered_with_the_instances_config() {
    let api = tasks(Refuses::Nothing);
    let server = serve(api.clone()).await;
    let connector = connector(SPEC, "network:outbound:${server}");

    let (items, _) = sync(&connector, &context(&server), None).await;

    assert_eq!(ids(&items, ItemOperation::Upsert), ["t1", "t2"]);
    assert_eq!(*api.requests.lock().unwrap(), ["", "cursor=p2"]);
}

#[tokio::test]
async fn a_host_made_from_config_that_no_permission_grants_is_refused_at_run_time_naming_it() {
    // `*.tasks.example` grants every subdomain at install; a subdomain value that ends the
    // host early reaches another one, which the run's grants refuse before any request.
    let spec = SPEC.replace(
        r#"base_url = "{{ config.server | trim('/') }}/v2""#,
        r#"base_url = "https://{{ config.subdomain }}.tasks.example/v2""#,
    );
    let connector = connector(&spec, "network:outbound:*.tasks.example");
    let test = TestContext::new(
        &["network:outbound:*.tasks.example", "data:write:documents"],
        json!({ "subdomain": "exfiltrate.example#" }),
    );

    let failure = run(&connector, &test, None)
        .await
        .expect_err("an ungranted host fails the sync");

    assert!(
        matches!(failure, PluginError::PermissionDenied(_)),
        "{failure:?}"
    );
    assert!(
        failure
            .to_string()
            .contains("network:outbound:exfiltrate.example"),
        "{failure}"
    );
}

#[test]
fn a_host_made_from_config_needs_a_permission_granting_it_whatever_the_value() {
    let spec = SPEC.replace(
        r#"base_url = "{{ config.server | trim('/') }}/v2""#,
        r#"base_url = "https://{{ config.subdomain }}.tasks.example/v2""#,
    );
    assert!(validate(&spec, &manifest("network:outbound:*.tasks.example")).is_ok());
    let refused = validate(&spec, &manifest("network:outbound:acme.tasks.example"))
        .expect_err("one subdomain does not grant them all")
        .problems;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].path, "streams[0].request.url");
    assert!(
        refused[0]
            .message
            .contains("`config-subdomain.tasks.example` is made with a config value"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_server_refusing_every_page_cursor_fails_the_sync_after_one_full_resync() {
    let api = tasks(Refuses::PageCursors);
    let server = serve(api.clone()).await;
    let connector = connector(SPEC, "network:outbound:${server}");

    let failure = tokio::time::timeout(
        Duration::from_secs(10),
        run(&connector, &context(&server), Some(kept_token())),
    )
    .await
    .expect("the sync ends instead of starting over forever")
    .expect_err("a second refusal fails the sync")
    .to_string();

    assert!(failure.contains("stream tasks"), "{failure}");
    assert!(failure.contains("HTTP 410"), "{failure}");
    assert!(
        failure.contains("again during the full resync"),
        "{failure}"
    );
    // The kept token's first page and its refused second, then one full listing: its first
    // page, and its second refused again.
    assert_eq!(
        *api.requests.lock().unwrap(),
        ["sync_token=s0", "cursor=p2&sync_token=s0", "", "cursor=p2"]
    );
}

#[tokio::test]
async fn a_server_answering_410_to_everything_fails_the_sync_naming_the_stream_and_status() {
    let api = tasks(Refuses::Everything);
    let server = serve(api.clone()).await;
    let connector = connector(SPEC, "network:outbound:${server}");

    let failure = tokio::time::timeout(
        Duration::from_secs(10),
        run(&connector, &context(&server), Some(kept_token())),
    )
    .await
    .expect("the sync ends instead of starting over forever")
    .expect_err("a refused full listing fails the sync")
    .to_string();

    assert!(failure.contains("stream tasks"), "{failure}");
    assert!(failure.contains("HTTP 410"), "{failure}");
    // The kept token refused, then the full listing refused too: two requests, no third.
    assert_eq!(*api.requests.lock().unwrap(), ["sync_token=s0", ""]);
}
