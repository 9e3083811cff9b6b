//! A request to a Telegram instance's webhook route: the secret token check and the update
//! behind it. An input without the secret header gets the instance's, so the update reaches
//! the code past the check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_channel_telegram::Telegram;
use tributary_fuzz::{channel_context, default_header, deliver, webhook_request};
use tributary_plugin_sdk::signatures::telegram;
use tributary_plugin_sdk::PluginContext;

const SECRET_TOKEN: &str = "fuzz-secret-token";

static CTX: OnceLock<PluginContext> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(mut request) = webhook_request(data) else {
        return;
    };
    default_header(&mut request, telegram::HEADER, || SECRET_TOKEN.to_owned());
    let ctx = channel_context(
        &CTX,
        "tributary.telegram",
        json!({ "botToken": "123456:fuzz", "secretToken": SECRET_TOKEN }),
    );
    deliver(&Telegram, ctx, request);
});
