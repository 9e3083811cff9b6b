//! The dependency rule: the plugin host, and the services that host plugins or search, link
//! nothing of the plugin manager. What they share with it lives in proto and kit; the plugin
//! manager is a service they talk to over NATS, not a library they import.

use serde_json::Value;

/// Crates whose normal (non-dev) dependencies must not include the plugin manager. Tests may
/// still start a real plugin manager (a dev-dependency).
const MUST_NOT_IMPORT_THE_PLUGIN_MANAGER: &[&str] = &[
    "tributary-host",
    "tributary-connector",
    "tributary-channel",
    "tributary-search",
];

/// The plugin manager's package name.
const PLUGIN_MANAGER: &str = "tributary-plugin-manager";

/// `(package, dependency)` for every normal or build dependency of a package in `crates` on
/// `forbidden`, in `cargo metadata` output.
fn violations(metadata: &Value, crates: &[&str], forbidden: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        if !crates.contains(&name) {
            continue;
        }
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let is_dev = dependency["kind"].as_str() == Some("dev");
            if dependency["name"] == forbidden && !is_dev {
                found.push((name.to_owned(), forbidden.to_owned()));
            }
        }
    }
    found
}

/// `cargo metadata` of the workspace, without its dependencies' own.
fn workspace_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = format!("{}/../../Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", &manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn the_host_connector_channel_and_search_do_not_depend_on_the_plugin_manager() {
    let metadata = workspace_metadata();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in MUST_NOT_IMPORT_THE_PLUGIN_MANAGER {
        assert!(names.contains(name), "{name} is not a workspace package");
    }

    let found = violations(
        &metadata,
        MUST_NOT_IMPORT_THE_PLUGIN_MANAGER,
        PLUGIN_MANAGER,
    );

    assert!(
        found.is_empty(),
        "these crates depend on the plugin manager: {found:?}; what they need of it belongs in proto or kit"
    );
}

#[test]
fn a_normal_dependency_on_the_plugin_manager_is_found_and_a_dev_dependency_is_not() {
    let metadata = serde_json::json!({ "packages": [
        { "name": "tributary-host", "dependencies": [
            { "name": "tributary-plugin-manager", "kind": null },
        ] },
        { "name": "tributary-channel", "dependencies": [
            { "name": "tributary-plugin-manager", "kind": "dev" },
        ] },
    ] });

    let found = violations(
        &metadata,
        &["tributary-host", "tributary-channel"],
        PLUGIN_MANAGER,
    );

    assert_eq!(
        found,
        [("tributary-host".to_owned(), PLUGIN_MANAGER.to_owned())]
    );
}
