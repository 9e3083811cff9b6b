//! The admin HTTP API: the bearer token on every route, and the OpenAPI document held against
//! the routes the service really serves.

use serde_json::{json, Value};

use crate::support::*;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Every (method, path) the OpenAPI document lists, with its path parameters filled in.
fn documented(doc: &Value, instance: &str) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let concrete = path
                .replace("{instance_id}", instance)
                .replace("{plugin_id}", CONTACTS);
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
    let before: Vec<Value> = ask(&env, "audit", json!({})).await.unwrap();
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
    let after: Vec<Value> = ask(&env, "audit", json!({})).await.unwrap();
    assert_eq!(before, after, "nothing was changed");
    let view: Value = ask(&env, "instance", json!({ "instance_id": "work" }))
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
        assert!(status < 500, "{method} {path}: {status} {reply}");
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
