//! An instance's configuration against its plugin's `configSchema`: validation with errors that
//! name the JSON path, and the split between plain fields and secrets (`writeOnly` fields).

use serde_json::{Map, Value};
use tributary_proto::requests::ConfigProblem;

/// Checks `config` against `schema`, reporting every problem. Messages never contain the
/// values of `secrets` (the plaintext secrets of this config), so they can be logged and
/// returned.
pub fn validate(schema: &Value, config: &Value, secrets: &[String]) -> Vec<ConfigProblem> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            return vec![ConfigProblem {
                path: String::new(),
                message: format!("the plugin's configSchema cannot be used: {e}"),
            }]
        }
    };
    validator
        .iter_errors(config)
        .map(|error| {
            let mut path = error.instance_path().as_str().to_owned();
            let message = match error.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property.as_str().map(str::to_owned).unwrap_or_default();
                    path = format!("{path}/{}", escape_pointer(&name));
                    "is required".to_owned()
                }
                kind => {
                    let message = error.to_string();
                    if secrets
                        .iter()
                        .filter(|s| !s.is_empty())
                        .any(|secret| mentions(&message, secret))
                    {
                        format!("does not satisfy `{}`", kind.keyword())
                    } else {
                        message
                    }
                }
            };
            ConfigProblem { path, message }
        })
        .collect()
}

/// Whether `message` shows `secret`, as it is or as JSON writes it inside a string (an
/// error shows the instance as JSON: `pa"ss` appears as `pa\"ss`).
fn mentions(message: &str, secret: &str) -> bool {
    let escaped = serde_json::to_string(secret).unwrap_or_default();
    let escaped = escaped
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(&escaped);
    message.contains(secret) || (!escaped.is_empty() && message.contains(escaped))
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointers of the secret fields a schema declares: properties with
/// `"writeOnly": true`, at any depth of nested objects, and in the subschemas of `allOf`,
/// `anyOf` and `oneOf` that describe the same object. A manifest with a `writeOnly` anywhere
/// else (under `items`, `additionalProperties`, `$defs`…) is refused when it is read, as no
/// fixed pointer could take that secret out of the stored config.
pub fn secret_fields(schema: &Value) -> Vec<String> {
    let mut fields = Vec::new();
    collect_secret_fields(schema, String::new(), &mut fields);
    let mut seen = std::collections::HashSet::new();
    fields.retain(|f| seen.insert(f.clone()));
    fields
}

fn collect_secret_fields(schema: &Value, at: String, fields: &mut Vec<String>) {
    for combinator in ["allOf", "anyOf", "oneOf"] {
        for sub in schema
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect_secret_fields(sub, at.clone(), fields);
        }
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let pointer = format!("{at}/{}", escape_pointer(name));
        if property.get("writeOnly").and_then(Value::as_bool) == Some(true) {
            fields.push(pointer);
        } else {
            collect_secret_fields(property, pointer, fields);
        }
    }
}

/// What a configuration request says about one secret field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// A new value.
    Set(String),
    /// `null`: forget the stored value.
    Clear,
}

/// The top-level config fields that hold secrets: the first token of each secret's JSON
/// pointer (`/auth/password` → `auth`), unescaped, each once. A WebAssembly guest's `config()`
/// leaves these out.
pub fn top_level_secret_fields(schema: &Value) -> Vec<String> {
    let mut fields: Vec<String> = secret_fields(schema)
        .iter()
        .filter_map(|pointer| pointer.split('/').nth(1))
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// Takes the secret fields out of `config`: returns the config without them and what it says
/// about each secret (a field that is absent keeps its stored value). A secret that is not a
/// string is refused with its path.
pub fn take_secrets(
    mut config: Value,
    fields: &[String],
) -> Result<(Value, Vec<(String, SecretChange)>), ConfigProblem> {
    let mut changes = Vec::new();
    for field in fields {
        let Some((parent, last)) = split_pointer(field) else {
            continue;
        };
        let Some(object) = config.pointer_mut(parent).and_then(Value::as_object_mut) else {
            continue;
        };
        match object.remove(&last) {
            None => {}
            Some(Value::Null) => changes.push((field.clone(), SecretChange::Clear)),
            Some(Value::String(s)) => changes.push((field.clone(), SecretChange::Set(s))),
            Some(_) => {
                return Err(ConfigProblem {
                    path: field.clone(),
                    message: "a secret must be a string".into(),
                })
            }
        }
    }
    Ok((config, changes))
}

/// Puts secret values back into a config (to validate it whole, or to hand it to the service
/// that runs the instance).
pub fn put_secrets(config: &mut Value, secrets: &[(String, String)]) {
    for (field, value) in secrets {
        let Some((parent, last)) = split_pointer(field) else {
            continue;
        };
        let mut at = &mut *config;
        for token in parent.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            let Value::Object(map) = at else { return };
            at = map
                .entry(token)
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Value::Object(map) = at {
            map.insert(last, Value::String(value.clone()));
        }
    }
}

/// `/a/b` → (`/a`, `b`), unescaped.
fn split_pointer(pointer: &str) -> Option<(&str, String)> {
    let at = pointer.rfind('/')?;
    let last = pointer[at + 1..].replace("~1", "/").replace("~0", "~");
    Some((&pointer[..at], last))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "tenantId": { "type": "string", "minLength": 3 },
                "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
                "accessToken": { "type": "string", "writeOnly": true, "minLength": 12 },
                "oauth": {
                    "type": "object",
                    "properties": { "clientSecret": { "type": "string", "writeOnly": true } }
                }
            },
            "required": ["tenantId", "accessToken"],
            "additionalProperties": false
        })
    }

    #[test]
    fn every_problem_is_reported_with_its_json_path() {
        let cases = [
            (json!({"accessToken": "x-long-enough"}), vec!["/tenantId"]),
            (json!({"tenantId": "abc"}), vec!["/accessToken"]),
            (
                json!({"tenantId": "ab", "accessToken": "x-long-enough"}),
                vec!["/tenantId"],
            ),
            (
                json!({"tenantId": "abc", "accessToken": "x-long-enough", "port": 0}),
                vec!["/port"],
            ),
            (
                json!({"tenantId": "abc", "accessToken": "x-long-enough", "port": "80"}),
                vec!["/port"],
            ),
            (
                json!({"tenantId": 7, "port": 70000}),
                vec!["/tenantId", "/port", "/accessToken"],
            ),
            (
                json!({"tenantId": "abc", "accessToken": "x-long-enough", "oauth": {"clientSecret": 5}}),
                vec!["/oauth/clientSecret"],
            ),
        ];
        for (config, paths) in cases {
            let problems = validate(&schema(), &config, &[]);
            let mut found: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            let mut wanted = paths.clone();
            found.sort_unstable();
            wanted.sort_unstable();
            assert_eq!(found, wanted, "{config}: {problems:?}");
        }
        let unknown = validate(
            &schema(),
            &json!({"tenantId": "abc", "accessToken": "x-long-enough", "tenantID": "typo"}),
            &[],
        );
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(unknown[0].message.contains("tenantID"), "{unknown:?}");
        assert!(validate(
            &schema(),
            &json!({"tenantId": "abc", "accessToken": "x-long-enough"}),
            &[]
        )
        .is_empty());
    }

    #[test]
    fn a_problem_with_a_secret_never_repeats_it() {
        let secret = "short-s3";
        let problems = validate(
            &schema(),
            &json!({"tenantId": "abc", "accessToken": secret}),
            &[secret.to_owned()],
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "/accessToken");
        assert!(!problems[0].message.contains(secret), "{problems:?}");
        assert!(problems[0].message.contains("minLength"), "{problems:?}");
    }

    #[test]
    fn a_secret_escaped_by_json_in_a_problem_is_not_repeated_either() {
        // The attack: a secret with a quote and a backslash, too short, so the error shows
        // it as JSON writes it (`sh\"rt\\s3`), which the plain secret does not match.
        let secret = "sh\"rt\\s3";
        let escaped = r#"sh\"rt\\s3"#;
        let problems = validate(
            &schema(),
            &json!({"tenantId": "abc", "accessToken": secret}),
            &[secret.to_owned()],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].message.contains(escaped), "{problems:?}");
        assert!(!problems[0].message.contains(secret), "{problems:?}");
        assert_eq!(problems[0].message, "does not satisfy `minLength`");
        // A secret shown inside the whole config (a combinator at the root) is caught too.
        let whole = json!({"type": "object", "not": {"required": ["accessToken"]}});
        let problems = validate(
            &whole,
            &json!({"accessToken": secret}),
            &[secret.to_owned()],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].message.contains(escaped), "{problems:?}");
    }

    #[test]
    fn secrets_in_all_of_any_of_and_one_of_are_found() {
        let schema = json!({
            "type": "object",
            "allOf": [{ "properties": { "apiKey": { "type": "string", "writeOnly": true } } }],
            "properties": {
                "auth": {
                    "type": "object",
                    "oneOf": [
                        { "properties": { "password": { "type": "string", "writeOnly": true } } },
                        { "properties": { "token": { "type": "string", "writeOnly": true } } }
                    ],
                    "anyOf": [
                        { "properties": { "password": { "type": "string", "writeOnly": true } } }
                    ]
                }
            }
        });
        assert_eq!(
            secret_fields(&schema),
            vec!["/apiKey", "/auth/password", "/auth/token"]
        );
    }

    #[test]
    fn secrets_are_found_at_any_depth_taken_out_and_put_back() {
        let fields = secret_fields(&schema());
        assert_eq!(fields, vec!["/accessToken", "/oauth/clientSecret"]);
        let (plain, changes) = take_secrets(
            json!({"tenantId": "abc", "accessToken": "tok", "oauth": {"clientSecret": null}}),
            &fields,
        )
        .unwrap();
        assert_eq!(plain, json!({"tenantId": "abc", "oauth": {}}));
        assert_eq!(
            changes,
            vec![
                ("/accessToken".to_owned(), SecretChange::Set("tok".into())),
                ("/oauth/clientSecret".to_owned(), SecretChange::Clear),
            ]
        );
        let mut whole = plain.clone();
        put_secrets(
            &mut whole,
            &[
                ("/accessToken".into(), "tok".into()),
                ("/oauth/clientSecret".into(), "cs".into()),
            ],
        );
        assert_eq!(
            whole,
            json!({"tenantId": "abc", "accessToken": "tok", "oauth": {"clientSecret": "cs"}})
        );
        let err = take_secrets(json!({"accessToken": 12}), &fields).unwrap_err();
        assert_eq!(err.path, "/accessToken");
    }
}
