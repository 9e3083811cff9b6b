//! A test connector: yields `count` persons, `p<i>`, with a checkpoint every
//! `checkpointEvery`, optionally waiting `delayMs` per item, calling `url` before each page
//! through the permission-checked HTTP client, and failing at `failAt`. It records each
//! sync's instance, starting cursor and mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tributary_plugin_sdk::{
    require_config, ConnectorItem, ConnectorPlugin, Cursor, EntityType, ItemOperation,
    PluginContext, PluginError, SyncMode, SyncRequest, SyncStep,
};

/// The entrypoint it runs under.
pub const ENTRYPOINT: &str = "builtin:test-numbers";

/// One sync as the plugin saw it begin.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenSync {
    pub instance_id: String,
    pub cursor: Option<Value>,
    pub mode: SyncMode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NumbersConfig {
    count: u64,
    #[serde(default = "ten")]
    checkpoint_every: u64,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    fail_at: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    schedule: Option<String>,
}

fn ten() -> u64 {
    10
}

/// The connector.
#[derive(Debug, Clone, Default)]
pub struct Numbers {
    pub seen: Arc<Mutex<Vec<SeenSync>>>,
}

impl Numbers {
    /// The syncs begun so far.
    pub fn seen(&self) -> Vec<SeenSync> {
        self.seen.lock().unwrap().clone()
    }
}

/// The person `i` of `instance`: its e-mail names the instance, so two instances' people
/// never resolve to one.
pub fn person(instance: &str, i: u64) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance.to_owned(),
        entity_type: EntityType::Person,
        external_id: format!("p{i}"),
        operation: ItemOperation::Upsert,
        source_modified_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            + chrono::Duration::seconds(i as i64),
        data: json!({
            "display_name": format!("Person {i} of {instance}"),
            "emails": [format!("p{i}@{instance}.example.com")],
        }),
        raw: json!({ "i": i }),
    }
}

struct Walk {
    ctx: PluginContext,
    config: NumbersConfig,
    next: u64,
    since_checkpoint: u64,
    done: bool,
}

async fn step(mut walk: Walk) -> Option<(Result<SyncStep, PluginError>, Walk)> {
    if walk.done {
        return None;
    }
    let config = walk.config.clone();
    if walk.since_checkpoint == config.checkpoint_every || walk.next >= config.count {
        walk.done = walk.next >= config.count;
        walk.since_checkpoint = 0;
        let cursor = Cursor(json!({ "next": walk.next }));
        return Some((Ok(SyncStep::Checkpoint(cursor)), walk));
    }
    if walk.since_checkpoint == 0 {
        if let Some(url) = &config.url {
            if let Err(e) = walk.ctx.http().get(url).send().await {
                walk.done = true;
                return Some((Err(e), walk));
            }
        }
    }
    if config.fail_at == Some(walk.next) {
        walk.done = true;
        let e = PluginError::Other(format!("the source broke at item {}", walk.next));
        return Some((Err(e), walk));
    }
    if config.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(config.delay_ms)).await;
    }
    let item = person(walk.ctx.instance_id(), walk.next);
    walk.next += 1;
    walk.since_checkpoint += 1;
    Some((Ok(SyncStep::Item(item)), walk))
}

impl ConnectorPlugin for Numbers {
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        self.seen.lock().unwrap().push(SeenSync {
            instance_id: ctx.instance_id().to_owned(),
            cursor: cursor.as_ref().map(|c| c.0.clone()),
            mode: request.mode,
        });
        let config: NumbersConfig = match require_config(&ctx) {
            Ok(config) => config,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let next = match (request.mode, cursor) {
            (SyncMode::Incremental, Some(cursor)) => cursor.0["next"].as_u64().unwrap_or(0),
            _ => 0,
        };
        let walk = Walk {
            ctx,
            config,
            next,
            since_checkpoint: 0,
            done: false,
        };
        stream::unfold(walk, step).boxed()
    }
}

/// Its manifest, as plugin `id` run by `entrypoint` (its own, [`ENTRYPOINT`], or one no
/// connector runs), granting `permissions`.
pub fn manifest(id: &str, entrypoint: &str, permissions: &[&str]) -> String {
    json!({
        "id": id,
        "name": "Numbers",
        "version": "1.0.0",
        "type": "connector",
        "entrypoint": entrypoint,
        "permissions": permissions,
        "configSchema": {
            "type": "object",
            "properties": {
                "count": { "type": "integer", "minimum": 0 },
                "checkpointEvery": { "type": "integer", "minimum": 1 },
                "delayMs": { "type": "integer", "minimum": 0 },
                "url": { "type": "string" },
                "failAt": { "type": "integer" },
                "schedule": { "type": "string" }
            },
            "required": ["count"],
            "additionalProperties": false
        }
    })
    .to_string()
}
