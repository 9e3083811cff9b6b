//! A channel component as a [`ChannelPlugin`]. Each instance keeps warm guests for its
//! webhook path, so a request costs a call, not an instantiation; a guest that traps is
//! dropped and the next request makes a new one.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingEvent, IncomingWebhook, OutboundMessage, PluginContext, PluginError,
    SentMessage, WebhookRejection, WebhookResponse, WebhookVerdict,
};
use wasmtime::Store;

use crate::bindings::channel::exports::tributary::plugin::messaging as guest;
use crate::bindings::channel::Channel;
use crate::bindings::Header;
use crate::host::from_guest;
use crate::limits::Limits;
use crate::runtime::{describe_failure, LoadedComponent, PluginInstance, WasmRuntime};
use crate::state::{HostState, InstanceShared};

/// Warm guests kept per instance; more concurrent requests get a guest of their own.
const WARM_GUESTS: usize = 4;

/// One warm guest.
struct Guest {
    store: Store<HostState>,
    bindings: Channel,
}

/// One instance of a channel component.
pub struct WasmChannel {
    plugin: PluginInstance,
    shared: OnceLock<Arc<InstanceShared>>,
    warm: Mutex<Vec<Guest>>,
    keep: OnceLock<&'static [&'static str]>,
}

impl std::fmt::Debug for WasmChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmChannel")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

/// The header lists components asked to keep, one copy per list for the process's life
/// (`ChannelPlugin::headers_to_keep` hands out a static list).
fn interned(headers: Vec<String>) -> &'static [&'static str] {
    static LISTS: OnceLock<Mutex<HashMap<Vec<String>, &'static [&'static str]>>> = OnceLock::new();
    let lists = LISTS.get_or_init(Default::default);
    let Ok(mut lists) = lists.lock() else {
        return &["content-type"];
    };
    if let Some(list) = lists.get(&headers) {
        return list;
    }
    let names: Vec<&'static str> = headers
        .iter()
        .map(|h| &*Box::leak(h.to_ascii_lowercase().into_boxed_str()))
        .collect();
    let list: &'static [&'static str] = Box::leak(names.into_boxed_slice());
    lists.insert(headers, list);
    list
}

impl WasmChannel {
    /// The channel `component` runs, under `limits`, hiding `secret_fields` from its
    /// `config()`.
    pub fn new(
        runtime: WasmRuntime,
        component: Arc<LoadedComponent>,
        limits: Limits,
        secret_fields: Vec<String>,
    ) -> Self {
        WasmChannel {
            plugin: PluginInstance::new(runtime, component, limits, secret_fields),
            shared: OnceLock::new(),
            warm: Mutex::new(Vec::new()),
            keep: OnceLock::new(),
        }
    }

    fn shared(&self, ctx: &PluginContext) -> Arc<InstanceShared> {
        self.shared
            .get_or_init(|| self.plugin.shared(ctx.clone()))
            .clone()
    }

    async fn guest(&self, ctx: &PluginContext) -> Result<Guest, String> {
        let warm = self.warm.lock().ok().and_then(|mut warm| warm.pop());
        let mut guest = match warm {
            Some(guest) => guest,
            None => {
                let (mut store, instance) = self
                    .plugin
                    .instantiate(self.shared(ctx), false, Arc::new(AtomicBool::new(false)))
                    .await?;
                let bindings = Channel::new(&mut store, &instance)
                    .map_err(|e| describe_failure(&store, &e))?;
                Guest { store, bindings }
            }
        };
        guest.store.data_mut().meter.call_ticks = 0;
        guest.store.data_mut().meter.exceeded = None;
        Ok(guest)
    }

    fn put_back(&self, guest: Guest) {
        if let Ok(mut warm) = self.warm.lock() {
            if warm.len() < WARM_GUESTS {
                warm.push(guest);
            }
        }
    }

    /// Runs `call` on a guest; a trap drops the guest and comes back as its description.
    async fn with_guest<T>(
        &self,
        ctx: &PluginContext,
        call: impl for<'a> FnOnce(
            &'a Channel,
            &'a mut Store<HostState>,
        ) -> futures::future::BoxFuture<'a, wasmtime::Result<T>>,
    ) -> Result<T, String> {
        let mut guest = self.guest(ctx).await?;
        let Guest { store, bindings } = &mut guest;
        match call(bindings, store).await {
            Ok(value) => {
                self.put_back(guest);
                Ok(value)
            }
            Err(trap) => {
                let message = describe_failure(&guest.store, &trap);
                ctx.log_error(&message);
                Err(message)
            }
        }
    }
}

fn to_guest_webhook(request: &IncomingWebhook) -> guest::IncomingWebhook {
    guest::IncomingWebhook {
        method: request.method.clone(),
        url: request.url.clone(),
        query: request.query.clone(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: request.body.clone(),
        received_at: request.received_at.to_rfc3339(),
    }
}

/// `error`, or the permission the host refused before it, or the request it could not make:
/// the reason the guest failed.
fn with_refusal(shared: Option<&Arc<InstanceShared>>, error: PluginError) -> PluginError {
    let Some(shared) = shared else {
        return error;
    };
    match (shared.take_refusal(), shared.take_failure()) {
        // The refusal is why the guest failed, whatever it made of it; so is a request the
        // host could not make (a reconnect needed).
        (Some(refusal), _) => PluginError::PermissionDenied(refusal),
        (None, Some(failure)) => PluginError::Other(failure),
        (None, None) => error,
    }
}

#[async_trait]
impl ChannelPlugin for WasmChannel {
    async fn verify(
        &self,
        ctx: &PluginContext,
        request: &IncomingWebhook,
    ) -> Result<WebhookVerdict, WebhookRejection> {
        let webhook = to_guest_webhook(request);
        let needs_keep = self.keep.get().is_none();
        let (verdict, keep) = self
            .with_guest(ctx, |bindings, store| {
                Box::pin(async move {
                    let messaging = bindings.tributary_plugin_messaging();
                    let keep = if needs_keep {
                        Some(messaging.call_headers_to_keep(&mut *store).await?)
                    } else {
                        None
                    };
                    let verdict = messaging.call_verify_webhook(&mut *store, &webhook).await?;
                    Ok((verdict, keep))
                })
            })
            .await
            .map_err(WebhookRejection::internal)?;
        if let Some(keep) = keep {
            let _ = self.keep.set(interned(keep));
        }
        match verdict {
            Ok(guest::WebhookVerdict::Accept(delivery_id)) => {
                Ok(WebhookVerdict::Accept { delivery_id })
            }
            Ok(guest::WebhookVerdict::Respond(response)) => {
                Ok(WebhookVerdict::Respond(WebhookResponse {
                    status: response.status,
                    content_type: response.content_type,
                    body: response.body,
                }))
            }
            Err(rejection) => Err(WebhookRejection {
                status: if (400..600).contains(&rejection.status) {
                    rejection.status
                } else {
                    400
                },
                reason: rejection.reason,
            }),
        }
    }

    fn headers_to_keep(&self) -> &'static [&'static str] {
        self.keep.get().copied().unwrap_or(&["content-type"])
    }

    async fn handle_incoming(
        &self,
        ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        let webhook = to_guest_webhook(&payload);
        let answer = self
            .with_guest(ctx, |bindings, store| {
                Box::pin(async move {
                    bindings
                        .tributary_plugin_messaging()
                        .call_handle_incoming(&mut *store, &webhook)
                        .await
                })
            })
            .await
            .map_err(PluginError::Other)?;
        let json = answer.map_err(|e| with_refusal(self.shared.get(), from_guest(e)))?;
        serde_json::from_str(&json).map_err(|e| {
            PluginError::Other(format!(
                "the plugin's incoming events are not a JSON array of events: {e}"
            ))
        })
    }

    async fn send_message(
        &self,
        ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        let message = serde_json::to_string(&msg)
            .map_err(|e| PluginError::Other(format!("cannot encode the message: {e}")))?;
        let answer = self
            .with_guest(ctx, |bindings, store| {
                Box::pin(async move {
                    bindings
                        .tributary_plugin_messaging()
                        .call_send_message(&mut *store, &message)
                        .await
                })
            })
            .await
            .map_err(PluginError::Other)?;
        let json = answer.map_err(|e| with_refusal(self.shared.get(), from_guest(e)))?;
        let mut sent: SentMessage = serde_json::from_str(&json).map_err(|e| {
            PluginError::Other(format!(
                "the plugin's sent message is not a SentMessage: {e}"
            ))
        })?;
        sent.id = msg.id;
        Ok(sent)
    }
}
