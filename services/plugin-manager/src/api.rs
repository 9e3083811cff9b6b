//! What the plugin manager's APIs take and give: the same types on NATS (`plugins.*`) and on
//! the admin HTTP API, so the CLI, the other services and scripts read one shape.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::config_schema::ConfigProblem;

/// A plugin whose manifest is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginView {
    /// Reverse-DNS id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The newest version discovered.
    pub version: String,
    /// `connector`, `channel` or `operator`.
    pub plugin_type: String,
    /// One paragraph on what it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What it asks to be allowed to do.
    pub permissions: Vec<String>,
    /// `builtin` or its directory.
    pub location: String,
    /// JSON Schema of an instance's configuration.
    #[schema(value_type = Object)]
    pub config_schema: Value,
}

/// One problem with a manifest, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// The field (`permissions[2]`), or empty for the whole document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A plugin that was found but cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvalidPluginView {
    /// Where it was found.
    pub location: String,
    /// Its id, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every problem.
    pub problems: Vec<FieldProblem>,
}

/// Every plugin discovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginList {
    /// The valid plugins.
    pub plugins: Vec<PluginView>,
    /// The invalid ones, with their problems.
    pub invalid: Vec<InvalidPluginView>,
}

/// Whether a secret field holds a value. Secrets themselves are never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretStatus {
    /// A value is stored (encrypted).
    Set,
    /// No value.
    NotSet,
}

/// An upgrade waiting for a person to accept the permissions it adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldUpgrade {
    /// The version it would move to.
    pub version: String,
    /// The permissions that version asks for beyond those accepted.
    pub new_permissions: Vec<String>,
}

/// An installed instance, as the APIs show it: secrets only as set or not set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceView {
    /// The instance id (one NATS token).
    pub id: String,
    /// The plugin it is an instance of.
    pub plugin_id: String,
    /// `connector`, `channel` or `operator`.
    pub plugin_type: String,
    /// The plugin version it runs.
    pub version: String,
    /// `installed`, `enabled`, `disabled`, `failed` or `uninstalled`.
    pub state: String,
    /// Its configuration without secrets.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Each secret field (JSON pointer) and whether it is set.
    pub secrets: BTreeMap<String, SecretStatus>,
    /// The permissions accepted for it.
    pub permissions: Vec<String>,
    /// A newer version discovered, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_version: Option<String>,
    /// An upgrade held until its new permissions are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_upgrade: Option<HeldUpgrade>,
    /// When its service last reported it alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The last error reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was installed.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Install an instance of a plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstallRequest {
    /// The plugin.
    pub plugin_id: String,
    /// The instance id to use (letters, digits, `-`, `_`); made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Its configuration, checked against the plugin's config schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// The permissions accepted: all the plugin asks for, or the install is refused.
    #[serde(default)]
    pub accept_permissions: Vec<String>,
}

/// Replace an instance's configuration. Secret fields left out keep their stored value; a
/// secret set to `null` is cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigureRequest {
    /// The new configuration.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// Move an instance to the newest discovered version of its plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpgradeRequest {
    /// Permissions accepted for the new version; needed when it asks for more.
    #[serde(default)]
    pub accept_permissions: Vec<String>,
}

/// Remove an instance (on HTTP, the query of `DELETE /api/v1/instances/{instance_id}`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct UninstallRequest {
    /// Also delete its configuration, credentials and the data it brought in (each item it
    /// synced is deleted from the unified model through the ETL, announced as usual).
    #[serde(default)]
    pub purge: bool,
}

/// What an uninstall did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UninstallOutcome {
    /// The instance.
    pub instance_id: String,
    /// Whether its configuration, credentials and data were purged.
    pub purged: bool,
    /// Items it had brought in that were sent to be deleted.
    pub items_deleted: u64,
}

/// A service reports that an instance it runs is alive, or failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    /// The instance.
    pub instance_id: String,
    /// The error that stopped it, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which instances to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceFilter {
    /// Only instances of this plugin type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_type: Option<String>,
    /// Only instances in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Everything the service that runs an instance needs, secrets included. Only
/// `plugins.runtime` answers with it; it is never served over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInstance {
    /// The instance.
    pub instance_id: String,
    /// Its plugin.
    pub plugin_id: String,
    /// `connector`, `channel` or `operator`.
    pub plugin_type: String,
    /// The version it runs.
    pub version: String,
    /// `builtin:<name>` or `wasm:<path>`.
    pub entrypoint: String,
    /// The permissions accepted for it: all it may do.
    pub permissions: Vec<String>,
    /// Its whole configuration, secrets included.
    pub config: Value,
    /// Its state.
    pub state: String,
}

/// Whether the service of an instance in `state` runs it: enabled, or failed (a failed
/// instance keeps running, and recovers when its service reports it healthy again).
pub fn runs_in_state(state: &str) -> bool {
    state == "enabled" || state == "failed"
}

impl RuntimeInstance {
    /// Whether its service runs it now ([`runs_in_state`]).
    pub fn runs(&self) -> bool {
        runs_in_state(&self.state)
    }

    /// What it may do: its accepted permissions, each `network:outbound:${property}` resolved
    /// against its config. A permission that does not parse grants nothing.
    pub fn grants(&self) -> tributary_proto::grants::Grants {
        let permissions = self
            .permissions
            .iter()
            .filter_map(|p| p.parse::<tributary_proto::manifest::Permission>().ok());
        tributary_proto::grants::Grants::for_instance(permissions, &self.config)
    }

    /// What its runner was built from: permissions, config and version. A service compares
    /// it with the last one to tell whether a change in the plugin manager matters.
    pub fn source(&self) -> (Vec<String>, Value, String) {
        (
            self.permissions.clone(),
            self.config.clone(),
            self.version.clone(),
        )
    }
}

/// Which audit entries to read: `plugins.audit`, and the query of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this instance's entries.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The newest this many: 1 to 10000, 100 when absent.
    #[serde(default)]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Order of the change.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What: `install`, `configure`, `enable`, `accept_permissions`…
    pub action: String,
    /// The plugin concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_id: Option<String>,
    /// The instance concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Details (versions, permissions, the fields that changed; never a secret's value).
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// What kind of failure an [`ApiError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request cannot be read.
    BadRequest,
    /// No or a wrong bearer token.
    Unauthorized,
    /// No such plugin, instance or route.
    NotFound,
    /// The configuration does not satisfy the plugin's schema.
    InvalidConfig,
    /// The permissions asked for were not all accepted.
    PermissionsNotAccepted,
    /// The instance is not in a state that allows this.
    Conflict,
    /// The route is not served with this method.
    MethodNotAllowed,
    /// Something failed inside the service.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with it.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InvalidConfig => 422,
            ErrorCode::PermissionsNotAccepted | ErrorCode::Conflict => 409,
            ErrorCode::Internal => 500,
        }
    }
}

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub error: ErrorCode,
    /// One line for a person.
    pub message: String,
    /// For `invalid_config`: every problem with its JSON path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ConfigProblem>,
    /// For `permissions_not_accepted`: the permissions to accept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
            problems: Vec::new(),
            permissions: Vec::new(),
        }
    }

    /// An `internal` error: the service itself failed (its database, NATS), with `e` as the
    /// message.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }
}

/// The body of every `plugins.*` NATS reply: the result, or the error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatsReply<T> {
    /// It worked.
    Ok(T),
    /// It did not.
    Error(ApiError),
}

/// A `plugins.*` request about one instance: its id, who asks, and the rest of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceCall<B> {
    /// The instance.
    pub instance_id: String,
    /// Who asks, for the audit log (`cli:alice`); `nats` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The rest.
    #[serde(flatten)]
    pub body: B,
}

/// A `plugins.*` request not about one instance, with who asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call<B> {
    /// Who asks, for the audit log; `nats` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The rest.
    #[serde(flatten)]
    pub body: B,
}
