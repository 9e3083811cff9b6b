//! The JetStream streams and durable consumers, defined in one place.
//!
//! Names and subjects take the same prefix as [`Subjects`], so every test owns its own
//! streams. Streams whose domain also carries requests (`plugins`, `connector`) list their
//! event subjects one by one, so a request on `plugins.install` is never captured.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};

use crate::events::EventKind;
use crate::subjects::{ServiceName, Subjects};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The streams Tributary keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKey {
    /// `connector.items.>`: items on their way to the ETL.
    ConnectorItems,
    /// `data.*`: changes of the unified model.
    DataEvents,
    /// `plugins.Plugin*`: plugin lifecycle.
    PluginEvents,
    /// `connector.Sync*`: sync lifecycle.
    ConnectorEvents,
    /// `communication.*`: messages in and out.
    Communication,
    /// `channel.inbound.>`: verified webhooks, durable before they are answered.
    ChannelInbound,
    /// `deadletter.>`: what could never be processed, with the reason.
    DeadLetters,
    /// `timeline.>`: the lines of every instance's timeline, on their way to the plugin
    /// manager.
    Timeline,
}

impl StreamKey {
    /// Every stream.
    pub const ALL: [StreamKey; 8] = [
        StreamKey::ConnectorItems,
        StreamKey::DataEvents,
        StreamKey::PluginEvents,
        StreamKey::ConnectorEvents,
        StreamKey::Communication,
        StreamKey::ChannelInbound,
        StreamKey::DeadLetters,
        StreamKey::Timeline,
    ];

    /// The unprefixed stream name.
    pub fn base_name(self) -> &'static str {
        match self {
            StreamKey::ConnectorItems => "CONNECTOR_ITEMS",
            StreamKey::DataEvents => "DATA_EVENTS",
            StreamKey::PluginEvents => "PLUGIN_EVENTS",
            StreamKey::ConnectorEvents => "CONNECTOR_EVENTS",
            StreamKey::Communication => "COMMUNICATION",
            StreamKey::ChannelInbound => "CHANNEL_INBOUND",
            StreamKey::DeadLetters => "DEAD_LETTERS",
            StreamKey::Timeline => "TIMELINE",
        }
    }

    /// The stream's name under the prefix of `subjects`.
    pub fn name(self, subjects: &Subjects) -> String {
        stream_name(subjects, self.base_name())
    }

    /// Unprefixed subject patterns the stream captures.
    pub fn base_subjects(self) -> Vec<String> {
        let events_of = |stream: StreamKey| {
            EventKind::all()
                .into_iter()
                .filter(|k| k.stream() == stream)
                .map(|k| k.subject())
                .collect::<Vec<_>>()
        };
        match self {
            StreamKey::ConnectorItems => vec!["connector.items.>".into()],
            StreamKey::DataEvents => vec!["data.*".into()],
            StreamKey::PluginEvents => events_of(StreamKey::PluginEvents),
            StreamKey::ConnectorEvents => events_of(StreamKey::ConnectorEvents),
            StreamKey::Communication => vec!["communication.*".into()],
            StreamKey::ChannelInbound => vec!["channel.inbound.>".into()],
            StreamKey::DeadLetters => vec!["deadletter.>".into()],
            StreamKey::Timeline => vec!["timeline.>".into()],
        }
    }

    /// What the stream is for, as shown by `nats stream info`.
    pub fn description(self) -> &'static str {
        match self {
            StreamKey::ConnectorItems => "Connector items on their way to the ETL",
            StreamKey::DataEvents => "Changes of the unified model",
            StreamKey::PluginEvents => "Plugin lifecycle events",
            StreamKey::ConnectorEvents => "Connector sync lifecycle events",
            StreamKey::Communication => "Messages received, sent and failed",
            StreamKey::ChannelInbound => "Verified webhooks, durable before they are answered",
            StreamKey::DeadLetters => "Messages that could never be processed, with the reason",
            StreamKey::Timeline => "Lines of the instances' timelines, for the plugin manager",
        }
    }

    /// How long messages are kept.
    pub fn max_age(self) -> Duration {
        match self {
            StreamKey::ConnectorItems | StreamKey::ChannelInbound => 7 * DAY,
            StreamKey::DataEvents | StreamKey::Communication | StreamKey::DeadLetters => 30 * DAY,
            StreamKey::PluginEvents | StreamKey::ConnectorEvents | StreamKey::Timeline => 7 * DAY,
        }
    }

    /// How long a repeated `Nats-Msg-Id` is recognised and dropped. Webhook providers retry
    /// for hours, so the inbound stream remembers ids for a day.
    pub fn duplicate_window(self) -> Duration {
        match self {
            StreamKey::ChannelInbound => DAY,
            _ => Duration::from_secs(10 * 60),
        }
    }

    /// The most bytes the stream keeps by default; past it the oldest messages go first.
    /// nats-server reserves a stream's `max_bytes` against the JetStream store limit
    /// (deploy/nats-server.conf, `max_file_store`), so these add up to less than it:
    /// 5.81 GiB of the 8 GiB. Operators size them with `nats.max_bytes` (kit's config).
    pub fn default_max_bytes(self) -> i64 {
        const MIB: i64 = 1024 * 1024;
        match self {
            StreamKey::ConnectorItems => 2048 * MIB,
            StreamKey::DataEvents => 2048 * MIB,
            StreamKey::Communication => 512 * MIB,
            StreamKey::ChannelInbound => 512 * MIB,
            StreamKey::DeadLetters => 512 * MIB,
            StreamKey::PluginEvents | StreamKey::ConnectorEvents | StreamKey::Timeline => 64 * MIB,
        }
    }

    /// The full stream configuration, with [`StreamKey::default_max_bytes`]; the
    /// provisioning step sets the configured size instead.
    pub fn config(self, subjects: &Subjects) -> stream::Config {
        stream::Config {
            name: self.name(subjects),
            description: Some(self.description().to_owned()),
            subjects: self
                .base_subjects()
                .iter()
                .map(|s| subjects.qualify(s))
                .collect(),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: self.max_age(),
            max_bytes: self.default_max_bytes(),
            duplicate_window: self.duplicate_window(),
            num_replicas: 1,
            ..Default::default()
        }
    }
}

fn stream_name(subjects: &Subjects, base: &str) -> String {
    if subjects.prefix().is_empty() {
        base.to_owned()
    } else {
        format!("{}_{base}", subjects.prefix())
    }
}

/// The durable consumers, each with the stream it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerKey {
    /// The ETL's share of connector items; every ETL process pulls from it.
    EtlItems,
    /// The search service's share of data events.
    SearchIndexer,
    /// The channel service's share of verified webhooks.
    ChannelInbound,
    /// The plugin manager's share of timeline lines, which it stores.
    Timeline,
}

impl ConsumerKey {
    /// Every durable consumer.
    pub const ALL: [ConsumerKey; 4] = [
        ConsumerKey::EtlItems,
        ConsumerKey::SearchIndexer,
        ConsumerKey::ChannelInbound,
        ConsumerKey::Timeline,
    ];

    /// The stream it reads.
    pub fn stream(self) -> StreamKey {
        match self {
            ConsumerKey::EtlItems => StreamKey::ConnectorItems,
            ConsumerKey::SearchIndexer => StreamKey::DataEvents,
            ConsumerKey::ChannelInbound => StreamKey::ChannelInbound,
            ConsumerKey::Timeline => StreamKey::Timeline,
        }
    }

    /// Its durable name.
    pub fn durable_name(self) -> &'static str {
        match self {
            ConsumerKey::EtlItems => "etl-items",
            ConsumerKey::SearchIndexer => "search-indexer",
            ConsumerKey::ChannelInbound => "channel-inbound",
            ConsumerKey::Timeline => "timeline",
        }
    }

    /// The one subject pattern the consumer takes from its stream: the stream's own subject
    /// (each consumed stream captures exactly one pattern). A subject the stream was made to
    /// capture besides (`_INBOX_connector.>`, say) never reaches the consumer.
    pub fn filter_subject(self, subjects: &Subjects) -> String {
        let patterns = self.stream().base_subjects();
        let pattern = patterns.first().map_or("", String::as_str);
        subjects.qualify(pattern)
    }

    /// Whether a message on `subject` is one the consumer is for: it matches
    /// [`ConsumerKey::filter_subject`]. A service refuses any other without reading it.
    pub fn accepts(self, subjects: &Subjects, subject: &str) -> bool {
        subject_matches(&self.filter_subject(subjects), subject)
    }

    /// The pull consumer configuration, filtered to [`ConsumerKey::filter_subject`], with
    /// the given delivery limits.
    pub fn config(self, subjects: &Subjects, limits: DeliveryLimits) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable_name().to_owned()),
            filter_subject: self.filter_subject(subjects),
            description: Some(format!("Durable consumer of {}", self.stream().base_name())),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: limits.ack_wait,
            max_deliver: limits.max_deliver,
            max_ack_pending: limits.max_ack_pending,
            ..Default::default()
        }
    }
}

/// The streams `service` publishes to or consumes from, which it checks at start-up: each
/// must have been provisioned (`tributary nats provision`), as no service may create one.
pub fn streams_of(service: ServiceName) -> &'static [StreamKey] {
    match service {
        ServiceName::PluginManager => &[
            StreamKey::PluginEvents,
            StreamKey::ConnectorItems,
            StreamKey::Timeline,
        ],
        ServiceName::Connector => &[
            StreamKey::ConnectorItems,
            StreamKey::ConnectorEvents,
            StreamKey::Timeline,
        ],
        ServiceName::Etl => &[
            StreamKey::ConnectorItems,
            StreamKey::DataEvents,
            StreamKey::DeadLetters,
        ],
        ServiceName::Channel => &[
            StreamKey::ChannelInbound,
            StreamKey::Communication,
            StreamKey::ConnectorItems,
            StreamKey::DeadLetters,
            StreamKey::Timeline,
        ],
        ServiceName::Search => &[StreamKey::DataEvents, StreamKey::DeadLetters],
    }
}

/// Whether the NATS subject pattern `pattern` (tokens, `*` for one, a final `>` for one or
/// more) matches the subject `subject`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut wanted = pattern.split('.');
    let mut got = subject.split('.');
    loop {
        match (wanted.next(), got.next()) {
            (Some(">"), Some(token)) => return !token.is_empty(),
            (Some("*"), Some(token)) if !token.is_empty() => {}
            (Some(w), Some(token)) if w == token && !token.is_empty() => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// How a consumer redelivers: after `ack_wait` without an ack, at most `max_deliver` times,
/// with at most `max_ack_pending` messages out at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryLimits {
    /// Time a message may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// Deliveries before the message is given up on (and dead-lettered by the service).
    pub max_deliver: i64,
    /// Unacknowledged messages allowed at once, across all processes.
    pub max_ack_pending: i64,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            max_ack_pending: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_domains_are_not_captured_by_event_streams() {
        let s = Subjects::default();
        let plugin_subjects = StreamKey::PluginEvents.config(&s).subjects;
        assert!(plugin_subjects.contains(&"plugins.PluginInstalled".to_owned()));
        assert!(plugin_subjects
            .iter()
            .all(|s| !s.contains('*') && !s.contains('>')));
        let connector_subjects = StreamKey::ConnectorEvents.config(&s).subjects;
        assert!(connector_subjects.contains(&"connector.SyncStarted".to_owned()));
        assert!(!connector_subjects.contains(&"connector.items.>".to_owned()));
    }

    #[test]
    fn consumers_are_filtered_to_their_streams_subject() {
        let s = Subjects::new("t1");
        let config = ConsumerKey::EtlItems.config(&s, DeliveryLimits::default());
        assert_eq!(config.filter_subject, "t1.connector.items.>");
        assert!(ConsumerKey::EtlItems.accepts(&s, "t1.connector.items.crm-1"));
        assert!(!ConsumerKey::EtlItems.accepts(&s, "_INBOX_connector.abc.def"));
        assert!(!ConsumerKey::EtlItems.accepts(&s, "t1.connector.items"));
        assert!(ConsumerKey::SearchIndexer.accepts(&s, "t1.data.PersonCreated"));
        assert!(!ConsumerKey::SearchIndexer.accepts(&s, "t1.data.PersonCreated.x"));
        assert!(!ConsumerKey::ChannelInbound.accepts(&s, "t1.plugins.runtime.channel"));
    }

    #[test]
    fn every_stream_has_a_size_limit() {
        let s = Subjects::default();
        for key in StreamKey::ALL {
            assert!(key.config(&s).max_bytes > 0, "{key:?}");
        }
    }

    #[test]
    fn prefixed_streams_have_prefixed_names_and_subjects() {
        let s = Subjects::new("t1");
        let config = StreamKey::DataEvents.config(&s);
        assert_eq!(config.name, "t1_DATA_EVENTS");
        assert_eq!(config.subjects, vec!["t1.data.*".to_owned()]);
    }
}
