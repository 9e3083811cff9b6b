//! What the fuzz targets share: a webhook request read from the fuzzer's bytes, a plugin
//! context for a channel instance, and the plugin manager's config checks.
//!
//! Each target in `fuzz_targets/` feeds one parser that reads what comes from outside; see
//! docs/fuzzing.md for the list, the corpora and how to run one.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tributary_plugin_sdk::{ChannelPlugin, Grants, IncomingWebhook, PluginContext, WebhookVerdict};

/// The plugin manager's checks of an instance's config against its plugin's `configSchema`,
/// compiled from their source file: depending on the plugin manager itself would compile
/// wasmtime and the whole service into every fuzz build, for these 200 lines.
#[path = "../../services/plugin-manager/src/config_schema.rs"]
#[allow(dead_code)]
pub mod config_schema;

/// The public base URL the channel service is configured with; a webhook's URL is this, the
/// route's path and the query string the caller chose.
pub const PUBLIC_BASE_URL: &str = "https://hub.example.com";

/// When the service received every fuzzed webhook: fixed, so an input replays the same way
/// (a signed seed carries timestamps of this moment).
pub fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 9, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Reads a webhook request from `data`, written like an HTTP/1.1 request without a version:
///
/// ```text
/// POST /webhooks/slack/main?a=b
/// content-type: application/json
/// x-slack-signature: v0=…
///
/// {"type": "event_callback", …}
/// ```
///
/// The first line is the method and the path with its query (what a caller on the internet
/// chooses; the URL is [`PUBLIC_BASE_URL`] followed by it), then one header per line until an
/// empty line, then the body, bytes as they are. Header names are lower-cased, as the channel
/// service hands them over. `None` when there is no first line.
pub fn webhook_request(data: &[u8]) -> Option<IncomingWebhook> {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let first = lines.next()?;
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let query = target.split_once('?').map(|(_, q)| q.to_owned());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(IncomingWebhook {
        method: method.to_owned(),
        url: format!("{PUBLIC_BASE_URL}{target}"),
        query,
        headers,
        body: body.to_vec(),
        received_at: received_at(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sets header `name` to `value` unless the request already has one: how a target signs a
/// request whose input names no signature, so that the parsing behind the check is reached.
pub fn default_header(request: &mut IncomingWebhook, name: &str, value: impl FnOnce() -> String) {
    if request.header(name).is_none() {
        let value = value();
        request.headers.push((name.to_owned(), value));
    }
}

/// A context for an instance of channel `plugin_id` with `config`, built once per process
/// (building its HTTP client is the slow part, and no target sends anything).
pub fn channel_context(
    cell: &'static OnceLock<PluginContext>,
    plugin_id: &str,
    config: Value,
) -> &'static PluginContext {
    cell.get_or_init(|| {
        match PluginContext::builder(plugin_id, "fuzz", Grants::default())
            .config(config)
            .build()
        {
            Ok(ctx) => ctx,
            Err(error) => panic!("the fuzz context cannot be built: {error}"),
        }
    })
}

/// What the channel service does with a request: asks the channel to verify it and, when it
/// is accepted, hands it to the channel to read. The request is read even when the check
/// refused it, as the fuzzer can rarely forge a signature and what follows the check must
/// hold against any body too (the provider signs whatever text its users wrote).
pub fn deliver(channel: &dyn ChannelPlugin, ctx: &PluginContext, request: IncomingWebhook) {
    if let Ok(WebhookVerdict::Respond(response)) = channel.verify_webhook(ctx, &request) {
        let _ = response.body.len();
    }
    let _ = futures::executor::block_on(channel.handle_incoming(ctx, request));
}
