//! Provisioning: the one step that creates and updates the JetStream streams and durable
//! consumers, run with its own NATS identity (`provision` in deploy/nats-server.conf) by
//! `tributary nats provision` (compose runs it once before the services) and by
//! `tributary up` before it starts them.
//!
//! No service may create or change a stream or a consumer: one that could would redefine a
//! stream to capture another user's inbox (`_INBOX_connector.>`, where the plugin manager's
//! answers with secrets go) and read it through its consumer, or seal and shrink a stream
//! another service depends on. Services only check, at start-up, that what they use exists
//! ([`crate::nats::check_streams`], [`crate::nats::open_consumer`]).

use serde::Deserialize;
use tributary_proto::streams::{subject_matches, ConsumerKey, DeliveryLimits, StreamKey};

use crate::config::{Config, ConfigError};
use crate::nats::NatsError;

/// The NATS user the provisioning step connects as (deploy/nats-server.conf; its password
/// in `NATS_PROVISION_PASSWORD`).
pub const PROVISION_USER: &str = "provision";

/// The most bytes each stream keeps (`[nats.max_bytes]`, in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSizes {
    /// `CONNECTOR_ITEMS`: items on their way to the ETL; the largest during a first sync.
    pub connector_items: u64,
    /// `DATA_EVENTS`: changes of the unified model, kept 30 days for subscribers to replay.
    pub data_events: u64,
    /// `PLUGIN_EVENTS`: plugin lifecycle events.
    pub plugin_events: u64,
    /// `CONNECTOR_EVENTS`: sync lifecycle events.
    pub connector_events: u64,
    /// `COMMUNICATION`: messages received, sent and failed.
    pub communication: u64,
    /// `CHANNEL_INBOUND`: verified webhooks, durable before they are answered.
    pub channel_inbound: u64,
    /// `DEAD_LETTERS`: what could never be processed.
    pub dead_letters: u64,
    /// `TIMELINE`: the lines of the instances' timelines, until the plugin manager stores
    /// them.
    pub timeline: u64,
}

/// The smallest stream size accepted: below it a single large item would not fit.
const MIN_STREAM_BYTES: u64 = 1024 * 1024;

impl StreamSizes {
    /// The same size for every stream: tests use a small one, as nats-server reserves every
    /// stream's size against its store and dozens of tests share one server.
    pub fn uniform(bytes: u64) -> Self {
        Self {
            connector_items: bytes,
            data_events: bytes,
            plugin_events: bytes,
            connector_events: bytes,
            communication: bytes,
            channel_inbound: bytes,
            dead_letters: bytes,
            timeline: bytes,
        }
    }

    /// The size of `stream`.
    pub fn of(&self, stream: StreamKey) -> u64 {
        match stream {
            StreamKey::ConnectorItems => self.connector_items,
            StreamKey::DataEvents => self.data_events,
            StreamKey::PluginEvents => self.plugin_events,
            StreamKey::ConnectorEvents => self.connector_events,
            StreamKey::Communication => self.communication,
            StreamKey::ChannelInbound => self.channel_inbound,
            StreamKey::DeadLetters => self.dead_letters,
            StreamKey::Timeline => self.timeline,
        }
    }

    /// The configuration key of `stream`'s size.
    fn key(stream: StreamKey) -> String {
        format!("nats.max_bytes.{}", stream.base_name().to_lowercase())
    }

    /// The size of `stream` as JetStream takes it.
    pub fn max_bytes(&self, stream: StreamKey) -> i64 {
        i64::try_from(self.of(stream)).unwrap_or(i64::MAX)
    }

    /// Every size at least 1 MiB and at most `i64::MAX`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for stream in StreamKey::ALL {
            let bytes = self.of(stream);
            if bytes < MIN_STREAM_BYTES {
                return Err(ConfigError::new(
                    Self::key(stream),
                    format!("{bytes} is below 1 MiB ({MIN_STREAM_BYTES} bytes)"),
                ));
            }
            if i64::try_from(bytes).is_err() {
                return Err(ConfigError::new(Self::key(stream), "is too large"));
            }
        }
        Ok(())
    }
}

/// The streams your own programs may read through a consumer of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStream {
    /// `DATA_EVENTS`.
    DataEvents,
    /// `COMMUNICATION`.
    Communication,
}

impl AppStream {
    /// The stream.
    pub fn key(self) -> StreamKey {
        match self {
            AppStream::DataEvents => StreamKey::DataEvents,
            AppStream::Communication => StreamKey::Communication,
        }
    }
}

/// A durable pull consumer for your own program (`[[nats.consumers]]`), which the user
/// `subscriber` pulls from and acks by name. Only provisioning creates consumers: one a
/// subscriber could create would be a push consumer delivering to any subject it names, which
/// nats-server does not check against the subscriber's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConsumer {
    /// Its durable name: letters, digits, `_` and `-`, and none of the services' own.
    pub name: String,
    /// The stream it reads.
    pub stream: AppStream,
    /// The part of the stream it takes (unprefixed, `data.PersonCreated`); the whole stream
    /// when absent.
    #[serde(default)]
    pub filter_subject: Option<String>,
}

/// Checks `[[nats.consumers]]`: names valid and unique, none a service's consumer, filters
/// inside their streams.
pub(crate) fn validate_consumers(consumers: &[AppConsumer]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, consumer) in consumers.iter().enumerate() {
        let key = |field: &str| format!("nats.consumers[{i}].{field}");
        let name = consumer.name.as_str();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ConfigError::new(
                key("name"),
                format!("`{name}` must be letters, digits, `_` or `-`"),
            ));
        }
        if ConsumerKey::ALL.iter().any(|k| k.durable_name() == name) {
            return Err(ConfigError::new(
                key("name"),
                format!("`{name}` is a service's own consumer"),
            ));
        }
        if !seen.insert(name) {
            return Err(ConfigError::new(
                key("name"),
                format!("`{name}` is named twice"),
            ));
        }
        if let Some(filter) = &consumer.filter_subject {
            let inside = consumer
                .stream
                .key()
                .base_subjects()
                .iter()
                .any(|pattern| subject_matches(pattern, filter));
            if !inside {
                return Err(ConfigError::new(
                    key("filter_subject"),
                    format!(
                        "`{filter}` is not a subject of {}",
                        consumer.stream.key().base_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The delivery limits of a service's consumer, from the settings of the service that reads
/// it. JetStream itself never gives up on an item or a data event: the ETL and the indexer
/// dead-letter one after their own `max_deliver` failures, with the reason; the channel
/// service lets JetStream stop after `channel.max_deliver` and dead-letters at the last.
pub fn consumer_limits(config: &Config, key: ConsumerKey) -> DeliveryLimits {
    match key {
        ConsumerKey::EtlItems => DeliveryLimits {
            ack_wait: config.etl.ack_wait(),
            max_deliver: -1,
            max_ack_pending: config.etl.max_ack_pending,
        },
        ConsumerKey::SearchIndexer => {
            let settings = &config.search;
            // Unacked events may fill every batch in flight and a few more being pulled.
            let batches = match settings.uses_meilisearch() {
                true => settings
                    .meilisearch_tasks_in_flight
                    .saturating_add(2)
                    .max(4),
                false => 4,
            };
            DeliveryLimits {
                ack_wait: settings.ack_wait(),
                max_deliver: -1,
                max_ack_pending: (settings.batch_size as i64).saturating_mul(batches as i64),
            }
        }
        ConsumerKey::ChannelInbound => {
            let settings = &config.channel;
            DeliveryLimits {
                ack_wait: settings.ack_wait(),
                max_deliver: settings.max_deliver,
                max_ack_pending: i64::try_from(settings.concurrent_handlers * 64).unwrap_or(1024),
            }
        }
        // The plugin manager stores timeline lines in batches of up to 500, one at a time; a
        // line it cannot store after five deliveries is dead-lettered with the reason.
        ConsumerKey::Timeline => DeliveryLimits {
            ack_wait: std::time::Duration::from_secs(30),
            max_deliver: -1,
            max_ack_pending: 2_000,
        },
    }
}

/// What one provisioning run made: the names of the streams and consumers it created or
/// brought up to date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Every stream, by name.
    pub streams: Vec<String>,
    /// Every durable consumer, as `STREAM/consumer`.
    pub consumers: Vec<String>,
}

/// Connects as `config.nats` (the `provision` user in a deployment) and creates or updates
/// every stream (sized by `nats.max_bytes`, kept on `nats.replicas` servers), every service's
/// durable pull consumer (filtered to its stream's subject, with the delivery limits the
/// services' settings ask for) and the consumers of `[[nats.consumers]]`; the consumers take
/// their stream's replicas. Running it twice changes nothing.
pub async fn provision_all(config: &Config) -> Result<Provisioned, NatsError> {
    let client = crate::nats::connect(&config.nats, "tributary-provision").await?;
    let js = async_nats::jetstream::new(client.clone());
    let subjects = config.subjects();
    let mut done = Provisioned::default();
    crate::nats::provision_replicated_streams(
        &js,
        &subjects,
        &config.nats.max_bytes,
        config.nats.replicas,
    )
    .await?;
    done.streams = StreamKey::ALL.iter().map(|k| k.name(&subjects)).collect();
    for key in ConsumerKey::ALL {
        crate::nats::provision_consumer(&js, &subjects, key, consumer_limits(config, key)).await?;
        done.consumers.push(format!(
            "{}/{}",
            key.stream().name(&subjects),
            key.durable_name()
        ));
    }
    for consumer in &config.nats.consumers {
        let stream = consumer.stream.key().name(&subjects);
        let filter = match &consumer.filter_subject {
            Some(filter) => subjects.qualify(filter),
            None => subjects.qualify(
                consumer
                    .stream
                    .key()
                    .base_subjects()
                    .first()
                    .map_or(">", String::as_str),
            ),
        };
        let pull = async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(consumer.name.clone()),
            description: Some("A consumer for your own program (nats.consumers)".to_owned()),
            filter_subject: filter,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        crate::nats::create_or_update_consumer(&js, &stream, &consumer.name, pull).await?;
        done.consumers.push(format!("{stream}/{}", consumer.name));
    }
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "Cannot flush NATS after provisioning.");
    }
    tracing::info!(
        streams = done.streams.len(),
        consumers = done.consumers.len(),
        "Streams and consumers provisioned."
    );
    Ok(done)
}
