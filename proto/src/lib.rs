//! The Tributary contract.
//!
//! Everything two services must agree on lives here and nowhere else: the NATS subjects
//! ([`subjects`]), the event envelope ([`envelope`]) and every event type ([`events`]), the
//! unified model ([`model`]) and the connector item ([`item`]), the plugin manifest
//! ([`manifest`]) with its OAuth 2.0 section and provider catalog ([`oauth`]), the checks of
//! what a plugin was granted ([`grants`]), the typed request
//! catalog with its error codes and reply shape ([`requests`]), the JetStream
//! streams and consumers ([`streams`]), and the trace context that crosses NATS in headers
//! ([`trace_context`]), and the headers of dead letters ([`dead_letter`]), and the lines of an instance's timeline
//! ([`timeline`]). JSON Schemas for
//! every payload are generated from these types into `proto/schemas/` ([`contract`]).

pub mod contract;
pub mod dead_letter;
pub mod envelope;
pub mod events;
pub mod grants;
pub mod item;
pub mod manifest;
pub mod model;
pub mod oauth;
pub mod redact;
pub mod requests;
pub mod streams;
pub mod subjects;
pub mod timeline;
pub mod trace_context;

pub use envelope::{Envelope, EnvelopeError, EventSource};
pub use events::EventKind;
pub use grants::{Grants, PermissionDenied};
pub use item::{ConnectorItem, ItemOperation};
pub use manifest::{ManifestErrors, Permission, PluginManifest, PluginType};
pub use model::EntityType;
pub use requests::{ApiError, ErrorCode, NatsReply, Request};
pub use subjects::{ServiceName, Subjects};
