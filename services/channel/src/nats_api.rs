//! The `channel.*` endpoints of the NATS micro service: `channel.send.<instance>` sends a
//! message, `channel.routes` lists the webhook routes served here, `channel.webhook` gives
//! one instance's webhook URL (enabled or not, so `tributary plugins install` can print it);
//! all answered in the mesh's reply envelope.

use tributary_kit::{KitError, ServiceRuntime};
use tributary_plugin_manager::api::{ApiError, ErrorCode};
use tributary_plugin_manager::nats_api::{answer, answer_on_subject, register_failed, NoBody};

use tributary_plugin_manager::client::MeshClient;

use crate::api::{RouteList, RouteView, SendRequest, WebhookRequest, WebhookView};
use crate::outbound::Sender;
use crate::registry::channel_name;
use crate::routes::RouteTable;
use crate::webhook_url;

/// The verb of sends; the instance is the token after it.
pub const SEND: &str = "send";

/// Adds the `channel.*` endpoints and answers them until the service stops.
pub async fn serve(
    runtime: &ServiceRuntime,
    sender: Sender,
    routes: RouteTable,
    plugins: MeshClient,
    public_base_url: String,
) -> Result<(), KitError> {
    let group = runtime
        .micro_service()
        .group(runtime.subjects.request_group(runtime.spec.name));

    let send = group
        .endpoint_builder()
        .name(SEND)
        .add(format!("{SEND}.*"))
        .await
        .map_err(register_failed("channel", "send.*"))?;
    let subjects = runtime.subjects.clone();
    let work = answer_on_subject(
        send,
        runtime.shutdown.clone(),
        move |subject: &str, request: SendRequest| {
            let sender = sender.clone();
            let instance = subjects
                .unqualify(subject)
                .strip_prefix("channel.send.")
                .unwrap_or_default()
                .to_owned();
            async move {
                if instance.is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::BadRequest,
                        "send on channel.send.<instance>",
                    ));
                }
                sender.send(&instance, request).await
            }
        },
    );
    runtime.spawn_worker("channel.send", async move {
        work.await;
        Ok(())
    });

    let webhook = group
        .endpoint("webhook")
        .await
        .map_err(register_failed("channel", "webhook"))?;
    let (served_routes, base) = (routes.clone(), public_base_url.clone());
    let work = answer(
        webhook,
        runtime.shutdown.clone(),
        move |request: WebhookRequest| {
            let (routes, plugins, base) = (served_routes.clone(), plugins.clone(), base.clone());
            async move { webhook_of(&routes, &plugins, &base, &request.instance_id).await }
        },
    );
    runtime.spawn_worker("channel.webhook", async move {
        work.await;
        Ok(())
    });

    let list = group
        .endpoint("routes")
        .await
        .map_err(register_failed("channel", "routes"))?;
    let work = answer(list, runtime.shutdown.clone(), move |_: NoBody| {
        let routes = routes
            .all()
            .iter()
            .map(|i| RouteView {
                instance_id: i.instance_id.clone(),
                plugin_id: i.plugin_id.clone(),
                channel: i.channel.clone(),
                webhook_url: i
                    .grants()
                    .check_inbound()
                    .is_ok()
                    .then(|| webhook_url(&public_base_url, &i.channel, &i.instance_id)),
            })
            .collect();
        async move { Ok::<_, ApiError>(RouteList { routes }) }
    });
    runtime.spawn_worker("channel.routes", async move {
        work.await;
        Ok(())
    });
    Ok(())
}

/// The webhook route of `instance_id`: the one served when it is enabled here, else the one it
/// will be served at, from its plugin's entrypoint and permissions in the plugin manager (the
/// same rules the route keeper applies when it is enabled).
async fn webhook_of(
    routes: &RouteTable,
    plugins: &MeshClient,
    public_base_url: &str,
    instance_id: &str,
) -> Result<WebhookView, ApiError> {
    if let Some(served) = routes.instance(instance_id) {
        return Ok(WebhookView {
            instance_id: served.instance_id.clone(),
            channel: served.channel.clone(),
            webhook_url: served
                .grants()
                .check_inbound()
                .is_ok()
                .then(|| webhook_url(public_base_url, &served.channel, &served.instance_id)),
            served: true,
        });
    }
    let runtime = plugins.runtime(instance_id).await.map_err(|e| match e {
        tributary_plugin_manager::client::CallError::Api(api) => api,
        other => ApiError::new(
            ErrorCode::Internal,
            format!("cannot ask the plugin manager about `{instance_id}`: {other}"),
        ),
    })?;
    if runtime.plugin_type != tributary_proto::PluginType::Channel {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "`{instance_id}` is a {} instance, not a channel: it has no webhook route",
                runtime.plugin_type.as_str()
            ),
        ));
    }
    let channel = channel_name(&runtime.entrypoint);
    Ok(WebhookView {
        instance_id: runtime.instance_id.clone(),
        webhook_url: runtime
            .grants()
            .check_inbound()
            .is_ok()
            .then(|| webhook_url(public_base_url, &channel, &runtime.instance_id)),
        channel,
        served: false,
    })
}
