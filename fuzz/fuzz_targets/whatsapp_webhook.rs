//! A request to a WhatsApp instance's webhook route: Meta's subscription handshake (`GET`),
//! the `X-Hub-Signature-256` check, the delivery id and the messages and statuses behind
//! them. An input without a signature header is signed with the app secret, so the payload
//! reaches the code past the check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_channel_whatsapp::WhatsApp;
use tributary_fuzz::{channel_context, default_header, deliver, webhook_request};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::meta;
use tributary_plugin_sdk::PluginContext;

const APP_SECRET: &str = "fuzz-app-secret";

static CTX: OnceLock<PluginContext> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(mut request) = webhook_request(data) else {
        return;
    };
    let secret = SecretString::from(APP_SECRET);
    let body = request.body.clone();
    default_header(&mut request, meta::HEADER, || meta::sign(&secret, &body));
    let ctx = channel_context(
        &CTX,
        "tributary.whatsapp",
        json!({
            "phoneNumberId": "106540352242922",
            "accessToken": "fuzz-access-token",
            "appSecret": APP_SECRET,
            "verifyToken": "fuzz-verify-token",
        }),
    );
    deliver(&WhatsApp, ctx, request);
});
