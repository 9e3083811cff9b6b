//! Plugins found on disk: invalid ones listed with their problems, never stopping the others.

use serde_json::{json, Value};
use tributary_proto::requests::ErrorCode;

use crate::support::*;
use tributary_proto::requests::plugins::{Call, InstallRequest, ListPlugins, PluginInfo};

#[tokio::test]
async fn invalid_plugins_are_listed_with_every_problem_and_the_others_load() {
    let (mut env, dir) = env_with_plugin().await;
    dir.write(
        "bad-fields",
        r#"{"id": "Not DNS", "name": "", "version": "1.0", "type": "importer",
        "entrypoint": "exe:/bin/sh", "permissions": ["network:outbound:", "disk:write:/"],
        "configSchema": {"type": "object", "properties": {"a": {"type": "strnig"}}}}"#,
    );
    dir.write("not-json", "{ this is not json");
    dir.write("duplicate", &contacts_manifest("9.9.9", &[]));
    let empty = PluginDir::new();
    env.config.plugin_manager.plugin_dirs.push(empty.0.clone());
    let pm = RunningPm::start(env.config.clone()).await;

    let list: Value = ask::<ListPlugins, _>(&env, json!({})).await.unwrap();
    // The built-in plugins are there too, and the good one from the directory.
    let ids: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = tributary_plugin_manager::discovery::BUILTIN_MANIFESTS
        .iter()
        .map(|text| {
            serde_json::from_str::<Value>(text).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .chain([CONTACTS.to_owned()])
        .collect();
    expected.sort();
    assert!(
        expected.iter().any(|id| id == "tributary.slack"),
        "{expected:?}"
    );
    assert_eq!(ids, expected);
    assert_eq!(
        list["plugins"][0]["version"], "1.0.0",
        "the duplicate did not replace it"
    );
    let invalid = list["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 3, "{invalid:#?}");
    let by_dir = |name: &str| -> &Value {
        invalid
            .iter()
            .find(|i| i["location"].as_str().unwrap().ends_with(name))
            .unwrap()
    };
    let fields: Vec<&str> = by_dir("bad-fields")["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    for field in [
        "id",
        "name",
        "version",
        "type",
        "entrypoint",
        "permissions[0]",
        "permissions[1]",
    ] {
        assert!(fields.contains(&field), "`{field}` not named: {fields:?}");
    }
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("configSchema.properties.a")),
        "{fields:?}"
    );
    assert_eq!(by_dir("duplicate")["problems"][0]["field"], "id");
    assert_eq!(by_dir("duplicate")["id"], CONTACTS);
    assert!(by_dir("not-json")["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("JSON"));

    let info: Value = ask::<PluginInfo, _>(&env, json!({ "plugin_id": CONTACTS }))
        .await
        .unwrap();
    assert_eq!(info["permissions"], json!(V1_PERMISSIONS));
    let unknown = ask::<PluginInfo, Value>(&env, json!({ "plugin_id": "com.example.nope" }))
        .await
        .unwrap_err();
    assert_eq!(unknown.error, ErrorCode::NotFound);
    install(
        &env,
        "work",
        json!({ "server": "https://dav.example.com", "password": "pw" }),
    )
    .await;
    let bad = ask::<Call<InstallRequest>, Value>(&env, "not an object")
        .await
        .unwrap_err();
    assert_eq!(bad.error, ErrorCode::BadRequest);
    pm.stop().await;
}

#[tokio::test]
async fn a_missing_plugin_directory_stops_start_up_naming_the_setting() {
    let (mut env, _dir) = env_with_plugin().await;
    env.config
        .plugin_manager
        .plugin_dirs
        .push("/nonexistent/tributary-plugins".into());
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin_manager.plugin_dirs[1]"), "{err}");
}
