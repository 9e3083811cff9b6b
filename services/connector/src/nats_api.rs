//! The `connector.*` endpoints of the NATS micro service: `sync`, `cancel`, `state` and
//! `states`, each answered in the mesh's reply envelope.

use tributary_kit::{KitError, ServiceRuntime};
use tributary_plugin_manager::api::{ApiError, ErrorCode};
use tributary_plugin_manager::nats_api::{answer, NoBody};
use tributary_plugin_sdk::SyncRequest;
use tributary_proto::events::SyncMode;

use crate::api::{CancelSync, StateQuery, SyncCommand, SyncStates};
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
    let group = runtime
        .micro_service()
        .group(runtime.subjects.request_group(runtime.spec.name));
    macro_rules! endpoint {
        ($name:literal, |$s:ident, $req:ident : $ty:ty| $body:expr) => {{
            let endpoint = group
                .endpoint($name)
                .await
                .map_err(|e| KitError::Register {
                    service: "connector",
                    reason: format!("endpoint `{}`: {e}", $name),
                })?;
            let supervisor = supervisor.clone();
            let work = answer(endpoint, runtime.shutdown.clone(), move |$req: $ty| {
                let $s = supervisor.clone();
                async move { $body }
            });
            runtime.spawn_worker(concat!("connector.", $name), async move {
                work.await;
                Ok(())
            });
        }};
    }
    endpoint!("sync", |s, r: SyncCommand| {
        let request = request_of(&r)?;
        s.start_sync(&r.instance_id, request, "connector.sync")
            .await
    });
    endpoint!("cancel", |s, r: CancelSync| s
        .cancel(&r.instance_id)
        .await);
    endpoint!("state", |s, r: StateQuery| s
        .state(&r.instance_id)
        .await);
    endpoint!("states", |s, _r: NoBody| s
        .states()
        .await
        .map(|instances| SyncStates { instances }));
    Ok(())
}
