//! Checks on what a caller sends, made by the manager before anything reaches PostgreSQL, so
//! NATS (`plugins.*`) and the admin HTTP API refuse the same input the same way, naming the
//! field. PostgreSQL cannot store a NUL byte in `text` or `jsonb`; without these checks a
//! `\u0000` in a filter, an id or a config string came back as a database failure.

use std::ops::RangeInclusive;

use serde_json::Value;
use tributary_proto::events::InstanceState;
use tributary_proto::manifest::PluginType;
use tributary_proto::requests::plugins::InstanceFilter;
use tributary_proto::requests::ConfigProblem;

use crate::error::RegistryError;
use crate::store;

/// How many audit entries one read may ask for.
pub const AUDIT_LIMITS: RangeInclusive<i64> = 1..=10_000;

/// How many audit entries a read without a limit gets.
pub const DEFAULT_AUDIT_LIMIT: i64 = 100;

/// Every instance state, as the APIs spell it.
const STATES: [InstanceState; 6] = [
    InstanceState::Installed,
    InstanceState::Enabled,
    InstanceState::Disabled,
    InstanceState::Failed,
    InstanceState::NeedsReconnect,
    InstanceState::Uninstalled,
];

/// Every plugin type, as the APIs spell it.
const PLUGIN_TYPES: [PluginType; 3] = [
    PluginType::Connector,
    PluginType::Channel,
    PluginType::Operator,
];

/// Refuses `value` of `field` when it holds a NUL byte.
pub(crate) fn text(field: &'static str, value: &str) -> Result<(), RegistryError> {
    if value.contains('\0') {
        return Err(RegistryError::NulByte(field));
    }
    Ok(())
}

/// Refuses `value` of `field` unless it is absent or one of `allowed`.
fn one_of(
    field: &'static str,
    value: Option<&str>,
    allowed: Vec<&'static str>,
) -> Result<(), RegistryError> {
    match value {
        Some(value) if !allowed.contains(&value) => Err(RegistryError::NotOneOf {
            field,
            allowed,
            got: value.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Refuses a filter on a plugin type or a state that does not exist.
pub(crate) fn instance_filter(filter: &InstanceFilter) -> Result<(), RegistryError> {
    let types = PLUGIN_TYPES.iter().map(|t| t.as_str()).collect();
    one_of("plugin_type", filter.plugin_type.as_deref(), types)?;
    let states = STATES.iter().map(|s| store::state_name(*s)).collect();
    one_of("state", filter.state.as_deref(), states)
}

/// The audit read's limit: [`DEFAULT_AUDIT_LIMIT`] when absent, refused outside
/// [`AUDIT_LIMITS`].
pub(crate) fn audit_limit(limit: Option<i64>) -> Result<i64, RegistryError> {
    let limit = limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if AUDIT_LIMITS.contains(&limit) {
        Ok(limit)
    } else {
        Err(RegistryError::AuditLimit(limit))
    }
}

/// Every key and string in a configuration that holds a NUL byte, by JSON pointer.
pub(crate) fn nul_problems(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    collect_nul(config, &mut String::new(), &mut problems);
    problems
}

fn collect_nul(value: &Value, path: &mut String, problems: &mut Vec<ConfigProblem>) {
    let problem = |path: &str, what: &str| ConfigProblem {
        path: path.to_owned(),
        message: format!("{what} contains a NUL byte (\\u0000), which is not allowed"),
    };
    match value {
        Value::String(s) if s.contains('\0') => problems.push(problem(path, "the string")),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                collect_nul(item, path, problems);
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                if key.contains('\0') {
                    problems.push(problem(path, "the key"));
                } else {
                    collect_nul(item, path, problems);
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use tributary_proto::requests::{ApiError, ErrorCode};

    #[test]
    fn every_nul_in_a_config_is_named_by_its_pointer() {
        let config =
            json!({ "a": "ok", "b": ["x", "y\u{0}"], "c": { "d/e": "\u{0}" }, "k\u{0}": 1 });
        let paths: Vec<String> = nul_problems(&config).into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["/b/1", "/c/d~1e", "/k\u{0}"]);
        assert!(nul_problems(&json!({ "a": "fine", "n": 3 })).is_empty());
    }

    #[test]
    fn an_audit_limit_outside_its_range_is_refused_naming_the_range() {
        assert_eq!(audit_limit(None).unwrap(), 100);
        assert_eq!(audit_limit(Some(10_000)).unwrap(), 10_000);
        for bad in [-1, 0, 10_001] {
            let e = ApiError::from(audit_limit(Some(bad)).unwrap_err());
            assert_eq!(e.error, ErrorCode::BadRequest);
            assert!(e.message.contains("`limit` must be from 1 to 10000"), "{e}");
        }
    }

    #[test]
    fn a_filter_on_an_unknown_state_or_type_is_refused_naming_the_parameter() {
        let filter = |plugin_type: Option<&str>, state: Option<&str>| InstanceFilter {
            plugin_type: plugin_type.map(str::to_owned),
            state: state.map(str::to_owned),
        };
        assert!(instance_filter(&filter(Some("channel"), Some("failed"))).is_ok());
        let e = ApiError::from(instance_filter(&filter(None, Some("\u{0}"))).unwrap_err());
        assert!(
            e.message.starts_with("`state` must be one of installed"),
            "{e}"
        );
        let e = ApiError::from(instance_filter(&filter(Some("x"), None)).unwrap_err());
        assert!(
            e.message
                .starts_with("`plugin_type` must be one of connector"),
            "{e}"
        );
    }
}
