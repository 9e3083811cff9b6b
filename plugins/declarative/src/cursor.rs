//! The engine's cursor: per stream and partition, where a listing in progress got to and what
//! the last complete one left for the next sync (a delta link, a sync token, a time).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the engine checkpoints: one [`PartitionState`] per stream and partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EngineCursor {
    /// By stream name, then partition key (`""` for a stream without partitions).
    #[serde(default)]
    pub streams: BTreeMap<String, BTreeMap<String, PartitionState>>,
}

impl EngineCursor {
    pub fn get(&self, stream: &str, partition: &str) -> PartitionState {
        self.streams
            .get(stream)
            .and_then(|p| p.get(partition))
            .cloned()
            .unwrap_or_default()
    }

    pub fn set(&mut self, stream: &str, partition: &str, state: PartitionState) {
        self.streams
            .entry(stream.to_owned())
            .or_default()
            .insert(partition.to_owned(), state);
    }
}

/// One stream's, or one partition's, progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PartitionState {
    /// The next page of a listing in progress: a sync resumes there after a kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Position>,
    /// From the last complete listing: the delta link or sync token the next one starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    /// From the last complete listing: the newest modification time seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The `state.since` the listing in progress asks with, kept so a resumed one asks the
    /// same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_since: Option<DateTime<Utc>>,
    /// The newest modification time the listing in progress has seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_max: Option<DateTime<Utc>>,
}

/// A page to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", content = "value", rename_all = "snake_case")]
pub(crate) enum Position {
    /// The stream's own request, first page.
    Start,
    /// A full URL the API named (a next link, a delta link).
    Url(String),
    /// A cursor token.
    Token(String),
    /// A record offset.
    Offset(u64),
    /// A page number.
    Page(u64),
}
