//! An instance's configuration as an HTML form generated from its plugin's `configSchema`,
//! and the form's fields back as the configuration the admin API's configure takes.
//!
//! Each top-level property is one field: a string a text input, an integer or a number a
//! number input, a boolean a checkbox, an `enum` a select, a `writeOnly` property (a secret)
//! a password input that is never filled in, shown as set or not set, with a checkbox that
//! clears it; anything else (an object, an array) a JSON text area. Required properties are
//! marked, defaults shown. A secret left empty keeps its stored value, as the admin API's
//! configure does for a secret left out; clearing sends `null`. The registry validates the
//! result against the schema, as for any configure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use tributary_proto::requests::plugins::SecretStatus;
use tributary_proto::requests::ConfigProblem;

/// The prefix of a field's form name: `field.<property>`.
pub const FIELD_PREFIX: &str = "field.";
/// The prefix of a secret's clear checkbox: `clear.<property>`.
pub const CLEAR_PREFIX: &str = "clear.";

/// What kind of input a property gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A text input.
    Text,
    /// A number input taking whole numbers.
    Integer,
    /// A number input.
    Number,
    /// A checkbox.
    Boolean,
    /// A select of the schema's `enum`.
    Choice,
    /// A password input, never filled in.
    Secret,
    /// A JSON text area (objects, arrays, anything else).
    Json,
}

/// One field of the form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// The property's name.
    pub name: String,
    /// The form control's name (`field.<name>`).
    pub input: String,
    /// What the label says: the schema's `title`, else the property's name.
    pub label: String,
    /// The schema's `description`.
    pub description: Option<String>,
    /// The input it gets.
    pub kind: Kind,
    /// Whether the schema requires it.
    pub required: bool,
    /// The schema's `default`, as text.
    pub default: Option<String>,
    /// The value shown (never a secret's).
    pub value: String,
    /// For a checkbox: whether it is checked.
    pub checked: bool,
    /// For a select: its options (as text).
    pub options: Vec<String>,
    /// For a secret: whether a value is stored.
    pub secret_set: bool,
}

/// The type a property declares: its `type`, the first that is not `null` of a list.
fn declared_type(property: &Value) -> Option<&str> {
    match property.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// A JSON value as the text a form shows: a string as itself, anything else as JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind_of(property: &Value) -> Kind {
    if property.get("writeOnly").and_then(Value::as_bool) == Some(true) {
        return Kind::Secret;
    }
    if property.get("enum").and_then(Value::as_array).is_some() {
        return Kind::Choice;
    }
    match declared_type(property) {
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        _ => Kind::Json,
    }
}

fn required_names(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The schema's top-level properties, required ones first, each by name.
fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    let required = required_names(schema);
    let mut props: Vec<(&String, &Value)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    props.sort_by_key(|(name, _)| (!required.contains(&name.as_str()), name.to_string()));
    props
}

/// The form's fields for `schema`, filled in from `config` (which holds no secrets) and
/// `secrets` (each secret's JSON pointer and whether it is set).
pub fn fields(
    schema: &Value,
    config: &Value,
    secrets: &BTreeMap<String, SecretStatus>,
) -> Vec<Field> {
    let required = required_names(schema);
    properties(schema)
        .into_iter()
        .map(|(name, property)| {
            let kind = kind_of(property);
            let current = config.get(name.as_str()).filter(|v| !v.is_null());
            let default = property.get("default");
            let value = match (kind, current) {
                (Kind::Secret, _) | (Kind::Boolean, _) => String::new(),
                (Kind::Json, Some(v)) => {
                    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
                }
                (_, Some(v)) => as_text(v),
                (_, None) => String::new(),
            };
            let checked = current.or(default).and_then(Value::as_bool) == Some(true);
            let options = property
                .get("enum")
                .and_then(Value::as_array)
                .map(|values| values.iter().map(as_text).collect())
                .unwrap_or_default();
            Field {
                input: format!("{FIELD_PREFIX}{name}"),
                label: property
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_owned(),
                description: property
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                kind,
                required: required.contains(&name.as_str()),
                default: default.map(as_text),
                value,
                checked,
                options,
                secret_set: secrets.get(&format!("/{name}")) == Some(&SecretStatus::Set),
                name: name.clone(),
            }
        })
        .collect()
}

/// The configuration a submitted form asks for: `current` (the instance's configuration,
/// without secrets) with each of the schema's properties as the form gives it. An empty
/// field is left out (the schema's default applies, a required one is refused by the
/// registry); an empty secret keeps its stored value, a cleared one is `null`. A number or
/// JSON field that does not parse is a problem naming its property.
pub fn config_from_form(
    schema: &Value,
    current: &Value,
    form: &[(String, String)],
) -> Result<Value, Vec<ConfigProblem>> {
    let given = |key: String| {
        form.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut config: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for (name, property) in properties(schema) {
        let text = given(format!("{FIELD_PREFIX}{name}")).unwrap_or_default();
        let trimmed = text.trim();
        let problem = |message: &str| ConfigProblem {
            path: format!("/{name}"),
            message: message.to_owned(),
        };
        let value = match kind_of(property) {
            Kind::Secret => {
                if given(format!("{CLEAR_PREFIX}{name}")).is_some() {
                    Some(Value::Null)
                } else if text.is_empty() {
                    // Left out: the stored secret stays.
                    config.remove(name.as_str());
                    continue;
                } else {
                    Some(Value::String(text.to_owned()))
                }
            }
            Kind::Boolean => Some(Value::Bool(!trimmed.is_empty())),
            _ if trimmed.is_empty() => None,
            Kind::Text => Some(Value::String(text.to_owned())),
            Kind::Integer => match trimmed.parse::<i64>() {
                Ok(n) => Some(Value::from(n)),
                Err(_) => {
                    problems.push(problem("must be a whole number"));
                    continue;
                }
            },
            Kind::Number => match trimmed
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Some(Value::Number(n)),
                None => {
                    problems.push(problem("must be a number"));
                    continue;
                }
            },
            Kind::Choice => {
                let options = property.get("enum").and_then(Value::as_array);
                match options.and_then(|o| o.iter().find(|v| as_text(v) == trimmed)) {
                    Some(v) => Some(v.clone()),
                    None => {
                        problems.push(problem("must be one of the listed choices"));
                        continue;
                    }
                }
            }
            Kind::Json => match serde_json::from_str::<Value>(trimmed) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(problem(&format!("is not valid JSON: {e}")));
                    continue;
                }
            },
        };
        match value {
            Some(v) => {
                config.insert(name.clone(), v);
            }
            None => {
                config.remove(name.as_str());
            }
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(config))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "server": { "type": "string", "title": "Server URL" },
                "pageSize": { "type": "integer", "default": 100 },
                "ratio": { "type": "number" },
                "verbose": { "type": "boolean", "default": true },
                "mode": { "enum": ["fast", "slow"] },
                "password": { "type": "string", "writeOnly": true },
                "extra": { "type": "object" }
            },
            "required": ["server", "password"]
        })
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fields_follow_the_schema_required_first_with_secrets_only_as_set() {
        let secrets = BTreeMap::from([("/password".to_owned(), SecretStatus::Set)]);
        let config = json!({ "server": "https://a.example", "pageSize": 5, "extra": { "a": 1 } });
        let fields = fields(&schema(), &config, &secrets);
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["password", "server", "extra", "mode", "pageSize", "ratio", "verbose"]
        );
        let by = |n: &str| {
            fields
                .iter()
                .find(|f| f.name == n)
                .cloned()
                .unwrap_or_else(|| panic!("{n}"))
        };
        let password = by("password");
        assert_eq!(
            (password.kind, password.required, password.secret_set),
            (Kind::Secret, true, true)
        );
        assert_eq!(password.value, "", "a secret is never shown");
        assert_eq!(by("server").label, "Server URL");
        assert_eq!(by("server").value, "https://a.example");
        assert_eq!(by("pageSize").kind, Kind::Integer);
        assert_eq!(by("pageSize").default.as_deref(), Some("100"));
        assert_eq!(by("mode").options, ["fast", "slow"]);
        assert!(by("verbose").checked, "the default checks it");
        assert_eq!(by("extra").kind, Kind::Json);
    }

    #[test]
    fn a_form_becomes_the_configuration_typed_with_secrets_kept_or_cleared() {
        let current = json!({ "server": "https://a.example", "unknown": "kept" });
        let submitted = form(&[
            ("field.server", "https://b.example"),
            ("field.pageSize", " 25 "),
            ("field.ratio", "0.5"),
            ("field.mode", "slow"),
            ("field.password", ""),
            ("field.extra", "{\"a\": [1]}"),
        ]);
        let config =
            config_from_form(&schema(), &current, &submitted).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(
            config,
            json!({ "server": "https://b.example", "pageSize": 25, "ratio": 0.5, "mode": "slow",
                    "verbose": false, "extra": { "a": [1] }, "unknown": "kept" }),
            "an empty secret is left out, so its stored value stays"
        );
        let cleared = config_from_form(
            &schema(),
            &current,
            &form(&[("field.server", "x"), ("clear.password", "on")]),
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(cleared["password"], Value::Null);
        let given = config_from_form(
            &schema(),
            &current,
            &form(&[("field.password", "s3cret pw")]),
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(given["password"], "s3cret pw");
        assert!(
            given.get("server").is_none(),
            "an emptied field is left out"
        );
    }

    #[test]
    fn a_field_that_does_not_parse_is_named() {
        let refused = config_from_form(
            &schema(),
            &json!({}),
            &form(&[
                ("field.pageSize", "ten"),
                ("field.mode", "medium"),
                ("field.extra", "{"),
            ]),
        );
        let Err(problems) = refused else {
            panic!("accepted")
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["/extra", "/mode", "/pageSize"]);
        assert_eq!(problems[2].message, "must be a whole number");
    }
}
