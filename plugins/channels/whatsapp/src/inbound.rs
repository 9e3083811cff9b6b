//! Webhooks from Meta: the subscription handshake, the signature check, and turning a
//! `messages` change into the messages and delivery statuses it carries.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::Digest as _;
use tributary_plugin_sdk::signatures::{self, SignatureError};
use tributary_plugin_sdk::{
    DeliveryStatusUpdate, InboundMessage, IncomingEvent, IncomingWebhook, Participant,
    PluginContext, PluginError, WebhookRejection, WebhookResponse, WebhookVerdict,
};

use crate::address::{conversation_id, group_conversation_id};
use crate::config::WhatsAppConfig;

/// The `object` of a WhatsApp Business Account webhook.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// Answers the handshake (`GET`) or checks `X-Hub-Signature-256` and names the delivery
/// (`POST`); see [`delivery_id`].
pub(crate) fn verify(
    ctx: &PluginContext,
    request: &IncomingWebhook,
) -> Result<WebhookVerdict, WebhookRejection> {
    let config = WhatsAppConfig::load(ctx).map_err(WebhookRejection::misconfigured)?;
    if request.method.eq_ignore_ascii_case("GET") {
        return handshake(&config, request);
    }
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookRejection::method_not_allowed(format!(
            "WhatsApp webhooks are POST, or GET for the handshake, not {}",
            request.method
        )));
    }
    signatures::meta::verify(
        &config.app_secret,
        request.header(signatures::meta::HEADER),
        &request.body,
    )?;
    let payload: Value = serde_json::from_slice(&request.body)
        .map_err(|e| WebhookRejection::bad_request(format!("the webhook body is not JSON: {e}")))?;
    Ok(WebhookVerdict::Accept {
        delivery_id: delivery_id(&payload, &request.body),
    })
}

/// Meta's subscription handshake: the challenge, as plain text, when the verify token is the
/// configured one; 403 when it is not; 400 when the request is not a handshake.
fn handshake(
    config: &WhatsAppConfig,
    request: &IncomingWebhook,
) -> Result<WebhookVerdict, WebhookRejection> {
    match signatures::meta::verify_handshake(&config.verify_token, &request.query_params()) {
        Ok(challenge) => Ok(WebhookVerdict::Respond(WebhookResponse::text(challenge))),
        Err(SignatureError::Mismatch(_)) => Err(WebhookRejection::forbidden(
            "the handshake's `hub.verify_token` is not the configured verify token",
        )),
        Err(other) => Err(WebhookRejection::bad_request(format!(
            "not a subscription handshake: {other}"
        ))),
    }
}

/// The delivery's id, from what it carries, so a retry is recognised however Meta batches or
/// serialises it:
///
/// - one message: `message:<wamid>`; one status: `status:<wamid>:<status>` (each status of
///   a sent message is processed once);
/// - several: `items-sha256:<hex>`, the SHA-256 of those keys sorted, one per line;
/// - none (another field, such as `account_update`): `body-sha256:<hex>` of the body, as
///   Meta retries a delivery with the same body.
pub(crate) fn delivery_id(payload: &Value, body: &[u8]) -> String {
    let mut keys: Vec<String> = Vec::new();
    for value in change_values(payload) {
        for message in array(value, "messages") {
            if let Some(id) = message.get("id").and_then(Value::as_str) {
                keys.push(format!("message:{id}"));
            }
        }
        for status in array(value, "statuses") {
            if let (Some(id), Some(state)) = (
                status.get("id").and_then(Value::as_str),
                status.get("status").and_then(Value::as_str),
            ) {
                keys.push(format!("status:{id}:{state}"));
            }
        }
    }
    keys.sort();
    keys.dedup();
    match keys.as_slice() {
        [] => format!("body-sha256:{}", hex::encode(sha2::Sha256::digest(body))),
        [one] => one.clone(),
        many => format!(
            "items-sha256:{}",
            hex::encode(sha2::Sha256::digest(many.join("\n").as_bytes()))
        ),
    }
}

/// The `value` of every change of every entry, whatever its field.
fn change_values(payload: &Value) -> impl Iterator<Item = &Value> {
    array(payload, "entry")
        .flat_map(|entry| array(entry, "changes"))
        .filter_map(|change| change.get("value"))
}

/// The elements of the array `value[name]`; none when it is absent or not an array.
fn array<'a>(value: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The text of `value[field]`, without which `what` (`message`, `status of <id>`) cannot be
/// read.
fn required<'a>(value: &'a Value, field: &str, what: &str) -> Result<&'a str, PluginError> {
    text_at(value, &[field]).ok_or_else(|| {
        PluginError::Other(format!("unreadable WhatsApp {what}: it has no `{field}`"))
    })
}

/// Every message and status of the `messages` changes for the configured phone number.
/// Changes of other fields, and changes for other phone numbers of the same app, are left
/// out (logged).
pub(crate) fn handle(
    ctx: &PluginContext,
    config: &WhatsAppConfig,
    request: &IncomingWebhook,
) -> Result<Vec<IncomingEvent>, PluginError> {
    let payload: Value = serde_json::from_slice(&request.body)
        .map_err(|e| PluginError::Other(format!("unreadable WhatsApp webhook: not JSON: {e}")))?;
    let object = payload.get("object").and_then(Value::as_str).unwrap_or("");
    if object != WHATSAPP_OBJECT {
        ctx.log_warn(&format!(
            "Ignored a webhook for object `{object}`: this channel takes `{WHATSAPP_OBJECT}` only."
        ));
        return Ok(Vec::new());
    }
    let entries = payload
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            PluginError::Other("unreadable WhatsApp webhook: it has no `entry` array".to_owned())
        })?;
    let mut events = Vec::new();
    for change in entries.iter().flat_map(|entry| array(entry, "changes")) {
        let field = change.get("field").and_then(Value::as_str).unwrap_or("");
        if field != "messages" {
            continue;
        }
        let value = change.get("value").ok_or_else(|| {
            PluginError::Other("unreadable WhatsApp webhook: a change has no `value`".to_owned())
        })?;
        let phone_number_id = text_at(value, &["metadata", "phone_number_id"]).unwrap_or("");
        if phone_number_id != config.phone_number_id {
            ctx.log_warn(&format!(
                "Ignored a change for phone number id `{phone_number_id}`: this instance is `{}`.",
                config.phone_number_id
            ));
            continue;
        }
        for message in array(value, "messages") {
            if let Some(inbound) = inbound_message(value, message, request.received_at)? {
                events.push(IncomingEvent::Message(inbound));
            }
        }
        for status in array(value, "statuses") {
            events.push(IncomingEvent::DeliveryStatus(status_update(
                status,
                request.received_at,
            )?));
        }
    }
    Ok(events)
}

/// A message a WhatsApp user sent, or `None` for one that is not a message of its own (a
/// reaction, a system notice).
fn inbound_message(
    value: &Value,
    message: &Value,
    received_at: DateTime<Utc>,
) -> Result<Option<InboundMessage>, PluginError> {
    let id = required(message, "id", "message")?;
    let from = required(message, "from", &format!("message {id}"))?;
    let Some(text) = message_text(message) else {
        return Ok(None);
    };
    let phone_number_id = text_at(value, &["metadata", "phone_number_id"]).unwrap_or("");
    let display_name = array(value, "contacts")
        .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from))
        .and_then(|c| text_at(c, &["profile", "name"]))
        .map(str::to_owned);
    let our_address =
        text_at(value, &["metadata", "display_phone_number"]).unwrap_or(phone_number_id);
    let conversation = match text_at(message, &["group_id"]) {
        Some(group) => group_conversation_id(phone_number_id, group),
        None => conversation_id(phone_number_id, from),
    };
    Ok(Some(InboundMessage {
        provider_message_id: id.to_owned(),
        conversation_id: Some(conversation),
        conversation_title: None,
        sender: Participant {
            address: from.to_owned(),
            display_name,
        },
        recipients: vec![Participant::new(our_address)],
        text,
        sent_at: unix_time(message.get("timestamp")).unwrap_or(received_at),
        raw: json!({
            "metadata": value.get("metadata"),
            "contacts": value.get("contacts"),
            "message": message,
        }),
    }))
}

/// The text of a message: a text message's body, the title of a button or list reply, and
/// a bracketed placeholder for everything else (`[image] caption`, `[location] …`), so that
/// no message is lost. Reactions, system notices and welcome requests have none.
fn message_text(message: &Value) -> Option<String> {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let text = match kind {
        "text" => text_at(message, &["text", "body"]).unwrap_or("").to_owned(),
        "image" | "video" | "audio" | "sticker" => {
            with_caption(format!("[{kind}]"), text_at(message, &[kind, "caption"]))
        }
        "document" => {
            let label = match text_at(message, &["document", "filename"]) {
                Some(name) => format!("[document: {name}]"),
                None => "[document]".to_owned(),
            };
            with_caption(label, text_at(message, &["document", "caption"]))
        }
        "location" => location_text(message.get("location").unwrap_or(&Value::Null)),
        "contacts" => {
            let names: Vec<&str> = array(message, "contacts")
                .filter_map(|c| text_at(c, &["name", "formatted_name"]))
                .collect();
            format!("[contacts: {}]", names.join(", "))
        }
        "interactive" => {
            let reply = message.get("interactive").unwrap_or(&Value::Null);
            text_at(reply, &["button_reply", "title"])
                .or_else(|| text_at(reply, &["list_reply", "title"]))
                .map_or_else(|| "[interactive reply]".to_owned(), str::to_owned)
        }
        "button" => text_at(message, &["button", "text"])
            .unwrap_or("[button]")
            .to_owned(),
        "order" => "[order]".to_owned(),
        "unsupported" => "[unsupported message]".to_owned(),
        "reaction" | "system" | "request_welcome" => return None,
        other => format!("[{other} message]"),
    };
    Some(text)
}

fn with_caption(label: String, caption: Option<&str>) -> String {
    match caption {
        Some(caption) => format!("{label} {caption}"),
        None => label,
    }
}

fn location_text(location: &Value) -> String {
    let mut parts: Vec<String> = ["name", "address"]
        .iter()
        .filter_map(|key| text_at(location, &[key]).map(str::to_owned))
        .collect();
    if let (Some(lat), Some(long)) = (
        location.get("latitude").and_then(Value::as_f64),
        location.get("longitude").and_then(Value::as_f64),
    ) {
        parts.push(format!("({lat}, {long})"));
    }
    if parts.is_empty() {
        "[location]".to_owned()
    } else {
        format!("[location] {}", parts.join(", "))
    }
}

fn status_update(
    status: &Value,
    received_at: DateTime<Utc>,
) -> Result<DeliveryStatusUpdate, PluginError> {
    let id = required(status, "id", "status")?;
    let state = required(status, "status", &format!("status of {id}"))?;
    let errors: Vec<String> = array(status, "errors").map(describe_error).collect();
    Ok(DeliveryStatusUpdate {
        provider_message_id: id.to_owned(),
        status: state.to_owned(),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        at: unix_time(status.get("timestamp")).unwrap_or(received_at),
    })
}

/// `131047 Re-engagement message: <details>` from one of Meta's error objects.
fn describe_error(error: &Value) -> String {
    let code = match error.get("code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "?".to_owned(),
    };
    let title = text_at(error, &["title"]).or_else(|| text_at(error, &["message"]));
    let details = text_at(error, &["error_data", "details"]);
    let mut text = format!("WhatsApp error {code}");
    if let Some(title) = title {
        text.push_str(&format!(" {title}"));
    }
    if let Some(details) = details {
        text.push_str(&format!(": {details}"));
    }
    text
}

/// A Unix time in seconds, as Meta writes it (a string of digits).
fn unix_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let seconds = match value? {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    DateTime::from_timestamp(seconds, 0)
}
