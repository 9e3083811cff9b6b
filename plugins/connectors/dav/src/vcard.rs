//! A vCard (2.1, 3.0 or 4.0) as the fields of a person.
//!
//! `FN` is the display name; without one, the name is made from `N`, else `ORG`, else the
//! first e-mail address or phone number. `N` gives the given and family names, `EMAIL` and
//! `TEL` the addresses (preferred ones first, `mailto:` and `tel:` removed; the ETL
//! normalises them), `ORG` the organisation (its units go to `extra.org_units`), `TITLE` the
//! title. Everything else worth keeping goes to `extra`: `uid`, `nicknames`, `note`,
//! `birthday`, `addresses`, `urls`, `categories`, `role`, `kind`, `vcard_version`.
//! `REV` is the version time.

use calcard::common::PartialDateTime;
use calcard::vcard::{
    VCard, VCardEntry, VCardParameterName, VCardParameterValue, VCardProperty, VCardValue,
};
use calcard::Entry;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tributary_plugin_sdk::EntityType;
use tributary_proto::model::PersonFields;

use crate::map::{partial_to_utc, MapError, Mapped};

/// Reads `text` as a vCard and maps it.
pub(crate) fn map_vcard(text: &str) -> Result<Mapped, MapError> {
    let card = match calcard::Parser::new(text).entry() {
        Entry::VCard(card) => card,
        Entry::InvalidLine(line) => {
            return Err(MapError::Invalid(format!("invalid line `{line}`")))
        }
        Entry::Eof => return Err(MapError::Invalid("empty".into())),
        _ => return Err(MapError::Invalid("not a vCard".into())),
    };
    let fields = person(&card);
    let modified_at = card
        .entries
        .iter()
        .find(|e| e.name == VCardProperty::Rev)
        .and_then(|e| e.values.first())
        .and_then(rev_time);
    Ok(Mapped {
        entity_type: EntityType::Person,
        data: serde_json::to_value(fields).map_err(|e| MapError::Invalid(e.to_string()))?,
        modified_at,
    })
}

fn person(card: &VCard) -> PersonFields {
    let mut person = PersonFields::default();
    let mut emails = Vec::new();
    let mut phones = Vec::new();
    let mut extra = serde_json::Map::new();
    let mut display_name = None;
    for entry in &card.entries {
        match &entry.name {
            VCardProperty::Fn => display_name = display_name.or_else(|| first_text(entry)),
            VCardProperty::N => {
                person.family_name = component(entry, 0);
                person.given_name = component(entry, 1);
            }
            VCardProperty::Email => {
                if let Some(email) = first_text(entry) {
                    let email = strip_scheme(&email, "mailto:").to_owned();
                    emails.push((preference(entry), email));
                }
            }
            VCardProperty::Tel => {
                if let Some(tel) = first_text(entry) {
                    let tel = strip_scheme(&tel, "tel:");
                    // A tel: URI's parameters (`;ext=12`) are not part of the number.
                    let number = tel.split(';').next().unwrap_or(tel).trim().to_owned();
                    phones.push((preference(entry), number));
                }
            }
            VCardProperty::Org => {
                let mut parts = texts(entry).into_iter();
                if person.organization.is_none() {
                    person.organization = parts.next();
                    let units: Vec<Value> = parts.map(Value::String).collect();
                    if !units.is_empty() {
                        extra.insert("org_units".into(), Value::Array(units));
                    }
                }
            }
            VCardProperty::Title => {
                person.title = person.title.take().or_else(|| first_text(entry))
            }
            VCardProperty::Role => set_once(&mut extra, "role", first_text(entry)),
            VCardProperty::Uid => set_once(&mut extra, "uid", first_text(entry)),
            VCardProperty::Note => set_once(&mut extra, "note", first_text(entry)),
            VCardProperty::Kind => set_once(&mut extra, "kind", first_text(entry)),
            VCardProperty::Version => set_once(&mut extra, "vcard_version", first_text(entry)),
            VCardProperty::Bday => set_once(
                &mut extra,
                "birthday",
                entry.values.first().and_then(|v| match v {
                    VCardValue::PartialDateTime(date) => describe_date(date),
                    other => other.as_text().map(str::to_owned),
                }),
            ),
            VCardProperty::Nickname => {
                for nickname in texts(entry) {
                    push(&mut extra, "nicknames", Value::String(nickname));
                }
            }
            VCardProperty::Categories => {
                for category in texts(entry) {
                    push(&mut extra, "categories", Value::String(category));
                }
            }
            VCardProperty::Url => {
                if let Some(url) = first_text(entry) {
                    push(&mut extra, "urls", Value::String(url));
                }
            }
            VCardProperty::Adr => {
                let parts: Vec<String> = (0..7)
                    .map(|i| component(entry, i).unwrap_or_default())
                    .collect();
                let formatted = parts
                    .iter()
                    .filter(|p| !p.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if !formatted.is_empty() {
                    push(
                        &mut extra,
                        "addresses",
                        json!({
                            "street": parts[2], "locality": parts[3], "region": parts[4],
                            "postal_code": parts[5], "country": parts[6], "formatted": formatted,
                        }),
                    );
                }
            }
            _ => {}
        }
    }
    emails.sort_by_key(|(rank, _)| *rank);
    phones.sort_by_key(|(rank, _)| *rank);
    person.emails = emails.into_iter().map(|(_, e)| e).collect();
    person.phones = phones.into_iter().map(|(_, p)| p).collect();
    person.display_name = display_name
        .or_else(|| name_from_parts(&person))
        .or_else(|| person.organization.clone())
        .or_else(|| person.emails.first().cloned())
        .or_else(|| person.phones.first().cloned())
        .unwrap_or_default();
    person.extra = extra;
    person
}

/// Appends `value` to the list `key` of `extra`.
fn push(extra: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    match extra.get_mut(key) {
        Some(Value::Array(list)) => list.push(value),
        _ => {
            extra.insert(key.to_owned(), Value::Array(vec![value]));
        }
    }
}

/// Sets `key` of `extra` to `value` unless an earlier property set it.
fn set_once(extra: &mut serde_json::Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(value) = value {
        extra.entry(key.to_owned()).or_insert(Value::String(value));
    }
}

/// "Given Family", when the vCard has no `FN`.
fn name_from_parts(person: &PersonFields) -> Option<String> {
    let name = [person.given_name.as_deref(), person.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

/// The property's first value as text, trimmed, if not empty.
fn first_text(entry: &VCardEntry) -> Option<String> {
    entry.values.first().and_then(value_text)
}

/// Component `index` of a structured value (`N`, `ADR`), its list items joined by spaces.
fn component(entry: &VCardEntry, index: usize) -> Option<String> {
    entry.values.get(index).and_then(value_text)
}

/// Every value of a list property (`NICKNAME`, `CATEGORIES`, `ORG`), trimmed, empty ones left out.
fn texts(entry: &VCardEntry) -> Vec<String> {
    entry
        .values
        .iter()
        .flat_map(|v| match v {
            VCardValue::Component(list) => list.clone(),
            other => other.as_text().map(str::to_owned).into_iter().collect(),
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

fn value_text(value: &VCardValue) -> Option<String> {
    let text = match value {
        VCardValue::Component(list) => list.join(" "),
        other => other.as_text()?.to_owned(),
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> &'a str {
    match value.get(..scheme.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(scheme) => &value[scheme.len()..],
        _ => value,
    }
}

/// How preferred an address is, lowest first: vCard 4's `PREF=n`, vCard 3's `TYPE=pref`
/// (as 1), else last.
fn preference(entry: &VCardEntry) -> u32 {
    entry
        .params
        .iter()
        .filter_map(|p| match (&p.name, &p.value) {
            (VCardParameterName::Pref, VCardParameterValue::Integer(n)) => Some(*n),
            (VCardParameterName::Type, VCardParameterValue::Text(t))
                if t.eq_ignore_ascii_case("pref") =>
            {
                Some(1)
            }
            _ => None,
        })
        .min()
        .unwrap_or(u32::MAX)
}

/// A birthday as ISO 8601: `1990-01-02`, `--01-02` without a year, or a full time.
fn describe_date(date: &PartialDateTime) -> Option<String> {
    match (date.year, date.month, date.day, date.hour) {
        (Some(y), Some(m), Some(d), None) => Some(format!("{y:04}-{m:02}-{d:02}")),
        (None, Some(m), Some(d), None) => Some(format!("--{m:02}-{d:02}")),
        _ => date.to_rfc3339(),
    }
}

fn rev_time(value: &VCardValue) -> Option<DateTime<Utc>> {
    match value {
        VCardValue::PartialDateTime(time) => partial_to_utc(time),
        VCardValue::Integer(seconds) => DateTime::from_timestamp(*seconds, 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
