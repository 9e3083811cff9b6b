//! The `channel.*` endpoints of the NATS micro service: `channel.send.<instance>` sends a
//! message, `channel.routes` lists the webhook routes served here, `channel.webhook` gives
//! one instance's webhook URL (enabled or not, so `tributary plugins install` can print it);
//! each served through [`tributary_kit::requests::serve`].

use tributary_kit::client::{CallError, MeshClient};
use tributary_kit::{requests, KitError, ServiceRuntime};
use tributary_proto::requests::{ApiError, ErrorCode};
use tributary_proto::PluginType;

use crate::api::{RouteList, RouteView, RoutesQuery, SendMessage, WebhookRequest, WebhookView};
use crate::outbound::Sender;
use crate::registry::channel_name;
use crate::routes::RouteTable;
use crate::webhook_url;

/// Adds the `channel.*` endpoints and answers them until the service stops.
pub async fn serve(
    runtime: &ServiceRuntime,
    sender: Sender,
    routes: RouteTable,
    plugins: MeshClient,
    public_base_url: String,
) -> Result<(), KitError> {
    requests::serve(runtime, move |request: SendMessage| {
        let sender = sender.clone();
        async move {
            if request.instance_id.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    "send on channel.send.<instance>",
                ));
            }
            sender.send(&request.instance_id, request.message).await
        }
    })
    .await?;

    let (served_routes, base) = (routes.clone(), public_base_url.clone());
    requests::serve(runtime, move |request: WebhookRequest| {
        let (routes, plugins, base) = (served_routes.clone(), plugins.clone(), base.clone());
        async move { webhook_of(&routes, &plugins, &base, &request.instance_id).await }
    })
    .await?;

    requests::serve(runtime, move |_: RoutesQuery| {
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
    })
    .await
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
    let runtime = plugins
        .runtime(PluginType::Channel, instance_id)
        .await
        .map_err(|e| match e {
            CallError::Api(api) => api,
            other => ApiError::new(
                ErrorCode::Internal,
                format!("cannot ask the plugin manager about `{instance_id}`: {other}"),
            ),
        })?;
    // The plugin manager answers `plugins.runtime.channel` only about channel instances: a
    // connector instance is `not_found` above.
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
