//! A request to a Twilio SMS instance's webhook route: the method, the signature over the URL
//! and parameters (or the URL's `bodySHA256` for a JSON body), the account check, and the
//! form, query or JSON parameters behind them. An input without a signature header is
//! signed with the instance's auth token (a JSON body's hash added to the URL first), so the
//! parameters reach the code past the check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_channel_twilio_sms::TwilioSms;
use tributary_fuzz::{channel_context, deliver, webhook_request};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::signatures::twilio;
use tributary_plugin_sdk::PluginContext;

const ACCOUNT_SID: &str = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const AUTH_TOKEN: &str = "12345";

static CTX: OnceLock<PluginContext> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(mut request) = webhook_request(data) else {
        return;
    };
    if request.header(twilio::HEADER).is_none() {
        let token = SecretString::from(AUTH_TOKEN);
        let is_json = request.header("content-type").is_some_and(|t| {
            t.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
        let signature = if is_json {
            if !request.url.contains("bodySHA256=") {
                use sha2::Digest as _;
                let hash = hex::encode(sha2::Sha256::digest(&request.body));
                let separator = if request.url.contains('?') { '&' } else { '?' };
                request.url = format!("{}{separator}bodySHA256={hash}", request.url);
                request.query = request.url.split_once('?').map(|(_, q)| q.to_owned());
            }
            twilio::sign(&token, &request.url, &[])
        } else if request.method.eq_ignore_ascii_case("GET") {
            twilio::sign(&token, &request.url, &[])
        } else {
            twilio::sign(&token, &request.url, &request.form_params())
        };
        request.headers.push((twilio::HEADER.to_owned(), signature));
    }
    let ctx = channel_context(
        &CTX,
        "tributary.twilio-sms",
        json!({
            "accountSid": ACCOUNT_SID,
            "authToken": AUTH_TOKEN,
            "fromNumber": "+14152001331",
        }),
    );
    deliver(&TwilioSms, ctx, request);
});
