//! The [`PluginContext`]: everything a plugin instance may reach, each call checked against
//! its grants.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Span;
use tributary_proto::grants::Grants;
use tributary_proto::EntityType;
use uuid::Uuid;

use crate::http::{AccessTokens, PluginHttp, PluginHttpBuilder};
use crate::PluginError;

/// An event a plugin emitted, as handed to the [`EventSink`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginEvent {
    /// The plugin that emitted it.
    pub plugin_id: String,
    /// The instance that emitted it.
    pub instance_id: String,
    /// Its subject in the instance's namespace, allowed by an `event:publish` grant; the host
    /// publishes it as `plugin.<type>.<instance>.<subject>`.
    pub subject: String,
    /// Its payload.
    pub payload: Value,
}

/// Where emitted events go: NATS in the service, a recorder in tests. Called only after the
/// context has checked the subject against the grants.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes `event`.
    async fn publish(&self, event: PluginEvent) -> Result<(), PluginError>;
}

/// How much a plugin's log line matters, for its instance's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalLevel {
    /// Worth knowing.
    Info,
    /// Worth a look.
    Warn,
    /// Something failed.
    Error,
}

/// Where an instance's log lines at info level and above are kept for the person looking at
/// it, besides the service's log: its timeline in the service
/// (`tributary_kit::timeline`), nothing in tests. Called synchronously from the log call, so
/// an implementation must not block.
pub trait LogJournal: Send + Sync {
    /// Keeps `message`, logged by instance `instance_id` at `level`.
    fn line(&self, instance_id: &str, level: JournalLevel, message: &str);
}

/// Read access to the unified model, implemented by the service. Called only after the
/// context has checked `data:read:<entity>`.
#[async_trait]
pub trait DataReader: Send + Sync {
    /// The entity of type `entity` with id `id`, as JSON, if it exists.
    async fn get(&self, entity: EntityType, id: Uuid) -> Result<Option<Value>, PluginError>;
}

/// A small key-value store of each instance's own, implemented by the service. Called with
/// the context's instance id only: an instance never reaches another's keys.
#[async_trait]
pub trait KeyValueStore: Send + Sync {
    /// The value under `key`, if any.
    async fn get(&self, instance_id: &str, key: &str) -> Result<Option<Vec<u8>>, PluginError>;
    /// Stores `value` under `key`.
    async fn set(&self, instance_id: &str, key: &str, value: &[u8]) -> Result<(), PluginError>;
    /// Forgets `key`.
    async fn delete(&self, instance_id: &str, key: &str) -> Result<(), PluginError>;
}

/// What a context without a sink, reader or store uses: every call fails, naming what is
/// missing.
struct Unavailable;

#[async_trait]
impl KeyValueStore for Unavailable {
    async fn get(&self, _instance_id: &str, _key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        Err(no_store())
    }

    async fn set(&self, _instance_id: &str, _key: &str, _value: &[u8]) -> Result<(), PluginError> {
        Err(no_store())
    }

    async fn delete(&self, _instance_id: &str, _key: &str) -> Result<(), PluginError> {
        Err(no_store())
    }
}

fn no_store() -> PluginError {
    PluginError::Other("this plugin context has no key-value store".to_owned())
}

#[async_trait]
impl EventSink for Unavailable {
    async fn publish(&self, _event: PluginEvent) -> Result<(), PluginError> {
        Err(PluginError::Other(
            "this plugin context has no event sink".to_owned(),
        ))
    }
}

#[async_trait]
impl DataReader for Unavailable {
    async fn get(&self, _entity: EntityType, _id: Uuid) -> Result<Option<Value>, PluginError> {
        Err(PluginError::Other(
            "this plugin context has no data access".to_owned(),
        ))
    }
}

/// What one plugin instance is handed: its identity, config and grants, a logger, an HTTP
/// client, event emission and data access. Cheap to clone; clones share everything.
///
/// Its `Debug` output leaves the config out, as the config holds the instance's secrets.
#[derive(Clone)]
pub struct PluginContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    plugin_id: String,
    instance_id: String,
    /// The instance's config, secrets included; never logged.
    config: Value,
    grants: Grants,
    /// Tagged with `plugin` and `instance`; every log line of the instance goes inside it.
    span: Span,
    http: PluginHttp,
    events: Arc<dyn EventSink>,
    data: Arc<dyn DataReader>,
    kv: Arc<dyn KeyValueStore>,
    /// Host directories no plugin may read ([`PluginContext::protected_paths`]).
    protected_paths: Vec<PathBuf>,
    /// Where its log lines are kept besides the service's log.
    journal: Option<Arc<dyn LogJournal>>,
}

impl std::fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginContext")
            .field("plugin_id", &self.inner.plugin_id)
            .field("instance_id", &self.inner.instance_id)
            .field("grants", &self.inner.grants)
            .finish_non_exhaustive()
    }
}

/// Assembles a [`PluginContext`]; start with [`PluginContext::builder`].
pub struct PluginContextBuilder {
    plugin_id: String,
    instance_id: String,
    grants: Grants,
    config: Value,
    http: PluginHttpBuilder,
    events: Arc<dyn EventSink>,
    data: Arc<dyn DataReader>,
    kv: Arc<dyn KeyValueStore>,
    protected_paths: Vec<PathBuf>,
    journal: Option<Arc<dyn LogJournal>>,
}

impl PluginContextBuilder {
    /// The instance's config (`null` by default).
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// Adjusts the HTTP client's settings; the client is always restricted to the context's
    /// grants.
    pub fn http(mut self, configure: impl FnOnce(PluginHttpBuilder) -> PluginHttpBuilder) -> Self {
        self.http = configure(self.http);
        self
    }

    /// Where the HTTP client gets the access token it attaches to the instance's requests,
    /// for a plugin whose manifest has an `auth` section (see
    /// [`PluginHttpBuilder::access_tokens`]); the plugin never reads the token.
    pub fn access_tokens(mut self, tokens: Arc<dyn AccessTokens>) -> Self {
        self.http = self.http.access_tokens(tokens);
        self
    }

    /// Where emitted events go; without one, emitting fails.
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = sink;
        self
    }

    /// The data the instance may read; without one, reading fails.
    pub fn data_reader(mut self, reader: Arc<dyn DataReader>) -> Self {
        self.data = reader;
        self
    }

    /// The instance's own key-value store; without one, its calls fail.
    pub fn kv_store(mut self, store: Arc<dyn KeyValueStore>) -> Self {
        self.kv = store;
        self
    }

    /// The host's own directories, which no plugin may read whatever its config says: the
    /// service's `data_dir`, holding the master key and the NATS passwords under `secrets/`
    /// (see [`PluginContext::protected_paths`]). None by default.
    pub fn protected_paths(mut self, paths: Vec<PathBuf>) -> Self {
        self.protected_paths = paths;
        self
    }

    /// Where the instance's log lines at info level and above are kept besides the service's
    /// log (its timeline); none by default.
    pub fn journal(mut self, journal: Arc<dyn LogJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Builds the context; fails only if the HTTP client cannot be built.
    pub fn build(self) -> Result<PluginContext, PluginError> {
        let span = tracing::info_span!(
            "plugin",
            plugin = %self.plugin_id,
            instance = %self.instance_id
        );
        Ok(PluginContext {
            inner: Arc::new(ContextInner {
                http: self.http.build()?,
                plugin_id: self.plugin_id,
                instance_id: self.instance_id,
                config: self.config,
                grants: self.grants,
                span,
                events: self.events,
                data: self.data,
                kv: self.kv,
                protected_paths: self.protected_paths,
                journal: self.journal,
            }),
        })
    }
}

impl PluginContext {
    /// A context for instance `instance_id` of plugin `plugin_id`, allowed `grants`.
    pub fn builder(
        plugin_id: impl Into<String>,
        instance_id: impl Into<String>,
        grants: Grants,
    ) -> PluginContextBuilder {
        PluginContextBuilder {
            plugin_id: plugin_id.into(),
            instance_id: instance_id.into(),
            http: PluginHttp::builder(grants.clone()),
            grants,
            config: Value::Null,
            events: Arc::new(Unavailable),
            data: Arc::new(Unavailable),
            kv: Arc::new(Unavailable),
            protected_paths: Vec::new(),
            journal: None,
        }
    }

    /// The host's own directories, which the instance must never read, whatever its config
    /// says: the service's data directory, with the master key and the NATS passwords. The
    /// SDK gives a plugin no file access; a built-in plugin that reads files with the
    /// service's own (the folder connector) refuses a config pointing into one of these and
    /// never enters one.
    pub fn protected_paths(&self) -> &[PathBuf] {
        &self.inner.protected_paths
    }

    /// The plugin's id, such as `com.microsoft.graph`.
    pub fn plugin_id(&self) -> &str {
        &self.inner.plugin_id
    }

    /// The instance's id.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The instance's config as JSON; see [`crate::require_config`] for a typed one.
    pub fn config(&self) -> &Value {
        &self.inner.config
    }

    /// What the instance is allowed.
    pub fn grants(&self) -> &Grants {
        &self.inner.grants
    }

    /// The span tagged with `plugin` and `instance`; enter it (or `instrument` a future with
    /// it) so that the plugin's own `tracing` calls carry both.
    pub fn span(&self) -> &Span {
        &self.inner.span
    }

    /// Logs `message` at info level inside [`PluginContext::span`], so tagged with the plugin
    /// and instance.
    pub fn log_info(&self, message: &str) {
        self.log(JournalLevel::Info, message);
    }

    /// Logs `message` at warn level, tagged with the plugin and instance.
    pub fn log_warn(&self, message: &str) {
        self.log(JournalLevel::Warn, message);
    }

    /// Logs `message` at error level, tagged with the plugin and instance.
    pub fn log_error(&self, message: &str) {
        self.log(JournalLevel::Error, message);
    }

    /// Logs `message` at `level` inside [`PluginContext::span`] and keeps it in the
    /// instance's journal (its timeline), when the host gave one.
    pub fn log(&self, level: JournalLevel, message: &str) {
        self.inner.span.in_scope(|| match level {
            JournalLevel::Info => tracing::info!("{message}"),
            JournalLevel::Warn => tracing::warn!("{message}"),
            JournalLevel::Error => tracing::error!("{message}"),
        });
        self.keep_in_journal(level, message);
    }

    /// Keeps `message` in the instance's journal (its timeline) without logging it: for a
    /// host that logged the line itself (the wasm host logs a guest's under target `plugin`).
    pub fn keep_in_journal(&self, level: JournalLevel, message: &str) {
        if let Some(journal) = &self.inner.journal {
            journal.line(&self.inner.instance_id, level, message);
        }
    }

    /// The instance's HTTP client, restricted to its `network:outbound` grants.
    pub fn http(&self) -> &PluginHttp {
        &self.inner.http
    }

    /// Publishes `payload` on `subject`, if an `event:publish` grant covers it. `subject` is
    /// the instance's own: the host publishes it in the instance's namespace
    /// (`plugin.<type>.<instance>.<subject>`) inside an event envelope whose source it sets,
    /// so no grant reaches another service's subjects.
    pub async fn emit_event(
        &self,
        subject: &str,
        payload: impl Serialize,
    ) -> Result<(), PluginError> {
        self.inner.grants.check_publish(subject)?;
        let payload = serde_json::to_value(payload)
            .map_err(|e| PluginError::Other(format!("cannot serialize the event payload: {e}")))?;
        self.inner
            .events
            .publish(PluginEvent {
                plugin_id: self.inner.plugin_id.clone(),
                instance_id: self.inner.instance_id.clone(),
                subject: subject.to_owned(),
                payload,
            })
            .await
    }

    /// Read access to the unified model, each read checked against `data:read` grants.
    pub fn data(&self) -> PluginData<'_> {
        PluginData { ctx: self }
    }

    /// The instance's own key-value store (a cursor of its own, a token cache).
    pub fn kv(&self) -> PluginKv<'_> {
        PluginKv { ctx: self }
    }
}

/// The instance's own keys; from [`PluginContext::kv`].
#[derive(Debug, Clone, Copy)]
pub struct PluginKv<'a> {
    ctx: &'a PluginContext,
}

impl PluginKv<'_> {
    /// The value under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        self.ctx
            .inner
            .kv
            .get(&self.ctx.inner.instance_id, key)
            .await
    }

    /// Stores `value` under `key`.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), PluginError> {
        self.ctx
            .inner
            .kv
            .set(&self.ctx.inner.instance_id, key, value)
            .await
    }

    /// Forgets `key`.
    pub async fn delete(&self, key: &str) -> Result<(), PluginError> {
        self.ctx
            .inner
            .kv
            .delete(&self.ctx.inner.instance_id, key)
            .await
    }
}

/// Reads of the unified model on behalf of a plugin; from [`PluginContext::data`].
#[derive(Debug, Clone, Copy)]
pub struct PluginData<'a> {
    ctx: &'a PluginContext,
}

impl PluginData<'_> {
    /// The entity of type `entity` with id `id`, if `data:read:<entity>` is granted.
    pub async fn get(&self, entity: EntityType, id: Uuid) -> Result<Option<Value>, PluginError> {
        self.ctx.inner.grants.check_read(entity)?;
        self.ctx.inner.data.get(entity, id).await
    }
}
