//! Twilio SMS webhooks as Twilio sends them: a form-encoded POST signed with
//! `X-Twilio-Signature` over the exact URL called and the sorted form parameters.

use secrecy::SecretString;
use tributary_plugin_sdk::signatures::twilio;

/// The instance's Twilio number, the `To` of every inbound SMS.
pub const OUR_NUMBER: &str = "+15550001";

/// The configuration of a `tributary.twilio-sms` instance whose webhooks `auth_token` signs.
pub fn config(auth_token: &str) -> serde_json::Value {
    serde_json::json!({
        "accountSid": "AC0123",
        "authToken": auth_token,
        "fromNumber": OUR_NUMBER,
    })
}

/// An inbound SMS: its form parameters.
pub fn inbound_sms(message_sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    [
        ("MessageSid", message_sid),
        ("SmsSid", message_sid),
        ("SmsStatus", "received"),
        ("AccountSid", "AC0123"),
        ("From", from),
        ("To", OUR_NUMBER),
        ("Body", body),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// The form-encoded body of `params`.
pub fn form(params: &[(String, String)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}

/// The `X-Twilio-Signature` of a POST of `params` to `url` with `auth_token`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    twilio::sign(&SecretString::from(auth_token.to_owned()), url, params)
}

/// The headers of a form POST, signed with `signature` when given.
pub fn headers(signature: Option<String>) -> Vec<(String, String)> {
    let mut headers = vec![(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    if let Some(signature) = signature {
        headers.push((twilio::HEADER.to_owned(), signature));
    }
    headers
}

/// The headers and body of `params` POSTed to `url`, signed with `auth_token` as Twilio does.
pub fn signed(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> (Vec<(String, String)>, Vec<u8>) {
    (
        headers(Some(signature(auth_token, url, params))),
        form(params),
    )
}
