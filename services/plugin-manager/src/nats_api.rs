//! The `plugins.*` endpoints of the NATS micro service, each served through
//! [`tributary_kit::requests::serve`]: `{"ok": …}`, or `{"error": {"error": "<code>",
//! "message": …}}` with the NATS service error headers. This is one edge of the registry: a
//! [`RegistryError`] becomes the wire's [`ApiError`] here, in [`on`].
//!
//! `plugins.runtime.<plugin type>` answers with an instance's secrets and
//! `plugins.token.<plugin type>` with its access token: in a deployment only the connector
//! service's NATS user may ask on `….connector` and only the channel service's on `….channel`
//! (deploy/nats-server.conf), and each is answered only about instances of its own type.
//! `plugins.heartbeat.<plugin type>` is the same: a service's report is taken only about an
//! instance of its type.
//!
//! The audit actor of a change asked here is the NATS user the subject is allowed to
//! ([`crate::actor`]), never the name the request claims: NATS does not tell the responder
//! which user sent a request, so `"actor": "admin-api:forged"` on `plugins.enable` is recorded
//! as `nats:admin`, claiming `admin-api:forged`.

use std::future::Future;

use tributary_kit::requests;
use tributary_kit::{KitError, ServiceRuntime};

use tributary_proto::requests::plugins::{
    AccessTokenQuery, AuditQuery, Call, ConfigureRequest, ConnectRequest, ConnectStatusQuery,
    DisableRequest, EnableRequest, HeartbeatRequest, InstallRequest, InstanceCall, InstanceFilter,
    InstanceInfo, ListPlugins, PluginInfo, RescanPlugins, RuntimeQuery, UninstallRequest,
    UpgradeRequest,
};
use tributary_proto::requests::{ApiError, Request};

use crate::actor::Actor;
use crate::error::RegistryError;
use crate::manager::PluginManager;

/// Serves `R` with `handle`, handing it the manager, and answers what it refuses as the
/// wire's [`ApiError`].
async fn on<R, F, Fut>(
    runtime: &ServiceRuntime,
    manager: &PluginManager,
    handle: F,
) -> Result<(), KitError>
where
    R: Request,
    F: Fn(PluginManager, R) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R::Reply, RegistryError>> + Send,
{
    let manager = manager.clone();
    requests::serve(runtime, move |request: R| {
        let handled = handle(manager.clone(), request);
        async move { handled.await.map_err(ApiError::from) }
    })
    .await
}

/// Adds every `plugins.*` endpoint to the service's micro service and answers them until it
/// stops.
pub async fn serve(runtime: &ServiceRuntime, manager: PluginManager) -> Result<(), KitError> {
    let pm = &manager;
    on(
        runtime,
        pm,
        |m, _: ListPlugins| async move { Ok(m.plugins()) },
    )
    .await?;
    on(runtime, pm, |m, r: PluginInfo| async move {
        m.plugin(&r.plugin_id)
    })
    .await?;
    on(runtime, pm, |m, _: RescanPlugins| async move {
        m.rescan().await
    })
    .await?;
    on(runtime, pm, |m, r: InstanceFilter| async move {
        m.instances(&r).await
    })
    .await?;
    on(runtime, pm, |m, r: InstanceInfo| async move {
        m.instance(&r.instance_id).await
    })
    .await?;
    on(runtime, pm, |m, r: Call<InstallRequest>| async move {
        m.install(r.body, &Actor::nats_admin(r.claimed_actor)?)
            .await
    })
    .await?;
    on(
        runtime,
        pm,
        |m, r: InstanceCall<ConfigureRequest>| async move {
            m.configure(
                &r.instance_id,
                r.body.config,
                &Actor::nats_admin(r.claimed_actor)?,
            )
            .await
        },
    )
    .await?;
    on(
        runtime,
        pm,
        |m, r: InstanceCall<EnableRequest>| async move {
            m.enable(&r.instance_id, &Actor::nats_admin(r.claimed_actor)?)
                .await
        },
    )
    .await?;
    on(
        runtime,
        pm,
        |m, r: InstanceCall<DisableRequest>| async move {
            m.disable(&r.instance_id, &Actor::nats_admin(r.claimed_actor)?)
                .await
        },
    )
    .await?;
    on(
        runtime,
        pm,
        |m, r: InstanceCall<UpgradeRequest>| async move {
            m.upgrade(
                &r.instance_id,
                &r.body.accept_permissions,
                &Actor::nats_admin(r.claimed_actor)?,
            )
            .await
        },
    )
    .await?;
    on(
        runtime,
        pm,
        |m, r: InstanceCall<UninstallRequest>| async move {
            m.uninstall(
                &r.instance_id,
                r.body.purge,
                &Actor::nats_admin(r.claimed_actor)?,
            )
            .await
        },
    )
    .await?;
    on(runtime, pm, |m, r: HeartbeatRequest| async move {
        let reporter = r
            .plugin_type
            .ok_or(RegistryError::NoPluginType("heartbeat"))?;
        m.heartbeat(reporter, &r.instance_id, r.error).await
    })
    .await?;
    on(runtime, pm, |m, r: RuntimeQuery| async move {
        let asked = r
            .plugin_type
            .ok_or(RegistryError::NoPluginType("runtime"))?;
        m.runtime(asked, &r.instance_id).await
    })
    .await?;
    on(runtime, pm, |m, r: AuditQuery| async move {
        m.audit_log(r.instance_id.as_deref(), r.limit).await
    })
    .await?;
    on(
        runtime,
        pm,
        |m, r: InstanceCall<ConnectRequest>| async move {
            m.connect(&r.instance_id, &Actor::nats_admin(r.claimed_actor)?)
                .await
        },
    )
    .await?;
    on(runtime, pm, |m, r: ConnectStatusQuery| async move {
        m.connect_status(r.attempt_id).await
    })
    .await?;
    on(runtime, pm, |m, r: AccessTokenQuery| async move {
        let asked = r.plugin_type.ok_or(RegistryError::NoPluginType("token"))?;
        m.access_token(asked, &r.instance_id, r.rejected.as_deref())
            .await
    })
    .await
}
