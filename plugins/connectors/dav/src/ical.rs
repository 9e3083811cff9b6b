//! An iCalendar object (one CalDAV resource) as the fields of one calendar event.
//!
//! A resource holds one event, or a recurring event's master and its overridden
//! occurrences (`VEVENT`s sharing a `UID`, the overrides with a `RECURRENCE-ID`). It maps to
//! one item, keyed by the resource's href: the master, with its `RRULE` verbatim in
//! `recurrence`, and each override mapped the same way in `extra.overrides` (with its
//! `recurrence_id`). Without a master (an invitation to single occurrences), the first
//! `VEVENT` is the event and its `RECURRENCE-ID` goes to `extra.recurrence_id`. One item per
//! resource means a deletion, which names only the href, removes everything the resource held.
//!
//! Times: `DTSTART`/`DTEND` with `TZID` are resolved in that zone (an IANA name, a Windows
//! name, or a `VTIMEZONE` in the object) and stored in UTC, the zone kept in
//! `original_timezone`; a time in UTC or with an offset is converted; a floating time (no
//! zone) is taken as UTC and flagged `extra.floating_time`; a `TZID` that names no known
//! zone is flagged `extra.unknown_timezone` and its time taken as UTC. `VALUE=DATE` makes an
//! all-day event from the start date's midnight UTC to the end date's (exclusive; one day
//! when no end is given). `DURATION` gives the end when `DTEND` does not: days and weeks in
//! the event's zone, hours and less exactly. `EXDATE` and `RDATE` go to `extra.exdates` and
//! `extra.rdates` (UTC times, or `YYYY-MM-DD` dates); `ORGANIZER` and `ATTENDEE` lose their
//! `mailto:`, with names and participation status in `extra.attendee_details`.
//! `LAST-MODIFIED`, else `DTSTAMP`, is the version time (the latest of all `VEVENT`s).

use calcard::common::timezone::Tz as CalTz;
use calcard::common::PartialDateTime;
use calcard::icalendar::timezone::TzResolver;
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarDuration, ICalendarEntry,
    ICalendarParameterName, ICalendarParameterValue, ICalendarProperty, ICalendarValue,
    ICalendarValueType,
};
use calcard::Entry;
use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};
use tributary_plugin_sdk::EntityType;
use tributary_proto::model::CalendarEventFields;

use crate::map::{partial_to_utc, MapError, Mapped};

#[cfg(test)]
mod tests;

/// Reads `text` as an iCalendar object and maps its event.
pub(crate) fn map_icalendar(text: &str) -> Result<Mapped, MapError> {
    let calendar = match calcard::Parser::new(text).entry() {
        Entry::ICalendar(calendar) => calendar,
        Entry::InvalidLine(line) => {
            return Err(MapError::Invalid(format!("invalid line `{line}`")))
        }
        _ => return Err(MapError::Invalid("not an iCalendar object".into())),
    };
    let events: Vec<&ICalendarComponent> = calendar
        .components
        .iter()
        .filter(|c| c.component_type == ICalendarComponentType::VEvent)
        .collect();
    if events.is_empty() {
        return Err(MapError::NoEvent);
    }
    let mut rrules = raw_rrules(text);
    if rrules.len() != events.len() {
        rrules = events.iter().map(|e| parsed_rrules(e)).collect();
    }
    let resolver = calendar.build_tz_resolver();
    let master = events
        .iter()
        .position(|e| property(e, ICalendarProperty::RecurrenceId).is_none())
        .unwrap_or(0);
    let mut fields = event_fields(events[master], &resolver, rrules.get(master))?;
    let overrides: Vec<Value> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != master)
        .filter_map(|(i, event)| {
            let fields = event_fields(event, &resolver, rrules.get(i)).ok()?;
            serde_json::to_value(fields).ok()
        })
        .collect();
    if !overrides.is_empty() {
        fields
            .extra
            .insert("overrides".into(), Value::Array(overrides));
    }
    let modified_at = events.iter().filter_map(|e| version_time(e)).max();
    Ok(Mapped {
        entity_type: EntityType::CalendarEvent,
        data: serde_json::to_value(fields).map_err(|e| MapError::Invalid(e.to_string()))?,
        modified_at,
    })
}

/// The fields of one `VEVENT`; `rrules` are its `RRULE` values as written.
fn event_fields(
    event: &ICalendarComponent,
    resolver: &TzResolver<&str>,
    rrules: Option<&Vec<String>>,
) -> Result<CalendarEventFields, MapError> {
    let start_entry = property(event, ICalendarProperty::Dtstart)
        .ok_or_else(|| MapError::Invalid("a VEVENT without DTSTART".into()))?;
    let start = EventTime::read(start_entry, resolver)
        .ok_or_else(|| MapError::Invalid("a DTSTART that is not a date or time".into()))?;
    let end = match property(event, ICalendarProperty::Dtend) {
        Some(entry) => EventTime::read(entry, resolver).map(|t| t.utc),
        None => match property(event, ICalendarProperty::Duration).and_then(duration) {
            Some(duration) => start.plus(duration),
            None if start.date_only => start.utc.checked_add_signed(Duration::days(1)),
            None => None,
        },
    };
    let mut extra = Map::new();
    let mut fields = CalendarEventFields {
        title: text(event, ICalendarProperty::Summary).unwrap_or_default(),
        description: text(event, ICalendarProperty::Description),
        location: text(event, ICalendarProperty::Location),
        starts_at: start.utc,
        // An end before the start is a broken event; its start is still worth keeping.
        ends_at: end.filter(|end| *end >= start.utc),
        original_timezone: start.zone_name(),
        all_day: start.date_only,
        ..Default::default()
    };
    match &start.zone {
        Zone::Floating if !start.date_only => {
            extra.insert("floating_time".into(), Value::Bool(true));
        }
        Zone::Unknown(tzid) => {
            extra.insert("unknown_timezone".into(), Value::String(tzid.clone()));
        }
        _ => {}
    }
    let mut rrules = rrules.cloned().unwrap_or_default().into_iter();
    fields.recurrence = rrules.next();
    let more: Vec<Value> = rrules.map(Value::String).collect();
    if !more.is_empty() {
        extra.insert("more_rrules".into(), Value::Array(more));
    }
    let mut attendee_details = Vec::new();
    for entry in &event.entries {
        match entry.name {
            ICalendarProperty::Exdate => push_all(&mut extra, "exdates", dates(entry, resolver)),
            ICalendarProperty::Rdate => push_all(&mut extra, "rdates", dates(entry, resolver)),
            ICalendarProperty::Organizer => {
                fields.organizer = fields.organizer.take().or_else(|| address(entry));
                if let Some(name) = param_text(entry, ICalendarParameterName::Cn) {
                    extra.insert("organizer_name".into(), Value::String(name));
                }
            }
            ICalendarProperty::Attendee => {
                if let Some(address) = address(entry) {
                    attendee_details.push(json!({
                        "address": address,
                        "name": param_text(entry, ICalendarParameterName::Cn),
                        "status": param_text(entry, ICalendarParameterName::Partstat),
                        "role": param_text(entry, ICalendarParameterName::Role),
                    }));
                    fields.attendees.push(address);
                }
            }
            ICalendarProperty::Categories => push_all(
                &mut extra,
                "categories",
                entry
                    .values
                    .iter()
                    .filter_map(ICalendarValue::as_text)
                    .map(str::to_owned)
                    .collect(),
            ),
            ICalendarProperty::RecurrenceId => {
                if let Some(date) = dates(entry, resolver).into_iter().next() {
                    extra.insert("recurrence_id".into(), Value::String(date));
                }
            }
            _ => {}
        }
    }
    if !attendee_details.is_empty() {
        extra.insert("attendee_details".into(), Value::Array(attendee_details));
    }
    for (key, property) in [
        ("uid", ICalendarProperty::Uid),
        ("status", ICalendarProperty::Status),
        ("class", ICalendarProperty::Class),
        ("transparency", ICalendarProperty::Transp),
        ("url", ICalendarProperty::Url),
    ] {
        if let Some(value) = text(event, property) {
            extra.insert(key.into(), Value::String(value));
        }
    }
    fields.extra = extra;
    Ok(fields)
}

/// The zone an event time was written in.
#[derive(Debug, Clone, PartialEq)]
enum Zone {
    /// `Z`, or an offset of zero.
    Utc,
    /// A `TZID` resolved to an IANA zone.
    Named(chrono_tz::Tz),
    /// A fixed offset, written on the time or defined by a `VTIMEZONE`.
    Fixed(FixedOffset),
    /// No zone: the same wall-clock time everywhere. Taken as UTC.
    Floating,
    /// A `TZID` naming no zone known. Taken as UTC.
    Unknown(String),
}

/// A `DTSTART`, `DTEND` or similar, resolved.
#[derive(Debug, Clone)]
struct EventTime {
    /// The instant, in UTC.
    utc: DateTime<Utc>,
    /// The wall-clock time in `zone`, for adding nominal days.
    local: NaiveDateTime,
    zone: Zone,
    /// `VALUE=DATE`: a whole day.
    date_only: bool,
}

impl EventTime {
    fn read(entry: &ICalendarEntry, resolver: &TzResolver<&str>) -> Option<Self> {
        let time = entry.values.first()?.as_partial_date_time()?;
        Self::from_partial(entry, time, resolver)
    }

    fn from_partial(
        entry: &ICalendarEntry,
        time: &PartialDateTime,
        resolver: &TzResolver<&str>,
    ) -> Option<Self> {
        let date_only = time.hour.is_none()
            || entry.params.iter().any(|p| {
                p.name == ICalendarParameterName::Value
                    && p.value == ICalendarParameterValue::Value(ICalendarValueType::Date)
            });
        let result = time.to_date_time()?;
        let local = result.date_time;
        if date_only {
            let midnight = local.date().and_time(chrono::NaiveTime::MIN);
            return Some(EventTime {
                utc: midnight.and_utc(),
                local: midnight,
                zone: Zone::Floating,
                date_only,
            });
        }
        let zone = match (
            result.offset,
            param_text(entry, ICalendarParameterName::Tzid),
        ) {
            (Some(offset), _) if offset.local_minus_utc() == 0 => Zone::Utc,
            (Some(offset), _) => Zone::Fixed(offset),
            (None, Some(tzid)) => match resolver.resolve(&tzid) {
                Some(CalTz::Tz(tz)) if tz == chrono_tz::UTC => Zone::Utc,
                Some(CalTz::Tz(tz)) => Zone::Named(tz),
                Some(CalTz::Fixed(offset)) => Zone::Fixed(offset),
                Some(CalTz::Floating) | None => Zone::Unknown(tzid),
            },
            (None, None) => Zone::Floating,
        };
        Some(EventTime {
            utc: zone.to_utc(local)?,
            local,
            zone,
            date_only,
        })
    }

    /// This time plus `duration`: days and weeks on the wall clock of its zone (a day of
    /// an event across a DST change is 23 or 25 hours), the rest exactly. `None` when the sum
    /// is past the times chrono can hold: a server can write `DURATION:PT4294967295H`.
    fn plus(&self, duration: ICalendarDuration) -> Option<DateTime<Utc>> {
        let days = Duration::try_days(i64::from(duration.weeks) * 7 + i64::from(duration.days))?;
        let exact = Duration::try_hours(duration.hours.into())?
            .checked_add(&Duration::try_minutes(duration.minutes.into())?)?
            .checked_add(&Duration::try_seconds(duration.seconds.into())?)?;
        let (days, exact) = if duration.neg {
            (-days, -exact)
        } else {
            (days, exact)
        };
        let utc = if self.date_only {
            self.utc.checked_add_signed(days)?
        } else {
            self.zone.to_utc(self.local.checked_add_signed(days)?)?
        };
        utc.checked_add_signed(exact)
    }

    /// The zone to record in `original_timezone`: one the ETL can read back.
    fn zone_name(&self) -> Option<String> {
        match &self.zone {
            Zone::Named(tz) => Some(tz.name().to_owned()),
            Zone::Fixed(offset) => Some(offset.to_string()),
            Zone::Utc | Zone::Floating | Zone::Unknown(_) => None,
        }
    }

    /// `YYYY-MM-DD` for a date, else the UTC time in RFC 3339.
    fn describe(&self) -> String {
        if self.date_only {
            self.local.date().to_string()
        } else {
            self.utc
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }
    }
}

impl Zone {
    /// The instant of wall-clock time `local` in this zone. In a DST gap the time is moved
    /// forward by the gap (RFC 5545 §3.3.5); an ambiguous time is its first occurrence.
    fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn pick<Z: TimeZone>(zone: &Z, local: NaiveDateTime) -> Option<DateTime<Utc>> {
            match zone.from_local_datetime(&local) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.to_utc()),
                LocalResult::None => local
                    .checked_add_signed(Duration::hours(1))
                    .and_then(|later| zone.from_local_datetime(&later).earliest())
                    .map(|t| t.to_utc()),
            }
        }
        match self {
            Zone::Named(tz) => pick(tz, local),
            Zone::Fixed(offset) => pick(offset, local),
            Zone::Utc | Zone::Floating | Zone::Unknown(_) => Some(local.and_utc()),
        }
    }
}

/// The first `property` of `event`.
fn property(event: &ICalendarComponent, property: ICalendarProperty) -> Option<&ICalendarEntry> {
    event.entries.iter().find(|e| e.name == property)
}

/// The text of the first `property`, trimmed, if not empty.
fn text(event: &ICalendarComponent, name: ICalendarProperty) -> Option<String> {
    let value = property(event, name)?.values.first()?.clone().into_text()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn param_text(entry: &ICalendarEntry, name: ICalendarParameterName) -> Option<String> {
    entry
        .params
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.value.as_text())
        .map(str::to_owned)
}

/// A calendar user's address without its `mailto:`.
fn address(entry: &ICalendarEntry) -> Option<String> {
    let value = entry.values.first()?.as_text()?.trim();
    let address = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &value[7..],
        _ => value,
    };
    (!address.is_empty()).then(|| address.to_owned())
}

fn duration(entry: &ICalendarEntry) -> Option<ICalendarDuration> {
    match entry.values.first()? {
        ICalendarValue::Duration(duration) => Some(duration.clone()),
        _ => None,
    }
}

/// Each date or time of an `EXDATE`, `RDATE` or `RECURRENCE-ID`, described.
fn dates(entry: &ICalendarEntry, resolver: &TzResolver<&str>) -> Vec<String> {
    entry
        .values
        .iter()
        .filter_map(|value| match value {
            ICalendarValue::PartialDateTime(time) => {
                EventTime::from_partial(entry, time, resolver).map(|t| t.describe())
            }
            other => other.clone().into_text().map(|t| t.into_owned()),
        })
        .collect()
}

fn push_all(extra: &mut Map<String, Value>, key: &str, values: Vec<String>) {
    if values.is_empty() {
        return;
    }
    let list = extra
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        list.extend(values.into_iter().map(Value::String));
    }
}

/// `LAST-MODIFIED`, else `DTSTAMP`, of one `VEVENT`.
fn version_time(event: &ICalendarComponent) -> Option<DateTime<Utc>> {
    [ICalendarProperty::LastModified, ICalendarProperty::Dtstamp]
        .into_iter()
        .find_map(|name| {
            property(event, name)?
                .values
                .first()?
                .as_partial_date_time()
                .and_then(partial_to_utc)
        })
}

/// The `RRULE` values of each `VEVENT` in `text`, as written: the parser normalises a rule
/// and drops parts it does not know (`X-…`), and the rule is kept verbatim.
fn raw_rrules(text: &str) -> Vec<Vec<String>> {
    let unfolded = text
        .replace("\r\n ", "")
        .replace("\r\n\t", "")
        .replace("\n ", "")
        .replace("\n\t", "");
    let mut per_event: Vec<Vec<String>> = Vec::new();
    let mut open: Vec<String> = Vec::new();
    for line in unfolded.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.split(';').next().unwrap_or(name).trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("BEGIN") {
            open.push(value.to_ascii_uppercase());
            if value.eq_ignore_ascii_case("VEVENT") {
                per_event.push(Vec::new());
            }
        } else if name.eq_ignore_ascii_case("END") {
            open.pop();
        } else if name.eq_ignore_ascii_case("RRULE")
            && open.last().is_some_and(|c| c == "VEVENT")
            && !value.is_empty()
        {
            if let Some(rules) = per_event.last_mut() {
                rules.push(value.to_owned());
            }
        }
    }
    per_event
}

/// The `RRULE`s of `event` as the parser read them: the fallback when the text's `VEVENT`s
/// could not be matched with the parser's.
fn parsed_rrules(event: &ICalendarComponent) -> Vec<String> {
    event
        .entries
        .iter()
        .filter(|e| e.name == ICalendarProperty::Rrule)
        .filter_map(|e| e.values.first()?.clone().into_text())
        .map(|rule| rule.into_owned())
        .collect()
}
