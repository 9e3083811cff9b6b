//! An instance's configuration as a person gives it on the command line: a whole JSON file,
//! `--set key=value` pairs, and secrets read from environment variables (so they never land in
//! shell history or a process listing).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::{Map, Value};

/// The configuration options of `install` and `configure`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// A JSON file holding the whole configuration (`-` reads standard input). Secret fields
    /// left out keep their stored value.
    #[arg(long = "config-json", value_name = "FILE", conflicts_with = "set")]
    pub config_json: Option<PathBuf>,
    /// Set one field: `key=value`, read as the plugin's configuration schema types the field:
    /// a string field takes the text as it is (`phoneNumberId=1065…`, `name=true`), a number,
    /// integer or boolean field its JSON value (`50`, `true`), an object or array field JSON
    /// (`'collections=["Work"]'`); a field the schema does not type is JSON when it parses,
    /// else text. `a.b=…` sets `b` inside `a`. With `configure`, the other fields keep their
    /// current values; `key=null` removes a field (clears a secret).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set a field (best a secret) from an environment variable: `accessToken=TOKEN_VAR`.
    #[arg(long = "secret-from-env", value_name = "KEY=ENV_VAR")]
    pub secret_from_env: Vec<String>,
}

impl ConfigArgs {
    /// Whether no configuration was given at all.
    pub fn is_empty(&self) -> bool {
        self.config_json.is_none() && self.set.is_empty() && self.secret_from_env.is_empty()
    }
}

/// A configuration built from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltConfig {
    /// The configuration to send.
    pub config: Value,
    /// Secret fields whose value was given with `--set` (on the command line, so in shell
    /// history), as dotted keys.
    pub secrets_on_command_line: Vec<String>,
}

/// Builds the configuration to send, or `None` when `args` gives none.
///
/// `base` is what `--set` starts from (the instance's current configuration; ignored when a
/// file is given). `schema` is the plugin's configuration schema: each `--set` value is read
/// as the type it gives the field ([`set_value`]). `secret_fields` are the JSON pointers of
/// the secret fields: their `--set` values stay text (`--set password=1234` is the text
/// `"1234"`). `env` looks up environment variables.
pub fn build(
    args: &ConfigArgs,
    base: Option<&Value>,
    schema: &Value,
    secret_fields: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<BuiltConfig>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut config = match &args.config_json {
        Some(file) => read_json_file(file)?,
        None => base.cloned().unwrap_or_else(|| Value::Object(Map::new())),
    };
    let mut secrets_on_command_line = Vec::new();
    for pair in &args.set {
        let (path, raw) = split_pair(pair, "--set", "key=value")?;
        let secret = secret_fields.contains(&pointer(&path));
        let value = if raw == "null" {
            Value::Null
        } else if secret {
            Value::String(raw.to_owned())
        } else {
            set_value(&path, raw, field_types(schema, &path))
                .map_err(|problem| anyhow!("--set {pair}: {problem}"))?
        };
        if secret && !value.is_null() {
            secrets_on_command_line.push(path.join("."));
        }
        if value.is_null() && !secret {
            remove(&mut config, &path);
        } else {
            insert(&mut config, &path, value)?;
        }
    }
    for pair in &args.secret_from_env {
        let (path, var) = split_pair(pair, "--secret-from-env", "key=ENV_VAR")?;
        let value = env(var).ok_or_else(|| {
            anyhow!("--secret-from-env {pair}: the environment variable `{var}` is not set")
        })?;
        if value.is_empty() {
            bail!("--secret-from-env {pair}: the environment variable `{var}` is empty");
        }
        insert(&mut config, &path, Value::String(value))?;
    }
    Ok(Some(BuiltConfig {
        config,
        secrets_on_command_line,
    }))
}

/// The JSON types `schema` allows at the dotted `path` (`["string"]`, `["integer", "null"]`),
/// empty when it does not say.
fn field_types(schema: &Value, path: &[String]) -> Vec<String> {
    let mut at = schema;
    for part in path {
        match at.get("properties").and_then(|p| p.get(part)) {
            Some(property) => at = property,
            None => return Vec::new(),
        }
    }
    match at.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The value `--set <path>=<raw>` gives a field of the JSON `types` (see [`field_types`]): a
/// string field takes `raw` as it is, whatever it looks like; otherwise `raw` must be JSON of
/// one of the types (`50` for an integer, `true` for a boolean, `["a"]` for an array). With no
/// type known, `raw` is JSON when it parses, else text. The error says what the field wants.
pub fn set_value(path: &[String], raw: &str, types: Vec<String>) -> Result<Value, String> {
    let parsed = serde_json::from_str::<Value>(raw).ok();
    if types.is_empty() {
        return Ok(parsed.unwrap_or_else(|| Value::String(raw.to_owned())));
    }
    let fits = |value: &Value| {
        types.iter().any(|t| match t.as_str() {
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => false,
        })
    };
    // A string field keeps the text: `1065…` and `true` are a phone number id and a word.
    // Only a field that also allows another type reads a value of that type as one.
    let non_string = parsed.filter(|value| !value.is_string() && fits(value));
    match non_string {
        Some(value) => Ok(value),
        None if types.iter().any(|t| t == "string") => Ok(Value::String(raw.to_owned())),
        None => Err(format!(
            "`{}` takes {}, and `{raw}` is not one",
            path.join("."),
            types
                .iter()
                .map(|t| match t.as_str() {
                    "integer" => "an integer",
                    "number" => "a number",
                    "boolean" => "`true` or `false`",
                    "object" => "a JSON object",
                    "array" => "a JSON array",
                    "null" => "`null`",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

fn read_json_file(file: &std::path::Path) -> anyhow::Result<Value> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("Failed to read the configuration from standard input")?;
        text
    } else {
        std::fs::read_to_string(file)
            .with_context(|| format!("Failed to read the configuration file {}", file.display()))?
    };
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    if !value.is_object() {
        bail!("{} must hold a JSON object", file.display());
    }
    Ok(value)
}

/// Splits `key=value` into the key's dotted parts and the value.
fn split_pair<'a>(pair: &'a str, flag: &str, form: &str) -> anyhow::Result<(Vec<String>, &'a str)> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag} {pair}: expected {form}"))?;
    let path: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        bail!("{flag} {pair}: `{key}` is not a field name (dotted names like `auth.clientId` are nested fields)");
    }
    Ok((path, value))
}

/// The JSON pointer of a dotted key (`auth.clientId` → `/auth/clientId`).
pub fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The dotted key of a JSON pointer (`/auth/clientId` → `auth.clientId`).
pub fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|part| part.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn insert(config: &mut Value, path: &[String], value: Value) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut at = config;
    for (depth, part) in parents.iter().enumerate() {
        let Value::Object(map) = at else {
            bail!(
                "cannot set `{}`: `{}` is not an object",
                path.join("."),
                path[..depth].join(".")
            );
        };
        at = map
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let Value::Object(map) = at else {
        bail!(
            "cannot set `{}`: `{}` is not an object",
            path.join("."),
            parents.join(".")
        );
    };
    map.insert(last.clone(), value);
    Ok(())
}

fn remove(config: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = config;
    for part in parents {
        match at.get_mut(part) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Value::Object(map) = at {
        map.remove(last);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn args(set: &[&str], from_env: &[&str]) -> ConfigArgs {
        ConfigArgs {
            config_json: None,
            set: set.iter().map(|s| s.to_string()).collect(),
            secret_from_env: from_env.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn values_are_json_when_they_parse_and_dotted_keys_nest() {
        let built = build(
            &args(
                &[
                    "pageSize=50",
                    "live=true",
                    "server=https://x.example.com",
                    "auth.clientId=abc",
                ],
                &[],
            ),
            None,
            &Value::Null,
            &[],
            |_| None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            built.config,
            json!({"pageSize": 50, "live": true, "server": "https://x.example.com", "auth": {"clientId": "abc"}})
        );
    }

    #[test]
    fn set_merges_into_the_base_and_null_removes_a_plain_field() {
        let base = json!({"server": "https://a", "pageSize": 10});
        let built = build(
            &args(&["pageSize=null", "extra=1"], &[]),
            Some(&base),
            &Value::Null,
            &[],
            |_| None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(built.config, json!({"server": "https://a", "extra": 1}));
    }

    #[test]
    fn secrets_stay_text_and_come_from_the_environment() {
        let secrets = vec!["/password".to_owned(), "/auth/token".to_owned()];
        let built = build(
            &args(&["password=1234"], &["auth.token=TOKEN"]),
            None,
            &Value::Null,
            &secrets,
            |name| (name == "TOKEN").then(|| "s3cr3t".to_owned()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            built.config,
            json!({"password": "1234", "auth": {"token": "s3cr3t"}})
        );
        assert_eq!(built.secrets_on_command_line, vec!["password"]);
        let missing = build(
            &args(&[], &["password=NOPE"]),
            None,
            &Value::Null,
            &secrets,
            |_| None,
        )
        .unwrap_err();
        assert!(
            missing.to_string().contains("`NOPE` is not set"),
            "{missing}"
        );
    }

    #[test]
    fn set_reads_each_value_as_the_schema_types_its_field() {
        let schema = json!({"type": "object", "properties": {
            "phoneNumberId": {"type": "string"},
            "label": {"type": "string"},
            "pageSize": {"type": "integer"},
            "ratio": {"type": "number"},
            "live": {"type": "boolean"},
            "collections": {"type": "array", "items": {"type": "string"}},
            "limit": {"type": ["integer", "null"]},
            "auth": {"type": "object", "properties": {"clientId": {"type": "string"}}}
        }});
        let built = build(
            &args(
                &[
                    "phoneNumberId=106540352242922",
                    "label=true",
                    "pageSize=50",
                    "ratio=0.5",
                    "live=false",
                    r#"collections=["Work", "/dav/ada/"]"#,
                    "limit=7",
                    "auth.clientId=42",
                    "untyped=3",
                ],
                &[],
            ),
            None,
            &schema,
            &[],
            |_| None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            built.config,
            json!({
                "phoneNumberId": "106540352242922", "label": "true", "pageSize": 50,
                "ratio": 0.5, "live": false, "collections": ["Work", "/dav/ada/"], "limit": 7,
                "auth": {"clientId": "42"}, "untyped": 3
            })
        );
    }

    #[test]
    fn a_value_that_is_not_of_its_fields_type_is_refused_naming_the_field() {
        let schema = json!({"properties": {
            "pageSize": {"type": "integer"}, "live": {"type": "boolean"},
            "collections": {"type": "array"}
        }});
        for (pair, wanted) in [
            (
                "pageSize=fifty",
                "`pageSize` takes an integer, and `fifty` is not one",
            ),
            ("pageSize=1.5", "`pageSize` takes an integer"),
            ("live=yes", "`live` takes `true` or `false`"),
            ("collections=Work", "`collections` takes a JSON array"),
        ] {
            let error = build(&args(&[pair], &[]), None, &schema, &[], |_| None)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("--set {pair}: {wanted}")),
                "{error}"
            );
        }
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert!(build(&args(&["novalue"], &[]), None, &Value::Null, &[], |_| None).is_err());
        assert!(build(&args(&["a..b=1"], &[]), None, &Value::Null, &[], |_| None).is_err());
        assert!(build(
            &args(&["a=1", "a.b=2"], &[]),
            None,
            &Value::Null,
            &[],
            |_| None
        )
        .is_err());
        assert_eq!(
            build(&args(&[], &[]), None, &Value::Null, &[], |_| None).unwrap(),
            None
        );
    }

    #[test]
    fn pointers_and_dotted_keys_convert_both_ways() {
        let path = vec!["auth".to_owned(), "a/b".to_owned()];
        assert_eq!(pointer(&path), "/auth/a~1b");
        assert_eq!(dotted("/auth/a~1b"), "auth.a/b");
    }
}
