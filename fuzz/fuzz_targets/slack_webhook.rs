//! A request to a Slack instance's webhook route: the signature and timestamp check, the URL
//! handshake, and the Events API payload behind them. An input without a signature header is
//! signed with the instance's secret, so the payload reaches the code past the check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_channel_slack::Slack;
use tributary_fuzz::{channel_context, default_header, deliver, received_at, webhook_request};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::slack;
use tributary_plugin_sdk::PluginContext;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

static CTX: OnceLock<PluginContext> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(mut request) = webhook_request(data) else {
        return;
    };
    let timestamp = received_at().timestamp();
    default_header(&mut request, slack::TIMESTAMP_HEADER, || {
        timestamp.to_string()
    });
    let secret = SecretString::from(SIGNING_SECRET);
    let body = request.body.clone();
    default_header(&mut request, slack::HEADER, || {
        slack::sign(&secret, timestamp, &body)
    });
    let ctx = channel_context(
        &CTX,
        "tributary.slack",
        json!({ "signingSecret": SIGNING_SECRET, "botToken": "xoxb-fuzz" }),
    );
    deliver(&Slack, ctx, request);
});
