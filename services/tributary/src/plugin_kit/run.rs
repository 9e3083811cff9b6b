//! `tributary plugins test <DIR>`: each test case run in the real wasm host (or, for a
//! declarative connector, by the host's spec engine), with no NATS or PostgreSQL.
//!
//! A case's configuration has every field a `network:outbound:${field}` permission names
//! pointed at a local fixture server (its path kept), so the grant covers the server and
//! nothing leaves the machine; every other host the plugin reaches for is refused by the host
//! exactly as in production, and the case fails naming the permission, as it does for an item
//! of an entity type no `data:write` permission grants. Items are validated
//! against the contract's JSON Schemas; a channel's events and sent messages are read as the
//! channel service reads them.
//!
//! A declarative spec whose `base_url` is a URL as written (`https://api.hubapi.com`) is run
//! with the fixture server in its place (its path kept), and the run is granted the fixture
//! server's address as the manifest grants the spec's host; `${base_url}` in the fixtures
//! becomes that address. Any other host the spec reaches for (a next link in a body that
//! leads elsewhere) is refused by the same grant-checked client as in production.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tributary_host::{ChannelRegistry, ConnectorRegistry};
use tributary_kit::config::WasmConfig;
use tributary_plugin_sdk::{
    ChannelPlugin, ConnectorPlugin, Cursor, EventSink, Grants, IncomingWebhook, KeyValueStore,
    OutboundMessage, PluginContext, PluginError, PluginEvent, SyncRequest, SyncStep,
    WebhookVerdict,
};
use tributary_proto::events::{InstanceState, SyncMode};
use tributary_proto::manifest::PluginManifest;
use tributary_proto::model::EntityType;
use tributary_proto::requests::plugins::{ComponentSource, RuntimeInstance};

use super::build::Built;
use super::cases::{Case, CaseFile, Expect, ExpectedItem};
use super::declarative::{literal_base_url, CheckedSpec};
use super::fixtures::{FixtureServer, SeenRequest, Substitutions};
use super::KitError;

/// What one case produced, and how it measured up.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Every way it failed; empty when it passed.
    pub problems: Vec<String>,
    /// A sync's items.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Value>,
    /// A sync's last checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Value>,
    /// A webhook's answer status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A handled webhook's events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Value>,
    /// A sent message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Value>,
    /// The events the plugin emitted (`emit-event`), each `{"subject", "payload"}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emitted: Vec<Value>,
    /// How the run failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The permission the host refused, if it refused one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The HTTP requests the plugin made.
    pub requests: Vec<String>,
}

impl CaseOutcome {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// What the run produced, as a case's `expect` (for `--update`).
    pub fn as_expect(&self, plugin_type: &str) -> Expect {
        let mut expect = Expect {
            error: self.error.clone(),
            requests: None,
            emitted: (!self.emitted.is_empty()).then(|| self.emitted.clone()),
            ..Expect::default()
        };
        if plugin_type == "connector" {
            expect.items = Some(
                self.items
                    .iter()
                    .map(|item| ExpectedItem {
                        entity_type: plural(&text(item, "entity_type")),
                        external_id: text(item, "external_id"),
                        operation: text(item, "operation"),
                        data: item.get("data").cloned(),
                    })
                    .collect(),
            );
            expect.checkpoint = self.checkpoint.clone();
        } else if self.sent.is_some() || self.status.is_none() {
            expect.sent = self.sent.clone();
            expect.requests = Some(self.requests.len());
        } else {
            expect.status = self.status;
            expect.events = Some(self.events.clone());
        }
        expect
    }
}

fn text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// What runs a plugin's cases.
enum KitPlugin {
    /// A built WebAssembly component, run by the wasm host.
    Wasm {
        built: Built,
        connectors: ConnectorRegistry,
        channels: ChannelRegistry,
    },
    /// A checked declarative spec, run by its engine.
    Declarative(CheckedSpec),
}

/// Where a case's HTTP goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The instance's configuration, its granted URL fields pointed where the HTTP goes.
    pub config: Value,
    /// For a declarative spec with a `base_url` as written: the URL it runs against instead,
    /// granted to the run as the manifest grants the spec's host.
    pub base_url: Option<String>,
}

/// Runs cases of one built (or checked) plugin.
pub struct CaseRunner {
    plugin: KitPlugin,
    /// The plugin's id, as its manifest says.
    id: String,
    manifest: PluginManifest,
    secret_fields: Vec<String>,
    url_fields: Vec<String>,
}

impl CaseRunner {
    /// A runner for `built`, with the host's `[wasm]` settings.
    pub fn new(built: Built, wasm: &WasmConfig) -> Result<Self, KitError> {
        let manifest = read_manifest(&built.dir, &built.manifest)?;
        let cache = super::files::cache_root().join("tributary-wasm-compiled");
        let runtime = tributary_wasm::WasmRuntime::new(wasm, Some(cache))
            .map_err(|e| KitError::Host(format!("the wasm host cannot start: {e}")))?;
        let plugin = KitPlugin::Wasm {
            built,
            connectors: ConnectorRegistry::empty().with_wasm(runtime.clone()),
            channels: ChannelRegistry::empty().with_wasm(runtime),
        };
        Ok(Self::with(plugin, manifest))
    }

    /// A runner for a declarative plugin whose spec passed the install checks.
    pub fn declarative(checked: CheckedSpec) -> Result<Self, KitError> {
        let manifest = read_manifest(&checked.dir, &checked.manifest)?;
        Ok(Self::with(KitPlugin::Declarative(checked), manifest))
    }

    fn with(plugin: KitPlugin, manifest: PluginManifest) -> Self {
        CaseRunner {
            plugin,
            id: manifest.id.clone(),
            secret_fields: tributary_plugin_manager::config_schema::top_level_secret_fields(
                &manifest.config_schema,
            ),
            url_fields: granted_url_fields(&manifest),
            manifest,
        }
    }

    /// The built plugin (none for a declarative one).
    pub fn built(&self) -> Option<&Built> {
        match &self.plugin {
            KitPlugin::Wasm { built, .. } => Some(built),
            KitPlugin::Declarative(_) => None,
        }
    }

    /// The checked spec of a declarative plugin.
    pub fn checked_spec(&self) -> Option<&CheckedSpec> {
        match &self.plugin {
            KitPlugin::Wasm { .. } => None,
            KitPlugin::Declarative(checked) => Some(checked),
        }
    }

    /// The plugin's type, as its manifest says (`connector`, `channel`).
    pub fn plugin_type(&self) -> &'static str {
        self.manifest.plugin_type.as_str()
    }

    /// A declarative spec's `base_url` as written, which a run points elsewhere.
    pub fn base_url(&self) -> Option<&str> {
        self.checked_spec()
            .and_then(|checked| literal_base_url(&checked.connector))
    }

    /// The configuration fields a `network:outbound:${field}` permission names.
    pub fn url_fields(&self) -> &[String] {
        &self.url_fields
    }

    /// The hosts `network:outbound:<host>` permissions name outright (not through a
    /// configuration field, nor as a declarative spec's `base_url`): requests to them are not
    /// served from the fixtures.
    pub fn fixed_hosts(&self) -> Vec<String> {
        let base_host = self
            .base_url()
            .and_then(|url| reqwest::Url::parse(url).ok())
            .and_then(|url| url.host_str().map(str::to_owned));
        self.manifest
            .permissions
            .iter()
            .filter_map(|p| {
                let text = p.to_string();
                let host = text.strip_prefix("network:outbound:")?;
                let served = base_host
                    .as_deref()
                    .is_some_and(|base| Grants::new([p.clone()]).check_outbound_host(base).is_ok());
                (!host.contains("${") && !served).then(|| host.to_owned())
            })
            .collect()
    }

    /// The top-level secret fields of the plugin's configuration.
    pub fn secret_fields(&self) -> &[String] {
        &self.secret_fields
    }

    /// Runs `file`'s case against its fixtures.
    pub async fn run(&self, file: &CaseFile) -> Result<CaseOutcome, KitError> {
        let server = FixtureServer::start(file.case.fixtures.clone()).await?;
        let (config, mut substitutions) =
            point_at(&file.case.config, &self.url_fields, &server.origin());
        let base_url = self.base_url().map(|url| rebase(url, &server.origin()));
        if let Some(pointed) = &base_url {
            substitutions.push((
                BASE_URL_PLACEHOLDER.to_owned(),
                pointed.trim_end_matches('/').to_owned(),
            ));
        }
        server.set_substitutions(substitutions);
        let target = Target { config, base_url };
        let mut outcome = self.run_against(&file.name, &file.case, target).await?;
        let seen = server.seen();
        check_requests(&file.case.expect, &seen, &mut outcome);
        Ok(outcome)
    }

    /// Runs `case` against `target`: its configuration as the instance's (its URLs already
    /// pointed where the run's HTTP should go) and a declarative spec's base URL.
    pub async fn run_against(
        &self,
        name: &str,
        case: &Case,
        target: Target,
    ) -> Result<CaseOutcome, KitError> {
        let Target { config, base_url } = target;
        let mut outcome = CaseOutcome {
            name: name.to_owned(),
            description: case.description.clone(),
            problems: Vec::new(),
            items: Vec::new(),
            checkpoint: None,
            status: None,
            events: Vec::new(),
            sent: None,
            emitted: Vec::new(),
            error: None,
            refused: None,
            requests: Vec::new(),
        };
        let instance_id = instance_id(name);
        let mut grants = Grants::for_instance(self.manifest.permissions.clone(), &config);
        if let Some(stand_in) = base_url.as_deref().and_then(grant_of_url) {
            let mut permissions = grants.permissions().to_vec();
            permissions.push(stand_in);
            grants = Grants::new(permissions);
        }
        let emitted = Arc::new(EventRecorder::default());
        let ctx = PluginContext::builder(&self.id, &instance_id, grants.clone())
            .config(config.clone())
            .kv_store(Arc::new(MemoryKv::default()))
            .event_sink(emitted.clone())
            // The fixture server listens on loopback, and each `${field}` grant names its
            // address and port exactly: the kit is the operator here, and allows that.
            .http(|http| http.max_attempts(2).allow_private_network(true))
            .build()
            .map_err(|e| KitError::Host(e.to_string()))?;
        match (&self.plugin, &case.sync) {
            (KitPlugin::Declarative(checked), Some(sync)) => {
                let connector = match base_url {
                    Some(base_url) => checked.connector.clone().with_base_url(base_url),
                    None => checked.connector.clone(),
                };
                run_sync(Arc::new(connector), ctx, &grants, sync, &mut outcome).await;
            }
            (KitPlugin::Declarative(_), None) => outcome
                .problems
                .push("a declarative connector's case needs `sync`".to_owned()),
            (
                KitPlugin::Wasm {
                    built, connectors, ..
                },
                Some(sync),
            ) => {
                let instance = self.instance(built, &instance_id, config);
                let plugin = connectors
                    .resolve_instance(&instance)
                    .await
                    .map_err(|e| KitError::Host(e.to_string()))?;
                run_sync(plugin, ctx, &grants, sync, &mut outcome).await;
            }
            (
                KitPlugin::Wasm {
                    built, channels, ..
                },
                None,
            ) => {
                let instance = self.instance(built, &instance_id, config);
                let plugin = channels
                    .resolve_instance(&instance)
                    .await
                    .map_err(|e| KitError::Host(e.to_string()))?;
                if let Some(webhook) = &case.webhook {
                    run_webhook(plugin.as_ref(), &ctx, webhook, &instance_id, &mut outcome).await;
                } else if let Some(message) = &case.send {
                    run_send(plugin.as_ref(), &ctx, message, &mut outcome).await;
                }
            }
        }
        outcome.emitted = emitted.taken();
        check_expectations(&case.expect, &mut outcome);
        Ok(outcome)
    }

    fn instance(&self, built: &Built, instance_id: &str, config: Value) -> RuntimeInstance {
        RuntimeInstance {
            instance_id: instance_id.to_owned(),
            plugin_id: built.id.clone(),
            plugin_type: self.manifest.plugin_type,
            version: built.version.clone(),
            entrypoint: self.manifest.entrypoint.clone(),
            permissions: self.manifest.permissions.clone(),
            config,
            state: InstanceState::Enabled,
            secret_fields: self.secret_fields.clone(),
            component: Some(ComponentSource {
                path: std::path::absolute(&built.component)
                    .unwrap_or_else(|_| built.component.clone())
                    .display()
                    .to_string(),
                sha256: built.sha256.clone(),
            }),
            limits: self.manifest.limits,
            // `plugins test` serves fixtures: no token to attach.
            oauth: false,
        }
    }
}

/// What `${base_url}` in a declarative plugin's fixtures stands for: the address its spec's
/// `base_url` is pointed at in the run.
pub const BASE_URL_PLACEHOLDER: &str = "${base_url}";

/// The id of the instance a case runs as: `test-<case>`.
fn instance_id(case: &str) -> String {
    let slug: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("test-{slug}")
}

/// The manifest `value` of the plugin in `dir`, parsed.
fn read_manifest(dir: &std::path::Path, value: &Value) -> Result<PluginManifest, KitError> {
    PluginManifest::from_value(value)
        .map_err(|errors| KitError::plugin(&dir.join("plugin.json"), errors.to_string()))
}

/// The permission that grants exactly `url`'s host and port (`network:outbound:127.0.0.1:4810`):
/// what a run grants the server standing in for a spec's `base_url`.
fn grant_of_url(url: &str) -> Option<tributary_proto::manifest::Permission> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    let resource = match url.port() {
        Some(port) => format!("network:outbound:{host}:{port}"),
        None => format!("network:outbound:{host}"),
    };
    resource.parse().ok()
}

/// The fields of `manifest`'s configuration that a `network:outbound:${field}` permission
/// names.
fn granted_url_fields(manifest: &PluginManifest) -> Vec<String> {
    let mut fields: Vec<String> = manifest
        .permissions
        .iter()
        .filter_map(|p| {
            let text = p.to_string();
            let template = text.strip_prefix("network:outbound:")?;
            let field = template.strip_prefix("${")?.strip_suffix('}')?;
            Some(field.to_owned())
        })
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// `url` with its scheme, host and port replaced by `origin`; its path and query kept.
pub fn rebase(url: &str, origin: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return origin.to_owned();
    };
    match rest.find(['/', '?']) {
        Some(at) => format!("{origin}{}", &rest[at..]),
        None => origin.to_owned(),
    }
}

/// `config` with each of `fields` that holds a URL pointed at `origin`, and the `${field}`
/// placeholders the fixtures use for them.
pub fn point_at(config: &Value, fields: &[String], origin: &str) -> (Value, Substitutions) {
    let mut config = config.clone();
    let mut substitutions = Vec::new();
    for field in fields {
        if let Some(slot) = config.get_mut(field) {
            if let Some(url) = slot.as_str() {
                let pointed = rebase(url, origin);
                substitutions.push((
                    format!("${{{field}}}"),
                    pointed.trim_end_matches('/').to_owned(),
                ));
                *slot = Value::String(pointed);
            }
        }
    }
    (config, substitutions)
}

async fn run_sync(
    plugin: Arc<dyn ConnectorPlugin>,
    ctx: PluginContext,
    grants: &Grants,
    sync: &super::cases::SyncCase,
    outcome: &mut CaseOutcome,
) {
    let mode: SyncMode = match serde_json::from_value(Value::String(sync.mode.clone())) {
        Ok(mode) => mode,
        Err(_) => {
            outcome.problems.push(format!(
                "`sync.mode` is `{}`: it is `full`, `incremental` or `backfill`",
                sync.mode
            ));
            return;
        }
    };
    let since = match sync
        .since
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        None => None,
        Some(Ok(since)) => Some(since.with_timezone(&Utc)),
        Some(Err(e)) => {
            outcome
                .problems
                .push(format!("`sync.since` is not an RFC 3339 time: {e}"));
            return;
        }
    };
    let request = SyncRequest { mode, since };
    let cursor = sync.cursor.clone().map(Cursor);
    let validator = match super::validate::ItemValidator::new() {
        Ok(validator) => validator,
        Err(e) => {
            outcome.problems.push(e.to_string());
            return;
        }
    };
    let mut steps = plugin.sync(ctx, cursor, request);
    while let Some(step) = steps.next().await {
        match step {
            Ok(SyncStep::Item(item)) => {
                // As the connector service does: an entity type not granted ends the sync.
                if let Err(denied) = grants.check_write(item.entity_type) {
                    outcome.refused = Some(denied.needed.to_string());
                    outcome.error = Some(format!(
                        "the plugin yielded a {} item: {denied}",
                        item.entity_type
                    ));
                    break;
                }
                let value = serde_json::to_value(&item).unwrap_or(Value::Null);
                for problem in validator.problems(&value) {
                    outcome.problems.push(format!(
                        "item {} {}: {problem}",
                        item.entity_type.as_str(),
                        item.external_id
                    ));
                }
                outcome.items.push(value);
            }
            Ok(SyncStep::Checkpoint(cursor)) => outcome.checkpoint = Some(cursor.0),
            Err(e) => {
                note_failure(&e, outcome);
                break;
            }
        }
    }
}

async fn run_webhook(
    plugin: &dyn ChannelPlugin,
    ctx: &PluginContext,
    webhook: &super::cases::WebhookCase,
    instance_id: &str,
    outcome: &mut CaseOutcome,
) {
    let query = webhook.query.clone().filter(|q| !q.is_empty());
    let url = match &query {
        Some(query) => format!("http://127.0.0.1/webhooks/{instance_id}?{query}"),
        None => format!("http://127.0.0.1/webhooks/{instance_id}"),
    };
    let mut request = IncomingWebhook {
        method: webhook.method.clone(),
        url,
        query,
        headers: webhook
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
        body: webhook.body_bytes(),
        received_at: Utc::now(),
    };
    match plugin.verify(ctx, &request).await {
        Ok(WebhookVerdict::Accept { .. }) => outcome.status = Some(200),
        Ok(WebhookVerdict::Respond(response)) => {
            outcome.status = Some(response.status);
            return;
        }
        Err(rejection) => {
            outcome.status = Some(rejection.status);
            outcome.error = Some(rejection.reason);
            return;
        }
    }
    // Stored webhooks keep only the headers the plugin reads.
    let keep = plugin.headers_to_keep();
    request
        .headers
        .retain(|(name, _)| keep.contains(&name.as_str()));
    match plugin.handle_incoming(ctx, request).await {
        Ok(events) => {
            outcome.events = events
                .iter()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                .collect();
        }
        Err(e) => note_failure(&e, outcome),
    }
}

async fn run_send(
    plugin: &dyn ChannelPlugin,
    ctx: &PluginContext,
    message: &Value,
    outcome: &mut CaseOutcome,
) {
    let message: OutboundMessage = match serde_json::from_value(message.clone()) {
        Ok(message) => message,
        Err(e) => {
            outcome
                .problems
                .push(format!("`send` is not an outbound message: {e}"));
            return;
        }
    };
    match plugin.send_message(ctx, message).await {
        Ok(sent) => outcome.sent = Some(serde_json::to_value(&sent).unwrap_or(Value::Null)),
        Err(e) => note_failure(&e, outcome),
    }
}

fn note_failure(error: &PluginError, outcome: &mut CaseOutcome) {
    if let PluginError::PermissionDenied(denied) = error {
        outcome.refused = Some(denied.needed.to_string());
    }
    outcome.error = Some(error.to_string());
}

/// Holds `outcome` to what `expect` asks.
fn check_expectations(expect: &Expect, outcome: &mut CaseOutcome) {
    match (&expect.error, &outcome.error) {
        (None, Some(error)) => match &outcome.refused {
            Some(permission) => outcome.problems.push(format!(
                "the host refused `{permission}`, which plugin.json's permissions do not grant"
            )),
            None if outcome.status.is_some() && expect.status == outcome.status => {}
            None => outcome.problems.push(format!("it failed: {error}")),
        },
        (Some(wanted), None) => outcome
            .problems
            .push(format!("it was to fail with \"{wanted}\", and did not")),
        (Some(wanted), Some(error)) if !error.contains(wanted.as_str()) => outcome.problems.push(
            format!("it was to fail with \"{wanted}\", and failed with: {error}"),
        ),
        _ => {}
    }
    if let Some(items) = &expect.items {
        if items.len() != outcome.items.len() {
            outcome.problems.push(format!(
                "{} items were expected, {} came: {}",
                items.len(),
                outcome.items.len(),
                outcome
                    .items
                    .iter()
                    .map(item_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (index, (wanted, item)) in items.iter().zip(&outcome.items).enumerate() {
            let name = item_name(item);
            let same = same_entity(&text(item, "entity_type"), &wanted.entity_type)
                && text(item, "external_id") == wanted.external_id
                && text(item, "operation") == wanted.operation;
            if !same {
                outcome.problems.push(format!(
                    "item {index}: {} {} {} was expected, {name} came",
                    wanted.entity_type, wanted.external_id, wanted.operation
                ));
            } else if let Some(data) = &wanted.data {
                if let Some(difference) =
                    differs(data, item.get("data").unwrap_or(&Value::Null), "data")
                {
                    outcome
                        .problems
                        .push(format!("item {index} ({name}): {difference}"));
                }
            }
        }
    }
    if let Some(checkpoint) = &expect.checkpoint {
        match &outcome.checkpoint {
            None => outcome
                .problems
                .push("a checkpoint was expected, none came".to_owned()),
            Some(got) => {
                if let Some(difference) = differs(checkpoint, got, "checkpoint") {
                    outcome.problems.push(difference);
                }
            }
        }
    }
    if let Some(status) = expect.status {
        if outcome.status != Some(status) {
            outcome.problems.push(format!(
                "status {status} was expected, {} came",
                outcome.status.map_or("none".to_owned(), |s| s.to_string())
            ));
        }
    }
    if let Some(events) = &expect.events {
        if events.len() != outcome.events.len() {
            outcome.problems.push(format!(
                "{} events were expected, {} came",
                events.len(),
                outcome.events.len()
            ));
        }
        for (index, (wanted, event)) in events.iter().zip(&outcome.events).enumerate() {
            if let Some(difference) = differs(wanted, event, &format!("event {index}")) {
                outcome.problems.push(difference);
            }
        }
    }
    if let Some(emitted) = &expect.emitted {
        if emitted.len() != outcome.emitted.len() {
            outcome.problems.push(format!(
                "{} emitted events were expected, {} came",
                emitted.len(),
                outcome.emitted.len()
            ));
        }
        for (index, (wanted, event)) in emitted.iter().zip(&outcome.emitted).enumerate() {
            if let Some(difference) = differs(wanted, event, &format!("emitted {index}")) {
                outcome.problems.push(difference);
            }
        }
    }
    if let Some(sent) = &expect.sent {
        match &outcome.sent {
            None => outcome
                .problems
                .push("a sent message was expected, none came".to_owned()),
            Some(got) => {
                if let Some(difference) = differs(sent, got, "sent") {
                    outcome.problems.push(difference);
                }
            }
        }
    }
}

fn check_requests(expect: &Expect, seen: &[SeenRequest], outcome: &mut CaseOutcome) {
    outcome.requests = seen.iter().map(ToString::to_string).collect();
    for request in seen.iter().filter(|r| !r.answered) {
        outcome.problems.push(format!(
            "the plugin asked for {request}, which no fixture answers (add one, or record it with --record)"
        ));
    }
    if let Some(count) = expect.requests {
        if count != seen.len() {
            outcome.problems.push(format!(
                "{count} HTTP requests were expected, {} were made",
                seen.len()
            ));
        }
    }
}

/// Whether two spellings name the same entity type (`documents`, as the WIT and the guest
/// SDKs spell it, and `document`, as an item serialises it).
fn same_entity(a: &str, b: &str) -> bool {
    match (a.parse::<EntityType>(), b.parse::<EntityType>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The plural (`documents`) of an entity type spelled either way.
pub fn plural(entity: &str) -> String {
    entity
        .parse::<EntityType>()
        .map_or_else(|_| entity.to_owned(), |e| e.plural().to_owned())
}

fn item_name(item: &Value) -> String {
    format!(
        "{} {} {}",
        plural(&text(item, "entity_type")),
        text(item, "external_id"),
        text(item, "operation")
    )
}

/// Where `got` lacks something of `wanted` (every key of an object wanted must be there and
/// match; arrays match element by element and in length; anything else must be equal).
pub fn differs(wanted: &Value, got: &Value, path: &str) -> Option<String> {
    match (wanted, got) {
        (Value::Object(wanted), Value::Object(got)) => {
            wanted.iter().find_map(|(key, value)| match got.get(key) {
                Some(other) => differs(value, other, &format!("{path}.{key}")),
                None => Some(format!(
                    "{path}.{key} was expected to be {value}, and is missing"
                )),
            })
        }
        (Value::Array(wanted), Value::Array(got)) if wanted.len() == got.len() => wanted
            .iter()
            .zip(got)
            .enumerate()
            .find_map(|(i, (w, g))| differs(w, g, &format!("{path}[{i}]"))),
        _ if wanted == got => None,
        _ => Some(format!("{path} was expected to be {wanted}, and is {got}")),
    }
}

/// The events a plugin emits in a test run, kept in order.
#[derive(Default)]
struct EventRecorder(Mutex<Vec<Value>>);

impl EventRecorder {
    fn taken(&self) -> Vec<Value> {
        self.0
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for EventRecorder {
    async fn publish(&self, event: PluginEvent) -> Result<(), PluginError> {
        if let Ok(mut events) = self.0.lock() {
            events.push(serde_json::json!({"subject": event.subject, "payload": event.payload}));
        }
        Ok(())
    }
}

/// A plugin's own store for a test run, in memory.
#[derive(Default)]
struct MemoryKv(Mutex<HashMap<(String, String), Vec<u8>>>);

#[async_trait]
impl KeyValueStore for MemoryKv {
    async fn get(&self, instance_id: &str, key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(self
            .0
            .lock()
            .ok()
            .and_then(|map| map.get(&(instance_id.to_owned(), key.to_owned())).cloned()))
    }

    async fn set(&self, instance_id: &str, key: &str, value: &[u8]) -> Result<(), PluginError> {
        if let Ok(mut map) = self.0.lock() {
            map.insert((instance_id.to_owned(), key.to_owned()), value.to_vec());
        }
        Ok(())
    }

    async fn delete(&self, instance_id: &str, key: &str) -> Result<(), PluginError> {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&(instance_id.to_owned(), key.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_url_keeps_its_path_when_pointed_at_the_fixture_server() {
        assert_eq!(
            rebase("https://api.github.com", "http://127.0.0.1:9"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            rebase("https://h.example/api/v4/", "http://127.0.0.1:9"),
            "http://127.0.0.1:9/api/v4/"
        );
        assert_eq!(
            rebase("https://h.example?x=1", "http://127.0.0.1:9"),
            "http://127.0.0.1:9?x=1"
        );
    }

    #[test]
    fn only_granted_url_fields_are_pointed_at_the_fixture_server() {
        let config = json!({"baseUrl": "https://h.example/v1", "other": "https://o.example"});
        let (pointed, substitutions) =
            point_at(&config, &["baseUrl".to_owned()], "http://127.0.0.1:9");
        assert_eq!(pointed["baseUrl"], "http://127.0.0.1:9/v1");
        assert_eq!(pointed["other"], "https://o.example");
        assert_eq!(
            substitutions,
            vec![("${baseUrl}".to_owned(), "http://127.0.0.1:9/v1".to_owned())]
        );
    }

    #[test]
    fn a_subset_names_the_first_difference() {
        let got = json!({"title": "A", "tags": ["x"], "extra": {"n": 1}});
        assert_eq!(differs(&json!({"title": "A"}), &got, "data"), None);
        assert_eq!(
            differs(&json!({"extra": {"n": 2}}), &got, "data").unwrap(),
            "data.extra.n was expected to be 2, and is 1"
        );
        assert!(differs(&json!({"missing": 1}), &got, "data")
            .unwrap()
            .contains("missing"));
        assert!(differs(&json!({"tags": ["x", "y"]}), &got, "data").is_some());
    }
}
