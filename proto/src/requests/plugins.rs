//! The `plugins.*` requests the plugin manager answers, and what they answer with. The admin
//! HTTP API takes and gives the same types, so the CLI, the other services and scripts read
//! one shape.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ErrorCode::{
    self, BadRequest, Conflict, Internal, InvalidConfig, NotFound, PermissionsNotAccepted,
};
use crate::events::InstanceState;
use crate::grants::Grants;
use crate::manifest::{Permission, PluginType, WasmLimits};
use crate::subjects::ServiceName;

/// A plugin whose manifest is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config_schema: Value,
}

/// One problem with a manifest, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldProblem {
    /// The field (`permissions[2]`), or empty for the whole document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A plugin that was found but cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginList {
    /// The valid plugins.
    pub plugins: Vec<PluginView>,
    /// The invalid ones, with their problems.
    pub invalid: Vec<InvalidPluginView>,
}

/// Whether a secret field holds a value. Secrets themselves are never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecretStatus {
    /// A value is stored (encrypted).
    Set,
    /// No value.
    NotSet,
}

/// An upgrade waiting for a person to accept the permissions it adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldUpgrade {
    /// The version it would move to.
    pub version: String,
    /// The permissions that version asks for beyond those accepted.
    pub new_permissions: Vec<String>,
}

/// An installed instance, as the APIs show it: secrets only as set or not set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceView {
    /// The instance id (one NATS token).
    pub id: String,
    /// The plugin it is an instance of.
    pub plugin_id: String,
    /// `connector`, `channel` or `operator`.
    pub plugin_type: String,
    /// The plugin version it runs.
    pub version: String,
    /// `installed`, `enabled`, `disabled`, `failed`, `needs_reconnect` or `uninstalled`.
    pub state: String,
    /// Its configuration without secrets.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
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
    /// Its connection to its account, for a plugin whose manifest has an `auth` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthView>,
    /// When it was installed.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where an instance's connection to its account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuthStatus {
    /// Never connected: `tributary plugins connect <instance>`.
    NotConnected,
    /// Tokens are held and refreshed.
    Connected,
    /// The grant is gone (revoked, expired, refused): a person must connect it again.
    NeedsReconnect,
}

impl AuthStatus {
    /// The JSON spelling (`needs_reconnect`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStatus::NotConnected => "not_connected",
            AuthStatus::Connected => "connected",
            AuthStatus::NeedsReconnect => "needs_reconnect",
        }
    }
}

/// An instance's OAuth 2.0 connection as the APIs show it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthView {
    /// The provider (`microsoft`, or the plugin's own).
    pub provider: String,
    /// `authorization_code` or `client_credentials`.
    pub grant: String,
    /// Connected, not connected, or in need of a reconnect.
    pub status: AuthStatus,
    /// Who or what the tokens act for, where the provider says (an e-mail address, a Slack
    /// workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_as: Option<String>,
    /// The scopes the provider granted (which may be fewer than asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// When the access token expires; absent for one that does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When a person last connected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<DateTime<Utc>>,
    /// When its tokens were last refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// The last refresh that failed without losing the grant (the provider was down), and
    /// why; cleared by the next one that works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_error: Option<String>,
    /// Why a reconnect is needed, in the provider's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_reason: Option<String>,
}

/// `plugins.connect`: start connecting an instance to its account. For
/// `authorization_code`, the answer holds the consent URL a person opens (in any browser, on
/// any machine); for `client_credentials`, the token is fetched at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectRequest {}

/// Where a connect attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Waiting for the person to consent.
    Pending,
    /// The tokens are held: the instance is connected.
    Connected,
    /// The provider refused, or the exchange failed; `error` says why.
    Failed,
    /// Nobody consented in time.
    Expired,
}

/// Why a connect attempt failed, in plain words and in the provider's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectFailure {
    /// The provider's error code (`access_denied`, `invalid_scope`,
    /// `redirect_uri_mismatch`, `invalid_client`…).
    pub code: String,
    /// What it means and what to do, with the provider's own description.
    pub message: String,
}

/// One connect attempt: `plugins.connect` starts it, `plugins.connect_status` follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectAttempt {
    /// The attempt (not its `state`, which only the consent URL carries).
    pub attempt_id: uuid::Uuid,
    /// The instance being connected.
    pub instance_id: String,
    /// The provider.
    pub provider: String,
    /// Where it stands.
    pub status: AttemptStatus,
    /// Where the person consents; absent for `client_credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_url: Option<String>,
    /// Where the provider sends the person back (register it with the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Until when the consent URL works.
    pub expires_at: DateTime<Utc>,
    /// Once connected: the scopes granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Once connected: who the tokens act for, where the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_as: Option<String>,
    /// Once failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ConnectFailure>,
}

/// `plugins.connect_status`: one connect attempt, to wait on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct ConnectStatusQuery {
    /// The attempt `plugins.connect` answered with.
    pub attempt_id: uuid::Uuid,
}

/// `plugins.token.<plugin type>`: the access token to attach to an instance's requests, fresh.
/// Only the service running instances of that type may ask (like `plugins.runtime`), and only
/// about an instance of that type; never served over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccessTokenQuery {
    /// The type of plugin the asking service runs (the subject's last token, not in the body):
    /// an instance of another type is answered `not_found`. `None` when the token is no
    /// plugin type.
    #[serde(skip)]
    pub plugin_type: Option<PluginType>,
    /// The instance.
    pub instance_id: String,
    /// The fingerprint ([`token_fingerprint`]) of a token the API just refused with 401:
    /// unless another process has refreshed since, the plugin manager refreshes at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// An access token, to attach as `Authorization: Bearer`. Never a refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccessToken {
    /// The token.
    pub access_token: String,
    /// When it expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A short name for an access token that does not reveal it: the first 16 hex digits of its
/// SHA-256. `plugins.token` is told which token an API refused by it.
pub fn token_fingerprint(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Install an instance of a plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallRequest {
    /// The plugin.
    pub plugin_id: String,
    /// The instance id to use (letters, digits, `-`, `_`); made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub instance_id: Option<String>,
    /// Its configuration, checked against the plugin's config schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<Value>,
    /// The permissions accepted: all the plugin asks for, or the install is refused.
    #[serde(default)]
    pub accept_permissions: Vec<String>,
}

/// Replace an instance's configuration. Secret fields left out keep their stored value; a
/// secret set to `null` is cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigureRequest {
    /// The new configuration.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: Value,
}

/// Move an instance to the newest discovered version of its plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpgradeRequest {
    /// Permissions accepted for the new version; needed when it asks for more.
    #[serde(default)]
    pub accept_permissions: Vec<String>,
}

/// Remove an instance (on HTTP, the query of `DELETE /api/v1/instances/{instance_id}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct UninstallRequest {
    /// Also delete its configuration, credentials and the data it brought in (each item it
    /// synced is deleted from the unified model through the ETL, announced as usual).
    #[serde(default)]
    pub purge: bool,
}

/// Start an instance (`plugins.enable`): nothing but its id and who asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnableRequest {}

/// Stop an instance (`plugins.disable`): nothing but its id and who asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DisableRequest {}

/// What an uninstall did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UninstallOutcome {
    /// The instance.
    pub instance_id: String,
    /// Whether its configuration, credentials and data were purged.
    pub purged: bool,
    /// Items it had brought in that were sent to be deleted.
    pub items_deleted: u64,
}

/// `plugins.heartbeat.<plugin type>`: a service reports that an instance it runs is alive, or
/// failed. Each service reports on its own plugin type's subject, which only its NATS user may
/// publish to, and the plugin manager takes it only about instances of that type: the
/// connector service cannot mark a channel instance failed or keep it looking alive, nor the
/// reverse (a report about another type is refused as `not_found`, audited, and changes
/// nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatRequest {
    /// The type of plugin the reporting service runs (the subject's last token, not in the
    /// body). `None` when the token is no plugin type.
    #[serde(skip)]
    pub plugin_type: Option<PluginType>,
    /// The instance.
    pub instance_id: String,
    /// The error that stopped it, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which instances to list (`plugins.instances`, and the query of `GET /api/v1/instances`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct InstanceFilter {
    /// Only instances of this plugin type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(pattern = "^(connector|channel|operator)$"))]
    pub plugin_type: Option<String>,
    /// Only instances in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(pattern = "^(installed|enabled|disabled|failed|needs_reconnect|uninstalled)$")
    )]
    pub state: Option<String>,
}

/// `plugins.list`: every plugin discovered, valid and invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListPlugins {}

/// `plugins.rescan`: scan the plugin directories again, answered with the new list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RescanPlugins {}

/// `plugins.info`: one valid plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginInfo {
    /// The plugin.
    pub plugin_id: String,
}

/// `plugins.instance`: one instance as the APIs show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceInfo {
    /// The instance.
    pub instance_id: String,
}

/// `plugins.runtime.<plugin type>`: what the service running an instance needs, secrets
/// included. Each service asks on its own plugin type's subject, which only its NATS user may
/// publish to, and is answered only about instances of that type: the connector service
/// cannot read a channel's tokens, nor the reverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeQuery {
    /// The type of plugin the asking service runs (the subject's last token, not in the body):
    /// an instance of another type is answered `not_found`. `None` when the token is no
    /// plugin type.
    #[serde(skip)]
    pub plugin_type: Option<PluginType>,
    /// The instance.
    pub instance_id: String,
}

/// Implements [`super::Request`] for a `plugins.*` request whose subject ends in the plugin
/// type of the service asking (`plugins.runtime.connector`).
macro_rules! per_plugin_type {
    ($($request:ty => $verb:literal, $reply:ty, $errors:expr;)+) => {
        $(
            impl super::Request for $request {
                const SERVICE: ServiceName = ServiceName::PluginManager;
                const VERB: &'static str = $verb;
                const WILDCARD: bool = true;
                const TOKEN_NAME: &'static str = "plugin type";
                const ERRORS: &'static [ErrorCode] = $errors;
                type Reply = $reply;

                fn subject_token(&self) -> Option<&str> {
                    self.plugin_type.map(PluginType::as_str)
                }

                fn set_subject_token(&mut self, token: &str) {
                    self.plugin_type = PluginType::parse(token);
                }
            }
        )+
    };
}

per_plugin_type! {
    RuntimeQuery => "runtime", RuntimeInstance, INSTANCE;
    AccessTokenQuery => "token", AccessToken,
        &[BadRequest, NotFound, InvalidConfig, Conflict, Internal];
    HeartbeatRequest => "heartbeat", InstanceView, &[BadRequest, NotFound, Conflict, Internal];
}

/// Everything the service that runs an instance needs, secrets included. Only
/// `plugins.runtime` answers with it; it is never served over HTTP.
///
/// Its permissions are parsed: the plugin manager cannot send one that does not parse, and a
/// reply holding one is refused as unreadable by the receiver instead of granting nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeInstance {
    /// The instance.
    pub instance_id: String,
    /// Its plugin.
    pub plugin_id: String,
    /// What kind of plugin it is.
    pub plugin_type: PluginType,
    /// The version it runs.
    pub version: String,
    /// `builtin:<name>` or `wasm:<path>`.
    pub entrypoint: String,
    /// The permissions accepted for it: all it may do.
    pub permissions: Vec<Permission>,
    /// Its whole configuration, secrets included.
    pub config: Value,
    /// Its state.
    pub state: InstanceState,
    /// The top-level config fields that are secrets (`writeOnly` in its config schema): a
    /// WebAssembly guest reads them only through an explicit call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_fields: Vec<String>,
    /// For a `wasm:` plugin: the component file and the SHA-256 it must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentSource>,
    /// For a `wasm:` plugin: the limits its manifest asks for.
    #[serde(default, skip_serializing_if = "WasmLimits::is_empty")]
    pub limits: WasmLimits,
    /// Whether its manifest has an `auth` section: the host then attaches the access token
    /// `plugins.token` gives to every request to a granted host that carries no
    /// `Authorization` of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oauth: bool,
}

/// Where a WebAssembly plugin's component is, and what its content must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComponentSource {
    /// The `.wasm` file, as an absolute path on the machine the services share.
    pub path: String,
    /// Its SHA-256, lower-case hex, from the manifest.
    pub sha256: String,
}

/// What a service's runner of an instance was built from ([`RuntimeInstance::source`]):
/// permissions, config, version and state.
pub type InstanceSource = (Vec<String>, Value, String, InstanceState);

/// Whether the service of an instance in the state spelled `state` runs it
/// ([`InstanceState::runs`]); an unknown spelling does not run.
pub fn runs_in_state(state: &str) -> bool {
    serde_json::from_value::<InstanceState>(Value::from(state)).is_ok_and(InstanceState::runs)
}

impl InstanceState {
    /// Whether the service of an instance in this state runs it: enabled, failed (a failed
    /// instance keeps running, and recovers when its service reports it healthy again), or
    /// needing a reconnect (a channel still takes webhooks; a connector's syncs wait).
    pub fn runs(self) -> bool {
        matches!(
            self,
            InstanceState::Enabled | InstanceState::Failed | InstanceState::NeedsReconnect
        )
    }
}

impl RuntimeInstance {
    /// Whether its service runs it now ([`InstanceState::runs`]).
    pub fn runs(&self) -> bool {
        self.state.runs()
    }

    /// What it may do: its accepted permissions, each `network:outbound:${property}` resolved
    /// against its config.
    pub fn grants(&self) -> Grants {
        Grants::for_instance(self.permissions.iter().cloned(), &self.config)
    }

    /// What its runner was built from: permissions, config, version and state. A service
    /// compares it with the last one to tell whether a change in the plugin manager matters.
    pub fn source(&self) -> InstanceSource {
        (
            self.permissions.iter().map(ToString::to_string).collect(),
            self.config.clone(),
            self.version.clone(),
            self.state,
        )
    }
}

/// Which audit entries to read: `plugins.audit`, and the query of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditQuery {
    /// Only this instance's entries.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The newest this many: 1 to 10000, 100 when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 10000))]
    pub limit: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Order of the change.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the identity the plugin manager established, never what a request claims: the
    /// admin HTTP API's token (`admin-api:<fingerprint>`), the NATS user a subject is allowed
    /// to (`nats:admin`, `nats:connector`, `nats:channel`), or the plugin manager itself
    /// (`oauth-broker`). A name the request gave is in `detail.claimed_actor`.
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
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: Value,
}

/// A `plugins.*` request about one instance: its id, who the caller says it is, and the rest
/// of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceCall<B> {
    /// The instance.
    pub instance_id: String,
    /// Who the caller says it is (`cli:alice`; `actor` is read as this too). Only a claim:
    /// NATS does not tell the plugin manager who sent a request, so the audit log's actor is
    /// the NATS user the subject's permissions allow ([`NATS_ADMIN_ACTOR`]), and this name is
    /// kept beside it as `claimed_actor`, never as the actor.
    #[serde(default, alias = "actor", skip_serializing_if = "Option::is_none")]
    pub claimed_actor: Option<String>,
    /// The rest.
    #[serde(flatten)]
    pub body: B,
}

/// A `plugins.*` request not about one instance, with who the caller says it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Call<B> {
    /// Who the caller says it is (`cli:alice`; `actor` is read as this too): only a claim,
    /// kept as `claimed_actor` beside the actor the plugin manager records
    /// ([`InstanceCall::claimed_actor`]).
    #[serde(default, alias = "actor", skip_serializing_if = "Option::is_none")]
    pub claimed_actor: Option<String>,
    /// The rest.
    #[serde(flatten)]
    pub body: B,
}

/// The audit actor of every change asked over NATS on a subject only the `admin` user may
/// publish (deploy/nats-server.conf): `plugins.install`, `configure`, `enable`, `disable`,
/// `upgrade`, `uninstall`, `connect`. Whatever name the request claims is kept apart, as
/// `claimed_actor`.
pub const NATS_ADMIN_ACTOR: &str = "nats:admin";

/// The audit actor of a report on `plugins.heartbeat.<plugin type>`, which only the NATS
/// user of the service running that type of plugin may publish: `nats:connector`,
/// `nats:channel`.
pub fn nats_service_actor(plugin_type: PluginType) -> String {
    format!("nats:{}", plugin_type.as_str())
}

/// The refusals every `plugins.*` request about an instance can answer with.
const INSTANCE: &[ErrorCode] = &[BadRequest, NotFound, Internal];

mod listed {
    use super::*;
    super::super::requests! {
        ServiceName::PluginManager;
        ListPlugins => "list", PluginList, &[BadRequest, Internal];
        RescanPlugins => "rescan", PluginList, &[BadRequest, Internal];
        PluginInfo => "info", PluginView, &[BadRequest, NotFound, Internal];
        InstanceFilter => "instances", Vec<InstanceView>, &[BadRequest, Internal];
        InstanceInfo => "instance", InstanceView, INSTANCE;
        Call<InstallRequest> => "install", InstanceView,
            &[BadRequest, NotFound, InvalidConfig, PermissionsNotAccepted, Conflict, Internal];
        InstanceCall<ConfigureRequest> => "configure", InstanceView,
            &[BadRequest, NotFound, InvalidConfig, Conflict, Internal];
        InstanceCall<EnableRequest> => "enable", InstanceView,
            &[BadRequest, NotFound, InvalidConfig, Conflict, Internal];
        InstanceCall<DisableRequest> => "disable", InstanceView,
            &[BadRequest, NotFound, Conflict, Internal];
        InstanceCall<UpgradeRequest> => "upgrade", InstanceView,
            &[BadRequest, NotFound, InvalidConfig, PermissionsNotAccepted, Conflict, Internal];
        InstanceCall<UninstallRequest> => "uninstall", UninstallOutcome,
            &[BadRequest, NotFound, Conflict, Internal];
        AuditQuery => "audit", Vec<AuditEntry>, &[BadRequest, Internal];
        InstanceCall<ConnectRequest> => "connect", ConnectAttempt,
            &[BadRequest, NotFound, InvalidConfig, Conflict, Internal];
        ConnectStatusQuery => "connect_status", ConnectAttempt, &[BadRequest, NotFound, Internal];
    }
}

/// Every `plugins.*` request, for the catalog.
pub(crate) fn catalog() -> Vec<super::CatalogEntry> {
    let mut all = listed::catalog();
    all.push(super::CatalogEntry::of::<RuntimeQuery>());
    all.push(super::CatalogEntry::of::<AccessTokenQuery>());
    all.push(super::CatalogEntry::of::<HeartbeatRequest>());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_reply_with_a_permission_that_does_not_parse_is_refused() {
        let reply = serde_json::json!({
            "instance_id": "a", "plugin_id": "p", "plugin_type": "connector",
            "version": "1.0.0", "entrypoint": "builtin:demo",
            "permissions": ["network:sideways:example.com"],
            "config": {}, "state": "enabled"
        });
        assert!(serde_json::from_value::<RuntimeInstance>(reply).is_err());
    }

    #[test]
    fn a_runtime_reply_carries_the_plugin_type_and_state_as_enums() {
        let reply = serde_json::json!({
            "instance_id": "a", "plugin_id": "p", "plugin_type": "channel",
            "version": "1.0.0", "entrypoint": "builtin:webhook",
            "permissions": ["network:inbound"], "config": {}, "state": "failed"
        });
        let runtime: RuntimeInstance = serde_json::from_value(reply).unwrap_or_else(|e| {
            panic!("a valid runtime reply: {e}");
        });
        assert_eq!(runtime.plugin_type, PluginType::Channel);
        assert!(runtime.runs());
        assert!(runtime.grants().check_inbound().is_ok());
    }

    #[test]
    fn only_enabled_and_failed_instances_run() {
        assert!(runs_in_state("enabled"));
        assert!(runs_in_state("failed"));
        assert!(!runs_in_state("disabled"));
        assert!(!runs_in_state("nonsense"));
    }
}
