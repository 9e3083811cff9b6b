//! Typed instance configuration.

use serde::de::DeserializeOwned;

use crate::{PluginContext, PluginError};

/// The instance's config as `T`, or [`PluginError::Config`] naming the first field that is
/// missing or of the wrong type (`auth.token`, `scopes[2]`).
///
/// Declare secret fields as [`secrecy::SecretString`] so they cannot reach a log.
///
/// ```
/// use secrecy::SecretString;
/// use serde::Deserialize;
/// use tributary_plugin_sdk::{require_config, Grants, PluginContext};
///
/// #[derive(Debug, Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Config {
///     tenant_id: String,
///     access_token: SecretString,
/// }
///
/// let ctx = PluginContext::builder("com.example", "i-1", Grants::default())
///     .config(serde_json::json!({ "tenantId": "t" }))
///     .build()
///     .unwrap();
/// let err = require_config::<Config>(&ctx).unwrap_err();
/// assert!(err.to_string().contains("`accessToken`"));
/// ```
pub fn require_config<T: DeserializeOwned>(ctx: &PluginContext) -> Result<T, PluginError> {
    serde_path_to_error::deserialize(ctx.config()).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        PluginError::Config {
            field: field_name(&path, &message),
            message,
        }
    })
}

/// The failing field: the path where deserializing stopped, and for a missing field (reported
/// by the struct that lacks it) that field under the path.
fn field_name(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(field)) => field.to_owned(),
        (path, Some(field)) => format!("{path}.{field}"),
        (path, None) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::Grants;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)] // `paging` exists to give errors a nested path.
    struct Config {
        tenant_id: String,
        access_token: SecretString,
        #[serde(default)]
        paging: Paging,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Paging {
        #[serde(default)]
        page_size: u32,
        #[serde(default)]
        folders: Vec<String>,
    }

    fn ctx(config: serde_json::Value) -> PluginContext {
        PluginContext::builder("com.example", "i-1", Grants::default())
            .config(config)
            .build()
            .unwrap()
    }

    fn config_error(config: serde_json::Value) -> (String, String) {
        match require_config::<Config>(&ctx(config)) {
            Err(PluginError::Config { field, message }) => (field, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn require_config_names_the_missing_or_mistyped_field() {
        let (field, message) = config_error(json!({ "tenantId": "t" }));
        assert_eq!(field, "accessToken", "{message}");

        let (field, _) = config_error(json!({ "tenantId": 7, "accessToken": "s" }));
        assert_eq!(field, "tenantId");

        let (field, _) = config_error(json!({
            "tenantId": "t", "accessToken": "s", "paging": { "pageSize": "ten" }
        }));
        assert_eq!(field, "paging.pageSize");

        let (field, _) = config_error(json!({
            "tenantId": "t", "accessToken": "s", "paging": { "folders": ["a", 2] }
        }));
        assert_eq!(field, "paging.folders[1]");

        let (field, message) = config_error(json!(null));
        assert_eq!(field, ".", "{message}");
    }

    #[test]
    fn a_valid_config_is_typed_and_its_secret_stays_out_of_debug_output() {
        let ctx = ctx(json!({ "tenantId": "t", "accessToken": "hunter2" }));
        let config: Config = require_config(&ctx).unwrap();
        assert_eq!(config.tenant_id, "t");
        assert_eq!(config.access_token.expose_secret(), "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{ctx:?}").contains("hunter2"));
    }
}
