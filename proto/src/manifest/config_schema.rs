//! Checks a manifest's `configSchema`: a valid JSON Schema of an object, whose secrets are
//! strings.
//!
//! The schema is checked against its meta-schema (draft 2020-12 unless `$schema` names another
//! bundled draft), which reports every mistake with its place, then compiled, as it must be
//! to check an instance's configuration against it, which catches what a meta-schema cannot
//! (a regular expression that does not compile, a `$ref` to nowhere).
//! Nothing is fetched: the crate is built without remote or file resolution, so an external
//! `$ref` or an unknown `$schema` is a problem, not a request.

use std::fmt::Write as _;

use serde_json::Value;

use super::{kind_of, Problems};

/// The manifest field that holds the schema; every problem's field starts with it.
const FIELD: &str = "configSchema";

/// Adds a problem to `p` for each thing wrong with `schema`, each naming the place inside it.
pub(super) fn check(schema: &Value, p: &mut Problems) {
    let Some(map) = schema.as_object() else {
        p.add(
            FIELD,
            format!("must be a JSON Schema object, found {}", kind_of(schema)),
        );
        return;
    };
    // Problems found so far belong to other fields; a place inside the schema is reported
    // once, by the first check that finds it.
    let first = p.0.len();

    match map.get("type") {
        Some(Value::String(t)) if t == "object" => {}
        _ => p.add(
            "configSchema.type",
            "a config schema must describe an object: `\"type\": \"object\"`",
        ),
    }
    match map.get("properties") {
        Some(Value::Object(properties)) => {
            for (name, property) in properties {
                // Secrets are tokens, passwords and keys, so whatever keeps them may assume a
                // string; a `writeOnly` number or object is a mistake in the manifest.
                let secret = property.get("writeOnly").and_then(Value::as_bool) == Some(true);
                let string = property.get("type").and_then(Value::as_str) == Some("string");
                if secret && !string {
                    p.add(
                        format!("configSchema.properties.{name}.writeOnly"),
                        "a secret (`writeOnly`) must be a string property: `\"type\": \"string\"`",
                    );
                }
            }
        }
        Some(other) => p.add(
            "configSchema.properties",
            format!("must be an object, found {}", kind_of(other)),
        ),
        None => {}
    }

    let mut misplaced = Vec::new();
    misplaced_secrets(schema, FIELD, true, false, &mut misplaced);
    for field in misplaced {
        p.add(
            field,
            "a secret (`writeOnly`) must be a property reached through `properties` (and \
             `allOf`, `anyOf` or `oneOf`); under `items`, `additionalProperties`, `$defs` or \
             any other keyword its value could not be taken out of the stored config",
        );
    }

    let meta = match jsonschema::meta::validator_for(schema) {
        Ok(meta) => meta,
        Err(_) => {
            p.add(
                "configSchema.$schema",
                "names a meta-schema other than JSON Schema draft 4, 6, 7, 2019-09 or 2020-12",
            );
            return;
        }
    };
    let mut invalid = false;
    for error in meta.iter_errors(schema) {
        invalid = true;
        let field = field_at(schema, error.instance_path().as_str());
        if !p.0[first..].iter().any(|problem| problem.field == field) {
            p.add(field, meta_message(&error));
        }
    }
    if !invalid {
        if let Err(error) = jsonschema::validator_for(schema) {
            p.add(
                field_at(schema, error.instance_path().as_str()),
                format!("does not compile as a JSON Schema: {error}"),
            );
        }
    }
}

/// The fields (`configSchema.items.writeOnly`) of every `"writeOnly": true` in `schema` (at
/// field `at`) that is not on a property reached from the root through `properties`,
/// `allOf`, `anyOf` and `oneOf` alone. `reached`: `schema` is the root or so reached, so its
/// properties may be secrets; `property`: `schema` is such a property, so it may be one. The
/// plugin manager keeps a secret by its JSON pointer, so one in an array item, an additional
/// property or a `$ref`'d definition would be stored in clear and returned by the API.
fn misplaced_secrets(
    schema: &Value,
    at: &str,
    reached: bool,
    property: bool,
    out: &mut Vec<String>,
) {
    let map = match schema {
        Value::Object(map) => map,
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                misplaced_secrets(item, &format!("{at}[{i}]"), false, false, out);
            }
            return;
        }
        _ => return,
    };
    if !property && map.get("writeOnly").and_then(Value::as_bool) == Some(true) {
        out.push(format!("{at}.writeOnly"));
    }
    for (key, value) in map {
        let here = format!("{at}.{key}");
        match (key.as_str(), value) {
            // Values, not schemas: a `writeOnly` key in them means nothing.
            ("enum" | "const" | "default" | "examples" | "required", _) => {}
            ("properties", Value::Object(properties)) if reached => {
                for (name, sub) in properties {
                    misplaced_secrets(sub, &format!("{here}.{name}"), true, true, out);
                }
            }
            // The same object described again: its properties are reached, it is no property.
            ("allOf" | "anyOf" | "oneOf", Value::Array(subs)) if reached => {
                for (i, sub) in subs.iter().enumerate() {
                    misplaced_secrets(sub, &format!("{here}[{i}]"), true, false, out);
                }
            }
            _ => misplaced_secrets(value, &here, false, false, out),
        }
    }
}

/// The manifest field for the JSON pointer `pointer` into `schema`, in the manifest's own
/// notation: `/properties/a/type` is `configSchema.properties.a.type`, `/required/0` is
/// `configSchema.required[0]`. The schema is walked alongside, so a property named `0` stays
/// a property.
fn field_at(schema: &Value, pointer: &str) -> String {
    let mut field = String::from(FIELD);
    let mut node = Some(schema);
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        match node {
            Some(Value::Array(items)) => {
                let _ = write!(field, "[{token}]");
                node = token.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                let _ = write!(field, ".{token}");
                node = node.and_then(|n| n.get(&token));
            }
        }
    }
    field
}

/// What a meta-schema error says, in words a plugin author acts on.
fn meta_message(error: &jsonschema::ValidationError<'_>) -> String {
    // A misspelt type fails the meta-schema's `anyOf` (a type name, or an array of them),
    // whose own message names neither the types nor the mistake.
    if error
        .schema_path()
        .as_str()
        .ends_with("/properties/type/anyOf")
    {
        return format!(
            "{} is not a JSON Schema type; expected one of array, boolean, integer, null, \
             number, object, string, or an array of them",
            error.instance()
        );
    }
    format!("not valid JSON Schema: {error}")
}
