//! The admin HTTP API: the bearer token on every route, and the OpenAPI document held against
//! the routes the service really serves.

use serde_json::{json, Value};

use crate::support::*;
use tributary_proto::requests::plugins::{
    AuditQuery, InstanceCall, InstanceInfo, UninstallRequest,
};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Every (method, path) the OpenAPI document lists, with its path parameters filled in.
fn documented(doc: &Value, instance: &str) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let concrete = path
                .replace("{instance_id}", instance)
                .replace("{plugin_id}", CONTACTS)
                .replace("{person_id}", "0190a7c4-5d8e-7000-8000-000000000001")
                .replace("{sequence}", "1");
            operations.push((method.to_uppercase(), concrete));
        }
    }
    operations
}

#[tokio::test]
async fn no_token_or_a_wrong_one_gets_401_on_every_route_and_changes_nothing() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    let (status, doc) = Admin::with_token(&pm, None)
        .call("GET", "/api/v1/openapi.json", None)
        .await;
    assert_eq!(status, 200, "the document needs no token");
    let before: Vec<Value> = ask::<AuditQuery, _>(&env, json!({})).await.unwrap();
    let operations = documented(&doc, "work");
    assert!(operations.len() >= 12, "{operations:?}");

    let wrong = env.config.plugin_manager.admin_token.expose_secret_string() + "x";
    for token in [
        None,
        Some(wrong),
        Some(String::new()),
        Some("work".to_owned()),
    ] {
        let client = Admin::with_token(&pm, token.clone());
        for (method, path) in &operations {
            let body = (method != "GET" && method != "DELETE").then(|| {
                json!({ "plugin_id": CONTACTS, "instance_id": "intruder", "accept_permissions": V1_PERMISSIONS,
                        "config": { "server": "https://evil.example.com", "password": "x" } })
            });
            let (status, reply) = client.call(method, path, body).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {reply}");
            assert_eq!(reply["error"], "unauthorized");
        }
    }
    let after: Vec<Value> = ask::<AuditQuery, _>(&env, json!({})).await.unwrap();
    assert_eq!(before, after, "nothing was changed");
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "installed");
    assert_eq!(view["config"]["server"], "https://dav.example.com");
    let (status, _) = admin.call("GET", "/api/v1/instances/intruder", None).await;
    assert_eq!(status, 404);
    pm.stop().await;
}

trait ExposeString {
    fn expose_secret_string(&self) -> String;
}

impl ExposeString for secrecy::SecretString {
    fn expose_secret_string(&self) -> String {
        secrecy::ExposeSecret::expose_secret(self).to_owned()
    }
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    let (_, doc) = admin.call("GET", "/api/v1/openapi.json", None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Every documented operation is served: it never meets the "no route" fallback or 405.
    let operations = documented(&doc, "work");
    let mut paths: Vec<String> = operations.iter().map(|(_, p)| p.clone()).collect();
    paths.sort();
    paths.dedup();
    for (method, path) in &operations {
        let body = match (method.as_str(), path.as_str()) {
            ("POST", "/api/v1/instances") => {
                Some(json!({ "plugin_id": CONTACTS, "instance_id": "second",
                "accept_permissions": V1_PERMISSIONS }))
            }
            ("PUT", _) => Some(json!({ "config": { "server": "https://dav.example.com" } })),
            ("POST", p) if p.ends_with("/upgrade") => Some(json!({})),
            _ => None,
        };
        let (status, reply) = admin.call(method, path, body).await;
        assert_ne!(status, 405, "{method} {path}: {reply}");
        let fallback = reply["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no route");
        assert!(
            !fallback,
            "{method} {path} is documented but not served: {reply}"
        );
        // The sync routes ask the connector service and the people routes the ETL, which
        // this test does not run: they answer 503 saying so, never another server error.
        let asks = if path.ends_with("/sync") || path.ends_with("/sync/cancel") {
            Some("connector service does not answer")
        } else if path.starts_with("/api/v1/people/") {
            Some("etl.people.")
        } else {
            None
        };
        if let (Some(says), 503) = (asks, status) {
            let message = reply["message"].as_str().unwrap();
            assert!(
                message.contains("does not answer") && message.contains(says),
                "{method} {path}: {reply}"
            );
        } else {
            assert!(status < 500, "{method} {path}: {status} {reply}");
        }
    }
    // And nothing else is served on those paths: every other method is refused with 405.
    for path in &paths {
        for method in METHODS {
            if operations.iter().any(|(m, p)| m == method && p == path) {
                continue;
            }
            let (status, reply) = admin.call(method, path, Some(json!({}))).await;
            assert_eq!(
                status, 405,
                "{method} {path} is served but not documented: {reply}"
            );
        }
    }
    let (status, reply) = admin.call("GET", "/api/v1/nothing-here", None).await;
    assert_eq!(status, 404);
    assert!(
        reply["message"].as_str().unwrap().starts_with("no route"),
        "{reply}"
    );
    pm.stop().await;
}

/// The statuses an operation of the document lists.
fn documented_statuses(doc: &Value, method: &str, path: &str) -> Vec<u16> {
    doc["paths"][path][method.to_lowercase()]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn every_error_a_route_answers_is_documented_for_it_with_the_json_error_shape() {
    let (env, _dir, pm) = started_with_work(false).await;
    install(&env, "gone", contacts_config()).await;
    ask::<InstanceCall<UninstallRequest>, Value>(&env, json!({ "instance_id": "gone" }))
        .await
        .unwrap();
    let admin = Admin::new(&env, &pm);
    let (_, doc) = admin.call("GET", "/api/v1/openapi.json", None).await;

    let mut seen = std::collections::BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let statuses = documented_statuses(&doc, &method, template);
            // Every documented error has the one error body.
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ApiError",
                        "{method} {template} {status}"
                    );
                }
            }
            for needed in [401, 500] {
                assert!(
                    statuses.contains(&needed),
                    "{method} {template}: {statuses:?}"
                );
            }
            // Provoke what the route can answer: no token; an unknown, an uninstalled and an
            // unreadable instance or plugin; a body that is not JSON; a query that does not
            // parse.
            let with = |id: &str| {
                template
                    .replace("{instance_id}", id)
                    .replace("{plugin_id}", id)
            };
            let body = (method == "POST" || method == "PUT").then(|| json!({}));
            let mut tries: Vec<(Admin, String, Option<Value>)> =
                vec![(Admin::with_token(&pm, None), with("work"), body.clone())];
            for id in ["ghost", "gone", "%FF", "%00"] {
                tries.push((Admin::new(&env, &pm), with(id), body.clone()));
            }
            if body.is_some() {
                tries.push((
                    Admin::new(&env, &pm),
                    with("work"),
                    Some(json!("not an object")),
                ));
            }
            for query in ["?purge=maybe", "?limit=many", "?limit=-1", "?state=asleep"] {
                tries.push((
                    Admin::new(&env, &pm),
                    format!("{}{query}", with("work")),
                    body.clone(),
                ));
            }
            for (client, path, body) in tries {
                let (status, reply) = client.call(&method, &path, body).await;
                if status < 400 {
                    continue;
                }
                seen.insert(status);
                assert!(
                    statuses.contains(&status),
                    "{method} {path} answered {status}, which {template} does not document ({statuses:?}): {reply}"
                );
                assert!(
                    reply["error"].is_string() && reply["message"].is_string(),
                    "{method} {path} answered {status} without the JSON error: {reply}"
                );
            }
        }
    }
    // The walk did reach each kind of refusal.
    for status in [400, 401, 404, 409] {
        assert!(seen.contains(&status), "{seen:?}");
    }
    pm.stop().await;
}

#[tokio::test]
async fn a_query_string_that_does_not_parse_gets_the_json_error_naming_the_parameter() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    for (method, path, parameter) in [
        ("GET", "/api/v1/audit?limit=many", "limit"),
        ("DELETE", "/api/v1/instances/work?purge=maybe", "purge"),
    ] {
        let (status, reply) = admin.call(method, path, None).await;
        assert_eq!(status, 400, "{method} {path}: {reply}");
        assert_eq!(reply["error"], "bad_request", "{method} {path}: {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains(parameter), "{method} {path}: {reply}");
    }
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(
        view["state"], "installed",
        "the refused uninstall did nothing"
    );
    pm.stop().await;
}

#[tokio::test]
async fn an_audit_limit_outside_1_to_10000_is_refused_naming_the_range() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    for limit in ["-1", "0", "10001"] {
        let (status, reply) = admin
            .call("GET", &format!("/api/v1/audit?limit={limit}"), None)
            .await;
        assert_eq!(status, 400, "limit={limit}: {reply}");
        assert!(
            reply["message"]
                .as_str()
                .unwrap()
                .contains("`limit` must be from 1 to 10000"),
            "{reply}"
        );
        let e = ask::<AuditQuery, Value>(&env, json!({ "limit": limit.parse::<i64>().unwrap() }))
            .await
            .unwrap_err();
        assert!(e.message.contains("`limit`"), "{e:?}");
    }
    let (status, entries) = admin.call("GET", "/api/v1/audit?limit=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(entries.as_array().unwrap().len(), 1);
    let (_, doc) = admin.call("GET", "/api/v1/openapi.json", None).await;
    let limit = doc["paths"]["/api/v1/audit"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    assert_eq!(limit["schema"]["maximum"], 10000, "{limit}");
    pm.stop().await;
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_gets_405_with_the_json_error() {
    let (env, _dir, pm) = started_with_work(false).await;
    let (status, reply) = Admin::new(&env, &pm)
        .call("PATCH", "/api/v1/instances/work", None)
        .await;
    assert_eq!(status, 405);
    assert_eq!(reply["error"], "method_not_allowed", "{reply}");
    pm.stop().await;
}

#[tokio::test]
async fn a_change_through_the_admin_api_is_recorded_under_the_tokens_fingerprint_never_the_token() {
    let (env, _dir, pm) = started_with_work(false).await;
    let (status, reply) = Admin::new(&env, &pm)
        .call("POST", "/api/v1/instances/work/disable", None)
        .await;
    assert_eq!(status, 200, "{reply}");
    let (audit, actions) = audit_of(&env, "work").await;
    assert_eq!(actions.last().unwrap(), "disable");
    let token = &env.config.plugin_manager.admin_token;
    let actor = audit.last().unwrap()["actor"].as_str().unwrap().to_owned();
    assert_eq!(
        actor,
        tributary_plugin_manager::http_api::admin_actor(token)
    );
    assert!(actor.starts_with("admin-api:"), "{actor}");
    assert_eq!(actor.len(), "admin-api:".len() + 8, "{actor}");
    assert!(!actor.contains(&token.expose_secret_string()), "{actor}");
    pm.stop().await;
}
