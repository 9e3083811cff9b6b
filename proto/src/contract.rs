//! The generated face of the contract: JSON Schemas in `proto/schemas/` and the catalog of
//! events and requests in `docs/events.md`.
//!
//! Both are generated from the Rust types by `cargo run -p tributary-proto --bin
//! generate-contract`, and a test fails when the committed files differ from what the types
//! say, so a Python or Go subscriber can trust them. The same command writes the guest SDKs'
//! unified-model field types from the item-data schemas ([`guest_types`]).

pub mod guest_types;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use schemars::{schema_for, JsonSchema};

use crate::envelope::Envelope;
use crate::events::{
    EntityDeleted, EventKind, MessageDelivery, MessageReceived, PersonMerged, PersonUnmerged,
    PluginLifecycle, SyncLifecycle,
};
use crate::item::ConnectorItem;
use crate::manifest::PluginManifest;
use crate::model::{self, EntityType};
use crate::requests::{self, CatalogEntry, ErrorCode};
use crate::streams::{ConsumerKey, DeliveryLimits, StreamKey};
use crate::subjects::Subjects;
use crate::timeline::TimelineEntry;
use guest_types::{GuestModel, UnsupportedSchema};

/// The command that regenerates every generated file.
pub const REGENERATE: &str = "cargo run -p tributary-proto --bin generate-contract";

fn pretty<T: JsonSchema>() -> String {
    let schema = schema_for!(T);
    // A schema is plain JSON; serialising it cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn envelope_schema(kind: EventKind) -> String {
    match kind.payload_name() {
        "Person" => pretty::<Envelope<model::Person>>(),
        "Organization" => pretty::<Envelope<model::Organization>>(),
        "Conversation" => pretty::<Envelope<model::Conversation>>(),
        "Message" => pretty::<Envelope<model::Message>>(),
        "CalendarEvent" => pretty::<Envelope<model::CalendarEvent>>(),
        "Document" => pretty::<Envelope<model::Document>>(),
        "EntityDeleted" => pretty::<Envelope<EntityDeleted>>(),
        "PersonMerged" => pretty::<Envelope<PersonMerged>>(),
        "PersonUnmerged" => pretty::<Envelope<PersonUnmerged>>(),
        "PluginLifecycle" => pretty::<Envelope<PluginLifecycle>>(),
        "SyncLifecycle" => pretty::<Envelope<SyncLifecycle>>(),
        "MessageReceived" => pretty::<Envelope<MessageReceived>>(),
        _ => pretty::<Envelope<MessageDelivery>>(),
    }
}

fn item_data_schema(entity: EntityType) -> schemars::Schema {
    match entity {
        EntityType::Person => schema_for!(model::PersonFields),
        EntityType::Organization => schema_for!(model::OrganizationFields),
        EntityType::Conversation => schema_for!(model::ConversationFields),
        EntityType::Message => schema_for!(model::MessageFields),
        EntityType::CalendarEvent => schema_for!(model::CalendarEventFields),
        EntityType::Document => schema_for!(model::DocumentFields),
    }
}

/// The guest SDKs' model types, read from the item-data schemas of the six entity types.
pub fn guest_model() -> Result<GuestModel, UnsupportedSchema> {
    let schemas: Vec<_> = EntityType::ALL
        .into_iter()
        .map(|entity| (entity, item_data_schema(entity).to_value()))
        .collect();
    GuestModel::from_item_data(&schemas)
}

/// The schema file of an event's envelope, relative to `proto/schemas/`.
pub fn event_schema_path(kind: EventKind) -> String {
    format!("events/{}.json", kind.subject())
}

/// The schema file of a connector item's `data` for an entity type, relative to
/// `proto/schemas/`.
pub fn item_data_schema_path(entity: EntityType) -> String {
    format!("item-data/{}.json", entity.as_str())
}

/// The schema file of a request's body, relative to `proto/schemas/`
/// (`requests/plugins.install.request.json`).
pub fn request_schema_path(entry: &CatalogEntry) -> String {
    format!("requests/{}.request.json", request_file_stem(entry))
}

/// The schema file of a request's reply envelope, relative to `proto/schemas/`
/// (`requests/plugins.install.reply.json`).
pub fn reply_schema_path(entry: &CatalogEntry) -> String {
    format!("requests/{}.reply.json", request_file_stem(entry))
}

/// A request's subject without a deployment prefix or the instance token.
fn request_file_stem(entry: &CatalogEntry) -> String {
    Subjects::default().request(entry.service, entry.verb)
}

fn schema_text(schema: schemars::Schema) -> String {
    // A schema is plain JSON; serialising it cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Every schema file, by its path relative to `proto/schemas/`.
pub fn schema_files() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for kind in EventKind::all() {
        files.insert(event_schema_path(kind), envelope_schema(kind));
    }
    for entity in EntityType::ALL {
        files.insert(
            item_data_schema_path(entity),
            schema_text(item_data_schema(entity)),
        );
    }
    files.insert("connector-item.json".into(), pretty::<ConnectorItem>());
    files.insert("plugin-manifest.json".into(), pretty::<PluginManifest>());
    files.insert("timeline-entry.json".into(), pretty::<TimelineEntry>());
    for entry in requests::catalog() {
        files.insert(
            request_schema_path(&entry),
            schema_text((entry.request_schema)()),
        );
        files.insert(
            reply_schema_path(&entry),
            schema_text((entry.reply_schema)()),
        );
    }
    files
}

/// The catalog of events and requests, `docs/events.md`.
pub fn event_catalog() -> String {
    let subjects = Subjects::default();
    let mut md = String::new();
    md.push_str("<!-- Generated from proto/ by `");
    md.push_str(REGENERATE);
    md.push_str("`. Do not edit. -->\n");
    md.push_str("# Event and request catalog\n\n");
    md.push_str(
        "Everything services say to each other on NATS: the events they publish (below), the \
         JetStream streams and consumers that carry them, and the requests they answer \
         ([Requests](#requests)) with the error codes a refusal carries \
         ([Error codes](#error-codes)).\n\n",
    );
    md.push_str(
        "Every event is a JSON envelope `{id, type, source, time, entity_id, data}`: `id` is a \
         UUIDv7 and is also the `Nats-Msg-Id` header, `type` is the subject below, and the W3C \
         `traceparent` header carries the trace. Subscribe to `data.*` for every change of the \
         unified model. Each schema validates the whole envelope.\n\n",
    );
    let mut domain = "";
    for kind in EventKind::all() {
        if kind.domain() != domain {
            domain = kind.domain();
            md.push_str(&format!(
                "\n## `{domain}.*`\n\n| subject | payload | stream | schema | when |\n|---|---|---|---|---|\n"
            ));
        }
        md.push_str(&format!(
            "| `{}` | `{}` | `{}` | [schema](../proto/schemas/{}) | {} |\n",
            subjects.event(kind),
            kind.payload_name(),
            kind.stream().base_name(),
            event_schema_path(kind),
            kind.description()
        ));
    }

    md.push_str("\n## Connector items\n\n");
    md.push_str(
        "A connector publishes each item on `connector.items.<instance>` as a \
         [`ConnectorItem`](../proto/schemas/connector-item.json); its `data` is the entity's \
         fields:\n\n| entity_type | data schema |\n|---|---|\n",
    );
    for entity in EntityType::ALL {
        md.push_str(&format!(
            "| `{}` | [{}](../proto/schemas/{}) |\n",
            entity.as_str(),
            entity.pascal(),
            item_data_schema_path(entity)
        ));
    }

    md.push_str("\n## Plugin events\n\n");
    md.push_str(&format!(
        "An event a plugin instance emits (`ctx.emit_event(subject, payload)`, allowed by its \
         `event:publish` grants) is published in that instance's own namespace, `{}`, as an \
         envelope whose `type` is that whole subject, whose `source` (the service that runs \
         the instance, and the instance) the host sets, and whose `data` is the payload. A \
         plugin names only the last part, so no grant reaches a service's subjects, the \
         JetStream API or an inbox. Subscribe to `{}` for every plugin event. They are not kept \
         in a stream.\n",
        subjects.qualify("plugin.<type>.<instance>.<subject>"),
        subjects.all_plugin_events()
    ));

    md.push_str("\n## Timeline lines\n\n");
    md.push_str(&format!(
        "The connector and channel services publish a line of an instance's timeline (a sync \
         ended, a webhook accepted or refused, a message sent or its delivery status, a line \
         the plugin logged) on `{}` (`{}` for the channel service) as a \
         [`TimelineEntry`](../proto/schemas/timeline-entry.json). The `TIMELINE` stream keeps \
         them; the plugin manager stores them and answers \
         `GET /api/v1/instances/<id>/timeline` with them and the instance's audit entries. \
         Lines of one instance and kind beyond a burst of 20, then 2 a second, are counted in \
         the next line's `suppressed` instead of sent. The operator (NATS user `admin`) may \
         subscribe to `{}` to follow every one; they are not exported to your programs' \
         account, as they carry refusal reasons and recipients of every instance.\n",
        subjects.qualify("timeline.connector.<instance>"),
        subjects.qualify("timeline.channel.<instance>"),
        subjects.all_timeline()
    ));

    md.push_str("\n## Streams\n\n| stream | subjects | kept for | default size limit | duplicate window | what |\n|---|---|---|---|---|---|\n");
    for stream in StreamKey::ALL {
        let config = stream.config(&subjects);
        md.push_str(&format!(
            "| `{}` | {} | {} days | {} MiB | {} | {} |\n",
            config.name,
            config
                .subjects
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" "),
            config.max_age.as_secs() / 86_400,
            config.max_bytes / (1024 * 1024),
            human_duration(config.duplicate_window.as_secs()),
            stream.description()
        ));
    }

    md.push_str("\n## Durable consumers\n\n| consumer | stream | subjects | default ack wait | default max deliveries |\n|---|---|---|---|---|\n");
    let limits = DeliveryLimits::default();
    for consumer in ConsumerKey::ALL {
        md.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} s | {} |\n",
            consumer.durable_name(),
            consumer.stream().base_name(),
            consumer.filter_subject(&subjects),
            limits.ack_wait.as_secs(),
            limits.max_deliver
        ));
    }
    request_catalog(&mut md);
    md
}

/// The requests section of the catalog: every request, then the error table.
fn request_catalog(md: &mut String) {
    md.push_str("\n## Requests\n\n");
    md.push_str(
        "Each service answers `<service>.<verb>` on its NATS micro service (so `$SRV.PING`, \
         `$SRV.INFO` and `$SRV.STATS` find it). The answer is `{\"ok\": <reply>}`, or \
         `{\"error\": {\"error\": \"<code>\", \"message\": …}}` with the \
         `Nats-Service-Error` (the message) and `Nats-Service-Error-Code` headers set, so \
         `$SRV.STATS` counts the refusal. In Rust each request is a type implementing \
         `tributary_proto::requests::Request` (its service, verb and reply): \
         `tributary_kit::client::MeshClient::call` sends one, \
         `tributary_kit::requests::serve` answers one. The request schema validates the body, \
         the reply schema the whole answer.\n\n\
         | subject | request | reply | errors | schemas |\n|---|---|---|---|---|\n",
    );
    for entry in requests::catalog() {
        let errors = entry
            .errors
            .iter()
            .map(|e| format!("`{}`", e.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        md.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | [request](../proto/schemas/{}) [reply](../proto/schemas/{}) |\n",
            entry.subject(),
            entry.request,
            entry.reply,
            errors,
            request_schema_path(&entry),
            reply_schema_path(&entry),
        ));
    }
    md.push_str(
        "\n## Error codes\n\nOne table for NATS and HTTP (`tributary_proto::requests::ErrorCode`).\n\n\
         | error | HTTP status | `Nats-Service-Error-Code` | when |\n|---|---|---|---|\n",
    );
    for code in ErrorCode::ALL {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            code.as_str(),
            code.http_status(),
            code.nats_code(),
            code.description()
        ));
    }
}

fn human_duration(secs: u64) -> String {
    if secs.is_multiple_of(86_400) {
        format!("{} h", secs / 3_600)
    } else {
        format!("{} min", secs / 60)
    }
}

/// Every generated file by its path relative to the repository root; fails on an item-data
/// schema the guest SDKs' types cannot express.
pub fn generated_files() -> Result<BTreeMap<String, String>, UnsupportedSchema> {
    let mut files: BTreeMap<String, String> = schema_files()
        .into_iter()
        .map(|(path, text)| (format!("proto/schemas/{path}"), text))
        .collect();
    files.insert("docs/events.md".into(), event_catalog());
    let guest = guest_model()?;
    files.insert(guest_types::TYPESCRIPT_PATH.into(), guest.typescript());
    files.insert(guest_types::PYTHON_PATH.into(), guest.python());
    Ok(files)
}

/// The folders whose files are all generated here: a file in one that is not generated is
/// stale. Others under `proto/schemas/` (`specs/`, the declarative connector spec's schema,
/// generated from its own crate's types) are left alone.
const GENERATED_DIRS: [&str; 4] = [
    "proto/schemas",
    "proto/schemas/events",
    "proto/schemas/item-data",
    "proto/schemas/requests",
];

/// Writes every generated file under the repository root `root`, removing stale schemas
/// (every file of [`GENERATED_DIRS`]; their subfolders are not theirs). Writes nothing when a
/// file cannot be generated.
pub fn write_all(root: &Path) -> io::Result<()> {
    let files = generated_files().map_err(io::Error::other)?;
    for dir in GENERATED_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    for (path, text) in files {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// The generated files under `root` that are missing, differ from what the types say, or
/// should not exist. Empty when everything is fresh.
pub fn stale_files(root: &Path) -> Result<Vec<String>, UnsupportedSchema> {
    let expected = generated_files()?;
    let mut stale: Vec<String> = expected
        .iter()
        .filter(|(path, text)| {
            std::fs::read_to_string(root.join(path)).ok().as_ref() != Some(*text)
        })
        .map(|(path, _)| path.clone())
        .collect();
    for dir in GENERATED_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_file() {
                let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
                if !expected.contains_key(&rel) {
                    stale.push(rel);
                }
            }
        }
    }
    Ok(stale)
}
