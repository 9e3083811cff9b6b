//! The registry's operations: listing plugins, installing, configuring, enabling, disabling,
//! upgrading and uninstalling instances. Each change commits its row, its audit entry and its
//! `plugins.*` event in one transaction (the event leaves through the outbox).
//!
//! This module holds [`PluginManager`] and what its operations share (committing, announcing,
//! locking a live instance, opening and sealing secrets); each use case is its own module:
//! [`catalog`] (plugins, plugin, rescan), [`add`] (a plugin from an archive), [`instances`] (instances, instance, audit log),
//! [`install`], [`configure`], [`lifecycle`] (enable, disable, upgrade) and [`runtime`]
//! (heartbeat, runtime), and `crate::uninstall`.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use secrecy::ExposeSecret;
use sqlx::PgPool;
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{EventKind, InstanceState, PluginEvent, PluginLifecycle};
use tributary_proto::manifest::{InvalidPermission, Permission, PluginType};
use tributary_proto::Subjects;

use crate::actor::Actor;
use crate::adding::ManagedDir;
use crate::config_schema::SecretChange;
use crate::discovery::{Catalog, DiscoveredPlugin};
use crate::error::RegistryError;
use crate::keys::MasterKey;
use crate::oauth::OAuthSettings;
use crate::store::{self, InstanceRow, StoreError};
use crate::vault::secret_context;

mod add;
mod catalog;
mod configure;
pub(crate) use configure::MovedDestination;
mod install;
mod instances;
mod lifecycle;
mod runtime;

/// The service name in event sources.
const SOURCE: &str = "plugin-manager";

/// Refuses to look up an id that could not have been stored (it holds a NUL byte): there is
/// no such instance.
pub(crate) fn findable(instance_id: &str) -> Result<(), RegistryError> {
    if instance_id.contains('\0') {
        return Err(RegistryError::UnknownInstance(
            instance_id.escape_debug().to_string(),
        ));
    }
    Ok(())
}

fn not_found(instance_id: &str) -> RegistryError {
    RegistryError::UnknownInstance(instance_id.to_owned())
}

/// Refuses `plugins.<verb>.<asked>` about an instance whose plugin is of another type than
/// `asked`: each service reads only the secrets and tokens of the instances it runs.
pub(crate) fn of_plugin_type(
    row: &store::InstanceRow,
    asked: PluginType,
    verb: &'static str,
) -> Result<(), RegistryError> {
    if row.manifest.plugin_type == asked {
        return Ok(());
    }
    Err(RegistryError::OtherPluginType {
        verb,
        asked: asked.as_str(),
        instance_id: row.id.clone(),
    })
}

/// The plugin registry.
#[derive(Clone)]
pub struct PluginManager {
    pool: PgPool,
    jetstream: async_nats::jetstream::Context,
    key: Arc<MasterKey>,
    subjects: Subjects,
    plugin_dirs: Arc<Vec<PathBuf>>,
    /// Where [`PluginManager::add_plugin_archive`] puts plugins (one of `plugin_dirs`).
    managed: Arc<ManagedDir>,
    /// Held while a plugin is added, so two additions never interleave their check, move
    /// and rescan.
    adding: Arc<tokio::sync::Mutex<()>>,
    catalog: Arc<RwLock<Catalog>>,
    wake: Arc<tokio::sync::Notify>,
    oauth: Arc<OAuthSettings>,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager")
            .field("key", &self.key)
            .field("plugin_dirs", &self.plugin_dirs)
            .field("managed", &self.managed)
            .finish_non_exhaustive()
    }
}

impl PluginManager {
    /// A registry over `pool`, sealing secrets with `key` and publishing purge tombstones on
    /// `jetstream`, scanning `plugin_dirs` (which hold `managed`, where added plugins go);
    /// call [`PluginManager::rescan`] to load the plugins. OAuth uses the defaults of
    /// `[oauth]` with no provider configured until [`PluginManager::with_oauth`].
    pub fn new(
        pool: PgPool,
        jetstream: async_nats::jetstream::Context,
        key: MasterKey,
        subjects: Subjects,
        plugin_dirs: Vec<PathBuf>,
        managed: ManagedDir,
    ) -> Self {
        let oauth = OAuthSettings::new(
            tributary_kit::config::OAuthConfig::default(),
            format!(
                "http://127.0.0.1:8081{}",
                tributary_kit::config::OAUTH_CALLBACK_PATH
            ),
        );
        Self {
            oauth: Arc::new(oauth),
            pool,
            jetstream,
            key: Arc::new(key),
            subjects,
            plugin_dirs: Arc::new(plugin_dirs),
            managed: Arc::new(managed),
            adding: Arc::new(tokio::sync::Mutex::new(())),
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

    /// Connects instances and brokers their tokens with `oauth`.
    pub fn with_oauth(mut self, oauth: OAuthSettings) -> Self {
        self.oauth = Arc::new(oauth);
        self
    }

    /// The OAuth settings.
    pub(crate) fn oauth(&self) -> &OAuthSettings {
        &self.oauth
    }

    /// The master key.
    pub(crate) fn key(&self) -> &MasterKey {
        &self.key
    }

    /// Commits a change and wakes the outbox publisher.
    pub(crate) async fn commit(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> Result<(), RegistryError> {
        tx.commit().await?;
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

    /// The plugin's newest version found (the highest semantic version).
    fn newest(&self, plugin_id: &str) -> Option<DiscoveredPlugin> {
        self.with_catalog(|c| c.newest(plugin_id).cloned())
    }

    /// The pool (for uninstall, which lives in its own module).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The subjects of this deployment.
    pub(crate) fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The dead letters of every stream, to list, replay and discard.
    pub fn dead_letters(&self) -> crate::dead_letters::DeadLetterBox {
        crate::dead_letters::DeadLetterBox::new(self.jetstream.clone(), self.subjects.clone())
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
    ) -> Result<InstanceRow, RegistryError> {
        findable(instance_id)?;
        let row = store::lock_instance(tx, instance_id)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        if row.state == InstanceState::Uninstalled {
            return Err(RegistryError::Uninstalled {
                instance_id: instance_id.to_owned(),
                plugin_id: row.plugin_id,
            });
        }
        Ok(row)
    }

    /// Writes the `plugins.*` event of a change to the outbox, in the change's transaction.
    pub(crate) async fn announce(
        &self,
        tx: &mut sqlx::PgConnection,
        event: PluginEvent,
        row: &InstanceRow,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<(), RegistryError> {
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
                actor: actor.name().to_owned(),
                claimed_actor: actor.claimed().map(str::to_owned),
                reason,
            },
        );
        tributary_kit::outbox::enqueue(tx, &self.subjects, kind, &envelope, None)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// One stored secret of an instance, opened (an OAuth token, [`crate::oauth`]).
    pub(crate) async fn opened_secret(
        &self,
        conn: &mut sqlx::PgConnection,
        instance_id: &str,
        field: &str,
    ) -> Result<Option<secrecy::SecretString>, RegistryError> {
        let Some(sealed) = store::secret_of(conn, instance_id, field).await? else {
            return Ok(None);
        };
        self.key
            .open(&sealed, &secret_context(instance_id, field))
            .map(Some)
            .map_err(|source| RegistryError::SecretUnreadable {
                instance_id: instance_id.to_owned(),
                field: field.to_owned(),
                source,
            })
    }

    /// An instance's stored config secrets, opened: (field pointer, value). OAuth tokens,
    /// stored beside them, are not among them.
    pub(crate) async fn secrets_of(
        &self,
        conn: &mut sqlx::PgConnection,
        instance_id: &str,
    ) -> Result<Vec<(String, String)>, RegistryError> {
        store::secrets_of(conn, instance_id)
            .await?
            .into_iter()
            .filter(|(field, _)| field.starts_with('/'))
            .map(|(field, sealed)| {
                self.key
                    .open(&sealed, &secret_context(instance_id, &field))
                    .map(|plain| (field.clone(), plain.expose_secret().to_owned()))
                    .map_err(|source| RegistryError::SecretUnreadable {
                        instance_id: instance_id.to_owned(),
                        field: field.clone(),
                        source,
                    })
            })
            .collect()
    }

    async fn apply_secret_changes(
        &self,
        tx: &mut sqlx::PgConnection,
        instance_id: &str,
        changes: &[(String, SecretChange)],
    ) -> Result<(), RegistryError> {
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

fn parse_permissions(given: &[String]) -> Result<Vec<Permission>, InvalidPermission> {
    given.iter().map(|p| p.parse::<Permission>()).collect()
}
