//! Sending a text message through the Cloud API.

use chrono::Utc;
use serde_json::{json, Value};
use tributary_plugin_sdk::channel::{error_body, lenient_json_field};
use tributary_plugin_sdk::{OutboundMessage, PluginContext, PluginError, SentMessage};

use crate::address::{normalize_wa_id, split_conversation_id, GROUP_PREFIX};
use crate::config::WhatsAppConfig;

/// Graph error codes that mean "slow down": the app's, the account's, the number's
/// throughput and the pair rate limit. They come with HTTP 400 and become 429.
const THROTTLING_CODES: [i64; 4] = [4, 80007, 130429, 131056];
/// Graph error codes that mean the service is unavailable for now; they become 503.
const UNAVAILABLE_CODES: [i64; 2] = [2, 131016];

/// Sends `msg` as a text message: `POST {apiBaseUrl}/{phoneNumberId}/messages` with the
/// access token as bearer, replying to `in_reply_to` (`context.message_id`) when set.
pub(crate) async fn send(
    ctx: &PluginContext,
    msg: &OutboundMessage,
) -> Result<SentMessage, PluginError> {
    let config = WhatsAppConfig::load(ctx)?;
    let to = recipient(msg)?;
    if msg.text.trim().is_empty() {
        return Err(PluginError::Other(
            "the message has no text, and a WhatsApp text message needs a body".to_owned(),
        ));
    }
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": { "body": msg.text },
    });
    if let Some(reply_to) = msg.in_reply_to.as_deref().filter(|r| !r.is_empty()) {
        body["context"] = json!({ "message_id": reply_to });
    }
    let url = format!(
        "{}/{}/messages",
        config.api_base_url, config.phone_number_id
    );
    let answer: Value = ctx
        .http()
        .post(&url)
        .bearer_auth(&config.access_token)
        .json(&body)
        .send_json()
        .await
        .map_err(name_graph_error)?;
    if let Some(error) = answer.get("error") {
        return Err(graph_error(200, error));
    }
    let sent = answer
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|messages| messages.first());
    let Some(id) = sent
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    else {
        return Err(PluginError::Other(
            "the Cloud API's answer has no `messages[0].id`".to_owned(),
        ));
    };
    Ok(SentMessage {
        id: msg.id,
        provider_message_id: id.to_owned(),
        // `message_status` comes with template messages under pacing; a text message that
        // is taken is "accepted" until its first status webhook.
        status: sent
            .and_then(|m| m.get("message_status"))
            .and_then(Value::as_str)
            .unwrap_or("accepted")
            .to_owned(),
        // The Cloud API does not say the business number's address; the channel knows only
        // its id.
        sender: None,
        sent_at: Utc::now(),
    })
}

/// The one user to send to: the message's only recipient or, when it names none, the user
/// of its conversation (`<phone_number_id>|<wa_id>`, see [`crate::conversation_id`]).
fn recipient(msg: &OutboundMessage) -> Result<String, PluginError> {
    msg.sole_recipient("a WhatsApp message", normalize_wa_id, |conversation| {
        match split_conversation_id(conversation) {
            Some((_, theirs)) if theirs.starts_with(GROUP_PREFIX) => Err(PluginError::Other(
                "sending to a WhatsApp group is not supported by this channel".to_owned(),
            )),
            Some((_, theirs)) => Ok(Some(theirs)),
            None => Ok(None),
        }
    })
}

/// An HTTP error whose body is a Graph error, rewritten to name its code and message (a
/// throttling code becomes 429, so the service retries it later).
fn name_graph_error(error: PluginError) -> PluginError {
    let PluginError::Http { status, message } = error else {
        return error;
    };
    let body = error_body(&message);
    let parsed = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|body| body.get("error").cloned())
        .or_else(|| {
            // Cut short: take what can still be read.
            body.contains("\"error\"").then_some(())?;
            let code: i64 = lenient_json_field(body, "code")?.parse().ok()?;
            let mut error = json!({ "code": code });
            for key in ["message", "type", "fbtrace_id"] {
                if let Some(value) = lenient_json_field(body, key) {
                    error[key] = json!(value);
                }
            }
            if let Some(subcode) =
                lenient_json_field(body, "error_subcode").and_then(|s| s.parse::<i64>().ok())
            {
                error["error_subcode"] = json!(subcode);
            }
            Some(error)
        });
    match parsed {
        Some(graph) => graph_error(status, &graph),
        None => PluginError::Http { status, message },
    }
}

/// `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
/// "fbtrace_id"}}` as a [`PluginError::Http`].
fn graph_error(status: u16, error: &Value) -> PluginError {
    let code = error.get("code").and_then(Value::as_i64);
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut message = format!(
        "Graph API error {}",
        code.map_or_else(|| "?".to_owned(), |c| c.to_string())
    );
    if let Some(subcode) = error.get("error_subcode").and_then(Value::as_i64) {
        message.push_str(&format!(" (subcode {subcode})"));
    }
    message.push_str(&format!(": {}", text("message").unwrap_or("no message")));
    if let Some(details) = error
        .get("error_data")
        .and_then(|d| d.get("details"))
        .and_then(Value::as_str)
    {
        message.push_str(&format!(" — {details}"));
    }
    if let Some(kind) = text("type") {
        message.push_str(&format!(" [{kind}"));
        if let Some(trace) = text("fbtrace_id") {
            message.push_str(&format!(", fbtrace_id {trace}"));
        }
        message.push(']');
    }
    let status = match code {
        Some(code) if THROTTLING_CODES.contains(&code) => 429,
        Some(code) if UNAVAILABLE_CODES.contains(&code) => 503,
        _ if status < 400 => 502,
        _ => status,
    };
    PluginError::Http { status, message }
}
