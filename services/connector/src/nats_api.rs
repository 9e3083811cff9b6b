//! The `connector.*` endpoints of the NATS micro service: `sync`, `cancel`, `state` and
//! `states`, each served through [`tributary_kit::requests::serve`].

use tributary_kit::{requests, KitError, ServiceRuntime};
use tributary_plugin_sdk::SyncRequest;
use tributary_proto::events::SyncMode;
use tributary_proto::requests::{ApiError, ErrorCode};

use crate::api::{CancelSync, StateQuery, StatesQuery, SyncCommand, SyncStates};
use crate::supervisor::Supervisor;

/// The request a `connector.sync` command asks for; a backfill needs `since`, nothing else
/// takes it.
pub fn request_of(command: &SyncCommand) -> Result<SyncRequest, ApiError> {
    match (command.mode, command.since) {
        (SyncMode::Backfill, Some(since)) => Ok(SyncRequest::backfill(since)),
        (SyncMode::Backfill, None) => Err(ApiError::new(
            ErrorCode::BadRequest,
            "`since` is required for a backfill",
        )),
        (_, Some(_)) => Err(ApiError::new(
            ErrorCode::BadRequest,
            "`since` is only for a backfill (mode `backfill`)",
        )),
        (SyncMode::Incremental, None) => Ok(SyncRequest::incremental()),
        (SyncMode::Full, None) => Ok(SyncRequest::full()),
    }
}

/// Adds every `connector.*` endpoint to the service's micro service and answers them until
/// it stops.
pub async fn serve(runtime: &ServiceRuntime, supervisor: Supervisor) -> Result<(), KitError> {
    let s = supervisor.clone();
    requests::serve(runtime, move |r: SyncCommand| {
        let s = s.clone();
        async move {
            let request = request_of(&r)?;
            s.start_sync(&r.instance_id, request, "connector.sync")
                .await
        }
    })
    .await?;
    let s = supervisor.clone();
    requests::serve(runtime, move |r: CancelSync| {
        let s = s.clone();
        async move { s.cancel(&r.instance_id).await }
    })
    .await?;
    let s = supervisor.clone();
    requests::serve(runtime, move |r: StateQuery| {
        let s = s.clone();
        async move { s.state(&r.instance_id).await }
    })
    .await?;
    requests::serve(runtime, move |_: StatesQuery| {
        let s = supervisor.clone();
        async move { s.states().await.map(|instances| SyncStates { instances }) }
    })
    .await
}
