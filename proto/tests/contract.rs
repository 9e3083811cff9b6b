//! The contract's own promises: manifests are checked field by field, and the generated
//! schemas, catalog and guest SDK model types are what the types say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{json, Value};
use tributary_proto::contract;
use tributary_proto::manifest::PluginManifest;

fn valid_manifest() -> Value {
    json!({
        "id": "com.microsoft.graph",
        "name": "Microsoft Graph Connector",
        "version": "0.1.0",
        "type": "connector",
        "entrypoint": "builtin:ms-graph",
        "permissions": [
            "network:outbound:graph.microsoft.com",
            "network:outbound:*.microsoft.com",
            "event:publish:data.*",
            "event:subscribe:communication.>",
            "data:write:persons",
            "data:read:*",
            "network:inbound"
        ],
        "configSchema": {
            "type": "object",
            "properties": {
                "tenantId": { "type": "string" },
                "accessToken": { "type": "string", "writeOnly": true }
            },
            "required": ["tenantId", "accessToken"]
        }
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut m = valid_manifest();
    m[field] = value;
    m
}

fn without(field: &str) -> Value {
    let mut m = valid_manifest();
    m.as_object_mut().unwrap().remove(field);
    m
}

#[test]
fn the_design_example_manifest_parses() {
    let manifest = PluginManifest::from_value(&valid_manifest()).unwrap();
    assert_eq!(manifest.id, "com.microsoft.graph");
    assert_eq!(manifest.version, semver::Version::new(0, 1, 0));
    assert_eq!(manifest.permissions.len(), 7);
    assert_eq!(
        manifest.permissions[0].to_string(),
        "network:outbound:graph.microsoft.com"
    );
    assert_eq!(manifest.permissions[6].to_string(), "network:inbound");
    // A parsed manifest serialises back to the same document.
    let back = serde_json::to_value(&manifest).unwrap();
    assert_eq!(back["permissions"], valid_manifest()["permissions"]);
    assert_eq!(back["configSchema"], valid_manifest()["configSchema"]);
}

#[test]
fn each_bad_manifest_is_refused_with_the_field_named() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("missing id", without("id"), "id", "is required"),
        (
            "id not reverse-DNS",
            with("id", json!("Graph")),
            "id",
            "reverse-DNS",
        ),
        (
            "id with upper case",
            with("id", json!("com.Microsoft.graph")),
            "id",
            "reverse-DNS",
        ),
        (
            "empty name",
            with("name", json!("  ")),
            "name",
            "must not be empty",
        ),
        (
            "name not a string",
            with("name", json!(7)),
            "name",
            "must be a string, found a number",
        ),
        (
            "version not semver",
            with("version", json!("1.0")),
            "version",
            "not a semantic version",
        ),
        (
            "missing version",
            without("version"),
            "version",
            "is required",
        ),
        (
            "unknown type",
            with("type", json!("widget")),
            "type",
            "not one of connector, channel, operator",
        ),
        (
            "entrypoint scheme",
            with("entrypoint", json!("exec:/bin/sh")),
            "entrypoint",
            "neither",
        ),
        (
            "wasm path escapes",
            with("entrypoint", json!("wasm:../x.wasm")),
            "entrypoint",
            "relative path",
        ),
        (
            "permissions not array",
            with("permissions", json!("data:read:*")),
            "permissions",
            "must be an array",
        ),
        (
            "bad capability",
            with("permissions", json!(["disk:write:/"])),
            "permissions[0]",
            "capability",
        ),
        (
            "bad direction",
            with("permissions", json!(["network:sideways:x.com"])),
            "permissions[0]",
            "direction",
        ),
        (
            "bad host",
            with("permissions", json!(["network:outbound:"])),
            "permissions[0]",
            "host name",
        ),
        (
            "bad subject",
            with(
                "permissions",
                json!(["data:read:*", "event:publish:data.>.x"]),
            ),
            "permissions[1]",
            "subject pattern",
        ),
        (
            "bad entity",
            with("permissions", json!(["data:write:people"])),
            "permissions[0]",
            "entity type",
        ),
        (
            "inbound with resource",
            with("permissions", json!(["network:inbound:x"])),
            "permissions[0]",
            "takes no resource",
        ),
        (
            "permission not string",
            with("permissions", json!([3])),
            "permissions[0]",
            "must be a string",
        ),
        (
            "schema not object",
            with("configSchema", json!("object")),
            "configSchema",
            "JSON Schema object",
        ),
        (
            "schema of a non-object",
            with("configSchema", json!({"type": "string"})),
            "configSchema.type",
            "describe an object",
        ),
        (
            "schema properties",
            with("configSchema", json!({"type": "object", "properties": []})),
            "configSchema.properties",
            "must be an object",
        ),
        (
            "typo field",
            with("permisions", json!([])),
            "permisions",
            "unknown field",
        ),
    ];
    for (case, manifest, field, message) in cases {
        let err = PluginManifest::from_value(&manifest)
            .err()
            .unwrap_or_else(|| panic!("{case}: was accepted"));
        let problem = err
            .problems
            .iter()
            .find(|p| p.field == field)
            .unwrap_or_else(|| panic!("{case}: no problem names `{field}`: {err}"));
        assert!(
            problem.message.contains(message),
            "{case}: `{}` lacks `{message}`",
            problem.message
        );
        assert!(
            err.to_string().contains(&format!("`{field}`")),
            "{case}: {err}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let manifest = json!({
        "id": "nodots",
        "version": "x",
        "type": "widget",
        "entrypoint": "builtin:",
        "permissions": ["data:write:people", "network:outbound:ok.example.com", "nope"]
    });
    let err = PluginManifest::from_value(&manifest).unwrap_err();
    for field in [
        "id",
        "name",
        "version",
        "type",
        "entrypoint",
        "permissions[0]",
        "permissions[2]",
    ] {
        assert!(err.names(field), "`{field}` not reported in: {err}");
    }
    assert!(!err.names("permissions[1]"));
}

#[test]
fn malformed_json_and_non_objects_are_named() {
    let err = PluginManifest::parse("{\"id\": ").unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    let err = PluginManifest::parse("[1]").unwrap_err();
    assert!(
        err.to_string()
            .contains("must be a JSON object, found an array"),
        "{err}"
    );
}

#[test]
fn generated_schemas_catalog_and_guest_model_types_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stale = contract::stale_files(&root).unwrap();
    assert!(
        stale.is_empty(),
        "generated contract files are stale: {stale:?}; run `{}` and commit the result",
        contract::REGENERATE
    );
}

#[test]
fn staleness_is_detected_when_a_schema_changes() {
    // Copy the generated files to a scratch root, alter one, and check that it is reported.
    let scratch = std::env::temp_dir().join(format!("tributary-contract-{}", uuid::Uuid::new_v4()));
    contract::write_all(&scratch).unwrap();
    assert!(contract::stale_files(&scratch).unwrap().is_empty());
    let victim = scratch.join("proto/schemas/events/data.PersonCreated.json");
    std::fs::write(&victim, "{}").unwrap();
    std::fs::write(scratch.join("proto/schemas/events/data.Gone.json"), "{}").unwrap();
    // The guest SDKs' model types: one edited by hand, one missing.
    let model_ts = scratch.join("sdk/typescript/src/model.ts");
    let edited = std::fs::read_to_string(&model_ts)
        .unwrap()
        .replace("display_name: string;", "display_name?: string;");
    std::fs::write(&model_ts, edited).unwrap();
    std::fs::remove_file(scratch.join("sdk/python/tributary_plugin/model.py")).unwrap();
    let stale = contract::stale_files(&scratch).unwrap();
    std::fs::remove_dir_all(&scratch).unwrap();
    for path in [
        "sdk/typescript/src/model.ts",
        "sdk/python/tributary_plugin/model.py",
    ] {
        assert!(stale.contains(&path.to_owned()), "{path}: {stale:?}");
    }
    assert!(
        stale.contains(&"proto/schemas/events/data.PersonCreated.json".to_owned()),
        "{stale:?}"
    );
    assert!(
        stale.contains(&"proto/schemas/events/data.Gone.json".to_owned()),
        "{stale:?}"
    );
}

#[test]
fn every_request_of_the_catalog_has_its_schemas_and_a_row_in_the_catalog_page() {
    let files = contract::schema_files();
    let page = contract::event_catalog();
    let catalog = tributary_proto::requests::catalog();
    assert!(catalog.len() >= 24, "{} requests", catalog.len());
    for entry in &catalog {
        assert!(files.contains_key(&contract::request_schema_path(entry)));
        assert!(files.contains_key(&contract::reply_schema_path(entry)));
        assert!(
            page.contains(&format!("| `{}` | `{}` |", entry.subject(), entry.request)),
            "{} is not in the catalog page",
            entry.subject()
        );
    }
    for subject in [
        "plugins.install",
        "connector.sync",
        "channel.send.<instance>",
        "search.query",
    ] {
        assert!(catalog.iter().any(|e| e.subject() == subject), "{subject}");
    }
}
