//! What the registry refuses and how it fails: [`RegistryError`], one variant per kind,
//! returned by every operation of [`crate::PluginManager`] and the checks of
//! [`crate::validate`].
//!
//! The wire never sees it: the APIs turn it into the contract's [`ApiError`] at their edges
//! ([`crate::nats_api`], [`crate::http_api`]) through the one `From<RegistryError> for
//! ApiError` below, which picks its code from the table ([`RegistryError::code`]), its message
//! (the variant's `Display`) and the lists a client acts on (`problems`, `permissions`). A
//! store failure is the exception: its cause goes to the log, and the caller reads a message
//! that names no table or query.

use tributary_proto::manifest::{InvalidPermission, Permission};
use tributary_proto::requests::{ApiError, ConfigProblem, ErrorCode};

use crate::adding::Refusal;
use crate::keys::SealError;
use crate::store::StoreError;
use crate::timeline::TIMELINE_LIMITS;
use crate::validate::AUDIT_LIMITS;

/// PostgreSQL's codes for a character it cannot store (a NUL byte in `text`, `\u0000` in
/// `jsonb`).
const UNSTORABLE_CHARACTER: [&str; 2] = ["22021", "22P05"];

/// Why the registry refused an operation, or failed at it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An instance id that is not one NATS token.
    #[error("instance id `{0}` must be 1 to 64 letters, digits, `-` or `_`")]
    InvalidInstanceId(String),
    /// A permission, accepted by the caller, that does not parse.
    #[error(transparent)]
    InvalidPermission(#[from] InvalidPermission),
    /// A field of the request holds a NUL byte, which PostgreSQL cannot store.
    #[error("`{0}` contains a NUL byte (\\u0000), which is not allowed")]
    NulByte(&'static str),
    /// A filter names a value that does not exist.
    #[error("`{field}` must be one of {}; got {got:?}", .allowed.join(", "))]
    NotOneOf {
        /// The field.
        field: &'static str,
        /// Its allowed values, as the APIs spell them.
        allowed: Vec<&'static str>,
        /// What was given.
        got: String,
    },
    /// An audit read asks for a number of entries outside [`AUDIT_LIMITS`].
    #[error("`limit` must be from {} to {}; got {}", AUDIT_LIMITS.start(), AUDIT_LIMITS.end(), .0)]
    AuditLimit(i64),
    /// A timeline read asks for a number of entries outside [`TIMELINE_LIMITS`].
    #[error("`limit` must be from {} to {}; got {}", TIMELINE_LIMITS.start(), TIMELINE_LIMITS.end(), .0)]
    TimelineLimit(i64),
    /// A timeline read's `before` is not a `next` the timeline gave.
    #[error("`before` must be the `next` of an earlier page (`<micros>-<a|t><seq>`); got {0:?}")]
    TimelineCursor(String),
    /// No valid plugin has this id.
    #[error("no valid plugin `{0}`; `tributary plugins list` shows those found")]
    UnknownPlugin(String),
    /// No instance has this id (an id that could not be stored comes escaped).
    #[error("no instance `{0}`; `tributary plugins list` shows the installed ones")]
    UnknownInstance(String),
    /// `plugins.runtime.<type>`, `plugins.token.<type>` or `plugins.heartbeat.<type>` about
    /// an instance of another plugin type: the service running connectors may not read a
    /// channel's secrets or report on its health, nor the reverse.
    #[error(
        "no {asked} instance `{instance_id}`: plugins.{verb}.{asked} answers only about {asked} \
         instances"
    )]
    OtherPluginType {
        /// The verb asked (`runtime`, `token`, `heartbeat`).
        verb: &'static str,
        /// The plugin type the asking service runs, from the subject.
        asked: &'static str,
        /// The instance asked about.
        instance_id: String,
    },
    /// `plugins.runtime.<type>`, `plugins.token.<type>` or `plugins.heartbeat.<type>` on a
    /// subject whose last token is not a plugin type.
    #[error(
        "plugins.{0}.<plugin type>: the subject's last token must be `connector` or `channel`"
    )]
    NoPluginType(&'static str),
    /// An uninstall of an id with no instance, and nothing left of one to purge.
    #[error("no instance `{0}`")]
    NothingToUninstall(String),
    /// An install under an id an instance already has.
    #[error("an instance `{0}` already exists")]
    AlreadyExists(String),
    /// A change to an instance that is uninstalled.
    #[error(
        "`{instance_id}` is uninstalled (its configuration, credentials and data are kept): \
         bring it back with `tributary plugins install {plugin_id} --id {instance_id}`, or \
         delete it with `tributary plugins uninstall {instance_id} --purge`"
    )]
    Uninstalled {
        /// The instance.
        instance_id: String,
        /// Its plugin, to install again.
        plugin_id: String,
    },
    /// An install of one plugin under the id of another's uninstalled, kept instance.
    #[error(
        "`{instance_id}` was an instance of `{plugin_id}`, uninstalled with its configuration \
         and data kept; install `{plugin_id}` under this id to bring it back, or purge it \
         (`tributary plugins uninstall {instance_id} --purge`) to reuse the id"
    )]
    KeptForAnotherPlugin {
        /// The id asked for.
        instance_id: String,
        /// The plugin the kept instance is of.
        plugin_id: String,
    },
    /// An install under the id of a purged instance whose purge the ETL has not applied.
    #[error(
        "the purge of an earlier instance `{instance_id}` is not applied yet: the ETL has \
         {left} of its items left to forget; is the ETL running? Install it again once the \
         ETL has caught up, or send the purge again with `tributary plugins uninstall \
         {instance_id} --purge`"
    )]
    PurgePending {
        /// The id asked for.
        instance_id: String,
        /// Source records the ETL has still to forget.
        left: u64,
    },
    /// An upgrade of an instance already on the newest version found.
    #[error("`{instance_id}` already runs the newest version found of `{plugin_id}` ({version})")]
    UpToDate {
        /// The instance.
        instance_id: String,
        /// Its plugin.
        plugin_id: String,
        /// The version it runs.
        version: String,
    },
    /// A configuration holding what cannot be stored or split (a NUL byte, a secret that is
    /// not a string).
    #[error("the configuration is not valid")]
    MalformedConfig(Vec<ConfigProblem>),
    /// A configuration that is not a JSON object.
    #[error("the configuration must be a JSON object")]
    ConfigNotAnObject,
    /// A configuration that does not satisfy its plugin's config schema.
    #[error("the configuration does not satisfy the config schema of `{plugin_id}`")]
    InvalidConfig {
        /// The plugin whose schema it is checked against.
        plugin_id: String,
        /// Every problem, by JSON pointer.
        problems: Vec<ConfigProblem>,
    },
    /// A change that points a granted host elsewhere while keeping stored secrets, which
    /// would then be sent there.
    #[error(
        "`{instance_id}`'s change moves {moves}; give its stored secrets again in the same \
         request, or they would be sent to a destination nobody entered them for"
    )]
    SecretsNotReentered {
        /// The instance.
        instance_id: String,
        /// What moved where, for people.
        moves: String,
        /// Each secret to give again, by JSON pointer.
        problems: Vec<ConfigProblem>,
    },
    /// An enable of an instance whose configuration is not complete.
    #[error("`{instance_id}` cannot be enabled until its configuration is complete")]
    ConfigIncomplete {
        /// The instance.
        instance_id: String,
        /// Every problem, by JSON pointer.
        problems: Vec<ConfigProblem>,
    },
    /// An upgrade of an enabled instance whose configuration the new version would refuse.
    #[error(
        "`{instance_id}`'s configuration does not satisfy version {version}; configure it for \
         that version first, or disable it"
    )]
    ConfigUnfitForVersion {
        /// The instance.
        instance_id: String,
        /// The version upgraded to.
        version: String,
        /// Every problem, by JSON pointer.
        problems: Vec<ConfigProblem>,
    },
    /// An install without every permission the plugin asks for accepted.
    #[error(
        "installing `{plugin_id}` needs its permissions accepted; not accepted: {}",
        names(.missing).join(", ")
    )]
    PermissionsNotAccepted {
        /// The plugin.
        plugin_id: String,
        /// What it asks for that was not accepted.
        missing: Vec<Permission>,
        /// Everything it asks for: what to accept.
        asked: Vec<Permission>,
    },
    /// An upgrade held until the permissions its new version adds are accepted.
    #[error(
        "version {to} of `{plugin_id}` asks for more permissions; `{instance_id}` stays on \
         {from} until they are accepted: {}",
        names(.missing).join(", ")
    )]
    UpgradeHeld {
        /// The instance.
        instance_id: String,
        /// Its plugin.
        plugin_id: String,
        /// The version it stays on.
        from: String,
        /// The version held.
        to: String,
        /// The permissions to accept.
        missing: Vec<Permission>,
    },
    /// A connect or token request for an instance whose plugin connects to no account.
    #[error("`{instance_id}` ({plugin_id}) does not connect to an account: its plugin's manifest has no `auth` section")]
    NoAuth {
        /// The instance.
        instance_id: String,
        /// Its plugin.
        plugin_id: String,
    },
    /// No OAuth client for the provider: neither the deployment's nor the instance's.
    #[error(
        "no OAuth client for `{provider}`: register one with the provider (redirect URI \
         {redirect_uri}) and set `oauth.providers.{provider}.client_id` and `client_secret`{}",
        .instance_field.as_ref().map(|f| format!(", or the instance's `{f}`")).unwrap_or_default()
    )]
    NoOAuthClient {
        /// The provider.
        provider: String,
        /// The redirect URI to register.
        redirect_uri: String,
        /// The instance config field that could hold its own client, if the plugin has one.
        instance_field: Option<String>,
    },
    /// The provider cannot be reached as configured (a tenant, an endpoint).
    #[error(transparent)]
    ProviderSetup(#[from] tributary_proto::oauth::ProviderSetupError),
    /// The deployment's `[oauth.providers.<name>]` cannot be read (its secret file).
    #[error(transparent)]
    OAuthConfig(#[from] tributary_kit::ConfigError),
    /// A token or an enable for an instance never connected.
    #[error("`{instance_id}` is not connected to its {provider} account yet: run `tributary plugins connect {instance_id}`")]
    NotConnected {
        /// The instance.
        instance_id: String,
        /// Its provider.
        provider: String,
    },
    /// The instance's grant is gone.
    #[error("reconnect needed: {reason}; run `tributary plugins connect {instance_id}`")]
    ReconnectNeeded {
        /// The instance.
        instance_id: String,
        /// The provider's reason.
        reason: String,
    },
    /// The provider refused the OAuth client (its id, secret or redirect URI).
    #[error("`{provider}` refused the OAuth client: {reason}; check `oauth.providers.{provider}` (or the instance's own client)")]
    ClientRejected {
        /// The provider.
        provider: String,
        /// What it said.
        reason: String,
    },
    /// The token endpoint failed (unreachable, 5xx) after the retries; the connection is kept.
    #[error("the token endpoint of `{provider}` failed: {reason}; the refresh is tried again")]
    TokenEndpoint {
        /// The provider.
        provider: String,
        /// What failed.
        reason: String,
    },
    /// No connect attempt has this id.
    #[error("no connect attempt `{0}`")]
    UnknownAttempt(uuid::Uuid),
    /// PostgreSQL failed, or holds what this version cannot read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored secret does not open under the master key.
    #[error("the secret `{field}` of `{instance_id}` cannot be opened: {source}")]
    SecretUnreadable {
        /// Its instance.
        instance_id: String,
        /// Its field.
        field: String,
        /// Why it does not open.
        source: SealError,
    },
    /// A plugin was not added: its archive, its manifest, its component or spec, or its place
    /// ([`crate::adding`]). The APIs answer with [`Refusal::api_message`].
    #[error(transparent)]
    PluginRefused(#[from] Refusal),
    /// Unpacking and checking an added plugin did not finish.
    #[error("adding the plugin failed: {0}")]
    AddFailed(#[source] tokio::task::JoinError),
    /// Scanning for plugins did not finish.
    #[error("plugin scan failed: {0}")]
    ScanFailed(#[source] tokio::task::JoinError),
    /// A purge could not be published to the instance's item stream.
    #[error(
        "cannot publish the purge of `{instance_id}` to `{subject}`: {reason}; nothing was \
         uninstalled"
    )]
    PurgeNotPublished {
        /// The instance.
        instance_id: String,
        /// Its item stream's subject.
        subject: String,
        /// What JetStream (or encoding) said.
        reason: String,
    },
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        RegistryError::Store(StoreError::Database(e))
    }
}

impl RegistryError {
    /// The code of the error table the APIs answer it with.
    pub fn code(&self) -> ErrorCode {
        use RegistryError::*;
        match self {
            InvalidInstanceId(_) | InvalidPermission(_) | NulByte(_) | NotOneOf { .. } => {
                ErrorCode::BadRequest
            }
            AuditLimit(_) | TimelineLimit(_) | TimelineCursor(_) | NoPluginType(_) => {
                ErrorCode::BadRequest
            }
            UnknownPlugin(_)
            | UnknownInstance(_)
            | NothingToUninstall(_)
            | UnknownAttempt(_)
            | OtherPluginType { .. } => ErrorCode::NotFound,
            NoAuth { .. } | NotConnected { .. } | ReconnectNeeded { .. } => ErrorCode::Conflict,
            NoOAuthClient { .. } | ProviderSetup(_) | OAuthConfig(_) | ClientRejected { .. } => {
                ErrorCode::InvalidConfig
            }
            TokenEndpoint { .. } => ErrorCode::Internal,
            AlreadyExists(_)
            | Uninstalled { .. }
            | KeptForAnotherPlugin { .. }
            | PurgePending { .. }
            | UpToDate { .. } => ErrorCode::Conflict,
            MalformedConfig(_)
            | ConfigNotAnObject
            | InvalidConfig { .. }
            | ConfigIncomplete { .. }
            | SecretsNotReentered { .. }
            | ConfigUnfitForVersion { .. } => ErrorCode::InvalidConfig,
            PermissionsNotAccepted { .. } | UpgradeHeld { .. } => ErrorCode::PermissionsNotAccepted,
            PluginRefused(Refusal::AlreadyAdded { .. } | Refusal::NotLoaded { .. }) => {
                ErrorCode::Conflict
            }
            PluginRefused(Refusal::Io { .. }) | AddFailed(_) => ErrorCode::Internal,
            PluginRefused(_) => ErrorCode::BadRequest,
            // A NUL byte the checks in `crate::validate` missed is still the caller's fault.
            Store(e) if unstorable(e) => ErrorCode::BadRequest,
            Store(_) | SecretUnreadable { .. } | ScanFailed(_) | PurgeNotPublished { .. } => {
                ErrorCode::Internal
            }
        }
    }
}

/// Whether PostgreSQL refused a character it cannot store.
fn unstorable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|c| UNSTORABLE_CHARACTER.contains(&c.as_ref())),
        _ => false,
    }
}

fn names(permissions: &[Permission]) -> Vec<String> {
    permissions.iter().map(ToString::to_string).collect()
}

/// The refusal the APIs answer with: the one mapping from the registry's errors to the wire.
impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let error = e.code();
        let message = match &e {
            RegistryError::Store(cause) if error == ErrorCode::BadRequest => {
                tracing::warn!(error = %cause, "A request held a character the registry cannot store.");
                "a value contains a NUL byte (\\u0000), which is not allowed".to_owned()
            }
            RegistryError::Store(cause) => {
                tracing::error!(error = %cause, "Registry failure.");
                "the registry failed; the plugin manager's log has the cause".to_owned()
            }
            RegistryError::PluginRefused(refusal) => {
                if let Refusal::Io { .. } = refusal {
                    tracing::error!(error = %refusal, "Adding a plugin failed.");
                }
                refusal.api_message()
            }
            other => other.to_string(),
        };
        let (problems, permissions) = match e {
            RegistryError::MalformedConfig(problems)
            | RegistryError::InvalidConfig { problems, .. }
            | RegistryError::ConfigIncomplete { problems, .. }
            | RegistryError::SecretsNotReentered { problems, .. }
            | RegistryError::ConfigUnfitForVersion { problems, .. } => (problems, Vec::new()),
            RegistryError::ConfigNotAnObject => (
                vec![ConfigProblem {
                    path: String::new(),
                    message: "must be an object".into(),
                }],
                Vec::new(),
            ),
            RegistryError::PermissionsNotAccepted { asked, .. } => (Vec::new(), names(&asked)),
            RegistryError::UpgradeHeld { missing, .. } => (Vec::new(), names(&missing)),
            _ => (Vec::new(), Vec::new()),
        };
        ApiError {
            error,
            message,
            problems,
            permissions,
        }
    }
}

#[cfg(test)]
mod tests;
