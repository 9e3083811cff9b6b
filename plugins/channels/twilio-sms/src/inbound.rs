//! Webhooks from Twilio: the signature check on the request path, and turning an inbound SMS
//! or a status callback into what it carries.
//!
//! Both arrive on the instance's one route: the number's "A message comes in" webhook, and
//! the `StatusCallback` given with every message sent. Twilio tells them apart itself: an
//! inbound message has `SmsStatus=received` and no `MessageStatus`; a status callback has
//! `MessageStatus` (`sent`, `delivered`, `undelivered`, `failed`, `read`, …) and, when
//! delivery failed, `ErrorCode`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tributary_plugin_sdk::signatures::{self, constant_time_eq, SignatureError};
use tributary_plugin_sdk::{
    DeliveryStatusUpdate, InboundMessage, IncomingEvent, IncomingWebhook, Participant,
    PluginContext, PluginError, WebhookRejection, WebhookVerdict,
};

use crate::address::{conversation_id, normalize_number};
use crate::config::TwilioConfig;

/// The parameters of a Twilio webhook, whatever carried them.
#[derive(Debug)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The request's parameters: a JSON body's top-level fields, a `GET`'s query, or a
    /// form-encoded `POST` body. The error says why they cannot be read.
    pub(crate) fn of(request: &IncomingWebhook) -> Result<Self, String> {
        if is_json(request) {
            let body: Value = serde_json::from_slice(&request.body)
                .map_err(|e| format!("the JSON body cannot be read: {e}"))?;
            let Value::Object(fields) = body else {
                return Err("the JSON body is not an object".to_owned());
            };
            let pairs = fields
                .into_iter()
                .filter_map(|(name, value)| {
                    let text = match value {
                        Value::Null => return None,
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    Some((name, text))
                })
                .collect();
            return Ok(Params(pairs));
        }
        if request.method.eq_ignore_ascii_case("GET") {
            return Ok(Params(request.query_params()));
        }
        Ok(Params(request.form_params()))
    }

    /// The first parameter named `name`, if it is there and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The message's SID; `SmsSid` and `SmsMessageSid` are its deprecated aliases.
    fn message_sid(&self) -> Option<&str> {
        self.get("MessageSid")
            .or_else(|| self.get("SmsSid"))
            .or_else(|| self.get("SmsMessageSid"))
    }

    /// Every parameter as a JSON object (the first value of a repeated name), kept as the
    /// raw payload.
    fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        for (name, value) in &self.0 {
            object
                .entry(name.clone())
                .or_insert_with(|| Value::String(value.clone()));
        }
        Value::Object(object)
    }

    /// What the request is, as Twilio documents it.
    fn kind(&self) -> Option<Kind<'_>> {
        match self.get("MessageStatus").or_else(|| self.get("SmsStatus")) {
            Some(status) if status.eq_ignore_ascii_case("received") => Some(Kind::Inbound),
            Some(status) => Some(Kind::Status(status)),
            // Not documented, but a message body without a status is still a message.
            None if self.get("Body").is_some() || self.get("NumMedia").is_some() => {
                Some(Kind::Inbound)
            }
            None => None,
        }
    }
}

/// The two things Twilio posts to the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    /// Someone sent the number a message.
    Inbound,
    /// A message sent through the channel changed status.
    Status(&'a str),
}

fn is_json(request: &IncomingWebhook) -> bool {
    request.header("content-type").is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    })
}

/// Checks `X-Twilio-Signature` and the `AccountSid`, and names the delivery:
/// the `MessageSid` for an inbound message, `<MessageSid>:<MessageStatus>` for a status
/// callback (each status of a message is processed once).
pub(crate) fn verify(
    ctx: &PluginContext,
    request: &IncomingWebhook,
) -> Result<WebhookVerdict, WebhookRejection> {
    let is_get = request.method.eq_ignore_ascii_case("GET");
    if !is_get && !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookRejection::method_not_allowed(format!(
            "Twilio webhooks are POST or GET, not {}",
            request.method
        )));
    }
    let config = TwilioConfig::load(ctx).map_err(WebhookRejection::misconfigured)?;
    // A GET carries its parameters in the URL, which the signature covers as it is; a body
    // beside them would be covered by nothing.
    if is_get && !request.body.is_empty() {
        return Err(WebhookRejection::bad_request(
            "a Twilio GET webhook carries its parameters in the URL, not a body",
        ));
    }
    let signed = if is_json(request) {
        Signed::Json
    } else if is_get {
        Signed::Form(Vec::new())
    } else {
        Signed::Form(request.form_params())
    };
    check_signature(
        &config,
        &request.url,
        &signed,
        &request.body,
        request.header(signatures::twilio::HEADER),
    )?;

    let params = Params::of(request).map_err(WebhookRejection::bad_request)?;
    let account = params
        .get("AccountSid")
        .ok_or_else(|| WebhookRejection::bad_request("the request has no `AccountSid`"))?;
    if !constant_time_eq(account.as_bytes(), config.account_sid.as_bytes()) {
        // Signed with our token but for another account: a misrouted or forged request.
        return Err(WebhookRejection::unauthorized(
            "the request's `AccountSid` is not the configured account",
        ));
    }
    let sid = params
        .message_sid()
        .ok_or_else(|| WebhookRejection::bad_request("the request has no `MessageSid`"))?;
    let delivery_id = match params.kind() {
        Some(Kind::Inbound) => sid.to_owned(),
        Some(Kind::Status(status)) => format!("{sid}:{status}"),
        None => {
            return Err(WebhookRejection::bad_request(
                "the request is neither an inbound message nor a status callback \
                 (no `MessageStatus`, `SmsStatus` or `Body`)",
            ))
        }
    };
    Ok(WebhookVerdict::Accept { delivery_id })
}

/// Verifies the signature against the URL as the service saw it and, failing that, the same
/// URL with its default port added or removed: Twilio signs the URL as configured, and its
/// own helper libraries try both forms for the same reason.
/// What Twilio's signature covers besides the URL.
enum Signed {
    /// The parameters of a form-encoded POST (none for a GET: they are in the URL).
    Form(Vec<(String, String)>),
    /// A JSON body, through the URL's `bodySHA256`.
    Json,
}

fn check_signature(
    config: &TwilioConfig,
    url: &str,
    signed: &Signed,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), WebhookRejection> {
    let verify = |url: &str| match signed {
        Signed::Form(form) => {
            signatures::twilio::verify(&config.auth_token, url, form, body, signature)
        }
        Signed::Json => signatures::twilio::verify_json(&config.auth_token, url, body, signature),
    };
    let first = verify(url);
    match first {
        Ok(()) => return Ok(()),
        Err(SignatureError::Mismatch(_)) => {}
        Err(other) => return Err(other.into()),
    }
    if let Some(other_url) = with_other_port_form(url) {
        if verify(&other_url).is_ok() {
            return Ok(());
        }
    }
    first.map_err(WebhookRejection::from)
}

/// `url` with its scheme's default port made explicit, or removed when it is explicit;
/// `None` for a URL with another port or no scheme Twilio uses.
fn with_other_port_form(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The host part starts after any user info; an IPv6 literal keeps its colons in brackets.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    let port_colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    let new_host_port = match port_colon {
        Some(colon) if &host_port[colon + 1..] == default_port => host_port[..colon].to_owned(),
        Some(_) => return None,
        None => format!("{host_port}:{default_port}"),
    };
    Some(format!(
        "{scheme}://{}{new_host_port}{tail}",
        &authority[..host_start]
    ))
}

/// What a verified webhook carries: one inbound message, or one delivery status.
pub(crate) fn handle(request: &IncomingWebhook) -> Result<Vec<IncomingEvent>, PluginError> {
    let params = Params::of(request)
        .map_err(|e| PluginError::Other(format!("unreadable Twilio webhook: {e}")))?;
    let sid = params.message_sid().ok_or_else(|| {
        PluginError::Other("unreadable Twilio webhook: it has no `MessageSid`".to_owned())
    })?;
    match params.kind() {
        Some(Kind::Inbound) => Ok(vec![IncomingEvent::Message(inbound_message(
            &params,
            sid,
            request.received_at,
        )?)]),
        Some(Kind::Status(status)) => {
            Ok(vec![IncomingEvent::DeliveryStatus(DeliveryStatusUpdate {
                provider_message_id: sid.to_owned(),
                status: status.to_ascii_lowercase(),
                error: params
                    .get("ErrorCode")
                    .map(|code| describe_error_code(code, params.get("ErrorMessage"))),
                at: request.received_at,
            })])
        }
        None => Err(PluginError::Other(
            "unreadable Twilio webhook: neither an inbound message nor a status callback"
                .to_owned(),
        )),
    }
}

fn inbound_message(
    params: &Params,
    sid: &str,
    received_at: DateTime<Utc>,
) -> Result<InboundMessage, PluginError> {
    let missing = |name: &str| {
        PluginError::Other(format!(
            "unreadable Twilio inbound message {sid}: it has no `{name}`"
        ))
    };
    let from = params.get("From").ok_or_else(|| missing("From"))?;
    let to = params.get("To").ok_or_else(|| missing("To"))?;
    let mut sender = Participant::new(normalize_number(from));
    // Sent for WhatsApp and RCS senders through Twilio; never for plain SMS.
    sender.display_name = params.get("ProfileName").map(str::to_owned);
    Ok(InboundMessage {
        provider_message_id: sid.to_owned(),
        conversation_id: Some(conversation_id(to, from)),
        conversation_title: None,
        sender,
        recipients: vec![Participant::new(normalize_number(to))],
        text: message_text(params),
        // Twilio sends no timestamp with an inbound message; it posts it as it arrives.
        sent_at: received_at,
        raw: params.to_json(),
    })
}

/// The body, then one `[attachment: <type>]` line per media item of an MMS. The media
/// themselves (`MediaUrl<N>`) stay in the raw payload; fetching them needs the account's
/// credentials.
fn message_text(params: &Params) -> String {
    let mut lines: Vec<String> = params.get("Body").map(str::to_owned).into_iter().collect();
    let media = params
        .get("NumMedia")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    for index in 0..media.min(10) {
        let kind = params
            .get(&format!("MediaContentType{index}"))
            .unwrap_or("media");
        lines.push(format!("[attachment: {kind}]"));
    }
    lines.join("\n")
}

/// `30003 (Unreachable destination handset)`, or the code alone when it is not one of the
/// common delivery errors, followed by Twilio's `ErrorMessage` when it sent one.
fn describe_error_code(code: &str, message: Option<&str>) -> String {
    let known: HashMap<&str, &str> = [
        ("30001", "Queue overflow"),
        ("30002", "Account suspended"),
        ("30003", "Unreachable destination handset"),
        ("30004", "Message blocked"),
        ("30005", "Unknown destination handset"),
        ("30006", "Landline or unreachable carrier"),
        ("30007", "Message filtered"),
        ("30008", "Unknown error"),
    ]
    .into_iter()
    .collect();
    let mut text = format!("Twilio error {code}");
    if let Some(name) = known.get(code) {
        text.push_str(&format!(" ({name})"));
    }
    if let Some(message) = message {
        text.push_str(&format!(": {message}"));
    }
    text.push_str(&format!(" https://www.twilio.com/docs/api/errors/{code}"));
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_port_is_added_or_removed() {
        assert_eq!(
            with_other_port_form("https://hub.example.com/webhooks/twilio-sms/sms?x=1").unwrap(),
            "https://hub.example.com:443/webhooks/twilio-sms/sms?x=1"
        );
        assert_eq!(
            with_other_port_form("https://hub.example.com:443/w").unwrap(),
            "https://hub.example.com/w"
        );
        assert_eq!(
            with_other_port_form("http://[::1]/w").unwrap(),
            "http://[::1]:80/w"
        );
        assert!(with_other_port_form("https://hub.example.com:8443/w").is_none());
        assert!(with_other_port_form("not a url").is_none());
    }

    #[test]
    fn error_codes_are_named_when_common() {
        assert_eq!(
            describe_error_code("30003", None),
            "Twilio error 30003 (Unreachable destination handset) \
             https://www.twilio.com/docs/api/errors/30003"
        );
        assert!(describe_error_code("12345", Some("odd")).starts_with("Twilio error 12345: odd"));
    }
}
