//! Every event type Tributary publishes, with its payload type and its stream.
//!
//! [`EventKind::all`] is the one list: subjects, JetStream stream subjects, the JSON Schemas
//! and the event catalog (`docs/events.md`) are all derived from it.

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{EntityType, Person};
use crate::streams::StreamKey;
use crate::subjects::ServiceName;

/// What happened to an entity of the unified model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DataChange {
    /// A new entity was stored.
    Created,
    /// A stored entity's content changed.
    Updated,
    /// An entity was deleted at its source (a tombstone; the row keeps `deleted_at`).
    Deleted,
}

impl DataChange {
    /// All three changes.
    pub const ALL: [DataChange; 3] = [
        DataChange::Created,
        DataChange::Updated,
        DataChange::Deleted,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DataChange::Created => "Created",
            DataChange::Updated => "Updated",
            DataChange::Deleted => "Deleted",
        }
    }
}

/// A plugin lifecycle event, emitted by the plugin manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginEvent {
    /// An instance of a plugin was installed.
    Installed,
    /// An instance's configuration changed.
    Configured,
    /// An instance was enabled: its service starts it.
    Enabled,
    /// An instance was disabled: its service stops it.
    Disabled,
    /// An instance moved to a new plugin version.
    Upgraded,
    /// An instance was removed.
    Uninstalled,
    /// An instance failed (bad config, crash, health check).
    Failed,
    /// An instance was connected to its account (OAuth 2.0 consent, or a client credentials
    /// token), or connected again after it needed reconnecting: the recovery event.
    Connected,
    /// An instance's OAuth 2.0 grant is gone (revoked, expired, refused as `invalid_grant`):
    /// a person must connect it again. `reason` says the provider's words.
    ReconnectNeeded,
}

/// A connector sync event, emitted by the connector service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncEvent {
    /// A sync began.
    Started,
    /// A running sync's heartbeat, with counts and rate.
    Progress,
    /// A sync finished successfully.
    Completed,
    /// A sync stopped with an error, or was cancelled.
    Failed,
}

/// A messaging event, emitted by the channel service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommunicationEvent {
    /// A verified inbound message was processed by its channel plugin.
    MessageReceived,
    /// An outbound message was accepted by the provider.
    MessageSent,
    /// An outbound message could not be delivered.
    DeliveryFailed,
    /// A provider reported a new delivery status for a sent message.
    DeliveryStatusChanged,
}

/// One event type. Its subject is `<domain>.<Name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `data.<Entity><Change>`, such as `data.PersonCreated`.
    Data {
        /// Which entity type changed.
        entity: EntityType,
        /// What happened to it.
        change: DataChange,
    },
    /// `data.PersonMerged`: two people turned out to be one.
    PersonMerged,
    /// `data.PersonUnmerged`: records of one person turned out to be someone else.
    PersonUnmerged,
    /// `plugins.Plugin<Event>`.
    Plugin(PluginEvent),
    /// `connector.Sync<Event>`.
    Sync(SyncEvent),
    /// `communication.<Event>`.
    Communication(CommunicationEvent),
}

impl EventKind {
    /// Every event type, in catalog order.
    pub fn all() -> Vec<EventKind> {
        let mut all = Vec::new();
        for entity in EntityType::ALL {
            for change in DataChange::ALL {
                all.push(EventKind::Data { entity, change });
            }
        }
        all.push(EventKind::PersonMerged);
        all.push(EventKind::PersonUnmerged);
        for e in [
            PluginEvent::Installed,
            PluginEvent::Configured,
            PluginEvent::Enabled,
            PluginEvent::Disabled,
            PluginEvent::Upgraded,
            PluginEvent::Uninstalled,
            PluginEvent::Failed,
            PluginEvent::Connected,
            PluginEvent::ReconnectNeeded,
        ] {
            all.push(EventKind::Plugin(e));
        }
        for e in [
            SyncEvent::Started,
            SyncEvent::Progress,
            SyncEvent::Completed,
            SyncEvent::Failed,
        ] {
            all.push(EventKind::Sync(e));
        }
        for e in [
            CommunicationEvent::MessageReceived,
            CommunicationEvent::MessageSent,
            CommunicationEvent::DeliveryFailed,
            CommunicationEvent::DeliveryStatusChanged,
        ] {
            all.push(EventKind::Communication(e));
        }
        all
    }

    /// The first subject token: `data`, `plugins`, `connector` or `communication`.
    pub fn domain(self) -> &'static str {
        match self {
            EventKind::Data { .. } | EventKind::PersonMerged | EventKind::PersonUnmerged => "data",
            EventKind::Plugin(_) => "plugins",
            EventKind::Sync(_) => "connector",
            EventKind::Communication(_) => "communication",
        }
    }

    /// The PascalCase event name (`PersonCreated`).
    pub fn name(self) -> String {
        match self {
            EventKind::Data { entity, change } => format!("{}{}", entity.pascal(), change.as_str()),
            EventKind::PersonMerged => "PersonMerged".into(),
            EventKind::PersonUnmerged => "PersonUnmerged".into(),
            EventKind::Plugin(e) => format!("Plugin{e:?}"),
            EventKind::Sync(e) => format!("Sync{e:?}"),
            EventKind::Communication(e) => format!("{e:?}"),
        }
    }

    /// The subject without any prefix, which is also the envelope's `type`: `data.PersonCreated`.
    pub fn subject(self) -> String {
        format!("{}.{}", self.domain(), self.name())
    }

    /// Finds the event type of an envelope `type` or an unprefixed subject.
    pub fn parse(subject: &str) -> Option<EventKind> {
        EventKind::all()
            .into_iter()
            .find(|k| k.subject() == subject)
    }

    /// The JetStream stream that keeps events of this type.
    pub fn stream(self) -> StreamKey {
        match self {
            EventKind::Data { .. } | EventKind::PersonMerged | EventKind::PersonUnmerged => {
                StreamKey::DataEvents
            }
            EventKind::Plugin(_) => StreamKey::PluginEvents,
            EventKind::Sync(_) => StreamKey::ConnectorEvents,
            EventKind::Communication(_) => StreamKey::Communication,
        }
    }

    /// The one service that publishes events of this type. Its outbox publisher drains only
    /// these from the outbox the services share, and in a deployment only its NATS user may
    /// publish them (deploy/nats-server.conf).
    pub fn emitter(self) -> ServiceName {
        match self {
            EventKind::Data { .. } | EventKind::PersonMerged | EventKind::PersonUnmerged => {
                ServiceName::Etl
            }
            EventKind::Plugin(_) => ServiceName::PluginManager,
            EventKind::Sync(_) => ServiceName::Connector,
            EventKind::Communication(_) => ServiceName::Channel,
        }
    }

    /// The name of the payload type carried in the envelope's `data`.
    pub fn payload_name(self) -> &'static str {
        match self {
            EventKind::Data {
                change: DataChange::Deleted,
                ..
            } => "EntityDeleted",
            EventKind::Data { entity, .. } => entity.pascal(),
            EventKind::PersonMerged => "PersonMerged",
            EventKind::PersonUnmerged => "PersonUnmerged",
            EventKind::Plugin(_) => "PluginLifecycle",
            EventKind::Sync(_) => "SyncLifecycle",
            EventKind::Communication(CommunicationEvent::MessageReceived) => "MessageReceived",
            EventKind::Communication(_) => "MessageDelivery",
        }
    }

    /// One sentence on when the event is published, for the catalog.
    pub fn description(self) -> String {
        match self {
            EventKind::Data { entity, change } => match change {
                DataChange::Created => format!(
                    "A new {} was stored; `data` is the whole normalised entity.",
                    entity.as_str().replace('_', " ")
                ),
                DataChange::Updated => format!(
                    "A stored {}'s content changed; `data` is the whole entity after the change.",
                    entity.as_str().replace('_', " ")
                ),
                DataChange::Deleted => format!(
                    "The source of a {} deleted it; the row keeps `deleted_at`.",
                    entity.as_str().replace('_', " ")
                ),
            },
            EventKind::PersonMerged => {
                "Two people are now one: they share an e-mail address or phone number and their names match, or a person merged them by hand; `data` names both ids, carries the kept person and the evidence (the rule that fired, the identifier, the source records on each side, who merged by hand). A person found to be someone already known in the very batch that brings them in was never a person of their own, and is not announced as created: `merged_id` may then be an id no earlier event named. Treat it as another name of `kept_id` (delete it where you keep it, if you do), and take the person from `data`.".into()
            }
            EventKind::PersonUnmerged => {
                "Source records of a person were split off into another person: a person unmerged them, or the identifier that joined them turned out to be shared by people whose names differ. `data` names the person split (`person_id`, announced again as updated, or deleted if nothing is left) and the person the records now make (`split_id`, announced as created or updated), the records that moved and why. Later syncs never merge records a person decided apart.".into()
            }
            EventKind::Plugin(PluginEvent::ReconnectNeeded) => {
                "A plugin instance's OAuth grant is gone: a person must connect it again.".into()
            }
            EventKind::Plugin(e) => format!("A plugin instance was {}.", format!("{e:?}").to_lowercase()),
            EventKind::Sync(SyncEvent::Progress) => {
                "Heartbeat of a running sync, with item counts and rate.".into()
            }
            EventKind::Sync(e) => format!("A connector sync {}.", format!("{e:?}").to_lowercase()),
            EventKind::Communication(CommunicationEvent::MessageReceived) => {
                "A verified inbound message was handled by its channel plugin.".into()
            }
            EventKind::Communication(CommunicationEvent::MessageSent) => {
                "The provider accepted an outbound message.".into()
            }
            EventKind::Communication(CommunicationEvent::DeliveryFailed) => {
                "An outbound message could not be delivered after its retries.".into()
            }
            EventKind::Communication(CommunicationEvent::DeliveryStatusChanged) => {
                "A provider reported a new delivery status for a sent message.".into()
            }
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject())
    }
}

/// Payload of `data.<Entity>Deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntityDeleted {
    /// The deleted entity's id.
    pub id: Uuid,
    /// Its type.
    pub entity_type: EntityType,
    /// When Tributary recorded the deletion.
    pub deleted_at: DateTime<Utc>,
}

/// Payload of `data.PersonMerged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonMerged {
    /// The person that remains.
    pub kept_id: Uuid,
    /// The person folded into it; later items for it land on `kept_id`. It may be an id no
    /// earlier event named: a person merged in the batch that brings them in is never
    /// announced as created (they never were a person of their own).
    pub merged_id: Uuid,
    /// The kept person after the merge.
    pub person: Person,
    /// Why they were merged. Absent from events written before merges kept their evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<MergeEvidence>,
}

/// What merged two people: the rule that fired and what it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MergeEvidence {
    /// The rule: `shared_email`, `shared_phone` (both carry the identifier, and their names
    /// match) or `manual` (a person merged them).
    pub rule: MergeRule,
    /// The normalised address or number both carry; absent for a manual merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The kept person's source records that carry it (or that a person chose).
    pub kept_sources: Vec<SourceRef>,
    /// The merged person's.
    pub merged_sources: Vec<SourceRef>,
    /// Who merged by hand (the admin token's name, `cli`); absent for an automatic merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When.
    pub merged_at: DateTime<Utc>,
}

/// Which rule merged two people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeRule {
    /// They share a normalised e-mail address, and their names match.
    SharedEmail,
    /// They share a phone number, and their names match.
    SharedPhone,
    /// A person said they are one.
    Manual,
}

impl MergeRule {
    /// As stored and sent (`shared_email`).
    pub fn as_str(self) -> &'static str {
        match self {
            MergeRule::SharedEmail => "shared_email",
            MergeRule::SharedPhone => "shared_phone",
            MergeRule::Manual => "manual",
        }
    }
}

/// A source record of a person: the instance it came from and its id there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct SourceRef {
    /// The plugin instance.
    pub instance_id: String,
    /// The record's id in that instance.
    pub external_id: String,
}

/// Payload of `data.PersonUnmerged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonUnmerged {
    /// The person the records were split from.
    pub person_id: Uuid,
    /// The person they make now: new (announced as created) or one they joined.
    pub split_id: Uuid,
    /// The source records that moved.
    pub moved_sources: Vec<SourceRef>,
    /// Why: `unmerged` (a person split them), `decided_apart` (a person rejected the pair),
    /// `names_differ` or `shared_identifier` (what joined them no longer does).
    pub reason: String,
    /// Who split them by hand; absent when the ETL did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When.
    pub unmerged_at: DateTime<Utc>,
}

/// State of a plugin instance, as the plugin manager records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Installed, not yet enabled.
    Installed,
    /// Running.
    Enabled,
    /// Stopped by a person.
    Disabled,
    /// Stopped by an error.
    Failed,
    /// Its OAuth 2.0 grant is gone: it keeps running (a channel still takes webhooks), its
    /// syncs are not scheduled and say "reconnect needed" until a person connects it again.
    NeedsReconnect,
    /// Removed.
    Uninstalled,
}

/// Payload of every `plugins.*` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginLifecycle {
    /// The plugin's reverse-DNS id.
    pub plugin_id: String,
    /// The instance concerned.
    pub instance_id: String,
    /// The plugin's type (`connector`, `channel`, `operator`).
    pub plugin_type: String,
    /// The plugin version the instance runs after the change.
    pub version: String,
    /// The instance's state after the change.
    pub state: InstanceState,
    /// Who made the change, as the plugin manager established it (the audit log's actor: an
    /// admin token's name, `nats:admin`, `nats:connector`, `oauth-broker`), never what a
    /// request claims.
    pub actor: String,
    /// The name the request claimed (`cli:alice`), for a change asked over NATS: only a
    /// claim, as NATS does not tell the plugin manager who sent a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_actor: Option<String>,
    /// Why, for `PluginFailed`: the error; for `PluginReconnectNeeded`: the provider's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a sync was asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// From the stored cursor.
    Incremental,
    /// Everything, ignoring the cursor.
    Full,
    /// Everything since a date.
    Backfill,
}

impl SyncMode {
    /// Every mode.
    pub const ALL: [SyncMode; 3] = [SyncMode::Incremental, SyncMode::Full, SyncMode::Backfill];

    /// Its name, as serialised: `incremental`, `full`, `backfill`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Incremental => "incremental",
            SyncMode::Full => "full",
            SyncMode::Backfill => "backfill",
        }
    }

    /// The mode named `name` (as [`SyncMode::as_str`] gives it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Payload of every `connector.Sync*` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncLifecycle {
    /// The connector instance.
    pub instance_id: String,
    /// This sync run.
    pub sync_id: Uuid,
    /// How it was asked to run.
    pub mode: SyncMode,
    /// Items published so far.
    pub items: u64,
    /// Items per second so far.
    pub rate: f64,
    /// Errors met so far.
    pub errors: u64,
    /// The error that ended a failed sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Payload of `communication.MessageReceived`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageReceived {
    /// The channel plugin's short name (`twilio-sms`, `slack`).
    pub channel: String,
    /// The channel instance the webhook was addressed to.
    pub instance_id: String,
    /// The provider's own id for the message; duplicates share it.
    pub provider_message_id: String,
    /// The provider's id for the conversation or thread.
    pub conversation_id: String,
    /// Who sent it (phone number, user id, address).
    pub from: String,
    /// Who it was sent to.
    pub to: Vec<String>,
    /// The message text.
    pub text: String,
    /// When the provider received it.
    pub received_at: DateTime<Utc>,
}

/// Payload of `communication.MessageSent`, `…DeliveryFailed` and `…DeliveryStatusChanged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageDelivery {
    /// The channel plugin's short name.
    pub channel: String,
    /// The channel instance that sent it.
    pub instance_id: String,
    /// Tributary's id for the outbound message.
    pub message_id: Uuid,
    /// The provider's id, once it has given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// The recipient.
    pub to: String,
    /// The provider's status word (`queued`, `sent`, `delivered`, `failed`).
    pub status: String,
    /// Why delivery failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {

    #[test]
    fn sync_mode_names_are_their_serialised_names() {
        for mode in SyncMode::ALL {
            let serialised = serde_json::to_value(mode).unwrap();
            assert_eq!(serialised, mode.as_str());
            assert_eq!(SyncMode::from_name(mode.as_str()), Some(mode));
        }
        assert_eq!(SyncMode::from_name("sometimes"), None);
    }

    use super::*;

    #[test]
    fn every_event_subject_is_unique_and_parses_back() {
        let all = EventKind::all();
        let mut subjects: Vec<String> = all.iter().map(|k| k.subject()).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), all.len());
        for kind in all {
            assert_eq!(EventKind::parse(&kind.subject()), Some(kind));
        }
        assert_eq!(EventKind::parse("data.Nothing"), None);
    }

    #[test]
    fn names_follow_domain_dot_pascal_case() {
        assert_eq!(EventKind::PersonMerged.subject(), "data.PersonMerged");
        assert_eq!(
            EventKind::Data {
                entity: EntityType::CalendarEvent,
                change: DataChange::Deleted
            }
            .subject(),
            "data.CalendarEventDeleted"
        );
        assert_eq!(
            EventKind::Plugin(PluginEvent::Installed).subject(),
            "plugins.PluginInstalled"
        );
        assert_eq!(
            EventKind::Sync(SyncEvent::Started).subject(),
            "connector.SyncStarted"
        );
        assert_eq!(
            EventKind::Communication(CommunicationEvent::MessageReceived).subject(),
            "communication.MessageReceived"
        );
    }
}
