//! Times: every instant stored in UTC, the zone the source gave kept beside it.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A zone an item names in `original_timezone`: an IANA name or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceZone {
    /// `Europe/Paris`.
    Named(Tz),
    /// `+02:00`.
    Fixed(FixedOffset),
}

impl SourceZone {
    /// Reads `Europe/Paris`, `UTC`, `Z`, `+02:00` or `-0530`.
    pub fn parse(zone: &str) -> Option<Self> {
        let zone = zone.trim();
        if zone == "Z" {
            return Some(SourceZone::Named(Tz::UTC));
        }
        if let Ok(tz) = zone.parse::<Tz>() {
            return Some(SourceZone::Named(tz));
        }
        DateTime::parse_from_str(
            &format!("2000-01-01T00:00:00{zone}"),
            "%Y-%m-%dT%H:%M:%S%#z",
        )
        .ok()
        .map(|t| SourceZone::Fixed(*t.offset()))
    }

    fn resolve(self, local: NaiveDateTime) -> LocalResult<DateTime<Utc>> {
        match self {
            SourceZone::Named(tz) => tz
                .from_local_datetime(&local)
                .map(|t| t.with_timezone(&Utc)),
            SourceZone::Fixed(offset) => offset
                .from_local_datetime(&local)
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// The offset of an RFC 3339 time as a zone name: `UTC` for `Z` and `+00:00`, else `+02:00`.
fn offset_name(offset: &FixedOffset) -> String {
    if offset.local_minus_utc() == 0 {
        "UTC".to_owned()
    } else {
        offset.to_string()
    }
}

/// A time resolved to UTC, with the zone to record as `original_timezone`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTime {
    /// The instant.
    pub utc: DateTime<Utc>,
    /// The zone the source meant it in.
    pub zone: String,
}

/// Resolves a time as a source wrote it: RFC 3339 with an offset, or a local time (or a
/// date, for all-day events) together with `zone`. The error says what is missing.
pub fn resolve(value: &str, zone: Option<&str>) -> Result<ResolvedTime, String> {
    let value = value.trim();
    let named_zone = match zone {
        Some(z) => Some(
            SourceZone::parse(z)
                .map(|parsed| (parsed, z.trim().to_owned()))
                .ok_or_else(|| format!("unknown time zone `{z}`"))?,
        ),
        None => None,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        let zone = match named_zone {
            Some((_, name)) => name,
            None => offset_name(t.offset()),
        };
        return Ok(ResolvedTime {
            utc: t.with_timezone(&Utc),
            zone,
        });
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y%m%dT%H%M%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%Y%m%d"]
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(value, f).ok())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| format!("`{value}` is not an RFC 3339 time, a local time or a date"))?;
    let Some((source_zone, name)) = named_zone else {
        return Err(format!(
            "`{value}` has no UTC offset and the item gives no `original_timezone`"
        ));
    };
    match source_zone.resolve(local) {
        LocalResult::Single(utc) => Ok(ResolvedTime { utc, zone: name }),
        // The hour repeated when clocks go back: the first of the two, as calendars do.
        LocalResult::Ambiguous(earliest, _) => Ok(ResolvedTime {
            utc: earliest,
            zone: name,
        }),
        LocalResult::None => Err(format!(
            "`{value}` does not exist in `{name}` (clocks skip it)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn offsets_become_utc_and_are_kept_as_the_zone() {
        let t = resolve("2026-03-02T09:30:00+02:00", None).unwrap();
        assert_eq!(t.utc, utc("2026-03-02T07:30:00Z"));
        assert_eq!(t.zone, "+02:00");
        assert_eq!(resolve("2026-03-02T09:30:00Z", None).unwrap().zone, "UTC");
    }

    #[test]
    fn local_times_are_read_in_the_named_zone_with_daylight_saving() {
        let summer = resolve("2026-07-01T09:00:00", Some("Europe/Paris")).unwrap();
        assert_eq!(summer.utc, utc("2026-07-01T07:00:00Z"));
        assert_eq!(summer.zone, "Europe/Paris");
        let winter = resolve("2026-01-15 09:00:00", Some("Europe/Paris")).unwrap();
        assert_eq!(winter.utc, utc("2026-01-15T08:00:00Z"));
        let fixed = resolve("20260115T090000", Some("-05:00")).unwrap();
        assert_eq!(fixed.utc, utc("2026-01-15T14:00:00Z"));
    }

    #[test]
    fn a_named_zone_wins_over_the_offset_for_display() {
        let t = resolve("2026-07-01T09:00:00+02:00", Some("Europe/Paris")).unwrap();
        assert_eq!(t.utc, utc("2026-07-01T07:00:00Z"));
        assert_eq!(t.zone, "Europe/Paris");
    }

    #[test]
    fn dates_are_midnight_in_their_zone() {
        let t = resolve("2026-12-24", Some("America/New_York")).unwrap();
        assert_eq!(t.utc, utc("2026-12-24T05:00:00Z"));
    }

    #[test]
    fn what_cannot_be_placed_in_time_is_named() {
        let e = resolve("2026-01-15T09:00:00", None).unwrap_err();
        assert!(e.contains("no UTC offset"), "{e}");
        let e = resolve("2026-01-15T09:00:00", Some("Mars/Olympus")).unwrap_err();
        assert!(e.contains("unknown time zone `Mars/Olympus`"), "{e}");
        let e = resolve("next tuesday", Some("UTC")).unwrap_err();
        assert!(e.contains("`next tuesday`"), "{e}");
        let e = resolve("2026-03-29T02:30:00", Some("Europe/Paris")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }
}
