//! The `connector.*` requests the connector service answers: `sync`, `cancel`, `state` and
//! `states`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ErrorCode::{BadRequest, Conflict, Internal, NotFound};
use crate::events::SyncMode;
use crate::subjects::ServiceName;
/// `connector.sync`: start a sync of one instance now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncCommand {
    /// The instance to sync.
    pub instance_id: String,
    /// Incremental (the default), full, or backfill.
    #[serde(default = "incremental")]
    pub mode: SyncMode,
    /// For a backfill: how far back to go. Required for a backfill, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

fn incremental() -> SyncMode {
    SyncMode::Incremental
}

/// The answer to `connector.sync`: the sync that started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncAccepted {
    /// The instance.
    pub instance_id: String,
    /// The sync run; its `connector.Sync*` events carry it.
    pub sync_id: Uuid,
    /// Whether it resumes an interrupted sync from its last checkpoint.
    pub resumed: bool,
}

/// `connector.cancel`: stop the running sync of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CancelSync {
    /// The instance.
    pub instance_id: String,
}

/// The answer to `connector.cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancelAccepted {
    /// The instance.
    pub instance_id: String,
    /// The sync asked to stop.
    pub sync_id: Uuid,
}

/// Where an instance's syncs stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Never synced.
    Idle,
    /// A sync is running, or was running when its process died (it resumes).
    Running,
    /// The last sync completed.
    Succeeded,
    /// The last sync failed.
    Failed,
    /// The last sync was cancelled.
    Cancelled,
}

impl SyncStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Idle => "idle",
            SyncStatus::Running => "running",
            SyncStatus::Succeeded => "succeeded",
            SyncStatus::Failed => "failed",
            SyncStatus::Cancelled => "cancelled",
        }
    }

    /// The status stored as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            SyncStatus::Idle,
            SyncStatus::Running,
            SyncStatus::Succeeded,
            SyncStatus::Failed,
            SyncStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One instance's sync state: `connector.state`, and each row of `connector.states`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncStateView {
    /// The instance.
    pub instance_id: String,
    /// Where its syncs stand.
    pub status: SyncStatus,
    /// The current or last sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<Uuid>,
    /// How the current or last sync ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SyncMode>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Items the current or last sync published.
    pub items: u64,
    /// Errors the current or last sync met.
    pub errors: u64,
    /// Items over every sync.
    pub total_items: u64,
    /// When a sync last completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// The error that ended the last failed sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether this connector service runs the instance (it is enabled and its plugin is
    /// known here).
    pub scheduled: bool,
    /// When it syncs next on its own, if it is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_at: Option<DateTime<Utc>>,
}

/// The answer to `connector.states`: every instance this service knows of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncStates {
    /// One row per instance, by id.
    pub instances: Vec<SyncStateView>,
}

/// `connector.states`: every instance this connector service knows of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatesQuery {}

/// `connector.state`: one instance's sync state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateQuery {
    /// The instance.
    pub instance_id: String,
}

super::requests! {
    ServiceName::Connector;
    SyncCommand => "sync", SyncAccepted, &[BadRequest, NotFound, Conflict, Internal];
    CancelSync => "cancel", CancelAccepted, &[BadRequest, NotFound, Conflict, Internal];
    StateQuery => "state", SyncStateView, &[BadRequest, NotFound, Internal];
    StatesQuery => "states", SyncStates, &[BadRequest, Internal];
}
