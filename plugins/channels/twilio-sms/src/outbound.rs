//! Sending an SMS through the Messages API.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tributary_plugin_sdk::channel::{error_body, lenient_json_field};
use tributary_plugin_sdk::{OutboundMessage, Participant, PluginContext, PluginError, SentMessage};

use crate::address::{normalize_number, split_conversation_id};
use crate::config::TwilioConfig;

/// Sends `msg` as one SMS: `POST {apiBaseUrl}/2010-04-01/Accounts/{accountSid}/Messages.json`
/// with `To`, `From`, `Body` and, when the service has a public URL, `StatusCallback`.
pub(crate) async fn send(
    ctx: &PluginContext,
    msg: &OutboundMessage,
) -> Result<SentMessage, PluginError> {
    let config = TwilioConfig::load(ctx)?;
    let to = recipient(msg)?;
    if msg.text.trim().is_empty() {
        return Err(PluginError::Other(
            "the message has no text, and an SMS needs a body".to_owned(),
        ));
    }
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        config.api_base_url, config.account_sid
    );
    let form = form_body(&to, config.from_number.trim(), msg);
    let answer: Value = ctx
        .http()
        .post(&url)
        .basic_auth(&config.account_sid, Some(&config.auth_token))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form)
        .send_json()
        .await
        .map_err(name_twilio_error)?;
    sent_message(msg, &config, answer)
}

/// The form fields of the create call. (The serializer is not `Send`, so it never lives
/// across an `await`.)
fn form_body(to: &str, from: &str, msg: &OutboundMessage) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("To", to)
        .append_pair("From", from)
        .append_pair("Body", &msg.text);
    if let Some(callback) = msg.status_callback_url.as_deref() {
        form.append_pair("StatusCallback", callback);
    }
    form.finish()
}

/// The one number to send to: the message's only recipient or, when it names none, the
/// other number of its conversation (`<our>|<their>`, see [`crate::conversation_id`]).
fn recipient(msg: &OutboundMessage) -> Result<String, PluginError> {
    msg.sole_recipient("an SMS", normalize_number, |conversation| {
        Ok(split_conversation_id(conversation).map(|(_, their)| their))
    })
}

/// The Message resource Twilio answers with (only what is read of it).
#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: Option<String>,
    status: Option<String>,
    from: Option<String>,
    date_created: Option<String>,
    code: Option<Value>,
    message: Option<String>,
}

fn sent_message(
    msg: &OutboundMessage,
    config: &TwilioConfig,
    answer: Value,
) -> Result<SentMessage, PluginError> {
    let resource: MessageResource = serde_json::from_value(answer).map_err(|e| {
        PluginError::Other(format!("Twilio's answer is not a Message resource: {e}"))
    })?;
    let Some(sid) = resource.sid.filter(|s| !s.is_empty()) else {
        return Err(match resource.code {
            Some(code) => PluginError::Other(format!(
                "Twilio error {}: {}",
                code_text(&code),
                resource.message.unwrap_or_default()
            )),
            None => PluginError::Other("Twilio's answer has no message `sid`".to_owned()),
        });
    };
    let sent_at = resource
        .date_created
        .as_deref()
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map_or_else(Utc::now, |d| d.with_timezone(&Utc));
    let from = resource
        .from
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| config.from_number.trim().to_owned());
    Ok(SentMessage {
        id: msg.id,
        provider_message_id: sid,
        status: resource.status.unwrap_or_else(|| "queued".to_owned()),
        sender: Some(Participant::new(normalize_number(&from))),
        sent_at,
    })
}

/// Twilio's error body: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Value,
    message: String,
    #[serde(default)]
    more_info: Option<String>,
}

/// An HTTP error whose body is Twilio's error object, rewritten to name Twilio's code and
/// message; the status is kept, so a 429 or 5xx stays transient.
fn name_twilio_error(error: PluginError) -> PluginError {
    let PluginError::Http { status, message } = error else {
        return error;
    };
    let body = error_body(&message);
    let parsed = serde_json::from_str::<TwilioError>(body).ok().or_else(|| {
        // Cut short: take what can still be read.
        Some(TwilioError {
            code: Value::String(lenient_json_field(body, "code")?),
            message: lenient_json_field(body, "message")?,
            more_info: lenient_json_field(body, "more_info"),
        })
    });
    match parsed {
        Some(twilio) => {
            let mut message = format!(
                "Twilio error {}: {}",
                code_text(&twilio.code),
                twilio.message
            );
            if let Some(more) = twilio.more_info.filter(|m| !m.is_empty()) {
                message.push_str(&format!(" ({more})"));
            }
            PluginError::Http { status, message }
        }
        None => PluginError::Http { status, message },
    }
}

fn code_text(code: &Value) -> String {
    match code {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
