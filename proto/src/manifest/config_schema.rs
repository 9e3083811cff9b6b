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
