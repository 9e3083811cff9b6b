//! The one [`PluginContext`] every hosted instance is handed, connector or channel: its
//! config, a logger tagged with it, an HTTP client held to its grants, an [`EventSink`]
//! publishing on NATS and a [`DataReader`] over the unified model in PostgreSQL. The context
//! checks the grants (`network:outbound`, `event:publish`, `data:read`) before any of them is
//! reached. An instance whose plugin's manifest has an `auth` section has its HTTP client
//! attach the access token the plugin manager brokers ([`BrokeredTokens`]). Its log lines at
//! info level and above are lines of its timeline too ([`TimelineJournal`]).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgPool;
use tributary_kit::client::MeshClient;
use tributary_kit::config::PluginsConfig;
use tributary_kit::timeline::TimelineRecorder;
use tributary_plugin_sdk::{
    DataReader, EntityType, EventSink, Grants, JournalLevel, KeyValueStore, LogJournal,
    PluginContext, PluginError, PluginEvent,
};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use tributary_proto::{PluginType, ServiceName, Subjects};
use uuid::Uuid;

use crate::tokens::BrokeredTokens;

/// Who the host asks the plugin manager as, where a request records one.
const HOST_ACTOR: &str = "plugin-host";

/// Makes the context of each instance a service runs; one per service, cheap to clone.
#[derive(Clone)]
pub struct InstanceContexts {
    /// Where every instance's emitted events go.
    events: Arc<dyn EventSink>,
    /// What every instance reads the unified model through.
    data: Arc<dyn DataReader>,
    /// Where every instance keeps its own keys.
    kv: Arc<dyn KeyValueStore>,
    /// Asks the plugin manager for the access tokens of instances whose plugin has an `auth`
    /// section.
    plugins: MeshClient,
    /// The type of plugin the service runs, whose access tokens it may ask for.
    plugin_type: PluginType,
    /// Attempts of each HTTP call an instance makes; `None` keeps the SDK's default.
    http_attempts: Option<u32>,
    /// What every instance's requests may reach beyond its grants and how much of an answer
    /// it reads (`[plugins]`); `None` keeps the SDK's defaults (no private targets, 32 MiB).
    egress: Option<PluginsConfig>,
    /// The service's own directories, which no instance may read
    /// ([`PluginContext::protected_paths`]).
    protected_paths: Vec<PathBuf>,
    /// Where every instance's log lines (info and above) go besides the service's log.
    journal: Arc<TimelineJournal>,
}

impl std::fmt::Debug for InstanceContexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceContexts")
            .field("http_attempts", &self.http_attempts)
            .field("egress", &self.egress)
            .field("protected_paths", &self.protected_paths)
            .finish_non_exhaustive()
    }
}

impl InstanceContexts {
    /// Contexts of the instances of `plugin_type` plugins a service runs, whose events are
    /// published through `nats` under `subjects`' prefix and whose reads go to `pool`; access
    /// tokens are asked of the plugin manager through `nats` too
    /// (`plugins.token.<plugin_type>`).
    pub fn new(
        plugin_type: PluginType,
        nats: async_nats::Client,
        subjects: Subjects,
        pool: PgPool,
    ) -> Self {
        let service = match plugin_type {
            PluginType::Channel => ServiceName::Channel,
            _ => ServiceName::Connector,
        };
        let recorder = TimelineRecorder::new(nats.clone(), subjects.clone(), service);
        Self {
            plugin_type,
            journal: Arc::new(TimelineJournal(Arc::new(recorder))),
            plugins: MeshClient::new(nats.clone(), subjects.clone(), HOST_ACTOR.to_owned()),
            events: Arc::new(NatsEventSink::new(nats, subjects, plugin_type)),
            data: Arc::new(PgDataReader::new(pool.clone())),
            kv: Arc::new(PgKeyValueStore::new(pool)),
            http_attempts: None,
            egress: None,
            protected_paths: Vec::new(),
        }
    }

    /// The same, with every instance's requests held to the operator's `[plugins]` settings:
    /// private targets allowed or not, the most body bytes of one answer.
    pub fn with_egress(mut self, egress: PluginsConfig) -> Self {
        self.egress = Some(egress);
        self
    }

    /// The same, with `paths` (the service's `data_dir`) handed to every instance as
    /// directories it must never read ([`PluginContext::protected_paths`]): the folder
    /// connector refuses a folder in one and never enters one.
    pub fn with_protected_paths(mut self, paths: Vec<PathBuf>) -> Self {
        self.protected_paths = paths;
        self
    }

    /// The same, with every HTTP call of an instance tried at most `attempts` times.
    pub fn with_http_attempts(mut self, attempts: u32) -> Self {
        self.http_attempts = Some(attempts);
        self
    }

    /// The context of instance `instance_id` of plugin `plugin_id`, allowed `grants`, with its
    /// `config` (secrets included). When `oauth` (its plugin's manifest has an `auth` section:
    /// [`tributary_proto::requests::plugins::RuntimeInstance::oauth`]), its HTTP client
    /// attaches the access token `plugins.token` gives to each request to a granted host that
    /// carries no `Authorization` of its own. Fails only when its HTTP client cannot be built.
    pub fn build(
        &self,
        plugin_id: impl Into<String>,
        instance_id: impl Into<String>,
        grants: Grants,
        config: Value,
        oauth: bool,
    ) -> Result<PluginContext, PluginError> {
        let attempts = self.http_attempts;
        let egress = self.egress;
        let instance_id = instance_id.into();
        let mut builder = PluginContext::builder(plugin_id, instance_id.clone(), grants);
        if oauth {
            builder = builder.access_tokens(Arc::new(BrokeredTokens::new(
                self.plugins.clone(),
                self.plugin_type,
                instance_id,
            )));
        }
        builder
            .config(config)
            .http(|http| {
                let http = match egress {
                    Some(egress) => http
                        .allow_private_network(egress.allow_private_network)
                        .max_response_bytes(egress.max_response_bytes),
                    None => http,
                };
                match attempts {
                    Some(attempts) => http.max_attempts(attempts),
                    None => http,
                }
            })
            .event_sink(self.events.clone())
            .data_reader(self.data.clone())
            .kv_store(self.kv.clone())
            .protected_paths(self.protected_paths.clone())
            .journal(self.journal.clone())
            .build()
    }
}

/// A plugin's log lines (info and above) as lines of its instance's timeline, rate-limited
/// like every other kind.
#[derive(Debug, Clone)]
pub struct TimelineJournal(pub Arc<TimelineRecorder>);

impl LogJournal for TimelineJournal {
    fn line(&self, instance_id: &str, level: JournalLevel, message: &str) {
        let (status, name) = match level {
            JournalLevel::Info => (TimelineStatus::Ok, "info"),
            JournalLevel::Warn => (TimelineStatus::Warning, "warn"),
            JournalLevel::Error => (TimelineStatus::Error, "error"),
        };
        let line =
            TimelineEntry::now(instance_id, TimelineKind::Log, status, message).with("level", name);
        self.0.record_detached(line);
    }
}

/// Publishes a plugin's events on NATS, each in its instance's own namespace
/// (`plugin.<type>.<instance>.<subject>`, [`Subjects::plugin_event`]) as an event envelope
/// whose source (service and instance) the host sets: a plugin names only the last part of
/// the subject and the payload, so whatever its grants say it cannot publish on a service's
/// subject, the JetStream API or an inbox with the service's NATS identity, nor pass for
/// another instance. A publish returns once the server has the event.
#[derive(Debug, Clone)]
pub struct NatsEventSink {
    nats: async_nats::Client,
    subjects: Subjects,
    /// The type of plugin the service runs: the namespace's first token, and the service
    /// named as the events' source.
    plugin_type: PluginType,
}

impl NatsEventSink {
    /// A sink publishing through `nats` the events of `plugin_type` instances.
    pub fn new(nats: async_nats::Client, subjects: Subjects, plugin_type: PluginType) -> Self {
        Self {
            nats,
            subjects,
            plugin_type,
        }
    }
}

#[async_trait]
impl EventSink for NatsEventSink {
    async fn publish(&self, event: PluginEvent) -> Result<(), PluginError> {
        let bare =
            Subjects::default().plugin_event(self.plugin_type, &event.instance_id, &event.subject);
        let envelope = Envelope {
            id: Uuid::now_v7(),
            event_type: bare.clone(),
            source: EventSource::new(self.plugin_type.as_str(), Some(event.instance_id)),
            time: chrono::Utc::now(),
            entity_id: None,
            data: event.payload,
        };
        let payload = envelope
            .to_bytes()
            .map_err(|e| PluginError::Other(format!("cannot encode the event: {e}")))?;
        self.nats
            .publish_with_headers(
                self.subjects.qualify(&bare),
                envelope.headers(),
                payload.into(),
            )
            .await
            .map_err(|e| PluginError::Transient(format!("cannot publish on {bare}: {e}")))?;
        // Sent, not only buffered: an instance that ends right after its event, or a host
        // stopping it, loses nothing, and whoever listens has it when this returns.
        self.nats
            .flush()
            .await
            .map_err(|e| PluginError::Transient(format!("cannot publish on {bare}: {e}")))
    }
}

/// Reads entities of the unified model, as the JSON of their row.
#[derive(Debug, Clone)]
pub struct PgDataReader {
    pool: PgPool,
}

impl PgDataReader {
    /// A reader over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl DataReader for PgDataReader {
    async fn get(&self, entity: EntityType, id: Uuid) -> Result<Option<Value>, PluginError> {
        // The table is one of six fixed names from the enum, never from input.
        let query = format!(
            "SELECT to_jsonb(t) FROM {} t WHERE id = $1 AND deleted_at IS NULL",
            entity.as_str()
        );
        sqlx::query_scalar::<_, Value>(&query)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| PluginError::Transient(format!("cannot read {entity} {id}: {e}")))
    }
}

/// Keeps each instance's own keys in PostgreSQL (`instance_kv`); a purge deletes them.
#[derive(Debug, Clone)]
pub struct PgKeyValueStore {
    pool: PgPool,
}

impl PgKeyValueStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn kv_error(what: &str, key: &str, e: sqlx::Error) -> PluginError {
    PluginError::Transient(format!("cannot {what} key `{key}`: {e}"))
}

#[async_trait]
impl KeyValueStore for PgKeyValueStore {
    async fn get(&self, instance_id: &str, key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        sqlx::query_scalar("SELECT value FROM instance_kv WHERE instance_id = $1 AND key = $2")
            .bind(instance_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| kv_error("read", key, e))
    }

    async fn set(&self, instance_id: &str, key: &str, value: &[u8]) -> Result<(), PluginError> {
        sqlx::query(
            "INSERT INTO instance_kv (instance_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (instance_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        )
        .bind(instance_id)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| kv_error("store", key, e))
    }

    async fn delete(&self, instance_id: &str, key: &str) -> Result<(), PluginError> {
        sqlx::query("DELETE FROM instance_kv WHERE instance_id = $1 AND key = $2")
            .bind(instance_id)
            .bind(key)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| kv_error("delete", key, e))
    }
}
