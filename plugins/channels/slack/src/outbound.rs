//! Sending through `chat.postMessage`.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tributary_plugin_sdk::{OutboundMessage, Participant, PluginContext, PluginError, SentMessage};

use crate::config::SlackConfig;
use crate::inbound::parse_ts;

/// The body of a `chat.postMessage` call.
#[derive(Debug, Serialize)]
struct PostMessage<'a> {
    /// A channel id (`C…`, `G…`, `D…`), or a user id (`U…`) to write in the app's direct
    /// message with that user.
    channel: &'a str,
    /// The text, in Slack's mrkdwn.
    text: &'a str,
    /// The `ts` of the thread's parent, to reply in its thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
}

/// What `chat.postMessage` answers, success or failure (`ok` tells which).
#[derive(Debug, Deserialize)]
struct PostMessageResponse {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    /// The scope a `missing_scope` error wants.
    #[serde(default)]
    needed: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    message: Option<PostedMessage>,
}

/// The message as Slack stored it; tells who it shows as the sender.
#[derive(Debug, Deserialize)]
struct PostedMessage {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    bot_profile: Option<BotProfile>,
}

#[derive(Debug, Deserialize)]
struct BotProfile {
    #[serde(default)]
    name: Option<String>,
}

/// Errors Slack documents for `chat.postMessage` that say nothing about the request: worth
/// trying again later.
const TRANSIENT_ERRORS: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Posts `msg` and reads Slack's answer.
pub(crate) async fn send(
    ctx: &PluginContext,
    msg: OutboundMessage,
) -> Result<SentMessage, PluginError> {
    let config = SlackConfig::load(ctx)?;
    let (channel, thread_ts) = destination(&msg)?;
    let body = PostMessage {
        channel: &channel,
        text: &msg.text,
        thread_ts: thread_ts.as_deref(),
    };
    // The explicit charset spares the `missing_charset` warning Slack gives JSON without one.
    let response: PostMessageResponse = ctx
        .http()
        .post(&config.api_url("chat.postMessage"))
        .bearer_auth(&config.bot_token)
        .header("content-type", "application/json; charset=utf-8")
        .json(&body)
        .send_json()
        .await?;
    if !response.ok {
        return Err(slack_error(response));
    }
    let channel = response.channel.unwrap_or(channel);
    let ts = response.ts.ok_or_else(|| {
        PluginError::Other("Slack accepted chat.postMessage but returned no `ts`".to_owned())
    })?;
    let sent_at = parse_ts(&ts).unwrap_or_else(Utc::now);
    Ok(SentMessage {
        id: msg.id,
        provider_message_id: format!("{channel}:{ts}"),
        status: "sent".to_owned(),
        sender: response.message.and_then(sender_of),
        sent_at,
    })
}

/// The channel to post in and the thread to reply in.
///
/// The channel is the message's `conversation_id`, else the channel of `in_reply_to`, else
/// its one recipient. `in_reply_to` is a provider message id (`<channel>:<ts>`, or a bare
/// `ts`): its `ts` becomes `thread_ts`, so the reply goes into that message's thread.
fn destination(msg: &OutboundMessage) -> Result<(String, Option<String>), PluginError> {
    let reply_to = msg
        .in_reply_to
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| match id.split_once(':') {
            Some((channel, ts)) => (Some(channel), ts),
            None => (None, id),
        });
    let conversation = msg.conversation_id.as_deref().filter(|c| !c.is_empty());
    let channel = match (conversation, reply_to, msg.recipients.as_slice()) {
        (Some(conversation), _, _) => conversation.to_owned(),
        (None, Some((Some(channel), _)), _) => channel.to_owned(),
        (None, _, [only]) => only.address.clone(),
        (None, _, recipients) => {
            return Err(PluginError::Other(format!(
                "a Slack message needs a conversation_id or exactly one recipient (a channel or user id), not {}",
                recipients.len()
            )))
        }
    };
    if let Some((Some(reply_channel), _)) = reply_to {
        if reply_channel != channel {
            return Err(PluginError::Other(format!(
                "cannot reply in channel {channel} to a message of channel {reply_channel}"
            )));
        }
    }
    Ok((channel, reply_to.map(|(_, ts)| ts.to_owned())))
}

/// The error an `ok: false` answer stands for, named by Slack's error code.
fn slack_error(response: PostMessageResponse) -> PluginError {
    let code = response.error.unwrap_or_else(|| "unknown_error".to_owned());
    let detail = match response.needed {
        Some(needed) => format!("{code} (needed: {needed})"),
        None => code.clone(),
    };
    if code == "ratelimited" {
        PluginError::Http {
            status: 429,
            message: format!("Slack chat.postMessage: {detail}"),
        }
    } else if TRANSIENT_ERRORS.contains(&code.as_str()) {
        PluginError::Transient(format!("Slack chat.postMessage: {detail}"))
    } else {
        PluginError::Other(format!("Slack refused chat.postMessage: {detail}"))
    }
}

/// The bot the message shows as sent by: its user id, else its bot id.
fn sender_of(message: PostedMessage) -> Option<Participant> {
    let address = message.user.or(message.bot_id)?;
    Some(Participant {
        address,
        display_name: message
            .bot_profile
            .and_then(|profile| profile.name)
            .or(message.username),
    })
}
