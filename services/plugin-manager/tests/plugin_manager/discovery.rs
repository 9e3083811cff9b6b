//! Plugins found on disk: invalid ones listed with their problems, never stopping the others.

use std::path::Path;

use serde_json::{json, Value};
use tributary_proto::requests::ErrorCode;

use crate::support::*;
use tributary_proto::requests::plugins::{
    Call, InstallRequest, InstanceCall, InstanceInfo, ListPlugins, PluginInfo, RescanPlugins,
    RuntimeQuery, UpgradeRequest,
};

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
    // The same id and version as `contacts`, asking for less: not loaded, naming both.
    dir.write("duplicate", &contacts_manifest("1.0.0", &[]));
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
    let message = by_dir("duplicate")["problems"][0]["message"]
        .as_str()
        .unwrap();
    let first = dir.0.join("contacts").display().to_string();
    assert!(
        message.contains(&first) && message.contains("duplicate"),
        "{message}"
    );
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

const TASKS: &str = "com.example.tasks";

/// The bytes of a component of its own for each `digit`: an empty component with a custom
/// section holding it (discovery checks a component's digest and imports, so it must be one).
fn tasks_component(digit: char) -> Vec<u8> {
    let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
    let name = b"tasks";
    bytes.extend_from_slice(&[0, (1 + name.len() + 1) as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.push(digit as u8);
    bytes
}

/// The SHA-256 of [`tasks_component`] for `digit`.
fn tasks_digest(digit: char) -> String {
    tributary_wasm::sha256_hex(&tasks_component(digit))
}

/// Writes the component for `digit` as `<dir>/tasks.wasm`.
fn write_component(dir: &Path, digit: char) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tasks.wasm"), tasks_component(digit)).unwrap();
}

/// A WebAssembly connector's manifest at `version`, with the digest of the component for
/// `digit`, so each version's digest is its own.
fn tasks_manifest(version: &str, digit: char) -> String {
    json!({
        "id": TASKS,
        "name": "Example Tasks",
        "version": version,
        "type": "connector",
        "entrypoint": "wasm:tasks.wasm",
        "sha256": tasks_digest(digit),
        "permissions": ["event:publish:connector.items.*"]
    })
    .to_string()
}

/// Writes `<dir>/plugin.json`.
fn write_manifest(dir: &Path, manifest: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest).unwrap();
}

/// The component path and digest `plugins.runtime` gives the service running `instance`.
async fn component_of(env: &tributary_kit::testing::TestEnv, instance: &str) -> (String, String) {
    let runtime: Value = ask::<RuntimeQuery, _>(env, json!({ "instance_id": instance }))
        .await
        .unwrap();
    let component = &runtime["component"];
    (
        component["path"].as_str().unwrap().to_owned(),
        component["sha256"].as_str().unwrap().to_owned(),
    )
}

async fn install_tasks(env: &tributary_kit::testing::TestEnv, instance: &str) -> Value {
    ask::<Call<InstallRequest>, _>(
        env,
        json!({
            "plugin_id": TASKS,
            "instance_id": instance,
            "accept_permissions": ["event:publish:connector.items.*"],
            "actor": "test",
        }),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn versions_side_by_side_are_listed_a_new_install_takes_the_newest_and_upgrade_moves_to_it() {
    // Proves a newer version added beside an older one (in the managed plugin directory,
    // scanned by default) waits for `plugins upgrade`: the instance on the older one keeps
    // running its own component, a new instance gets the newest by semantic version.
    let mut env = tributary_kit::testing::TestEnv::new().await;
    let dir = PluginDir::new();
    dir.write("tasks", &tasks_manifest("1.9.0", '1'));
    write_component(&dir.0.join("tasks"), '1');
    env.config.plugin_manager.plugin_dirs = vec![dir.0.clone()];
    let pm = RunningPm::start(env.config.clone()).await;
    install_tasks(&env, "early").await;

    let managed = env.config.managed_plugin_dir().join(TASKS);
    write_manifest(&managed.join("1.10.0"), &tasks_manifest("1.10.0", '2'));
    write_component(&managed.join("1.10.0"), '2');
    let list: Value = ask::<RescanPlugins, _>(&env, json!({})).await.unwrap();
    let versions: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == TASKS)
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.9.0", "1.10.0"], "{list:#}");
    let info: Value = ask::<PluginInfo, _>(&env, json!({ "plugin_id": TASKS }))
        .await
        .unwrap();
    assert_eq!(info["version"], "1.10.0", "1.10.0 is newer than 1.9.0");

    let late = install_tasks(&env, "late").await;
    assert_eq!(late["version"], "1.10.0");
    let newest_component = (
        managed.join("1.10.0/tasks.wasm").display().to_string(),
        tasks_digest('2'),
    );
    assert_eq!(component_of(&env, "late").await, newest_component);
    let early: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "early" }))
        .await
        .unwrap();
    assert_eq!(early["version"], "1.9.0", "{early:#}");
    assert_eq!(early["available_version"], "1.10.0");
    assert_eq!(
        component_of(&env, "early").await,
        (
            dir.0.join("tasks/tasks.wasm").display().to_string(),
            tasks_digest('1')
        ),
        "the older instance still runs the version it was installed on"
    );

    let upgraded: Value =
        ask::<InstanceCall<UpgradeRequest>, _>(&env, json!({ "instance_id": "early" }))
            .await
            .unwrap();
    assert_eq!(upgraded["version"], "1.10.0");
    assert_eq!(component_of(&env, "early").await, newest_component);
    let again = ask::<InstanceCall<UpgradeRequest>, Value>(&env, json!({ "instance_id": "early" }))
        .await
        .unwrap_err();
    assert_eq!(again.error, ErrorCode::Conflict, "{again:?}");

    // The same id and version once more is not loaded, naming both places.
    write_manifest(&managed.join("1.9.0"), &tasks_manifest("1.9.0", '3'));
    write_component(&managed.join("1.9.0"), '3');
    let list: Value = ask::<RescanPlugins, _>(&env, json!({})).await.unwrap();
    let refused = list["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == TASKS)
        .unwrap_or_else(|| panic!("the second 1.9.0 was loaded: {list:#}"));
    let message = refused["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&dir.0.join("tasks").display().to_string())
            && message.contains(&managed.join("1.9.0").display().to_string()),
        "{message}"
    );
    pm.stop().await;
}
