//! Events API requests: checking them (`verify_webhook`) and reading what they carry
//! (`handle_incoming`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tributary_plugin_sdk::signatures::{self, DEFAULT_TOLERANCE};
use tributary_plugin_sdk::{
    InboundMessage, IncomingEvent, IncomingWebhook, Participant, PluginContext, PluginError,
    WebhookRejection, WebhookResponse, WebhookVerdict,
};

use crate::config::SlackConfig;

/// The outer shape every Events API request shares; only what routing needs.
#[derive(Debug, Deserialize)]
struct Envelope {
    /// `url_verification`, `event_callback`, `app_rate_limited`.
    #[serde(rename = "type")]
    kind: String,
    /// The handshake's value to echo (`url_verification` only).
    #[serde(default)]
    challenge: Option<String>,
    /// The delivery's id (`event_callback` only); Slack's retries repeat it.
    #[serde(default)]
    event_id: Option<String>,
    /// The inner event (`event_callback` only).
    #[serde(default)]
    event: Option<Value>,
}

/// The fields of a `message` or `app_mention` event the channel reads.
#[derive(Debug, Deserialize)]
struct MessageEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    subtype: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    bot_id: Option<String>,
}

/// Message subtypes that are a person writing: a thread reply also sent to the channel, a
/// `/me` message, a file shared with a comment. Every other subtype (bot messages, edits,
/// deletions, joins, topic changes, …) is not a new message from a person.
const PERSON_SUBTYPES: &[&str] = &["thread_broadcast", "me_message", "file_share"];

/// Checks the signature and timestamp, then answers the URL handshake or accepts an event
/// under its `event_id`.
pub(crate) fn verify(
    ctx: &PluginContext,
    request: &IncomingWebhook,
) -> Result<WebhookVerdict, WebhookRejection> {
    let config = SlackConfig::load_for_webhook(ctx)?;
    signatures::slack::verify(
        &config.signing_secret,
        request.header(signatures::slack::TIMESTAMP_HEADER),
        request.header(signatures::slack::HEADER),
        &request.body,
        request.received_at,
        DEFAULT_TOLERANCE,
    )?;
    let envelope: Envelope = serde_json::from_slice(&request.body).map_err(|e| {
        WebhookRejection::bad_request(format!("the body is not an Events API payload: {e}"))
    })?;
    match envelope.kind.as_str() {
        // Slack accepts the challenge as plain text, a form or JSON; plain text is the first
        // form its documentation gives.
        "url_verification" => match envelope.challenge {
            Some(challenge) => Ok(WebhookVerdict::Respond(WebhookResponse::text(challenge))),
            None => Err(WebhookRejection::bad_request(
                "a url_verification request without a `challenge`",
            )),
        },
        "event_callback" => match envelope.event_id {
            Some(event_id) if !event_id.is_empty() => Ok(WebhookVerdict::Accept {
                delivery_id: event_id,
            }),
            _ => Err(WebhookRejection::bad_request(
                "an event_callback without an `event_id`",
            )),
        },
        "app_rate_limited" => {
            ctx.log_warn(
                "Slack reports that it is dropping this app's events: more than 30,000 in an hour for one workspace.",
            );
            Ok(WebhookVerdict::Respond(WebhookResponse::text("")))
        }
        // Nothing to keep and no delivery id to keep it under: acknowledge and move on.
        _ => Ok(WebhookVerdict::Respond(WebhookResponse::text(""))),
    }
}

/// The messages an accepted request carries: at most one, from a `message` or
/// `app_mention` event written by a person.
pub(crate) fn parse(request: &IncomingWebhook) -> Result<Vec<IncomingEvent>, PluginError> {
    let raw: Value = serde_json::from_slice(&request.body)
        .map_err(|e| PluginError::Other(format!("the Slack event is not JSON: {e}")))?;
    let envelope = Envelope::deserialize(&raw)
        .map_err(|e| PluginError::Other(format!("the Slack event is not readable: {e}")))?;
    if envelope.kind != "event_callback" {
        return Ok(Vec::new());
    }
    let event = envelope
        .event
        .ok_or_else(|| PluginError::Other("the Slack event_callback has no `event`".to_owned()))?;
    let event = MessageEvent::deserialize(&event)
        .map_err(|e| PluginError::Other(format!("the Slack event is not readable: {e}")))?;
    Ok(message_of(event, &raw)?
        .map(IncomingEvent::Message)
        .into_iter()
        .collect())
}

/// The message `event` is, or `None` for one the channel does not keep.
fn message_of(event: MessageEvent, raw: &Value) -> Result<Option<InboundMessage>, PluginError> {
    if !matches!(event.kind.as_str(), "message" | "app_mention") {
        return Ok(None);
    }
    let by_person = event
        .subtype
        .as_deref()
        .is_none_or(|subtype| PERSON_SUBTYPES.contains(&subtype));
    // Our own chat.postMessage comes back as a message with a `bot_id`, like any bot's.
    if !by_person || event.bot_id.is_some() {
        return Ok(None);
    }
    let (Some(user), Some(text)) = (event.user, event.text) else {
        return Ok(None);
    };
    if text.is_empty() {
        // A file shared without a comment: nothing to read.
        return Ok(None);
    }
    let channel = event.channel.ok_or_else(|| {
        PluginError::Other(format!("a Slack {} event without a `channel`", event.kind))
    })?;
    let ts = event.ts.ok_or_else(|| {
        PluginError::Other(format!("a Slack {} event without a `ts`", event.kind))
    })?;
    let sent_at = parse_ts(&ts)
        .ok_or_else(|| PluginError::Other(format!("the Slack `ts` `{ts}` is not a timestamp")))?;
    Ok(Some(InboundMessage {
        provider_message_id: format!("{channel}:{ts}"),
        conversation_id: Some(channel),
        conversation_title: None,
        sender: Participant::new(user),
        recipients: Vec::new(),
        text: unescape(&text),
        sent_at,
        raw: raw.clone(),
    }))
}

/// A Slack timestamp (`1355517523.000005`: seconds, a dot, microseconds) as a time.
pub(crate) fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let seconds: i64 = seconds.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    DateTime::from_timestamp(seconds, nanos)
}

/// Slack escapes `&`, `<` and `>` in message text; mentions and links (`<@U123>`,
/// `<https://…|label>`) are left as Slack writes them.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn timestamps_keep_their_microseconds() {
        let at = parse_ts("1355517523.000005").unwrap();
        assert_eq!(at.timestamp(), 1_355_517_523);
        assert_eq!(at.timestamp_subsec_micros(), 5);
        assert_eq!(parse_ts("1355517523").unwrap().timestamp(), 1_355_517_523);
        assert!(parse_ts("soon").is_none());
        assert!(parse_ts("1.-5").is_none());
    }

    #[test]
    fn only_the_three_escaped_characters_are_unescaped() {
        assert_eq!(unescape("a &lt;b&gt; &amp;lt; <@U1>"), "a <b> &lt; <@U1>");
    }
}
