//! The event envelope every Tributary event travels in.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::EventKind;

/// The header JetStream uses to drop a duplicate publish.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// The header that carries the envelope's `type`, so a subscriber can route before parsing.
pub const EVENT_TYPE_HEADER: &str = "Tributary-Event-Type";

/// Who published an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventSource {
    /// The publishing service (`etl`, `channel`).
    pub service: String,
    /// The plugin instance the event concerns, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl EventSource {
    /// A source with a service name and an optional plugin instance.
    pub fn new(service: impl Into<String>, instance: Option<String>) -> Self {
        Self {
            service: service.into(),
            instance,
        }
    }
}

/// An event: id, type, source, time, the entity it is about, and its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope<T> {
    /// UUIDv7: unique and time-ordered. Also the `Nats-Msg-Id` header.
    pub id: Uuid,
    /// The event type, which is its unprefixed subject: `data.PersonCreated`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who published it.
    pub source: EventSource,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The id of the entity it is about, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<Uuid>,
    /// The payload; its type is given per event in the catalog.
    pub data: T,
}

/// An envelope could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not a JSON envelope with this payload type.
    #[error("malformed event envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The payload could not be serialised.
    #[error("event payload cannot be serialised: {0}")]
    Unserialisable(#[source] serde_json::Error),
}

impl<T> Envelope<T> {
    /// A new envelope with a fresh UUIDv7 id, stamped now.
    pub fn new(kind: EventKind, source: EventSource, entity_id: Option<Uuid>, data: T) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: kind.subject(),
            source,
            time: Utc::now(),
            entity_id,
            data,
        }
    }

    /// The event type, when it is one Tributary knows.
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.event_type)
    }

    /// The NATS headers to publish this envelope with: `Nats-Msg-Id` (its id, so JetStream
    /// drops a duplicate), its type, and the current span's `traceparent`.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID_HEADER, self.id.to_string().as_str());
        headers.insert(EVENT_TYPE_HEADER, self.event_type.as_str());
        crate::trace_context::inject_current(&mut headers);
        headers
    }
}

impl<T: Serialize> Envelope<T> {
    /// The JSON bytes to publish.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        serde_json::to_vec(self).map_err(EnvelopeError::Unserialisable)
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Reads an envelope from the bytes of a NATS message.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        serde_json::from_slice(bytes).map_err(EnvelopeError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{DataChange, EventKind};
    use crate::model::{EntityType, Person, PersonFields};

    #[test]
    fn an_envelope_round_trips_through_bytes_and_headers_carry_its_id() {
        let kind = EventKind::Data {
            entity: EntityType::Person,
            change: DataChange::Created,
        };
        let person = Person {
            id: Uuid::now_v7(),
            fields: PersonFields {
                display_name: "Grace Hopper".into(),
                emails: vec!["grace@navy.mil".into()],
                ..Default::default()
            },
            created_at: Utc::now(),
            updated_at: Utc::now(),
            deleted_at: None,
            sources: Some(vec!["carddav-1".into()]),
        };
        let envelope = Envelope::new(
            kind,
            EventSource::new("etl", Some("carddav-1".into())),
            Some(person.id),
            person.clone(),
        );
        assert_eq!(envelope.id.get_version_num(), 7);

        let bytes = envelope.to_bytes().unwrap();
        let back: Envelope<Person> = Envelope::from_slice(&bytes).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.kind(), Some(kind));

        let headers = envelope.headers();
        assert_eq!(
            headers.get(MSG_ID_HEADER).map(|v| v.as_str()),
            Some(envelope.id.to_string().as_str())
        );
        assert_eq!(
            headers.get(EVENT_TYPE_HEADER).map(|v| v.as_str()),
            Some("data.PersonCreated")
        );
    }

    #[test]
    fn malformed_bytes_are_named_as_such() {
        let err = Envelope::<Person>::from_slice(b"{\"id\": 3}").unwrap_err();
        assert!(
            err.to_string().starts_with("malformed event envelope"),
            "{err}"
        );
    }
}
