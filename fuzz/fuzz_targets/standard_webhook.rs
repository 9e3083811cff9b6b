//! A request to a generic webhook instance's route: the Standard Webhooks id, timestamp and
//! signature check and the JSON delivery behind it. An input without those headers gets them,
//! signed with the instance's secret, so the delivery reaches the code past the check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_channel_webhook::GenericWebhook;
use tributary_fuzz::{channel_context, default_header, deliver, received_at, webhook_request};
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_plugin_sdk::PluginContext;

/// `whsec_` and the Base64 of `fuzz-webhook-key`.
const SECRET: &str = "whsec_ZnV6ei13ZWJob29rLWtleQ==";
const KEY: &[u8] = b"fuzz-webhook-key";

static CTX: OnceLock<PluginContext> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(mut request) = webhook_request(data) else {
        return;
    };
    let timestamp = received_at().timestamp();
    default_header(&mut request, standard_webhooks::ID_HEADER, || {
        "msg_fuzz".to_owned()
    });
    default_header(&mut request, standard_webhooks::TIMESTAMP_HEADER, || {
        timestamp.to_string()
    });
    let id = request
        .header(standard_webhooks::ID_HEADER)
        .unwrap_or_default()
        .to_owned();
    let stamp = request
        .header(standard_webhooks::TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(timestamp);
    let body = request.body.clone();
    default_header(&mut request, standard_webhooks::SIGNATURE_HEADER, || {
        standard_webhooks::sign(KEY, &id, stamp, &body)
    });
    let ctx = channel_context(&CTX, "tributary.webhook", json!({ "secret": SECRET }));
    deliver(&GenericWebhook, ctx, request);
});
