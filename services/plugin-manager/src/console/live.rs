//! Live sync progress, pushed: `GET /live/syncs` is a server-sent event stream of the
//! connector service's sync lifecycle events (started, progress with items and rate,
//! completed, failed), optionally of one instance (`?instance=`), which the console's script
//! shows as they arrive. It reads the events as they are published and stores nothing; it
//! ends when the plugin manager shuts down, and the browser reconnects on its own.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::StreamExt;
use serde::{Deserialize, Serialize};
use tributary_proto::events::{SyncEvent, SyncLifecycle};

use super::auth::SignedIn;
use super::ConsoleState;

/// The SSE event name every sync event is sent under.
pub(crate) const SYNC_EVENT: &str = "sync";

/// Which syncs to follow.
#[derive(Debug, Deserialize)]
pub(crate) struct LiveQuery {
    /// Only this instance's; every instance's when absent.
    #[serde(default)]
    instance: Option<String>,
}

/// What the browser is sent for one sync event.
#[derive(Debug, Serialize)]
struct SyncUpdate<'a> {
    /// `started`, `progress`, `completed` or `failed`.
    kind: &'static str,
    /// The sync's status as the instance page shows it: `running`, `succeeded` or `failed`.
    status: &'static str,
    #[serde(flatten)]
    sync: &'a SyncLifecycle,
}

/// The update shown for `event` of `sync`.
fn update(event: SyncEvent, sync: &SyncLifecycle) -> SyncUpdate<'_> {
    let (kind, status) = match event {
        SyncEvent::Started => ("started", "running"),
        SyncEvent::Progress => ("progress", "running"),
        SyncEvent::Completed => ("completed", "succeeded"),
        SyncEvent::Failed => ("failed", "failed"),
    };
    SyncUpdate { kind, status, sync }
}

/// `GET /live/syncs[?instance=<id>]`: the sync events, as server-sent events named `sync`,
/// each a JSON [`SyncUpdate`]; 503 when the subscription cannot be made.
pub(crate) async fn syncs(
    State(state): State<ConsoleState>,
    _signed_in: SignedIn,
    Query(query): Query<LiveQuery>,
) -> Response {
    let events = match state.mesh.sync_events().await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "The console's live sync events could not be subscribed to.");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Live progress is unavailable: the sync events could not be subscribed to.",
            )
                .into_response();
        }
    };
    let instance = query.instance;
    let updates = events
        .filter(move |(_, sync)| {
            std::future::ready(instance.as_deref().is_none_or(|id| id == sync.instance_id))
        })
        .filter_map(|(event, sync)| {
            let sent = Event::default()
                .event(SYNC_EVENT)
                .json_data(update(event, &sync))
                .ok();
            std::future::ready(sent.map(Ok::<_, Infallible>))
        })
        .take_until(state.stop.clone().cancelled_owned());
    Sse::new(updates)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_shows_the_status_the_instance_page_uses() {
        let sync = SyncLifecycle {
            instance_id: "notes".into(),
            sync_id: uuid::Uuid::nil(),
            mode: tributary_proto::events::SyncMode::Full,
            items: 7,
            rate: 3.5,
            errors: 0,
            error: None,
        };
        let shown = |event| serde_json::to_value(update(event, &sync)).unwrap_or_default();
        let progress = shown(SyncEvent::Progress);
        assert_eq!(progress["kind"], "progress");
        assert_eq!(progress["status"], "running");
        assert_eq!(progress["items"], 7);
        assert_eq!(progress["instance_id"], "notes");
        assert_eq!(shown(SyncEvent::Completed)["status"], "succeeded");
        assert_eq!(shown(SyncEvent::Failed)["status"], "failed");
        assert_eq!(shown(SyncEvent::Started)["kind"], "started");
    }
}
