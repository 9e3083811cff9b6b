//! The `channel.*` endpoints of the NATS micro service: `channel.send.<instance>` sends a
//! message, `channel.routes` lists the webhook routes served here; both answered in the
//! mesh's reply envelope.

use tributary_kit::{KitError, ServiceRuntime};
use tributary_plugin_manager::api::{ApiError, ErrorCode};
use tributary_plugin_manager::nats_api::{answer, answer_on_subject, register_failed, NoBody};

use crate::api::{RouteList, RouteView, SendRequest};
use crate::outbound::Sender;
use crate::routes::RouteTable;
use crate::webhook_url;

/// The verb of sends; the instance is the token after it.
pub const SEND: &str = "send";

/// Adds the `channel.*` endpoints and answers them until the service stops.
pub async fn serve(
    runtime: &ServiceRuntime,
    sender: Sender,
    routes: RouteTable,
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
