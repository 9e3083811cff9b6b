//! The `plugins.*` endpoints of the NATS micro service. Each answers with
//! [`NatsReply`]: `{"ok": …}` or `{"error": {"error": "<code>", "message": …}}`.
//!
//! `plugins.runtime` answers with an instance's secrets: in a deployment only the connector
//! and channel services' NATS users may call it (deploy/nats-server.conf).

use std::future::Future;

use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tributary_kit::{KitError, ServiceRuntime};

use crate::api::{
    ApiError, AuditQuery, Call, ConfigureRequest, ErrorCode, HeartbeatRequest, InstallRequest,
    InstanceCall, InstanceFilter, NatsReply, UninstallRequest, UpgradeRequest,
};
use crate::manager::PluginManager;
use crate::validate;

/// Requests one endpoint handles at the same time.
const CONCURRENT_REQUESTS: usize = 16;

/// Who a NATS request is from, when it does not say.
const DEFAULT_ACTOR: &str = "nats";

/// The error of a service's endpoint that NATS would not register, naming both.
pub fn register_failed<'a>(
    service: &'static str,
    endpoint: &'a str,
) -> impl FnOnce(async_nats::Error) -> tributary_kit::KitError + 'a {
    move |e| tributary_kit::KitError::Register {
        service,
        reason: format!("endpoint `{endpoint}`: {e}"),
    }
}

/// A request with nothing but its instance (and actor).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NoBody {}

/// `plugins.info`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PluginRef {
    /// The plugin.
    pub plugin_id: String,
}

/// `plugins.instance` and `plugins.runtime`.
#[derive(Debug, Deserialize, Serialize)]
pub struct InstanceRef {
    /// The instance.
    pub instance_id: String,
}

/// Who asks, for the audit log: what the request declares (NATS does not tell the
/// responder which user sent a request, so it is declared, not authenticated), or
/// [`DEFAULT_ACTOR`].
fn actor(given: Option<String>) -> Result<String, ApiError> {
    let actor = given.unwrap_or_else(|| DEFAULT_ACTOR.to_owned());
    validate::text("actor", &actor)?;
    Ok(actor)
}

/// Adds every `plugins.*` endpoint to the service's micro service and answers them until it
/// stops.
pub async fn serve(runtime: &ServiceRuntime, manager: PluginManager) -> Result<(), KitError> {
    let group = runtime
        .micro_service()
        .group(runtime.subjects.request_group(runtime.spec.name));
    macro_rules! endpoint {
        ($name:literal, |$m:ident, $req:ident : $ty:ty| $body:expr) => {{
            let endpoint = group
                .endpoint($name)
                .await
                .map_err(|e| KitError::Register {
                    service: "plugin-manager",
                    reason: format!("endpoint `{}`: {e}", $name),
                })?;
            let manager = manager.clone();
            let work = answer(endpoint, runtime.shutdown.clone(), move |$req: $ty| {
                let $m = manager.clone();
                async move { $body }
            });
            runtime.spawn_worker(concat!("plugins.", $name), async move {
                work.await;
                Ok(())
            });
        }};
    }
    endpoint!("list", |m, _r: NoBody| Ok(m.plugins()));
    endpoint!("info", |m, r: PluginRef| m.plugin(&r.plugin_id));
    endpoint!("rescan", |m, _r: NoBody| m.rescan().await);
    endpoint!("instances", |m, r: InstanceFilter| m.instances(&r).await);
    endpoint!("instance", |m, r: InstanceRef| m
        .instance(&r.instance_id)
        .await);
    endpoint!("install", |m, r: Call<InstallRequest>| m
        .install(r.body, &actor(r.actor)?)
        .await);
    endpoint!("configure", |m, r: InstanceCall<ConfigureRequest>| m
        .configure(&r.instance_id, r.body.config, &actor(r.actor)?)
        .await);
    endpoint!("enable", |m, r: InstanceCall<NoBody>| m
        .enable(&r.instance_id, &actor(r.actor)?)
        .await);
    endpoint!("disable", |m, r: InstanceCall<NoBody>| m
        .disable(&r.instance_id, &actor(r.actor)?)
        .await);
    endpoint!("upgrade", |m, r: InstanceCall<UpgradeRequest>| m
        .upgrade(&r.instance_id, &r.body.accept_permissions, &actor(r.actor)?)
        .await);
    endpoint!("uninstall", |m, r: InstanceCall<UninstallRequest>| m
        .uninstall(&r.instance_id, r.body.purge, &actor(r.actor)?)
        .await);
    endpoint!("heartbeat", |m, r: Call<HeartbeatRequest>| m
        .heartbeat(&r.body.instance_id, r.body.error, &actor(r.actor)?)
        .await);
    endpoint!("runtime", |m, r: InstanceRef| m
        .runtime(&r.instance_id)
        .await);
    endpoint!("audit", |m, r: AuditQuery| m
        .audit_log(r.instance_id.as_deref(), r.limit)
        .await);
    Ok(())
}

/// Answers the requests of one endpoint until `shutdown`, each with `handle`'s result in a
/// [`NatsReply`]; a request that does not parse as `Req` gets `bad_request`. Other services
/// answer their endpoints with it too, so every reply in the mesh has one shape.
pub async fn answer<Req, Resp, F, Fut>(
    endpoint: async_nats::service::endpoint::Endpoint,
    shutdown: CancellationToken,
    handle: F,
) where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    answer_on_subject(endpoint, shutdown, |_subject: &str, request| {
        handle(request)
    })
    .await;
}

/// [`answer`] for an endpoint on a wildcard subject (`channel.send.*`): `handle` is also
/// given the subject each request came on.
pub async fn answer_on_subject<Req, Resp, F, Fut>(
    endpoint: async_nats::service::endpoint::Endpoint,
    shutdown: CancellationToken,
    handle: F,
) where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(&str, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    endpoint
        .take_until(shutdown.cancelled_owned())
        .for_each_concurrent(CONCURRENT_REQUESTS, |request| {
            let parsed = parse::<Req>(&request.message.payload);
            let handled = parsed.map(|req| handle(request.message.subject.as_str(), req));
            async move {
                let reply = match handled {
                    Ok(fut) => match fut.await {
                        Ok(value) => serde_json::to_vec(&NatsReply::Ok(value)),
                        Err(e) => serde_json::to_vec(&NatsReply::<()>::Error(e)),
                    },
                    Err(e) => serde_json::to_vec(&NatsReply::<()>::Error(e)),
                };
                let body = reply.unwrap_or_else(|e| {
                    serde_json::to_vec(&NatsReply::<()>::Error(ApiError::new(
                        ErrorCode::Internal,
                        format!("cannot encode the reply: {e}"),
                    )))
                    .unwrap_or_default()
                });
                if let Err(e) = request.respond(Ok(body.into())).await {
                    tracing::warn!(error = %e, subject = %request.message.subject, "Cannot answer a request.");
                }
            }
        })
        .await;
}

fn parse<Req: DeserializeOwned>(payload: &[u8]) -> Result<Req, ApiError> {
    let payload: &[u8] = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        payload
    };
    serde_json::from_slice(payload).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the request is not valid: {e}"),
        )
    })
}
