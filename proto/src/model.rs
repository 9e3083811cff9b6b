//! The unified model: what every connector's items become.
//!
//! Each entity is a [`Record`] of its fields: a stable id, the typed fields people search and
//! filter on, `extra` for everything else (JSONB in PostgreSQL), and the three timestamps.
//! A connector item's `data` is the fields part alone (`PersonFields`, …): the ETL gives it an
//! id and timestamps.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The six entity types of the unified model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    /// A person: contact, sender, attendee.
    Person,
    /// A company or team.
    Organization,
    /// A thread of messages.
    Conversation,
    /// One message: e-mail, chat, SMS.
    Message,
    /// A calendar event.
    CalendarEvent,
    /// A document: file, note, page.
    Document,
}

impl EntityType {
    /// All six, in catalog order.
    pub const ALL: [EntityType; 6] = [
        EntityType::Person,
        EntityType::Organization,
        EntityType::Conversation,
        EntityType::Message,
        EntityType::CalendarEvent,
        EntityType::Document,
    ];

    /// The snake_case name used in items, tables and filters (`calendar_event`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Person => "person",
            EntityType::Organization => "organization",
            EntityType::Conversation => "conversation",
            EntityType::Message => "message",
            EntityType::CalendarEvent => "calendar_event",
            EntityType::Document => "document",
        }
    }

    /// The PascalCase name used in event names (`CalendarEvent`).
    pub fn pascal(self) -> &'static str {
        match self {
            EntityType::Person => "Person",
            EntityType::Organization => "Organization",
            EntityType::Conversation => "Conversation",
            EntityType::Message => "Message",
            EntityType::CalendarEvent => "CalendarEvent",
            EntityType::Document => "Document",
        }
    }

    /// The plural used in `data:read:<entity>` and `data:write:<entity>` permissions.
    pub fn plural(self) -> &'static str {
        match self {
            EntityType::Person => "persons",
            EntityType::Organization => "organizations",
            EntityType::Conversation => "conversations",
            EntityType::Message => "messages",
            EntityType::CalendarEvent => "calendar_events",
            EntityType::Document => "documents",
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given is not one of the six entity types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity type `{0}`; expected one of person, organization, conversation, message, calendar_event, document")]
pub struct UnknownEntityType(pub String);

impl FromStr for EntityType {
    type Err = UnknownEntityType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityType::ALL
            .into_iter()
            .find(|e| e.as_str() == s || e.plural() == s)
            .ok_or_else(|| UnknownEntityType(s.to_owned()))
    }
}

/// A stored entity: id, its fields, and when it was created, last changed and deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Record<F> {
    /// Stable id; survives updates, and a merge keeps one of the two.
    pub id: Uuid,
    /// The entity's own fields.
    #[serde(flatten)]
    pub fields: F,
    /// When Tributary first stored it.
    pub created_at: DateTime<Utc>,
    /// When its content last changed.
    pub updated_at: DateTime<Utc>,
    /// When its source deleted it.
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The plugin instances that hold a live (not deleted) record of it, in name order. The
    /// ETL sets it on every person it announces: a person met through several sources keeps
    /// living when one of them deletes its record, and this is how a subscriber learns that
    /// the person no longer comes from there. Absent on other entities (each comes from the
    /// one instance that the event's `source` names) and in rows read from PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
}

/// Anything a source said that has no typed field, kept as JSON.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// The fields of a person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonFields {
    /// How the person is shown: "Ada Lovelace".
    pub display_name: String,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// E-mail addresses, trimmed and lower-cased.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Phone numbers in E.164.
    #[serde(default)]
    pub phones: Vec<String>,
    /// The organisation they belong to, by name.
    #[serde(default)]
    pub organization: Option<String>,
    /// Job title.
    #[serde(default)]
    pub title: Option<String>,
    /// Everything else.
    #[serde(default)]
    pub extra: Extra,
}

/// The fields of an organisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationFields {
    /// Its name.
    pub name: String,
    /// Its internet domains, lower-cased.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Everything else.
    #[serde(default)]
    pub extra: Extra,
}

/// The fields of a conversation (a thread, a chat, an SMS exchange).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationFields {
    /// Its subject or channel name, where it has one.
    #[serde(default)]
    pub title: Option<String>,
    /// The medium: `email`, `sms`, `slack`, `telegram`, `whatsapp`, `webhook`.
    pub channel: String,
    /// Addresses of the participants (e-mail, E.164, user ids).
    #[serde(default)]
    pub participants: Vec<String>,
    /// Everything else.
    #[serde(default)]
    pub extra: Extra,
}

/// The fields of a message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageFields {
    /// The external id of the conversation it belongs to, at the same source.
    #[serde(default)]
    pub conversation_external_id: Option<String>,
    /// The conversation's Tributary id, once resolved.
    #[serde(default)]
    pub conversation_id: Option<Uuid>,
    /// Who sent it.
    pub sender: String,
    /// Who it went to.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Subject line, for e-mail.
    #[serde(default)]
    pub subject: Option<String>,
    /// The body as plain text, for search.
    #[serde(default)]
    pub body_text: String,
    /// The body as the source sent it, when that was HTML.
    #[serde(default)]
    pub body_html: Option<String>,
    /// When it was sent, in UTC.
    pub sent_at: DateTime<Utc>,
    /// The time zone or offset the source gave with `sent_at`.
    #[serde(default)]
    pub original_timezone: Option<String>,
    /// Everything else.
    #[serde(default)]
    pub extra: Extra,
}

/// The fields of a calendar event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarEventFields {
    /// Its title (SUMMARY).
    pub title: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Where it takes place.
    #[serde(default)]
    pub location: Option<String>,
    /// Start, in UTC.
    pub starts_at: DateTime<Utc>,
    /// End, in UTC.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// The time zone the source gave (`Europe/Paris`), kept so it can be shown as meant.
    #[serde(default)]
    pub original_timezone: Option<String>,
    /// Whether it lasts whole days.
    #[serde(default)]
    pub all_day: bool,
    /// The recurrence rule as the source gave it (`FREQ=WEEKLY;BYDAY=MO`).
    #[serde(default)]
    pub recurrence: Option<String>,
    /// Who organises it.
    #[serde(default)]
    pub organizer: Option<String>,
    /// Who is invited.
    #[serde(default)]
    pub attendees: Vec<String>,
    /// Everything else.
    #[serde(default)]
    pub extra: Extra,
}

/// The fields of a document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentFields {
    /// Its title.
    pub title: String,
    /// Where it lives at its source (a path, a URL).
    #[serde(default)]
    pub path: Option<String>,
    /// Its media type (`text/markdown`).
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Its text content, for search.
    #[serde(default)]
    pub content: String,
    /// When the source last modified it.
    #[serde(default)]
    pub modified_at: Option<DateTime<Utc>>,
    /// A hash of its content, to tell real changes from touched files.
    #[serde(default)]
    pub content_hash: Option<String>,
    /// Everything else.
    #[serde(default)]
    pub extra: Extra,
}

/// A stored person.
pub type Person = Record<PersonFields>;
/// A stored organisation.
pub type Organization = Record<OrganizationFields>;
/// A stored conversation.
pub type Conversation = Record<ConversationFields>;
/// A stored message.
pub type Message = Record<MessageFields>;
/// A stored calendar event.
pub type CalendarEvent = Record<CalendarEventFields>;
/// A stored document.
pub type Document = Record<DocumentFields>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_types_parse_from_singular_and_plural() {
        for e in EntityType::ALL {
            assert_eq!(e.as_str().parse::<EntityType>(), Ok(e));
            assert_eq!(e.plural().parse::<EntityType>(), Ok(e));
        }
        let err = "people".parse::<EntityType>().unwrap_err();
        assert!(err.to_string().contains("`people`"));
    }

    #[test]
    fn a_record_flattens_its_fields() {
        let person = Person {
            id: Uuid::nil(),
            fields: PersonFields {
                display_name: "Ada".into(),
                ..Default::default()
            },
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            deleted_at: None,
            sources: None,
        };
        let json = serde_json::to_value(&person).unwrap();
        assert_eq!(json["display_name"], "Ada");
        assert!(json.get("sources").is_none(), "absent unless known: {json}");
        let back: Person = serde_json::from_value(json).unwrap();
        assert_eq!(back, person);
    }
}
