//! Every NATS subject Tributary uses, spelled once.
//!
//! Events are `<domain>.<PascalCaseEvent>` (`data.PersonCreated`), so `data.*` catches every
//! data event. Requests are `<service>.<verb>` on NATS micro services. A [`Subjects`] carries an
//! optional prefix that is put in front of every subject: a deployment leaves it empty, and
//! each test picks its own so parallel tests never see each other's traffic.

use std::fmt;

use crate::events::EventKind;
use crate::manifest::PluginType;

/// The five Tributary services, as they name themselves on NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    /// Owns the plugin registry.
    PluginManager,
    /// Runs connector plugins.
    Connector,
    /// Turns connector items into the unified model.
    Etl,
    /// Webhook ingress and outbound messaging.
    Channel,
    /// The search index.
    Search,
}

impl ServiceName {
    /// All five services, in start-up order.
    pub const ALL: [ServiceName; 5] = [
        ServiceName::PluginManager,
        ServiceName::Connector,
        ServiceName::Etl,
        ServiceName::Channel,
        ServiceName::Search,
    ];

    /// The service's name on NATS (`$SRV.PING.<name>`) and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::PluginManager => "plugin-manager",
            ServiceName::Connector => "connector",
            ServiceName::Etl => "etl",
            ServiceName::Channel => "channel",
            ServiceName::Search => "search",
        }
    }

    /// The first token of the service's request subjects (`plugins.install`, `etl.status`).
    pub fn request_domain(self) -> &'static str {
        match self {
            ServiceName::PluginManager => "plugins",
            ServiceName::Connector => "connector",
            ServiceName::Etl => "etl",
            ServiceName::Channel => "channel",
            ServiceName::Search => "search",
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds subjects, with an optional prefix in front of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subjects {
    /// Empty in a deployment; a unique token per test.
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (empty for none). The prefix must be one NATS token:
    /// no dots, spaces or wildcards.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix, empty when there is none.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Puts the prefix in front of a bare subject.
    pub fn qualify(&self, subject: &str) -> String {
        if self.prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{}", self.prefix, subject)
        }
    }

    /// Removes the prefix from a subject received on the wire, if it carries it.
    pub fn unqualify<'a>(&self, subject: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return subject;
        }
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject)
    }

    /// The subject an event of this kind is published on (`data.PersonCreated`).
    pub fn event(&self, kind: EventKind) -> String {
        self.qualify(&kind.subject())
    }

    /// Every data event: `data.*`.
    pub fn all_data_events(&self) -> String {
        self.qualify("data.*")
    }

    /// Every event of a domain: `<domain>.*`.
    pub fn all_events_of(&self, domain: &str) -> String {
        self.qualify(&format!("{domain}.*"))
    }

    /// The item stream of one connector instance: `connector.items.<instance>`.
    pub fn connector_items(&self, instance_id: &str) -> String {
        self.qualify(&format!("connector.items.{instance_id}"))
    }

    /// Every connector instance's items: `connector.items.>`.
    pub fn all_connector_items(&self) -> String {
        self.qualify("connector.items.>")
    }

    /// Where a verified webhook is made durable: `channel.inbound.<channel>.<instance>`.
    pub fn channel_inbound(&self, channel: &str, instance_id: &str) -> String {
        self.qualify(&format!("channel.inbound.{channel}.{instance_id}"))
    }

    /// Every verified webhook: `channel.inbound.>`.
    pub fn all_channel_inbound(&self) -> String {
        self.qualify("channel.inbound.>")
    }

    /// Where an event a plugin instance emits is published:
    /// `plugin.<type>.<instance>.<its own subject>` (`plugin.connector.crm-1.crm.Exported`).
    /// A plugin names only the last part, allowed by its `event:publish` grants; the host puts
    /// it under its instance's namespace, so no grant reaches a service's subjects, the
    /// JetStream API or an inbox, and nats-server lets the connector service publish only
    /// under `plugin.connector.>` and the channel service under `plugin.channel.>`.
    pub fn plugin_event(
        &self,
        plugin_type: PluginType,
        instance_id: &str,
        subject: &str,
    ) -> String {
        self.qualify(&format!(
            "plugin.{}.{instance_id}.{subject}",
            plugin_type.as_str()
        ))
    }

    /// Every event of every plugin instance: `plugin.>`.
    pub fn all_plugin_events(&self) -> String {
        self.qualify("plugin.>")
    }

    /// A dead letter from one stream: `deadletter.<stream key>`.
    pub fn dead_letter(&self, source: &str) -> String {
        self.qualify(&format!("deadletter.{source}"))
    }

    /// Every dead letter: `deadletter.>`.
    pub fn all_dead_letters(&self) -> String {
        self.qualify("deadletter.>")
    }

    /// Where `service` publishes a line of an instance's timeline:
    /// `timeline.<service>.<instance>` ([`crate::timeline`]).
    pub fn timeline(&self, service: ServiceName, instance_id: &str) -> String {
        self.qualify(&format!("timeline.{}.{instance_id}", service.as_str()))
    }

    /// Every timeline line: `timeline.>`.
    pub fn all_timeline(&self) -> String {
        self.qualify("timeline.>")
    }

    /// The group under which a service's micro-service endpoints live (`plugins`, `etl`).
    pub fn request_group(&self, service: ServiceName) -> String {
        self.qualify(service.request_domain())
    }

    /// A request subject: `<service>.<verb>` (`plugins.install`, `connector.sync`).
    pub fn request(&self, service: ServiceName, verb: &str) -> String {
        format!("{}.{verb}", self.request_group(service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{DataChange, EventKind};
    use crate::model::EntityType;

    #[test]
    fn subjects_without_prefix_are_the_documented_ones() {
        let s = Subjects::default();
        let created = EventKind::Data {
            entity: EntityType::Person,
            change: DataChange::Created,
        };
        assert_eq!(s.event(created), "data.PersonCreated");
        assert_eq!(s.all_data_events(), "data.*");
        assert_eq!(s.connector_items("abc"), "connector.items.abc");
        assert_eq!(
            s.plugin_event(PluginType::Channel, "bot-1", "bot.Joined"),
            "plugin.channel.bot-1.bot.Joined"
        );
        assert_eq!(s.all_plugin_events(), "plugin.>");
        assert_eq!(
            s.request(ServiceName::PluginManager, "install"),
            "plugins.install"
        );
    }

    #[test]
    fn a_prefix_goes_in_front_and_comes_off_again() {
        let s = Subjects::new("t42");
        assert_eq!(s.all_data_events(), "t42.data.*");
        assert_eq!(s.request(ServiceName::Etl, "status"), "t42.etl.status");
        assert_eq!(s.unqualify("t42.data.PersonCreated"), "data.PersonCreated");
        assert_eq!(
            s.unqualify("other.data.PersonCreated"),
            "other.data.PersonCreated"
        );
    }
}
