//! An instance's timeline: what happened to it, one line each, for the person looking at it.
//!
//! The services that run instances publish a [`TimelineEntry`] on
//! `timeline.<service>.<instance>` ([`crate::Subjects::timeline`]) when a sync ends, a webhook
//! is accepted or refused, a message is sent or its delivery status changes, and when a plugin
//! logs a line. The `TIMELINE` stream keeps them; the plugin manager's `timeline` consumer
//! stores them in PostgreSQL, where `GET /api/v1/instances/<id>/timeline` reads them with the
//! instance's audit entries, newest first, filtered and paged ([`TimelineQuery`],
//! [`TimelinePage`]).
//!
//! The service is the subject's, never the payload's: nats-server lets the connector service
//! publish only under `timeline.connector.>` and the channel service only under
//! `timeline.channel.>`, so one cannot write the other's lines.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The most characters of an entry's `summary`; a longer one is cut, marked with `…`.
pub const MAX_SUMMARY_CHARS: usize = 500;

/// The most bytes of an entry as published; a bigger one is refused by the recorder and
/// dead-lettered by the consumer.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// What a timeline entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// A sync ended: completed, failed or cancelled, with its duration and counts.
    Sync,
    /// A webhook addressed to the instance was accepted or refused (with the reason).
    Webhook,
    /// A message the instance sent, or a new delivery status of one.
    Send,
    /// A line the plugin logged.
    Log,
    /// A change recorded in the audit log (install, configure, enable, connect…).
    Audit,
}

impl TimelineKind {
    /// Every kind, in the order the console offers them.
    pub const ALL: [TimelineKind; 5] = [
        TimelineKind::Sync,
        TimelineKind::Webhook,
        TimelineKind::Send,
        TimelineKind::Log,
        TimelineKind::Audit,
    ];

    /// Its name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Sync => "sync",
            TimelineKind::Webhook => "webhook",
            TimelineKind::Send => "send",
            TimelineKind::Log => "log",
            TimelineKind::Audit => "audit",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimelineStatus {
    /// Done as asked (a sync completed, a webhook accepted, a message delivered).
    Ok,
    /// Worth a look, nothing lost (a cancelled sync, a warning logged).
    Warning,
    /// Failed (a sync's error, a refused webhook, an undelivered message, an error logged).
    Error,
}

impl TimelineStatus {
    /// Every status.
    pub const ALL: [TimelineStatus; 3] = [
        TimelineStatus::Ok,
        TimelineStatus::Warning,
        TimelineStatus::Error,
    ];

    /// Its name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineStatus::Ok => "ok",
            TimelineStatus::Warning => "warning",
            TimelineStatus::Error => "error",
        }
    }

    /// The status named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One line of an instance's timeline, as published on `timeline.<service>.<instance>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    /// This entry's id: stored once however often it is delivered.
    pub id: Uuid,
    /// The instance it is about; the same as the subject's last token.
    pub instance_id: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What it is about.
    pub kind: TimelineKind,
    /// How it went.
    pub status: TimelineStatus,
    /// One line for a person (`completed: 7 items in 1.2 s`, `refused: bad signature`); at
    /// most [`MAX_SUMMARY_CHARS`]. Never a secret, a token or a signature.
    pub summary: String,
    /// What a program reads: counts, `duration_ms`, `error`, `reason`, `status`, `level`.
    #[serde(default)]
    pub detail: Map<String, Value>,
    /// Entries of this kind for this instance left out just before this one because they
    /// came faster than the recorder's rate limit (a flood of refused webhooks, a chatty
    /// plugin); 0 when none was.
    #[serde(default)]
    pub suppressed: u64,
}

impl TimelineEntry {
    /// An entry about `instance_id` happening now, its summary cut to [`MAX_SUMMARY_CHARS`].
    pub fn now(
        instance_id: impl Into<String>,
        kind: TimelineKind,
        status: TimelineStatus,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            instance_id: instance_id.into(),
            at: Utc::now(),
            kind,
            status,
            summary: cut_summary(summary.into()),
            detail: Map::new(),
            suppressed: 0,
        }
    }

    /// The same entry with `key` set to `value` in its detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// `summary` cut to [`MAX_SUMMARY_CHARS`] characters, the last one `…` when it was longer.
pub fn cut_summary(summary: String) -> String {
    if summary.chars().count() <= MAX_SUMMARY_CHARS {
        return summary;
    }
    let mut cut: String = summary.chars().take(MAX_SUMMARY_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `GET /api/v1/instances/<id>/timeline`: which entries, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct TimelineQuery {
    /// Only entries of this kind.
    #[serde(default)]
    pub kind: Option<TimelineKind>,
    /// Only entries of this status.
    #[serde(default)]
    pub status: Option<TimelineStatus>,
    /// Entries older than this cursor: the `next` of the page before.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(pattern = "^[0-9]{1,19}-[at][0-9]{1,19}$"))]
    pub before: Option<String>,
    /// The most entries: 1 to 200, 50 when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

/// One entry as the timeline API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineLine {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What it is about.
    pub kind: TimelineKind,
    /// How it went.
    pub status: TimelineStatus,
    /// The service that recorded it (`connector`, `channel`, `plugin-manager` for audit).
    pub service: String,
    /// One line for a person.
    pub summary: String,
    /// Counts, durations, reasons; an audit entry's actor, action and detail.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: Map<String, Value>,
    /// Entries of this kind left out just before this one by the rate limit.
    pub suppressed: u64,
}

/// A page of an instance's timeline, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelinePage {
    /// The instance.
    pub instance_id: String,
    /// Its entries, newest first.
    pub entries: Vec<TimelineLine>,
    /// The `before` that asks for the next, older page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for kind in TimelineKind::ALL {
            let text = serde_json::to_value(kind).unwrap();
            assert_eq!(text, kind.as_str());
            assert_eq!(TimelineKind::from_name(kind.as_str()), Some(kind));
        }
        for status in TimelineStatus::ALL {
            let text = serde_json::to_value(status).unwrap();
            assert_eq!(text, status.as_str());
            assert_eq!(TimelineStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(TimelineKind::from_name("gossip"), None);
    }

    #[test]
    fn a_long_summary_is_cut_with_a_mark() {
        let long = "é".repeat(MAX_SUMMARY_CHARS + 10);
        let cut = cut_summary(long);
        assert_eq!(cut.chars().count(), MAX_SUMMARY_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(cut_summary("short".into()), "short");
    }
}
