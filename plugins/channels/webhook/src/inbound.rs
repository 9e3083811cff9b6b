//! Inbound deliveries: the signature check and the JSON body Tributary accepts.
//!
//! The body follows Standard Webhooks' recommended structure, `type`, `timestamp` and `data`:
//!
//! ```json
//! {
//!   "type": "message.received",
//!   "timestamp": "2024-05-01T12:00:00Z",
//!   "data": {
//!     "id": "m-1",
//!     "from": { "address": "alice@example.com", "name": "Alice" },
//!     "to": [{ "address": "support" }],
//!     "text": "Hello",
//!     "conversation_id": "ticket-42",
//!     "conversation_title": "Ticket 42",
//!     "sent_at": "2024-05-01T11:59:58Z"
//!   }
//! }
//! ```
//!
//! and `{"type": "message.status", "data": {"id", "status", "error"?}}` for the fate of a
//! message sent earlier. Any other `type` is ignored.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tributary_plugin_sdk::signatures::{standard_webhooks, DEFAULT_TOLERANCE};
use tributary_plugin_sdk::{
    DeliveryStatusUpdate, InboundMessage, IncomingEvent, IncomingWebhook, Participant,
    PluginContext, PluginError, WebhookRejection, WebhookVerdict,
};

use crate::config::Config;

/// The event type of a message someone sent.
pub const MESSAGE_RECEIVED: &str = "message.received";
/// The event type of a delivery status of a message Tributary sent.
pub const MESSAGE_STATUS: &str = "message.status";

/// Checks the Standard Webhooks signature and timestamp; the delivery id is `webhook-id`.
pub(crate) fn verify(
    ctx: &PluginContext,
    request: &IncomingWebhook,
) -> Result<WebhookVerdict, WebhookRejection> {
    // Misconfiguration is the operator's problem, but the request cannot be authenticated
    // without a key either way: refuse it, naming the field and never its value.
    let config = Config::of(ctx).map_err(|e| {
        let field = match e {
            PluginError::Config { field, .. } => field,
            _ => "secret".to_owned(),
        };
        WebhookRejection::unauthorized(format!(
            "the channel's config is unusable (field `{field}`): no delivery can be verified"
        ))
    })?;
    let key = config.key().map_err(|_| {
        WebhookRejection::unauthorized(
            "the channel's secret is unusable: it is not `whsec_` followed by Base64, so no \
             delivery can be verified",
        )
    })?;
    let id = request.header(standard_webhooks::ID_HEADER);
    standard_webhooks::verify(
        &key,
        id,
        request.header(standard_webhooks::TIMESTAMP_HEADER),
        request.header(standard_webhooks::SIGNATURE_HEADER),
        &request.body,
        request.received_at,
        DEFAULT_TOLERANCE,
    )?;
    let id = id.map(str::trim).unwrap_or_default();
    if id.is_empty() {
        return Err(WebhookRejection::bad_request(
            "the `webhook-id` header is empty",
        ));
    }
    Ok(WebhookVerdict::Accept {
        delivery_id: id.to_owned(),
    })
}

/// The envelope every delivery shares.
#[derive(Debug, Deserialize)]
struct Envelope {
    /// `message.received`, `message.status`, or anything else (ignored).
    #[serde(rename = "type")]
    kind: String,
    /// When the event happened, by the sender's clock.
    #[serde(default)]
    timestamp: Option<Timestamp>,
    /// The event's own fields.
    #[serde(default)]
    data: Option<Value>,
}

/// An RFC 3339 time, or seconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
enum Timestamp {
    Text(DateTime<Utc>),
    Unix(i64),
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 time or Unix seconds")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                DateTime::parse_from_rfc3339(v)
                    .map(|at| Timestamp::Text(at.with_timezone(&Utc)))
                    .map_err(|e| E::custom(format!("`{v}` is not an RFC 3339 time: {e}")))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::Unix(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp::Unix)
                    .map_err(|_| E::custom("Unix seconds out of range"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Timestamp {
    fn at(self) -> Option<DateTime<Utc>> {
        match self {
            Timestamp::Text(at) => Some(at),
            Timestamp::Unix(seconds) => DateTime::from_timestamp(seconds, 0),
        }
    }
}

/// A sender or recipient: `{"address", "name"?}`, or the address alone as a string.
#[derive(Debug)]
enum Address {
    Bare(String),
    Full(FullAddress),
}

/// The object form of an [`Address`].
#[derive(Debug, Deserialize)]
struct FullAddress {
    address: String,
    #[serde(default)]
    name: Option<String>,
}

impl<'de> Deserialize<'de> for Address {
    // By hand rather than `untagged`, so that a missing `address` is reported by name.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Address;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address string or an object with `address` and `name`")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Address, E> {
                Ok(Address::Bare(v.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Address, A::Error> {
                FullAddress::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Address::Full)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl From<Address> for Participant {
    fn from(address: Address) -> Self {
        match address {
            Address::Bare(address) => Participant::new(address),
            Address::Full(FullAddress { address, name }) => Participant {
                address,
                display_name: name.filter(|n| !n.is_empty()),
            },
        }
    }
}

/// `data` of `message.received`.
#[derive(Debug, Deserialize)]
struct ReceivedData {
    id: String,
    from: Address,
    #[serde(default)]
    to: Vec<Address>,
    text: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    conversation_title: Option<String>,
    #[serde(default)]
    sent_at: Option<Timestamp>,
}

/// `data` of `message.status`.
#[derive(Debug, Deserialize)]
struct StatusData {
    id: String,
    status: String,
    #[serde(default)]
    error: Option<String>,
}

/// What the delivery carries; a pure function of the request.
pub(crate) fn parse(request: &IncomingWebhook) -> Result<Vec<IncomingEvent>, PluginError> {
    let raw = request.json_body()?;
    let envelope: Envelope = from_value(&raw, "", "the webhook body")?;
    let timestamp = envelope.timestamp.and_then(Timestamp::at);
    let what = format!("the `{}` webhook", envelope.kind);
    let data = || {
        envelope
            .data
            .as_ref()
            .ok_or_else(|| PluginError::Other(format!("{what} has no `data`")))
    };
    match envelope.kind.as_str() {
        MESSAGE_RECEIVED => {
            let data: ReceivedData = from_value(data()?, "data", &what)?;
            require(&data.id, "data.id", &what)?;
            let sender = Participant::from(data.from);
            require(&sender.address, "data.from.address", &what)?;
            Ok(vec![IncomingEvent::Message(InboundMessage {
                provider_message_id: data.id,
                conversation_id: data.conversation_id.filter(|c| !c.is_empty()),
                conversation_title: data.conversation_title.filter(|t| !t.is_empty()),
                sender,
                recipients: data.to.into_iter().map(Participant::from).collect(),
                text: data.text,
                sent_at: data
                    .sent_at
                    .and_then(Timestamp::at)
                    .or(timestamp)
                    .unwrap_or(request.received_at),
                raw,
            })])
        }
        MESSAGE_STATUS => {
            let data: StatusData = from_value(data()?, "data", &what)?;
            require(&data.id, "data.id", &what)?;
            require(&data.status, "data.status", &what)?;
            Ok(vec![IncomingEvent::DeliveryStatus(DeliveryStatusUpdate {
                provider_message_id: data.id,
                status: data.status,
                error: data.error.filter(|e| !e.is_empty()),
                at: timestamp.unwrap_or(request.received_at),
            })])
        }
        _ => Ok(Vec::new()),
    }
}

fn require(value: &str, field: &str, what: &str) -> Result<(), PluginError> {
    if value.trim().is_empty() {
        Err(PluginError::Other(format!("{what} has an empty `{field}`")))
    } else {
        Ok(())
    }
}

/// Deserializes `value`, naming the failing field by its full path under `prefix`.
fn from_value<T: DeserializeOwned>(
    value: &Value,
    prefix: &str,
    what: &str,
) -> Result<T, PluginError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let mut field: Vec<&str> = Vec::new();
        if !prefix.is_empty() {
            field.push(prefix);
        }
        if path != "." {
            field.push(&path);
        }
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        match missing {
            Some(name) => {
                field.push(name);
                PluginError::Other(format!("{what} has no `{}`", field.join(".")))
            }
            None if field.is_empty() => {
                PluginError::Other(format!("{what} is unreadable: {message}"))
            }
            None => PluginError::Other(format!(
                "{what} has an unreadable `{}`: {message}",
                field.join(".")
            )),
        }
    })
}
