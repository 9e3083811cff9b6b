//! When an instance syncs on its own: an interval (`15m`, `1h 30m`) or a cron expression
//! (`0 */6 * * *`, seconds optional), read from the instance's `schedule` config property or,
//! without one, from `connector.default_schedule`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;

/// The config property of an instance that holds its schedule.
pub const SCHEDULE_PROPERTY: &str = "schedule";

/// The shortest interval accepted, so a typo such as `1s` cannot hammer a source.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// A schedule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is neither an interval such as `15m` nor a cron expression such as `0 */6 * * *`: {reason}")]
pub struct InvalidSchedule {
    /// The text as given.
    pub given: String,
    /// Why it was refused.
    pub reason: String,
}

/// When an instance syncs on its own.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, counted from the end of the last sync.
    Every(Duration),
    /// At the times a cron expression names (UTC).
    Cron(Box<Cron>),
}

impl FromStr for Schedule {
    type Err = InvalidSchedule;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let fail = |reason: String| InvalidSchedule {
            given: text.to_owned(),
            reason,
        };
        if let Ok(interval) = humantime::parse_duration(text) {
            if interval < MIN_INTERVAL {
                return Err(fail(format!(
                    "an interval must be at least {}",
                    humantime::format_duration(MIN_INTERVAL)
                )));
            }
            return Ok(Schedule::Every(interval));
        }
        // Cron fields are separated by spaces; an interval never has five of them.
        if text.split_whitespace().count() < 5 {
            return Err(fail(
                "not an interval, and too few fields for cron".to_owned(),
            ));
        }
        Cron::new(text)
            .with_seconds_optional()
            .parse()
            .map(|cron| Schedule::Cron(Box::new(cron)))
            .map_err(|e| fail(e.to_string()))
    }
}

impl Schedule {
    /// The schedule in `config` (its `schedule` property), or `default` when it has none.
    pub fn of_config(
        config: &serde_json::Value,
        default: &Schedule,
    ) -> Result<Schedule, InvalidSchedule> {
        match config.get(SCHEDULE_PROPERTY) {
            Some(serde_json::Value::String(text)) if !text.trim().is_empty() => text.parse(),
            Some(serde_json::Value::Null) | None => Ok(default.clone()),
            Some(serde_json::Value::String(_)) => Ok(default.clone()),
            Some(other) => Err(InvalidSchedule {
                given: other.to_string(),
                reason: "must be a string".to_owned(),
            }),
        }
    }

    /// The next time a sync is due, given when the last one finished (`None`: never synced,
    /// due now).
    pub fn next_due(
        &self,
        last_finished: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let Some(last) = last_finished else {
            return now;
        };
        match self {
            Schedule::Every(interval) => {
                let interval =
                    chrono::Duration::from_std(*interval).unwrap_or(chrono::Duration::MAX);
                last.checked_add_signed(interval)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            Schedule::Cron(cron) => cron
                .find_next_occurrence(&last, false)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap()
    }

    #[test]
    fn intervals_and_cron_expressions_parse_and_give_the_next_due_time() {
        let cases = [
            ("15m", at(10, 0), at(10, 15)),
            ("1h 30m", at(10, 0), at(11, 30)),
            ("0 */6 * * *", at(10, 7), at(12, 0)),
            ("*/20 * * * *", at(10, 7), at(10, 20)),
            (
                "0 0 9 * * *",
                at(10, 7),
                Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
            ),
        ];
        for (text, last, due) in cases {
            let schedule: Schedule = text.parse().unwrap();
            assert_eq!(schedule.next_due(Some(last), at(23, 0)), due, "{text}");
        }
    }

    #[test]
    fn never_synced_is_due_now() {
        let schedule: Schedule = "1h".parse().unwrap();
        assert_eq!(schedule.next_due(None, at(8, 0)), at(8, 0));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (text, needle) in [
            ("1s", "at least 10s"),
            ("often", "too few fields"),
            ("61 * * * *", "cron"),
            ("* * * * * * * *", "cron"),
        ] {
            let e = text.parse::<Schedule>().unwrap_err().to_string();
            assert!(e.contains(text) && e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn the_config_schedule_wins_over_the_default() {
        let default: Schedule = "1h".parse().unwrap();
        let of = |config: serde_json::Value| Schedule::of_config(&config, &default);
        assert!(
            matches!(of(serde_json::json!({})).unwrap(), Schedule::Every(d) if d == Duration::from_secs(3600))
        );
        assert!(
            matches!(of(serde_json::json!({"schedule": "20m"})).unwrap(), Schedule::Every(d) if d == Duration::from_secs(1200))
        );
        assert!(matches!(
            of(serde_json::json!({"schedule": "0 * * * *"})).unwrap(),
            Schedule::Cron(_)
        ));
        assert!(of(serde_json::json!({"schedule": 5}))
            .unwrap_err()
            .to_string()
            .contains("must be a string"));
        assert!(of(serde_json::json!({"schedule": "soon"})).is_err());
    }
}
