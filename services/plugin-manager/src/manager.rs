//! The registry's operations: listing plugins, installing, configuring, enabling, disabling,
//! upgrading and uninstalling instances. Each change commits its row, its audit entry and its
//! `plugins.*` event in one transaction (the event leaves through the outbox).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{EventKind, InstanceState, PluginEvent, PluginLifecycle};
use tributary_proto::grants::Grants;
use tributary_proto::manifest::{Permission, PluginManifest};
use tributary_proto::Subjects;

use crate::api::{
    ApiError, AuditEntry, ErrorCode, FieldProblem, HeldUpgrade, InstallRequest, InstanceFilter,
    InstanceView, InvalidPluginView, PluginList, PluginView, RuntimeInstance, SecretStatus,
};
use crate::config_schema::{self, ConfigProblem, SecretChange};
use crate::discovery::{self, Catalog, DiscoveredPlugin};
use crate::keys::MasterKey;
use crate::store::{self, InstanceRow, StoreError};
use crate::validate;
use crate::vault::secret_context;

/// The service name in event sources.
const SOURCE: &str = "plugin-manager";

/// PostgreSQL's codes for a character it cannot store (a NUL byte in `text`, `\u0000` in
/// `jsonb`).
const UNSTORABLE_CHARACTER: [&str; 2] = ["22021", "22P05"];

/// A database failure, as the caller sees it: its cause goes to the log, never to the caller.
/// A NUL byte the checks in [`crate::validate`] missed is still the caller's fault (400).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Database(sqlx::Error::Database(db)) = &e {
            if db
                .code()
                .is_some_and(|c| UNSTORABLE_CHARACTER.contains(&c.as_ref()))
            {
                tracing::warn!(error = %e, "A request held a character the registry cannot store.");
                return ApiError::new(
                    ErrorCode::BadRequest,
                    "a value contains a NUL byte (\\u0000), which is not allowed",
                );
            }
        }
        tracing::error!(error = %e, "Registry failure.");
        ApiError::new(
            ErrorCode::Internal,
            "the registry failed; the plugin manager's log has the cause",
        )
    }
}

fn already_exists(instance_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("an instance `{instance_id}` already exists"),
    )
}

/// Refuses to look up an id that could not have been stored (it holds a NUL byte): there is
/// no such instance.
pub(crate) fn findable(instance_id: &str) -> Result<(), ApiError> {
    if instance_id.contains('\0') {
        return Err(not_found(&instance_id.escape_debug().to_string()));
    }
    Ok(())
}

fn not_found(instance_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no instance `{instance_id}`; `tributary plugins list` shows the installed ones"),
    )
}

/// The plugin registry.
#[derive(Clone)]
pub struct PluginManager {
    pool: PgPool,
    jetstream: async_nats::jetstream::Context,
    key: Arc<MasterKey>,
    subjects: Subjects,
    plugin_dirs: Arc<Vec<PathBuf>>,
    catalog: Arc<RwLock<Catalog>>,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager")
            .field("key", &self.key)
            .field("plugin_dirs", &self.plugin_dirs)
            .finish_non_exhaustive()
    }
}

impl PluginManager {
    /// A registry over `pool`, sealing secrets with `key` and publishing purge tombstones on
    /// `jetstream`; call [`PluginManager::rescan`] to load the plugins.
    pub fn new(
        pool: PgPool,
        jetstream: async_nats::jetstream::Context,
        key: MasterKey,
        subjects: Subjects,
        plugin_dirs: Vec<PathBuf>,
    ) -> Self {
        Self {
            pool,
            jetstream,
            key: Arc::new(key),
            subjects,
            plugin_dirs: Arc::new(plugin_dirs),
            catalog: Arc::new(RwLock::new(Catalog::default())),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Wakes `wake` after every committed change, so the outbox publisher sends its event at
    /// once instead of at its next poll.
    pub fn waking(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Commits a change and wakes the outbox publisher.
    pub(crate) async fn commit(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> Result<(), ApiError> {
        tx.commit().await.map_err(StoreError::from)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Reads the catalog under its lock, without copying it.
    fn with_catalog<T>(&self, read: impl FnOnce(&Catalog) -> T) -> T {
        match self.catalog.read() {
            Ok(catalog) => read(&catalog),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    fn newest(&self, plugin_id: &str) -> Option<DiscoveredPlugin> {
        self.with_catalog(|c| c.get(plugin_id).cloned())
    }

    /// Scans the built-in manifests and the plugin directories again, records what it found,
    /// and answers with the list.
    pub async fn rescan(&self) -> Result<PluginList, ApiError> {
        let dirs = self.plugin_dirs.clone();
        let catalog = tokio::task::spawn_blocking(move || {
            discovery::discover(discovery::BUILTIN_MANIFESTS, &dirs)
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("plugin scan failed: {e}")))?;
        store::upsert_plugins(&self.pool, &catalog.plugins).await?;
        match self.catalog.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
        Ok(self.plugins())
    }

    /// Every plugin discovered, valid and invalid.
    pub fn plugins(&self) -> PluginList {
        self.with_catalog(|catalog| PluginList {
            plugins: catalog.plugins.iter().map(plugin_view).collect(),
            invalid: catalog
                .invalid
                .iter()
                .map(|i| InvalidPluginView {
                    location: i.location.clone(),
                    id: i.id.clone(),
                    problems: i
                        .problems
                        .iter()
                        .map(|p| FieldProblem {
                            field: p.field.clone(),
                            message: p.message.clone(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// One plugin.
    pub fn plugin(&self, plugin_id: &str) -> Result<PluginView, ApiError> {
        self.newest(plugin_id)
            .map(|p| plugin_view(&p))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!(
                        "no valid plugin `{plugin_id}`; `tributary plugins list` shows those found"
                    ),
                )
            })
    }

    /// Installed instances.
    pub async fn instances(&self, filter: &InstanceFilter) -> Result<Vec<InstanceView>, ApiError> {
        validate::instance_filter(filter)?;
        let rows = store::instances(
            &self.pool,
            filter.plugin_type.as_deref(),
            filter.state.as_deref(),
        )
        .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(&row).await?);
        }
        Ok(views)
    }

    /// One instance.
    pub async fn instance(&self, instance_id: &str) -> Result<InstanceView, ApiError> {
        findable(instance_id)?;
        let row = store::instance(&self.pool, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        self.view(&row).await
    }

    /// The audit log, of one instance or all, newest `limit` entries (100 when absent; a
    /// limit outside [`validate::AUDIT_LIMITS`] is refused).
    pub async fn audit_log(
        &self,
        instance_id: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<AuditEntry>, ApiError> {
        if let Some(id) = instance_id {
            validate::text("instance_id", id)?;
        }
        let limit = validate::audit_limit(limit)?;
        Ok(store::audit_log(&self.pool, instance_id, limit).await?)
    }

    async fn view(&self, row: &InstanceRow) -> Result<InstanceView, ApiError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let stored: Vec<String> = store::secrets_of(&mut conn, &row.id)
            .await?
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        let secrets: BTreeMap<String, SecretStatus> =
            config_schema::secret_fields(&row.manifest.config_schema)
                .into_iter()
                .map(|field| {
                    let status = if stored.contains(&field) {
                        SecretStatus::Set
                    } else {
                        SecretStatus::NotSet
                    };
                    (field, status)
                })
                .collect();
        let available_version = self
            .newest(&row.plugin_id)
            .map(|p| p.manifest.version)
            .filter(|v| *v > row.manifest.version)
            .map(|v| v.to_string());
        Ok(InstanceView {
            id: row.id.clone(),
            plugin_id: row.plugin_id.clone(),
            plugin_type: row.manifest.plugin_type.as_str().to_owned(),
            version: row.manifest.version.to_string(),
            state: store::state_name(row.state).to_owned(),
            config: row.config.clone(),
            secrets,
            permissions: row.accepted.iter().map(ToString::to_string).collect(),
            available_version,
            held_upgrade: row
                .held
                .as_ref()
                .map(|(version, new_permissions)| HeldUpgrade {
                    version: version.clone(),
                    new_permissions: new_permissions.clone(),
                }),
            last_heartbeat: row.last_heartbeat,
            last_error: row.last_error.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// Installs an instance. Every permission the plugin asks for must be accepted.
    pub async fn install(
        &self,
        request: InstallRequest,
        actor: &str,
    ) -> Result<InstanceView, ApiError> {
        let plugin = self.newest(&request.plugin_id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no valid plugin `{}`; `tributary plugins list` shows those found",
                    request.plugin_id
                ),
            )
        })?;
        let manifest = plugin.manifest;
        let instance_id = match request.instance_id {
            Some(id) => check_instance_id(&id)?,
            None => new_instance_id(&manifest.id),
        };
        let accepted = parse_permissions(&request.accept_permissions)?;
        let missing = Grants::new(accepted).not_covered(&manifest.permissions);
        if !missing.is_empty() {
            return Err(permissions_needed(
                format!(
                    "installing `{}` needs its permissions accepted; not accepted: {}",
                    manifest.id,
                    join(&missing)
                ),
                &manifest.permissions.iter().collect::<Vec<_>>(),
            ));
        }
        if let Some(kept) = store::instance(&self.pool, &instance_id).await? {
            return self.reinstall(kept, manifest, request.config, actor).await;
        }
        // A purge of an earlier instance under this id must be applied first, or what it
        // left could hide this one's items.
        self.wait_for_purge(&instance_id).await?;
        let (config, changes) = match request.config {
            Some(config) => prepare_config(&manifest, config, Vec::new())?,
            None => (json!({}), Vec::new()),
        };
        let row = InstanceRow {
            id: instance_id.clone(),
            plugin_id: manifest.id.clone(),
            accepted: manifest.permissions.clone(),
            manifest,
            config,
            state: InstanceState::Installed,
            held: None,
            last_heartbeat: None,
            last_error: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        if !store::insert_instance(&mut tx, &row).await? {
            return Err(already_exists(&instance_id));
        }
        self.apply_secret_changes(&mut tx, &instance_id, &changes)
            .await?;
        let detail = json!({ "version": row.manifest.version.to_string() });
        self.record_install(tx, &row, "install", detail, actor)
            .await?;
        tracing::info!(instance = %instance_id, plugin = %row.plugin_id, actor, "Instance installed.");
        self.instance(&instance_id).await
    }

    /// Installs again an instance that was uninstalled with what it had kept: its
    /// configuration (replaced by `config` when given; secrets left out keep their value),
    /// credentials, sync state and data, on the plugin's newest version, with its permissions
    /// accepted again (checked by the caller). It comes back installed, not enabled.
    async fn reinstall(
        &self,
        kept: InstanceRow,
        manifest: PluginManifest,
        config: Option<Value>,
        actor: &str,
    ) -> Result<InstanceView, ApiError> {
        let instance_id = kept.id.clone();
        if kept.state != InstanceState::Uninstalled {
            return Err(already_exists(&instance_id));
        }
        if kept.plugin_id != manifest.id {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "`{instance_id}` was an instance of `{}`, uninstalled with its configuration \
                     and data kept; install `{}` under this id to bring it back, or purge it \
                     (`tributary plugins uninstall {instance_id} --purge`) to reuse the id",
                    kept.plugin_id, kept.plugin_id
                ),
            ));
        }
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut row = store::lock_instance(&mut tx, &instance_id)
            .await?
            .ok_or_else(|| not_found(&instance_id))?;
        if row.state != InstanceState::Uninstalled {
            return Err(already_exists(&instance_id));
        }
        let stored = self.secrets_of(&mut tx, &instance_id).await?;
        let (public, changes) = prepare_config(
            &manifest,
            config.unwrap_or_else(|| row.config.clone()),
            stored,
        )?;
        let from_version = row.manifest.version.to_string();
        row.config = public;
        row.accepted = manifest.permissions.clone();
        row.manifest = manifest;
        row.state = InstanceState::Installed;
        row.held = None;
        row.last_error = None;
        store::save_instance(&mut tx, &row).await?;
        self.apply_secret_changes(&mut tx, &instance_id, &changes)
            .await?;
        let detail =
            json!({ "from_version": from_version, "version": row.manifest.version.to_string() });
        self.record_install(tx, &row, "reinstall", detail, actor)
            .await?;
        tracing::info!(instance = %instance_id, plugin = %row.plugin_id, actor, "Instance reinstalled with what it had kept.");
        self.instance(&instance_id).await
    }

    /// Audits an install (`action`, with `detail`) and the permissions it accepted, announces
    /// `plugins.PluginInstalled`, and commits `tx`.
    async fn record_install(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        action: &str,
        detail: Value,
        actor: &str,
    ) -> Result<(), ApiError> {
        let permissions: Vec<String> = row.accepted.iter().map(ToString::to_string).collect();
        store::audit(
            &mut tx,
            actor,
            action,
            Some(&row.plugin_id),
            Some(&row.id),
            detail,
        )
        .await?;
        store::audit(
            &mut tx,
            actor,
            "accept_permissions",
            Some(&row.plugin_id),
            Some(&row.id),
            json!({ "permissions": permissions }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Installed, row, actor, None)
            .await?;
        self.commit(tx).await
    }

    /// Replaces an instance's configuration (secrets left out keep their value).
    pub async fn configure(
        &self,
        instance_id: &str,
        config: Value,
        actor: &str,
    ) -> Result<InstanceView, ApiError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        let stored = self.secrets_of(&mut tx, instance_id).await?;
        let (public, changes) = prepare_config(&row.manifest, config, stored)?;
        let changed_fields = changed_keys(&row.config, &public);
        row.config = public;
        store::save_instance(&mut tx, &row).await?;
        self.apply_secret_changes(&mut tx, instance_id, &changes)
            .await?;
        let secrets_changed: Vec<&String> = changes.iter().map(|(f, _)| f).collect();
        store::audit(
            &mut tx,
            actor,
            "configure",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "fields_changed": changed_fields, "secrets_changed": secrets_changed }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Configured, &row, actor, None)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }

    /// Enables an instance: its service starts it. Its configuration must be complete.
    pub async fn enable(&self, instance_id: &str, actor: &str) -> Result<InstanceView, ApiError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        if row.state == InstanceState::Enabled {
            return self.instance(instance_id).await;
        }
        let secrets = self.secrets_of(&mut tx, instance_id).await?;
        let problems = problems_with(&row.manifest.config_schema, &row.config, &secrets);
        if !problems.is_empty() {
            return Err(invalid_config(
                format!("`{instance_id}` cannot be enabled until its configuration is complete"),
                problems,
            ));
        }
        row.state = InstanceState::Enabled;
        row.last_error = None;
        self.transition(&mut tx, &row, "enable", PluginEvent::Enabled, actor)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }

    /// Disables an instance: its service stops it.
    pub async fn disable(&self, instance_id: &str, actor: &str) -> Result<InstanceView, ApiError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        if row.state != InstanceState::Disabled {
            row.state = InstanceState::Disabled;
            self.transition(&mut tx, &row, "disable", PluginEvent::Disabled, actor)
                .await?;
            self.commit(tx).await?;
        }
        self.instance(instance_id).await
    }

    async fn transition(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &InstanceRow,
        action: &str,
        event: PluginEvent,
        actor: &str,
    ) -> Result<(), ApiError> {
        store::save_instance(tx, row).await?;
        store::audit(
            tx,
            actor,
            action,
            Some(&row.plugin_id),
            Some(&row.id),
            json!({ "state": store::state_name(row.state) }),
        )
        .await?;
        self.announce(tx, event, row, actor, row.last_error.clone())
            .await
    }

    /// Moves an instance to the newest discovered version. When that version asks for
    /// permissions not yet accepted, and `accept` does not accept them, the upgrade is held:
    /// the instance stays on its version and the refusal lists what to accept.
    pub async fn upgrade(
        &self,
        instance_id: &str,
        accept: &[String],
        actor: &str,
    ) -> Result<InstanceView, ApiError> {
        let accept = parse_permissions(accept)?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        let newest = self
            .newest(&row.plugin_id)
            .map(|p| p.manifest)
            .filter(|m| m.version > row.manifest.version)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "`{instance_id}` already runs the newest version found of `{}` ({})",
                        row.plugin_id, row.manifest.version
                    ),
                )
            })?;
        let mut granted = row.accepted.clone();
        granted.extend(accept.iter().cloned());
        let missing: Vec<Permission> = Grants::new(granted)
            .not_covered(&newest.permissions)
            .into_iter()
            .cloned()
            .collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
            let newly_held =
                row.held.as_ref().map(|(v, _)| v.as_str()) != Some(&newest.version.to_string());
            row.held = Some((newest.version.to_string(), names.clone()));
            store::save_instance(&mut tx, &row).await?;
            if newly_held {
                store::audit(
                    &mut tx,
                    actor,
                    "upgrade_held",
                    Some(&row.plugin_id),
                    Some(instance_id),
                    json!({ "from": row.manifest.version.to_string(), "to": newest.version.to_string(), "new_permissions": names }),
                )
                .await?;
            }
            self.commit(tx).await?;
            return Err(permissions_needed(
                format!(
                    "version {} of `{}` asks for more permissions; `{instance_id}` stays on {} until they are accepted: {}",
                    newest.version, row.plugin_id, row.manifest.version, names.join(", ")
                ),
                &missing.iter().collect::<Vec<_>>(),
            ));
        }
        let secrets = self.secrets_of(&mut tx, instance_id).await?;
        let problems = problems_with(&newest.config_schema, &row.config, &secrets);
        if !problems.is_empty() && row.state == InstanceState::Enabled {
            return Err(invalid_config(
                format!(
                    "`{instance_id}`'s configuration does not satisfy version {}; configure it for that version first, or disable it",
                    newest.version
                ),
                problems,
            ));
        }
        let from = row.manifest.version.to_string();
        let newly_accepted: Vec<String> = Grants::new(row.accepted.clone())
            .not_covered(&newest.permissions)
            .into_iter()
            .map(ToString::to_string)
            .collect();
        row.accepted = newest.permissions.clone();
        row.manifest = newest;
        row.held = None;
        store::save_instance(&mut tx, &row).await?;
        if !newly_accepted.is_empty() {
            store::audit(
                &mut tx,
                actor,
                "accept_permissions",
                Some(&row.plugin_id),
                Some(instance_id),
                json!({ "permissions": newly_accepted }),
            )
            .await?;
        }
        store::audit(
            &mut tx,
            actor,
            "upgrade",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "from": from, "to": row.manifest.version.to_string() }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Upgraded, &row, actor, None)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }

    /// Records a service's report on an instance it runs: alive, or failed with an error
    /// (which moves it to `failed` and announces `PluginFailed` once).
    pub async fn heartbeat(
        &self,
        instance_id: &str,
        error: Option<String>,
        actor: &str,
    ) -> Result<InstanceView, ApiError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        row.last_heartbeat = Some(chrono::Utc::now());
        // A service's report is kept even when its error holds a NUL (from a provider's
        // answer, say), which PostgreSQL cannot store.
        let error = error.map(|e| e.replace('\0', "\u{FFFD}"));
        match error {
            Some(error) if row.state != InstanceState::Failed => {
                row.state = InstanceState::Failed;
                row.last_error = Some(error);
                self.transition(&mut tx, &row, "fail", PluginEvent::Failed, actor)
                    .await?;
            }
            Some(error) => {
                row.last_error = Some(error);
                store::save_instance(&mut tx, &row).await?;
            }
            // A failed instance that works again (its next sync succeeded) recovers.
            None if row.state == InstanceState::Failed => {
                row.state = InstanceState::Enabled;
                row.last_error = None;
                self.transition(&mut tx, &row, "recover", PluginEvent::Enabled, actor)
                    .await?;
            }
            None => store::save_instance(&mut tx, &row).await?,
        }
        self.commit(tx).await?;
        self.instance(instance_id).await
    }

    /// What the service running an instance needs, secrets included.
    pub async fn runtime(&self, instance_id: &str) -> Result<RuntimeInstance, ApiError> {
        findable(instance_id)?;
        let row = store::instance(&self.pool, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let secrets = self.secrets_of(&mut conn, instance_id).await?;
        let mut config = row.config.clone();
        config_schema::put_secrets(&mut config, &secrets);
        Ok(RuntimeInstance {
            instance_id: row.id,
            plugin_id: row.plugin_id,
            plugin_type: row.manifest.plugin_type,
            version: row.manifest.version.to_string(),
            entrypoint: row.manifest.entrypoint,
            permissions: row.accepted,
            config,
            state: row.state,
        })
    }

    /// The pool (for uninstall, which lives in its own module).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The subjects of this deployment.
    pub(crate) fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// JetStream, for purge tombstones.
    pub(crate) fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.jetstream
    }

    /// An instance that is not uninstalled, locked.
    pub(crate) async fn lock_live(
        &self,
        tx: &mut sqlx::PgConnection,
        instance_id: &str,
    ) -> Result<InstanceRow, ApiError> {
        findable(instance_id)?;
        let row = store::lock_instance(tx, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        if row.state == InstanceState::Uninstalled {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "`{instance_id}` is uninstalled (its configuration, credentials and data are \
                     kept): bring it back with `tributary plugins install {} --id {instance_id}`, \
                     or delete it with `tributary plugins uninstall {instance_id} --purge`",
                    row.plugin_id
                ),
            ));
        }
        Ok(row)
    }

    /// Writes the `plugins.*` event of a change to the outbox, in the change's transaction.
    pub(crate) async fn announce(
        &self,
        tx: &mut sqlx::PgConnection,
        event: PluginEvent,
        row: &InstanceRow,
        actor: &str,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        let kind = EventKind::Plugin(event);
        let envelope = Envelope::new(
            kind,
            EventSource::new(SOURCE, Some(row.id.clone())),
            None,
            PluginLifecycle {
                plugin_id: row.plugin_id.clone(),
                instance_id: row.id.clone(),
                plugin_type: row.manifest.plugin_type.as_str().to_owned(),
                version: row.manifest.version.to_string(),
                state: row.state,
                actor: actor.to_owned(),
                reason,
            },
        );
        tributary_kit::outbox::enqueue(tx, &self.subjects, kind, &envelope, None)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// An instance's stored secrets, opened: (field, value).
    async fn secrets_of(
        &self,
        conn: &mut sqlx::PgConnection,
        instance_id: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        store::secrets_of(conn, instance_id)
            .await?
            .into_iter()
            .map(|(field, sealed)| {
                self.key
                    .open(&sealed, &secret_context(instance_id, &field))
                    .map(|plain| (field.clone(), plain.expose_secret().to_owned()))
                    .map_err(|e| {
                        ApiError::new(
                            ErrorCode::Internal,
                            format!(
                                "the secret `{field}` of `{instance_id}` cannot be opened: {e}"
                            ),
                        )
                    })
            })
            .collect()
    }

    async fn apply_secret_changes(
        &self,
        tx: &mut sqlx::PgConnection,
        instance_id: &str,
        changes: &[(String, SecretChange)],
    ) -> Result<(), ApiError> {
        for (field, change) in changes {
            match change {
                SecretChange::Set(value) => {
                    let sealed = self.key.seal(value, &secret_context(instance_id, field));
                    store::set_secret(tx, instance_id, field, &sealed).await?;
                }
                SecretChange::Clear => store::clear_secret(tx, instance_id, field).await?,
            }
        }
        Ok(())
    }
}

fn plugin_view(p: &DiscoveredPlugin) -> PluginView {
    PluginView {
        id: p.manifest.id.clone(),
        name: p.manifest.name.clone(),
        version: p.manifest.version.to_string(),
        plugin_type: p.manifest.plugin_type.as_str().to_owned(),
        description: p.manifest.description.clone(),
        permissions: p
            .manifest
            .permissions
            .iter()
            .map(ToString::to_string)
            .collect(),
        location: p.location.clone(),
        config_schema: p.manifest.config_schema.clone(),
    }
}

/// Splits a requested config into its plain part and its secret changes, and validates
/// the whole (with the `stored` secrets it would keep) against the manifest's schema.
fn prepare_config(
    manifest: &PluginManifest,
    config: Value,
    stored: Vec<(String, String)>,
) -> Result<(Value, Vec<(String, SecretChange)>), ApiError> {
    let nul = validate::nul_problems(&config);
    if !nul.is_empty() {
        return Err(invalid_config("the configuration is not valid", nul));
    }
    if !config.is_object() {
        return Err(invalid_config(
            "the configuration must be a JSON object",
            vec![ConfigProblem {
                path: String::new(),
                message: "must be an object".into(),
            }],
        ));
    }
    let fields = config_schema::secret_fields(&manifest.config_schema);
    let (public, changes) = config_schema::take_secrets(config, &fields)
        .map_err(|p| invalid_config("the configuration is not valid", vec![p]))?;
    let mut secrets: BTreeMap<String, String> = stored.into_iter().collect();
    for (field, change) in &changes {
        match change {
            SecretChange::Set(value) => {
                secrets.insert(field.clone(), value.clone());
            }
            SecretChange::Clear => {
                secrets.remove(field);
            }
        }
    }
    let secrets: Vec<(String, String)> = secrets.into_iter().collect();
    let problems = problems_with(&manifest.config_schema, &public, &secrets);
    if !problems.is_empty() {
        return Err(invalid_config(
            format!(
                "the configuration does not satisfy the config schema of `{}`",
                manifest.id
            ),
            problems,
        ));
    }
    Ok((public, changes))
}

/// What is wrong with a config (without its secrets) once its secrets are put back in.
fn problems_with(
    schema: &Value,
    public: &Value,
    secrets: &[(String, String)],
) -> Vec<ConfigProblem> {
    let mut whole = public.clone();
    config_schema::put_secrets(&mut whole, secrets);
    let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();
    config_schema::validate(schema, &whole, &values)
}

fn invalid_config(message: impl Into<String>, problems: Vec<ConfigProblem>) -> ApiError {
    ApiError {
        problems,
        ..ApiError::new(ErrorCode::InvalidConfig, message)
    }
}

fn permissions_needed(message: String, permissions: &[&Permission]) -> ApiError {
    ApiError {
        permissions: permissions.iter().map(ToString::to_string).collect(),
        ..ApiError::new(ErrorCode::PermissionsNotAccepted, message)
    }
}

fn join(permissions: &[&Permission]) -> String {
    permissions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_permissions(given: &[String]) -> Result<Vec<Permission>, ApiError> {
    given
        .iter()
        .map(|p| {
            p.parse::<Permission>()
                .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))
        })
        .collect()
}

/// An instance id is one NATS token: 1 to 64 letters, digits, `-` or `_`.
fn check_instance_id(id: &str) -> Result<String, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id.to_owned())
    } else {
        Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("instance id `{id}` must be 1 to 64 letters, digits, `-` or `_`"),
        ))
    }
}

/// `<last label of the plugin id>-<8 hex digits>`.
fn new_instance_id(plugin_id: &str) -> String {
    let label = plugin_id.rsplit('.').next().unwrap_or("instance");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{label}-{}", &suffix[..8])
}

/// The top-level keys whose values differ between two configs.
fn changed_keys(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
