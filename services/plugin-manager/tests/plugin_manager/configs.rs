//! Instance configuration against the plugin's config schema: every problem named by its JSON
//! path, nothing stored when refused, and secrets kept across partial updates.

use serde_json::{json, Value};
use tributary_proto::requests::ErrorCode;

use crate::support::*;
use tributary_proto::requests::plugins::{ConfigureRequest, InstanceCall, RuntimeQuery};

#[tokio::test]
async fn bad_configs_are_refused_naming_each_json_path_and_nothing_is_installed() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let admin = Admin::new(&env, &pm);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({ "password": "pw-0123456789" }), vec!["/server"]),
        (
            json!({ "server": "https://dav.example.com" }),
            vec!["/password"],
        ),
        (
            json!({ "server": "short", "password": "pw-0123456789" }),
            vec!["/server"],
        ),
        (
            json!({ "server": 42, "password": "pw-0123456789" }),
            vec!["/server"],
        ),
        (
            json!({ "server": "https://dav.example.com", "password": "pw", "pageSize": 0 }),
            vec!["/pageSize"],
        ),
        (
            json!({ "server": "https://dav.example.com", "password": "pw", "pageSize": "ten" }),
            vec!["/pageSize"],
        ),
        (
            json!({ "server": "https://dav.example.com", "password": "pw", "pageSize": 5000 }),
            vec!["/pageSize"],
        ),
        (
            json!({ "server": "https://dav.example.com", "password": 1234 }),
            vec!["/password"],
        ),
        (
            json!({ "server": "https://dav.example.com", "password": "pw", "sever": "typo" }),
            vec![""],
        ),
        (
            json!({ "pageSize": -1 }),
            vec!["/pageSize", "/server", "/password"],
        ),
        (json!(["not", "an", "object"]), vec![""]),
    ];
    for (i, (config, paths)) in cases.iter().enumerate() {
        let (status, body) = admin
            .call(
                "POST",
                "/api/v1/instances",
                Some(
                    json!({ "plugin_id": CONTACTS, "instance_id": format!("bad{i}"),
                             "config": config, "accept_permissions": V1_PERMISSIONS }),
                ),
            )
            .await;
        assert_eq!(status, 422, "{config}: {body}");
        assert_eq!(body["error"], "invalid_config", "{config}: {body}");
        let mut found: Vec<&str> = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["path"].as_str().unwrap())
            .collect();
        found.sort_unstable();
        let mut wanted = paths.clone();
        wanted.sort_unstable();
        assert_eq!(found, wanted, "{config}: {body}");
        if config.get("sever").is_some() {
            assert!(
                body.to_string().contains("sever"),
                "the unknown field is named: {body}"
            );
        }
    }
    let (_, list) = admin.call("GET", "/api/v1/instances", None).await;
    assert_eq!(list, json!([]), "no refused instance was stored");
    let (status, body) = admin
        .call("POST", "/api/v1/instances", Some(json!({ "plugin": 1 })))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request");
    pm.stop().await;
}

#[tokio::test]
async fn an_instance_is_enabled_only_with_a_complete_config_and_secrets_survive_partial_updates() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let admin = Admin::new(&env, &pm);
    let (status, view) = admin
        .call(
            "POST",
            "/api/v1/instances",
            Some(json!({ "plugin_id": CONTACTS, "instance_id": "work", "accept_permissions": V1_PERMISSIONS })),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["secrets"]["/password"], "not_set");

    let (status, body) = admin
        .call("POST", "/api/v1/instances/work/enable", None)
        .await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/server") && paths.contains(&"/password"),
        "{body}"
    );

    let (status, view) = admin
        .call(
            "PUT",
            "/api/v1/instances/work/config",
            Some(json!({ "config": { "server": "https://dav.example.com", "password": "first-secret-1", "pageSize": 50 } })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["config"],
        json!({ "server": "https://dav.example.com", "pageSize": 50 })
    );
    assert_eq!(view["secrets"]["/password"], "set");

    // Leaving the secret out keeps it; the config is still complete.
    let (status, view) = admin
        .call(
            "PUT",
            "/api/v1/instances/work/config",
            Some(json!({ "config": { "server": "https://dav2.example.com" } })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["config"],
        json!({ "server": "https://dav2.example.com" })
    );
    let runtime: Value = ask::<RuntimeQuery, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(runtime["config"]["password"], "first-secret-1");
    assert_eq!(runtime["permissions"], json!(V1_PERMISSIONS));
    let (status, body) = admin
        .call("POST", "/api/v1/instances/work/enable", None)
        .await;
    assert_eq!(status, 200, "{body}");

    // A bad update changes nothing; clearing a required secret is refused by the schema.
    let (status, body) = admin
        .call(
            "PUT",
            "/api/v1/instances/work/config",
            Some(json!({ "config": { "server": "https://dav2.example.com", "password": null } })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["problems"][0]["path"], "/password");
    let runtime: Value = ask::<RuntimeQuery, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(runtime["config"]["password"], "first-secret-1");
    let (audit, _) = audit_of(&env, "work").await;
    let configures: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "configure")
        .collect();
    assert_eq!(configures.len(), 2);
    assert_eq!(
        configures[0]["detail"]["secrets_changed"],
        json!(["/password"])
    );
    assert_eq!(
        configures[1]["detail"]["fields_changed"],
        json!(["pageSize", "server"])
    );
    assert_eq!(
        configures[1]["actor"],
        tributary_plugin_manager::http_api::admin_actor(&env.config.plugin_manager.admin_token)
    );
    let unknown = ask::<InstanceCall<ConfigureRequest>, Value>(
        &env,
        json!({ "instance_id": "nope", "config": {} }),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.error, ErrorCode::NotFound);
    pm.stop().await;
}
