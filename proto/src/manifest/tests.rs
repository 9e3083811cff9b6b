//! The manifest parser against a matrix of bad manifests, each row naming exactly the fields
//! its problems must concern; `proto/tests/contract.rs` checks the messages of the plain
//! field rules, this checks that nothing is missed and nothing reported twice, and the
//! `configSchema` rules.

use serde_json::{json, Value};

use super::*;

fn valid() -> Value {
    json!({
        "id": "com.example.contacts",
        "name": "Example Contacts",
        "version": "0.1.0",
        "type": "connector",
        "entrypoint": "builtin:example-contacts",
        "permissions": ["network:outbound:api.example.com", "data:write:persons"],
        "configSchema": {
            "type": "object",
            "properties": {
                "apiToken": { "type": "string", "writeOnly": true },
                "pageSize": { "type": "integer", "minimum": 1 }
            },
            "required": ["apiToken"]
        }
    })
}

/// The valid manifest, as text, with `field` set to `value`.
fn with(field: &str, value: Value) -> String {
    let mut m = valid();
    m[field] = value;
    m.to_string()
}

/// A valid WebAssembly plugin's manifest, as text, with `field` set to `value`.
fn wasm_with(field: &str, value: Value) -> String {
    let mut m = valid();
    m["entrypoint"] = json!("wasm:plugin.wasm");
    m["sha256"] = json!("0".repeat(64));
    m[field] = value;
    m.to_string()
}

/// The valid manifest, as text, without `field`.
fn without(field: &str) -> String {
    let mut m = valid();
    m.as_object_mut().unwrap().remove(field);
    m.to_string()
}

/// The valid manifest, as text, with `config_schema` as its `configSchema`.
fn schema(config_schema: Value) -> String {
    with("configSchema", config_schema)
}

/// The fields the problems of `text` name, sorted, one entry per problem; empty if it parses.
fn fields_named(text: &str) -> Vec<String> {
    let mut fields: Vec<String> = match PluginManifest::parse(text) {
        Ok(_) => vec![],
        Err(e) => e.problems.into_iter().map(|p| p.field).collect(),
    };
    fields.sort();
    fields
}

#[test]
fn each_bad_manifest_names_exactly_its_fields() {
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("not JSON", "{\"id\": \"com.example.x\",".into(), &[""]),
        ("not an object", "\"com.example.x\"".into(), &[""]),
        ("id null", with("id", Value::Null), &["id"]),
        ("id without a dot", with("id", json!("contacts")), &["id"]),
        (
            "id label starting with a digit",
            with("id", json!("com.1password.cli")),
            &["id"],
        ),
        ("id trailing dot", with("id", json!("com.example.")), &["id"]),
        ("missing type", without("type"), &["type"]),
        ("version with a v", with("version", json!("v1.0.0")), &["version"]),
        ("version a number", with("version", json!(1)), &["version"]),
        ("type capitalised", with("type", json!("Connector")), &["type"]),
        (
            "wasm entrypoint absolute",
            with("entrypoint", json!("wasm:/opt/plugin.wasm")),
            &["entrypoint"],
        ),
        (
            "wasm entrypoint not .wasm",
            with("entrypoint", json!("wasm:plugin.wat")),
            &["entrypoint"],
        ),
        (
            "wasm entrypoint without its sha256",
            with("entrypoint", json!("wasm:plugin.wasm")),
            &["sha256"],
        ),
        (
            "sha256 not hex",
            wasm_with("sha256", json!("XYZ")),
            &["sha256"],
        ),
        (
            "sha256 upper-case",
            wasm_with("sha256", json!("A".repeat(64))),
            &["sha256"],
        ),
        (
            "limits an unknown one",
            wasm_with("limits", json!({"memoryMib": 32, "disk": 1})),
            &["limits"],
        ),
        (
            "limits zero",
            wasm_with("limits", json!({"callCpuMs": 0, "memoryMib": 0})),
            &["limits.callCpuMs", "limits.memoryMib"],
        ),
        (
            "limits on a built-in",
            with("limits", json!({"memoryMib": 32})),
            &["limits"],
        ),
        (
            "permission an object",
            with(
                "permissions",
                json!(["data:read:*", {"network": "outbound"}]),
            ),
            &["permissions[1]"],
        ),
        (
            "network host pattern without a domain",
            with("permissions", json!(["network:outbound:*."])),
            &["permissions[0]"],
        ),
        (
            "network host with a port",
            with("permissions", json!(["network:outbound:api.example.com:443"])),
            &["permissions[0]"],
        ),
        (
            "network without a direction",
            with("permissions", json!(["network"])),
            &["permissions[0]"],
        ),
        (
            "event pattern with a partial wildcard",
            with("permissions", json!(["event:publish:data.*x"])),
            &["permissions[0]"],
        ),
        (
            "event subscribe without a subject",
            with("permissions", json!(["event:subscribe:"])),
            &["permissions[0]"],
        ),
        (
            "data without an entity",
            with("permissions", json!(["data:read:"])),
            &["permissions[0]"],
        ),
        (
            "data with an unknown direction",
            with("permissions", json!(["data:delete:persons"])),
            &["permissions[0]"],
        ),
        ("unknown field", with("homepge", json!("x")), &["homepge"]),
        ("configSchema an array", schema(json!([])), &["configSchema"]),
        ("configSchema a boolean", schema(json!(true)), &["configSchema"]),
        (
            "configSchema without a type",
            schema(json!({"properties": {}})),
            &["configSchema.type"],
        ),
        (
            "configSchema properties an array, reported once",
            schema(json!({"type": "object", "properties": []})),
            &["configSchema.properties"],
        ),
        (
            "configSchema type misspelt",
            schema(json!({"type": "object", "properties": {"a": {"type": "strnig"}}})),
            &["configSchema.properties.a.type"],
        ),
        (
            "configSchema required not an array",
            schema(json!({"type": "object", "required": "a"})),
            &["configSchema.required"],
        ),
        (
            "configSchema required of a number",
            schema(json!({"type": "object", "required": ["a", 1]})),
            &["configSchema.required[1]"],
        ),
        (
            "configSchema property named 0 stays a property",
            schema(json!({"type": "object", "properties": {"0": {"type": "nope"}}})),
            &["configSchema.properties.0.type"],
        ),
        (
            "configSchema deep in allOf",
            schema(json!({"type": "object", "allOf": [{"minLength": -1}]})),
            &["configSchema.allOf[0].minLength"],
        ),
        (
            "configSchema several mistakes",
            schema(json!({
                "type": "object",
                "properties": {"a": {"type": "string", "writeOnly": "yes"}, "b": {"maxLength": "5"}}
            })),
            &[
                "configSchema.properties.a.writeOnly",
                "configSchema.properties.b.maxLength",
            ],
        ),
        (
            "configSchema draft-07 checked by its own meta-schema",
            schema(json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"a": {"type": "x"}}
            })),
            &["configSchema.properties.a.type"],
        ),
        (
            "configSchema unknown meta-schema",
            schema(json!({"$schema": "https://example.com/my-meta", "type": "object"})),
            &["configSchema.$schema"],
        ),
        (
            "configSchema pattern that does not compile",
            schema(json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}})),
            &["configSchema.properties.a.pattern"],
        ),
        (
            "configSchema $ref to nowhere",
            schema(json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})),
            &["configSchema"],
        ),
        (
            "configSchema external $ref is not fetched",
            schema(json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}})),
            &["configSchema"],
        ),
        (
            "writeOnly integer",
            schema(json!({"type": "object", "properties": {"pin": {"type": "integer", "writeOnly": true}}})),
            &["configSchema.properties.pin.writeOnly"],
        ),
        (
            "writeOnly without a type",
            schema(json!({"type": "object", "properties": {"key": {"writeOnly": true}}})),
            &["configSchema.properties.key.writeOnly"],
        ),
        (
            "writeOnly string or null",
            schema(json!({"type": "object", "properties": {"key": {"type": ["string", "null"], "writeOnly": true}}})),
            &["configSchema.properties.key.writeOnly"],
        ),
        (
            "writeOnly in an array item is kept by no pointer",
            schema(json!({"type": "object", "properties": {"keys": {"type": "array", "items": {"type": "string", "writeOnly": true}}}})),
            &["configSchema.properties.keys.items.writeOnly"],
        ),
        (
            "writeOnly in additionalProperties is kept by no pointer",
            schema(json!({"type": "object", "additionalProperties": {"type": "string", "writeOnly": true}})),
            &["configSchema.additionalProperties.writeOnly"],
        ),
        (
            "writeOnly in a definition reached by $ref",
            schema(json!({"type": "object", "properties": {"token": {"$ref": "#/$defs/secret"}}, "$defs": {"secret": {"type": "string", "writeOnly": true}}})),
            &["configSchema.$defs.secret.writeOnly"],
        ),
        (
            "writeOnly on a combinator branch, not a property",
            schema(json!({"type": "object", "properties": {"token": {"allOf": [{"type": "string", "writeOnly": true}]}}})),
            &["configSchema.properties.token.allOf[0].writeOnly"],
        ),
        (
            "writeOnly on the config itself",
            schema(json!({"type": "object", "writeOnly": true})),
            &["configSchema.writeOnly"],
        ),
        (
            "several problems at once",
            json!({
                "id": "Contacts",
                "name": "",
                "version": "1",
                "type": "connector",
                "entrypoint": "builtin:x",
                "permissions": ["data:write:people", "network:outbound:api.example.com", "event:publish:a.>.b"],
                "configSchema": {
                    "type": "object",
                    "properties": {
                        "token": {"type": "integer", "writeOnly": true},
                        "mode": {"type": "strnig"}
                    },
                    "required": "token"
                },
                "extra": 1
            })
            .to_string(),
            &[
                "configSchema.properties.mode.type",
                "configSchema.properties.token.writeOnly",
                "configSchema.required",
                "extra",
                "id",
                "name",
                "permissions[0]",
                "permissions[2]",
                "version",
            ],
        ),
    ];
    for (case, text, expected) in cases {
        assert_eq!(fields_named(&text), expected, "{case}: {text}");
    }
}

#[test]
fn secrets_nested_in_objects_and_combinators_are_accepted() {
    let text = schema(json!({
        "type": "object",
        "allOf": [{"properties": {"apiKey": {"type": "string", "writeOnly": true}}}],
        "properties": {
            "auth": {
                "type": "object",
                "properties": {"password": {"type": "string", "writeOnly": true}},
                "oneOf": [{"properties": {"token": {"type": "string", "writeOnly": true}}}]
            },
            "modes": {"enum": [{"writeOnly": true}]}
        }
    }));
    assert_eq!(fields_named(&text), Vec::<String>::new(), "{text}");
}

#[test]
fn valid_config_schemas_of_each_bundled_draft_are_accepted() {
    let drafts = [
        json!({"type": "object"}),
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {"id": {"type": "string", "pattern": "^[a-z]+$"}},
            "properties": {"tenant": {"$ref": "#/$defs/id"}, "count": {"type": ["integer", "null"]}}
        }),
        json!({
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "type": "object",
            "properties": {"a": {"type": "string", "writeOnly": true}}
        }),
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "definitions": {"n": {"type": "integer"}},
            "properties": {"n": {"$ref": "#/definitions/n"}}
        }),
        json!({"$schema": "http://json-schema.org/draft-06/schema#", "type": "object"}),
        json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "required": ["a"]}),
    ];
    for config_schema in drafts {
        let text = schema(config_schema.clone());
        assert_eq!(fields_named(&text), Vec::<String>::new(), "{config_schema}");
        let manifest = PluginManifest::parse(&text).unwrap();
        assert_eq!(manifest.config_schema, config_schema);
    }
}

#[test]
fn only_secrets_must_be_strings() {
    // `writeOnly: false` is no secret, so any type will do.
    let text = schema(json!({
        "type": "object",
        "properties": {"pageSize": {"type": "integer", "writeOnly": false}}
    }));
    assert_eq!(fields_named(&text), Vec::<String>::new());
}

#[test]
fn schema_problems_say_what_is_wrong() {
    let cases = [
        (
            json!({"type": "object", "properties": {"a": {"type": "strnig"}}}),
            "configSchema.properties.a.type",
            "\"strnig\" is not a JSON Schema type; expected one of array",
        ),
        (
            json!({"type": "object", "required": "a"}),
            "configSchema.required",
            "not valid JSON Schema: \"a\" is not of type \"array\"",
        ),
        (
            json!({"$schema": "https://example.com/my-meta", "type": "object"}),
            "configSchema.$schema",
            "draft 4, 6, 7, 2019-09 or 2020-12",
        ),
        (
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}),
            "configSchema",
            "does not compile as a JSON Schema",
        ),
        (
            json!({"type": "object", "properties": {"pin": {"type": "integer", "writeOnly": true}}}),
            "configSchema.properties.pin.writeOnly",
            "must be a string property",
        ),
    ];
    for (config_schema, field, message) in cases {
        let err = PluginManifest::parse(&schema(config_schema.clone())).unwrap_err();
        let problem = err
            .problems
            .iter()
            .find(|p| p.field == field)
            .unwrap_or_else(|| panic!("{config_schema}: no problem names `{field}`: {err}"));
        assert!(
            problem.message.contains(message),
            "{config_schema}: `{}` lacks `{message}`",
            problem.message
        );
    }
}

#[test]
fn a_host_from_config_must_name_a_string_property() {
    let with_url = |url_type: &str, permission: &str| {
        let mut m = valid();
        m["permissions"] = json!([permission]);
        m["configSchema"] = json!({
            "type": "object",
            "properties": { "url": { "type": url_type }, "apiToken": { "type": "string" } }
        });
        m.to_string()
    };
    assert!(fields_named(&with_url("string", "network:outbound:${url}")).is_empty());
    assert_eq!(
        fields_named(&with_url("integer", "network:outbound:${url}")),
        ["permissions[0]"]
    );
    assert_eq!(
        fields_named(&with_url("string", "network:outbound:${server}")),
        ["permissions[0]"]
    );
    let text = with_url("string", "network:outbound:${server}");
    let message = PluginManifest::parse(&text).unwrap_err().to_string();
    assert!(
        message.contains("declare `server` as a string"),
        "{message}"
    );
    for malformed in ["${}", "${a.b}", "$url", "${url", "x${url}"] {
        assert_eq!(
            fields_named(&with_url(
                "string",
                &format!("network:outbound:{malformed}")
            )),
            ["permissions[0]"],
            "{malformed}"
        );
    }
}

#[test]
fn a_wasm_manifest_carries_its_digest_and_the_limits_it_asks_for() {
    let text = wasm_with("limits", json!({"memoryMib": 32, "logLinesPerSecond": 5}));
    let manifest = PluginManifest::parse(&text).unwrap();
    assert_eq!(manifest.sha256.as_deref(), Some("0".repeat(64).as_str()));
    assert_eq!(manifest.limits.memory_mib, Some(32));
    assert_eq!(manifest.limits.log_lines_per_second, Some(5));
    assert_eq!(manifest.limits.call_cpu_ms, None);
}
