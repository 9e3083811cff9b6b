//! A connector component as a [`ConnectorPlugin`]: the host pulls pages of items from the
//! guest's `next-page`, asking for the next only once the service has taken the one before.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, EntityType, ItemOperation, PluginContext, PluginError,
    SyncMode, SyncRequest, SyncStep,
};
use wasmtime::Store;

use crate::bindings::connector::exports::tributary::plugin::sync as guest;
use crate::bindings::connector::Connector;
use crate::host::from_guest;
use crate::limits::Limits;
use crate::runtime::{describe_failure, LoadedComponent, PluginInstance, WasmRuntime};
use crate::state::{HostState, InstanceShared};

/// Pages in a row with no item and no checkpoint after which a sync is failed: a guest that
/// says there is more and never hands anything over is looping.
const MAX_EMPTY_PAGES: u32 = 1000;

/// One instance of a connector component.
#[derive(Debug)]
pub struct WasmConnector {
    plugin: PluginInstance,
}

impl WasmConnector {
    /// The connector `component` runs, under `limits`, hiding `secret_fields` from its
    /// `config()`.
    pub fn new(
        runtime: WasmRuntime,
        component: Arc<LoadedComponent>,
        limits: Limits,
        secret_fields: Vec<String>,
    ) -> Self {
        WasmConnector {
            plugin: PluginInstance::new(runtime, component, limits, secret_fields),
        }
    }
}

/// A sync in progress: the guest and where it got to.
struct SyncRun {
    store: Store<HostState>,
    guest: Connector,
    request: guest::SyncRequest,
    token: Option<String>,
    instance_id: String,
    limits: Limits,
    empty_pages: u32,
    cancel: Arc<AtomicBool>,
}

impl Drop for SyncRun {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

enum Progress {
    NotStarted(Box<Start>),
    Running(Box<SyncRun>),
    Done,
}

struct Start {
    plugin: PluginInstance,
    shared: Arc<InstanceShared>,
    request: guest::SyncRequest,
}

fn to_guest_request(cursor: Option<Cursor>, request: SyncRequest) -> guest::SyncRequest {
    guest::SyncRequest {
        mode: match request.mode {
            SyncMode::Incremental => guest::SyncMode::Incremental,
            SyncMode::Full => guest::SyncMode::Full,
            SyncMode::Backfill => guest::SyncMode::Backfill,
        },
        since: request.since.map(|since| since.to_rfc3339()),
        cursor: match request.mode {
            SyncMode::Full => None,
            _ => cursor.map(|c| c.0.to_string()),
        },
    }
}

impl ConnectorPlugin for WasmConnector {
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let start = Start {
            shared: self.plugin.shared(ctx),
            plugin: self.plugin.clone(),
            request: to_guest_request(cursor, request),
        };
        stream::unfold(
            Progress::NotStarted(Box::new(start)),
            |progress| async move {
                let (steps, next) = match progress {
                    Progress::Done => return None,
                    Progress::NotStarted(start) => match instantiate(*start).await {
                        Ok(run) => next_page(Box::new(run)).await,
                        Err(e) => (vec![Err(e)], Progress::Done),
                    },
                    Progress::Running(run) => next_page(run).await,
                };
                Some((stream::iter(steps), next))
            },
        )
        .flatten()
        .boxed()
    }
}

async fn instantiate(start: Start) -> Result<SyncRun, PluginError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let instance_id = start.shared.ctx.instance_id().to_owned();
    let limits = start.shared.limits;
    let (mut store, instance) = start
        .plugin
        .instantiate(start.shared, true, cancel.clone())
        .await
        .map_err(PluginError::Other)?;
    let guest = Connector::new(&mut store, &instance)
        .map_err(|e| PluginError::Other(describe_failure(&store, &e)))?;
    Ok(SyncRun {
        store,
        guest,
        request: start.request,
        token: None,
        instance_id,
        limits,
        empty_pages: 0,
        cancel,
    })
}

type Steps = Vec<Result<SyncStep, PluginError>>;

async fn next_page(mut run: Box<SyncRun>) -> (Steps, Progress) {
    run.store.data_mut().meter.call_ticks = 0;
    let SyncRun {
        store,
        guest,
        request,
        token,
        ..
    } = &mut *run;
    let answer = guest
        .tributary_plugin_sync()
        .call_next_page(&mut *store, request, token.as_ref())
        .await;
    let page = match answer {
        Err(trap) => {
            let message = describe_failure(&run.store, &trap);
            return (vec![Err(PluginError::Other(message))], Progress::Done);
        }
        Ok(Err(error)) => {
            let mut error = from_guest(error);
            let shared = &run.store.data().shared;
            if let Some(refusal) = shared.take_refusal() {
                // The refusal is why the guest failed, whatever it made of it: reported as the
                // built-ins report one, naming the permission.
                error = PluginError::PermissionDenied(refusal);
            } else if let Some(failure) = shared.take_failure() {
                // So is a request the host could not make (a reconnect needed).
                error = PluginError::Other(failure);
            }
            return (vec![Err(error)], Progress::Done);
        }
        Ok(Ok(page)) => page,
    };
    let mut steps: Steps = Vec::with_capacity(page.items.len() + 1);
    for item in page.items {
        match to_item(item, &run.instance_id, &run.limits) {
            Ok(item) => steps.push(Ok(SyncStep::Item(item))),
            Err(e) => {
                steps.push(Err(e));
                return (steps, Progress::Done);
            }
        }
    }
    if let Some(checkpoint) = page.checkpoint {
        match serde_json::from_str::<Value>(&checkpoint) {
            Ok(cursor) => steps.push(Ok(SyncStep::Checkpoint(Cursor(cursor)))),
            Err(e) => {
                steps.push(Err(PluginError::Other(format!(
                    "the plugin's checkpoint is not JSON: {e}"
                ))));
                return (steps, Progress::Done);
            }
        }
    }
    if steps.is_empty() {
        run.empty_pages += 1;
        if run.empty_pages >= MAX_EMPTY_PAGES {
            let error = PluginError::Other(format!(
                "the plugin returned {MAX_EMPTY_PAGES} pages in a row with no item and no checkpoint, and still says there is more"
            ));
            return (vec![Err(error)], Progress::Done);
        }
    } else {
        run.empty_pages = 0;
    }
    match page.next {
        Some(next) => {
            run.token = Some(next);
            (steps, Progress::Running(run))
        }
        None => (steps, Progress::Done),
    }
}

/// A guest's item as the contract's, checked against the size limit.
fn to_item(
    item: guest::Item,
    instance_id: &str,
    limits: &Limits,
) -> Result<ConnectorItem, PluginError> {
    let external_id = item.external_id;
    let size = item.data.len() + item.raw.len();
    if size > limits.item_bytes {
        return Err(PluginError::Other(format!(
            "item `{external_id}` is {size} bytes, over the limit of {} bytes for one item",
            limits.item_bytes
        )));
    }
    let what = |problem: String| PluginError::Other(format!("item `{external_id}`: {problem}"));
    let entity_type = EntityType::from_str(&item.entity_type)
        .map_err(|_| what(format!("`{}` is no entity type", item.entity_type)))?;
    let source_modified_at = DateTime::parse_from_rfc3339(&item.source_modified_at)
        .map_err(|e| what(format!("source-modified-at is not RFC 3339: {e}")))?
        .with_timezone(&Utc);
    let data =
        serde_json::from_str(&item.data).map_err(|e| what(format!("its data is not JSON: {e}")))?;
    let raw = if item.raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&item.raw).map_err(|e| what(format!("its raw is not JSON: {e}")))?
    };
    Ok(ConnectorItem {
        instance_id: instance_id.to_owned(),
        entity_type,
        external_id: external_id.clone(),
        operation: match item.operation {
            guest::ItemOperation::Upsert => ItemOperation::Upsert,
            guest::ItemOperation::Delete => ItemOperation::Delete,
        },
        source_modified_at,
        data,
        raw,
    })
}
