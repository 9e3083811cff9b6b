//! Validation and normalisation: a connector item's bytes become a [`NormalisedItem`], or a
//! [`Rejection`] that says why it never can.

pub mod contact;
pub mod text;
pub mod time;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tributary_proto::model::{
    CalendarEventFields, ConversationFields, DocumentFields, EntityType, MessageFields,
    OrganizationFields, PersonFields,
};
use tributary_proto::{ConnectorItem, ItemOperation, Subjects};

use self::contact::{dedup_in_order, email, ContactNormaliser};
use self::text::{
    collapse_whitespace, html_to_text, is_html_media_type, replace_nul, replace_nul_in_json,
    tidy_optional,
};
use crate::hash::content_hash;

/// Why an item can never be stored. It goes to the dead-letter stream with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Where an item came from: the key that makes its writes idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    /// The connector instance.
    pub instance_id: String,
    /// The entity type it becomes.
    pub entity_type: EntityType,
    /// The source's own id.
    pub external_id: String,
}

/// The normalised fields of one entity.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityFields {
    /// A person.
    Person(PersonFields),
    /// An organisation.
    Organization(OrganizationFields),
    /// A conversation.
    Conversation(ConversationFields),
    /// A message.
    Message(MessageFields),
    /// A calendar event.
    CalendarEvent(CalendarEventFields),
    /// A document.
    Document(DocumentFields),
}

/// An item ready to be written: its key, its version, its normalised content (none for a
/// tombstone) and that content's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalisedItem {
    /// Its source key.
    pub key: SourceKey,
    /// The source's version of it.
    pub version: DateTime<Utc>,
    /// The normalised fields; `None` for a tombstone.
    pub fields: Option<EntityFields>,
    /// The fields as JSON (`null` for a tombstone), as stored and announced.
    pub json: Value,
    /// Hash of `json`, to tell a change from a repeat.
    pub content_hash: String,
    /// The source's payload as the connector gave it.
    pub raw: Value,
    /// A purge's tombstone: once the entity is deleted, the source record is forgotten, not
    /// kept (see [`ItemOperation::Purge`]).
    pub forget: bool,
}

/// The hash recorded for a tombstone.
pub const TOMBSTONE_HASH: &str = "deleted";

/// Validates and normalises items.
#[derive(Debug, Clone)]
pub struct Normaliser {
    contacts: ContactNormaliser,
    subjects: Subjects,
}

impl Normaliser {
    /// A normaliser for items published under `subjects`, reading phone numbers without a
    /// country code as numbers of `region`.
    pub fn new(subjects: Subjects, region: phonenumber::country::Id) -> Self {
        Self {
            contacts: ContactNormaliser::new(region),
            subjects,
        }
    }

    /// Reads a connector item from a message on `subject`; its instance must be the one the
    /// subject names, so a connector cannot write into another instance's records.
    pub fn decode(&self, subject: &str, payload: &[u8]) -> Result<ConnectorItem, Rejection> {
        // Nearly every item is well formed: it is read straight into its type, and only one
        // that is not is read again step by step, to say what is wrong with it.
        let item = match serde_json::from_slice::<ConnectorItem>(payload) {
            Ok(item) => item,
            Err(_) => Self::decode_step_by_step(payload)?,
        };
        if item.external_id.trim().is_empty() {
            return Err(Rejection("`external_id` must not be empty".into()));
        }
        let expected = self.subjects.connector_items(&item.instance_id);
        if subject != expected {
            return Err(Rejection(format!(
                "item of instance `{}` arrived on `{subject}`; an instance publishes only on `{expected}`",
                item.instance_id
            )));
        }
        Ok(item)
    }

    /// Reads an item as JSON first, then its entity type, then the rest, so that the
    /// rejection names the first thing wrong.
    fn decode_step_by_step(payload: &[u8]) -> Result<ConnectorItem, Rejection> {
        let value: Value = serde_json::from_slice(payload)
            .map_err(|e| Rejection(format!("malformed JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(Rejection("a connector item must be a JSON object".into()));
        };
        match object.get("entity_type") {
            Some(Value::String(name)) => {
                name.parse::<EntityType>()
                    .map_err(|e| Rejection(e.to_string()))?;
            }
            Some(_) => return Err(Rejection("`entity_type` must be a string".into())),
            None => return Err(Rejection("missing field `entity_type`".into())),
        }
        serde_json::from_value(value).map_err(|e| Rejection(format!("not a connector item: {e}")))
    }

    /// Validates and normalises an item's fields.
    ///
    /// Every NUL character in its external id, data and raw payload is replaced first (see
    /// [`text::NUL_REPLACEMENT`]): PostgreSQL cannot store one, and an item is worth storing
    /// without it. This is the one place it is done, so every write (`COPY` or upsert) and
    /// every event sees the same text. Each item it happens to is logged and counted in
    /// `tributary_etl_nul_replaced_total`.
    pub fn normalise(&self, mut item: ConnectorItem) -> Result<NormalisedItem, Rejection> {
        let replaced = replace_nul(&mut item.external_id)
            + replace_nul_in_json(&mut item.data)
            + replace_nul_in_json(&mut item.raw);
        if replaced > 0 {
            tracing::warn!(
                instance = %item.instance_id,
                entity_type = %item.entity_type,
                external_id = %item.external_id,
                replaced,
                "An item held NUL characters, which PostgreSQL cannot store; each was replaced with U+FFFD."
            );
            metrics::counter!("tributary_etl_nul_replaced_total").increment(replaced as u64);
        }
        let key = SourceKey {
            instance_id: item.instance_id,
            entity_type: item.entity_type,
            external_id: item.external_id,
        };
        let (fields, json, hash) = match item.operation {
            ItemOperation::Delete | ItemOperation::Purge => {
                (None, Value::Null, TOMBSTONE_HASH.to_owned())
            }
            ItemOperation::Upsert => {
                let Value::Object(data) = item.data else {
                    return Err(Rejection(format!(
                        "`data` must be a JSON object of {} fields",
                        key.entity_type
                    )));
                };
                let fields = self.fields(key.entity_type, data)?;
                let json = fields.to_json()?;
                let hash = content_hash(&json);
                (Some(fields), json, hash)
            }
        };
        Ok(NormalisedItem {
            key,
            version: item.source_modified_at,
            fields,
            json,
            content_hash: hash,
            raw: item.raw,
            forget: item.operation == ItemOperation::Purge,
        })
    }

    fn fields(
        &self,
        entity: EntityType,
        mut data: Map<String, Value>,
    ) -> Result<EntityFields, Rejection> {
        Ok(match entity {
            EntityType::Person => {
                // A name can be derived from the other fields, so it may be left out.
                data.entry("display_name")
                    .or_insert_with(|| Value::String(String::new()));
                EntityFields::Person(self.person(typed(entity, data)?)?)
            }
            EntityType::Organization => {
                EntityFields::Organization(organization(typed(entity, data)?)?)
            }
            EntityType::Conversation => {
                EntityFields::Conversation(self.conversation(typed(entity, data)?)?)
            }
            EntityType::Message => {
                resolve_times(&mut data, &["sent_at"], true)?;
                EntityFields::Message(self.message(typed(entity, data)?)?)
            }
            EntityType::CalendarEvent => {
                // An all-day event's dates and a floating time (flagged by the connector) are
                // in no zone: the offset they were written with (UTC) is not one the source
                // meant, so none is recorded; a zone the item names itself is kept.
                let flagged = |value: Option<&Value>| value == Some(&Value::Bool(true));
                let zoneless = flagged(data.get("all_day"))
                    || flagged(data.get("extra").and_then(|e| e.get("floating_time")));
                resolve_times(&mut data, &["starts_at", "ends_at"], !zoneless)?;
                EntityFields::CalendarEvent(self.calendar_event(typed(entity, data)?)?)
            }
            EntityType::Document => {
                resolve_times(&mut data, &["modified_at"], false)?;
                EntityFields::Document(document(typed(entity, data)?)?)
            }
        })
    }

    fn person(&self, mut p: PersonFields) -> Result<PersonFields, Rejection> {
        p.given_name = tidy_optional(p.given_name);
        p.family_name = tidy_optional(p.family_name);
        p.organization = tidy_optional(p.organization);
        p.title = tidy_optional(p.title);
        let mut unrecognised_emails = Vec::new();
        let emails = std::mem::take(&mut p.emails)
            .into_iter()
            .filter(|e| !e.trim().is_empty())
            .filter_map(|e| {
                email(&e).or_else(|| {
                    unrecognised_emails.push(Value::String(e));
                    None
                })
            })
            .collect();
        p.emails = dedup_in_order(emails);
        let mut unrecognised_phones = Vec::new();
        let phones = std::mem::take(&mut p.phones)
            .into_iter()
            .filter(|n| !n.trim().is_empty())
            .filter_map(|n| {
                self.contacts.phone(&n).or_else(|| {
                    unrecognised_phones.push(Value::String(n));
                    None
                })
            })
            .collect();
        p.phones = dedup_in_order(phones);
        // Kept, not lost: a contact is worth storing even with one number that cannot be read.
        if !unrecognised_emails.is_empty() {
            p.extra.insert(
                "unrecognised_emails".into(),
                Value::Array(unrecognised_emails),
            );
        }
        if !unrecognised_phones.is_empty() {
            p.extra.insert(
                "unrecognised_phones".into(),
                Value::Array(unrecognised_phones),
            );
        }
        p.display_name = collapse_whitespace(&p.display_name);
        if p.display_name.is_empty() {
            let full = [p.given_name.as_deref(), p.family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            p.display_name = if !full.is_empty() {
                full
            } else if let Some(first) = p.emails.first().or(p.phones.first()) {
                first.clone()
            } else {
                return Err(Rejection(
                    "invalid person: no display_name, given_name, family_name, e-mail or phone"
                        .into(),
                ));
            };
        }
        Ok(p)
    }

    fn addresses(&self, values: Vec<String>) -> Vec<String> {
        dedup_in_order(
            values
                .iter()
                .map(|v| self.contacts.address(v))
                .filter(|v| !v.is_empty())
                .collect(),
        )
    }

    fn conversation(&self, mut c: ConversationFields) -> Result<ConversationFields, Rejection> {
        c.channel = c.channel.trim().to_lowercase();
        if c.channel.is_empty() {
            return Err(Rejection(
                "invalid conversation: `channel` must not be empty".into(),
            ));
        }
        c.title = tidy_optional(c.title);
        c.participants = self.addresses(c.participants);
        Ok(c)
    }

    fn message(&self, mut m: MessageFields) -> Result<MessageFields, Rejection> {
        m.sender = self.contacts.address(&m.sender);
        if m.sender.is_empty() {
            return Err(Rejection(
                "invalid message: `sender` must not be empty".into(),
            ));
        }
        m.recipients = self.addresses(m.recipients);
        m.subject = tidy_optional(m.subject);
        m.conversation_external_id = m
            .conversation_external_id
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        // Resolved by the ETL from the conversation's source key, never taken from a connector.
        m.conversation_id = None;
        if let Some(html) = &m.body_html {
            if m.body_text.trim().is_empty() {
                m.body_text = html_to_text(html);
            }
        }
        m.body_text = m.body_text.trim().to_owned();
        Ok(m)
    }

    fn calendar_event(&self, mut e: CalendarEventFields) -> Result<CalendarEventFields, Rejection> {
        e.title = collapse_whitespace(&e.title);
        if e.title.is_empty() {
            e.title = "(no title)".into();
        }
        e.description = e
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        e.location = tidy_optional(e.location);
        e.recurrence = tidy_optional(e.recurrence);
        e.organizer = e
            .organizer
            .map(|o| self.contacts.address(&o))
            .filter(|o| !o.is_empty());
        e.attendees = self.addresses(e.attendees);
        if let Some(ends_at) = e.ends_at {
            if ends_at < e.starts_at {
                return Err(Rejection(format!(
                    "invalid calendar_event: `ends_at` ({ends_at}) is before `starts_at` ({})",
                    e.starts_at
                )));
            }
        }
        Ok(e)
    }
}

fn typed<T: DeserializeOwned>(
    entity: EntityType,
    data: Map<String, Value>,
) -> Result<T, Rejection> {
    serde_json::from_value(Value::Object(data))
        .map_err(|e| Rejection(format!("invalid {entity} data: {e}")))
}

/// Turns each named time field into UTC; with `keep_zone`, records the zone the source gave
/// in `original_timezone` (the item's own value, when it has one, names the zone of local
/// times).
fn resolve_times(
    data: &mut Map<String, Value>,
    fields: &[&str],
    keep_zone: bool,
) -> Result<(), Rejection> {
    let zone = match data.get("original_timezone") {
        Some(Value::String(z)) if !z.trim().is_empty() => Some(z.clone()),
        _ => None,
    };
    let mut recorded = None;
    for field in fields {
        let Some(Value::String(value)) = data.get(*field) else {
            continue;
        };
        let resolved = time::resolve(value, zone.as_deref())
            .map_err(|e| Rejection(format!("invalid `{field}`: {e}")))?;
        recorded.get_or_insert(resolved.zone);
        data.insert(
            (*field).to_owned(),
            Value::String(
                resolved
                    .utc
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ),
        );
    }
    if keep_zone {
        if let Some(zone) = recorded {
            data.insert("original_timezone".into(), Value::String(zone));
        }
    }
    Ok(())
}

fn organization(mut o: OrganizationFields) -> Result<OrganizationFields, Rejection> {
    o.name = collapse_whitespace(&o.name);
    if o.name.is_empty() {
        return Err(Rejection(
            "invalid organization: `name` must not be empty".into(),
        ));
    }
    o.domains = dedup_in_order(
        o.domains
            .iter()
            .map(|d| {
                let d = d.trim().trim_start_matches('@').to_lowercase();
                d.strip_prefix("www.").map(str::to_owned).unwrap_or(d)
            })
            .filter(|d| !d.is_empty())
            .collect(),
    );
    Ok(o)
}

fn document(mut d: DocumentFields) -> Result<DocumentFields, Rejection> {
    d.path = tidy_optional(d.path);
    d.mime_type = d
        .mime_type
        .map(|m| m.trim().to_lowercase())
        .filter(|m| !m.is_empty());
    d.title = collapse_whitespace(&d.title);
    if d.title.is_empty() {
        let file_name = d
            .path
            .as_deref()
            .and_then(|p| p.rsplit(['/', '\\']).find(|s| !s.is_empty()))
            .map(str::to_owned);
        d.title = file_name.ok_or_else(|| {
            Rejection("invalid document: no `title` and no `path` to name it by".into())
        })?;
    }
    if d.mime_type.as_deref().is_some_and(is_html_media_type) {
        d.content = html_to_text(&d.content);
    }
    if d.content_hash.is_none() {
        d.content_hash = Some(content_hash(&Value::String(d.content.clone())));
    }
    Ok(d)
}

impl EntityFields {
    /// Which entity type these fields are of.
    pub fn entity_type(&self) -> EntityType {
        match self {
            EntityFields::Person(_) => EntityType::Person,
            EntityFields::Organization(_) => EntityType::Organization,
            EntityFields::Conversation(_) => EntityType::Conversation,
            EntityFields::Message(_) => EntityType::Message,
            EntityFields::CalendarEvent(_) => EntityType::CalendarEvent,
            EntityFields::Document(_) => EntityType::Document,
        }
    }

    /// The fields as a JSON object.
    pub fn to_json(&self) -> Result<Value, Rejection> {
        let json = match self {
            EntityFields::Person(f) => serde_json::to_value(f),
            EntityFields::Organization(f) => serde_json::to_value(f),
            EntityFields::Conversation(f) => serde_json::to_value(f),
            EntityFields::Message(f) => serde_json::to_value(f),
            EntityFields::CalendarEvent(f) => serde_json::to_value(f),
            EntityFields::Document(f) => serde_json::to_value(f),
        };
        json.map_err(|e| Rejection(format!("fields cannot be written as JSON: {e}")))
    }
}

#[cfg(test)]
mod tests;
