//! From a fetched resource to the item the ETL receives.
//!
//! - `external_id` is the resource's path with percent-encoding decoded
//!   (`/dav/ada/contacts/a b.vcf`): unique per server, stable across updates, and the one
//!   thing a deletion reports, so create, update and delete share it.
//! - `source_modified_at` is the resource's own version time (`REV`, `LAST-MODIFIED`,
//!   `DTSTAMP`) when it has one, else the time of the sync; for a deletion, the time of the
//!   sync. A version time later than the sync (a client with a fast clock) is taken as the
//!   time of the sync, so the deletion of that resource in a later sync is not older than it.
//! - `raw` is `{ "href", "etag", "vcard" | "icalendar" }`: the text as the server sent it.

use calcard::common::PartialDateTime;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tributary_plugin_sdk::{ConnectorItem, EntityType, ItemOperation};

use crate::webdav::CollectionKind;

/// Why a resource's text could not be mapped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum MapError {
    /// Not a vCard or iCalendar object this connector can read.
    #[error("unreadable: {0}")]
    Invalid(String),
    /// A calendar object without an event (a task, a journal entry): nothing to yield.
    #[error("holds no event")]
    NoEvent,
}

/// A resource mapped to the fields of its entity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mapped {
    /// Person or calendar event.
    pub entity_type: EntityType,
    /// `PersonFields` or `CalendarEventFields`, serialized.
    pub data: Value,
    /// The version time the resource states, if any.
    pub modified_at: Option<DateTime<Utc>>,
}

impl Mapped {
    /// For a backfill: whether the resource was modified, or (an event) starts or recurs,
    /// at or after `since`. Without a version time a resource is taken as new.
    pub fn is_since(&self, since: DateTime<Utc>) -> bool {
        let modified = self.modified_at.is_none_or(|m| m >= since);
        let starts = self
            .data
            .get("starts_at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .is_some_and(|s| s >= since);
        let recurs = self.data.get("recurrence").is_some_and(|r| !r.is_null());
        modified || starts || recurs
    }
}

/// One member of a collection, as fetched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resource<'a> {
    /// Its key: decoded path, the external id.
    pub key: &'a str,
    /// Its href as the server wrote it.
    pub href: &'a str,
    /// Its etag, if the server gave one.
    pub etag: Option<&'a str>,
    /// Its vCard or iCalendar text.
    pub text: &'a str,
}

/// The upsert item for `resource`, mapped as `mapped`.
pub(crate) fn upsert(
    instance_id: &str,
    kind: CollectionKind,
    resource: Resource<'_>,
    mapped: Mapped,
    sync_time: DateTime<Utc>,
) -> ConnectorItem {
    let text_key = match kind {
        CollectionKind::Addressbook => "vcard",
        CollectionKind::Calendar => "icalendar",
    };
    ConnectorItem {
        instance_id: instance_id.to_owned(),
        entity_type: mapped.entity_type,
        external_id: resource.key.to_owned(),
        operation: ItemOperation::Upsert,
        source_modified_at: mapped
            .modified_at
            .map_or(sync_time, |stated| stated.min(sync_time)),
        data: mapped.data,
        raw: json!({ "href": resource.href, "etag": resource.etag, text_key: resource.text }),
    }
}

/// The tombstone for the member `key` of a collection of `kind`.
pub(crate) fn tombstone(
    instance_id: &str,
    kind: CollectionKind,
    key: &str,
    sync_time: DateTime<Utc>,
) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance_id.to_owned(),
        entity_type: entity_type(kind),
        external_id: key.to_owned(),
        operation: ItemOperation::Delete,
        source_modified_at: sync_time,
        data: Value::Null,
        raw: json!({ "href": key }),
    }
}

/// The entity type the members of a collection of `kind` become.
pub(crate) fn entity_type(kind: CollectionKind) -> EntityType {
    match kind {
        CollectionKind::Addressbook => EntityType::Person,
        CollectionKind::Calendar => EntityType::CalendarEvent,
    }
}

/// A vCard or iCalendar date-time in UTC: with its offset when it has one (`Z`, `+02:00`),
/// else taken as UTC; a date alone is its midnight.
pub(crate) fn partial_to_utc(time: &PartialDateTime) -> Option<DateTime<Utc>> {
    let result = time.to_date_time()?;
    let utc = match result.offset {
        Some(offset) => result.date_time.checked_sub_offset(offset)?,
        None => result.date_time,
    };
    Some(utc.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn resource() -> Resource<'static> {
        Resource {
            key: "/ada/contacts/a b.vcf",
            href: "/ada/contacts/a%20b.vcf",
            etag: Some("\"e1\""),
            text: "BEGIN:VCARD…",
        }
    }

    #[test]
    fn a_version_time_after_the_sync_is_the_sync_time() {
        let sync = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mapped = |modified_at| Mapped {
            entity_type: EntityType::Person,
            data: json!({ "display_name": "Ada" }),
            modified_at,
        };
        let earlier = sync - chrono::Duration::days(3);
        let later = sync + chrono::Duration::days(3);
        let item = upsert(
            "i",
            CollectionKind::Addressbook,
            resource(),
            mapped(Some(earlier)),
            sync,
        );
        assert_eq!(item.source_modified_at, earlier);
        assert_eq!(item.external_id, "/ada/contacts/a b.vcf");
        assert_eq!(item.raw["vcard"], "BEGIN:VCARD…");
        assert_eq!(item.raw["etag"], "\"e1\"");
        let item = upsert(
            "i",
            CollectionKind::Addressbook,
            resource(),
            mapped(Some(later)),
            sync,
        );
        assert_eq!(item.source_modified_at, sync);
        let item = upsert(
            "i",
            CollectionKind::Addressbook,
            resource(),
            mapped(None),
            sync,
        );
        assert_eq!(item.source_modified_at, sync);
    }

    #[test]
    fn a_tombstone_has_the_external_id_of_the_upsert() {
        let sync = Utc::now();
        let item = tombstone("i", CollectionKind::Calendar, "/ada/cal/e.ics", sync);
        assert_eq!(item.operation, ItemOperation::Delete);
        assert_eq!(item.entity_type, EntityType::CalendarEvent);
        assert_eq!(item.external_id, "/ada/cal/e.ics");
        assert_eq!(item.source_modified_at, sync);
    }
}
