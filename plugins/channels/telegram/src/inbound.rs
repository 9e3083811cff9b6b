//! Webhook updates: checking them (`verify_webhook`) and reading what they carry
//! (`handle_incoming`).

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use tributary_plugin_sdk::signatures;
use tributary_plugin_sdk::{
    InboundMessage, IncomingEvent, IncomingWebhook, Participant, PluginContext, PluginError,
    WebhookRejection, WebhookVerdict,
};

use crate::config::TelegramConfig;

/// What `verify_webhook` reads of an update.
#[derive(Debug, Deserialize)]
struct UpdateId {
    update_id: i64,
}

/// The kinds of update the channel reads; every other kind (edits, callback queries, member
/// changes, …) is ignored.
#[derive(Debug, Deserialize)]
struct Update {
    /// A message in a private chat, group or supergroup.
    #[serde(default)]
    message: Option<Message>,
    /// A post in a channel the bot administers.
    #[serde(default)]
    channel_post: Option<Message>,
}

/// The fields of a Bot API `Message` the channel reads.
#[derive(Debug, Deserialize)]
struct Message {
    /// Unique within its chat only.
    message_id: i64,
    /// Unix time, seconds.
    date: i64,
    chat: Chat,
    /// Absent in channel posts.
    #[serde(default)]
    from: Option<User>,
    /// The chat a message was sent on behalf of (a channel, an anonymous group admin).
    #[serde(default)]
    sender_chat: Option<Chat>,
    #[serde(default)]
    text: Option<String>,
    /// The text of a photo, video, document or audio message.
    #[serde(default)]
    caption: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: i64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub(crate) id: i64,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

/// Checks the secret token, then accepts the update under its `update_id`.
pub(crate) fn verify(
    ctx: &PluginContext,
    request: &IncomingWebhook,
) -> Result<WebhookVerdict, WebhookRejection> {
    let config = TelegramConfig::load_for_webhook(ctx)?;
    signatures::telegram::verify(
        &config.secret_token,
        request.header(signatures::telegram::HEADER),
    )?;
    let update: UpdateId = serde_json::from_slice(&request.body).map_err(|e| {
        WebhookRejection::bad_request(format!("the body is not a Telegram update: {e}"))
    })?;
    Ok(WebhookVerdict::Accept {
        delivery_id: update.update_id.to_string(),
    })
}

/// The message an accepted update carries, if it is a new message or channel post with text
/// or a caption.
pub(crate) fn parse(request: &IncomingWebhook) -> Result<Vec<IncomingEvent>, PluginError> {
    let raw: Value = serde_json::from_slice(&request.body)
        .map_err(|e| PluginError::Other(format!("the Telegram update is not JSON: {e}")))?;
    UpdateId::deserialize(&raw)
        .map_err(|e| PluginError::Other(format!("the Telegram update is not readable: {e}")))?;
    let update = Update::deserialize(&raw)
        .map_err(|e| PluginError::Other(format!("the Telegram update is not readable: {e}")))?;
    let Some(message) = update.message.or(update.channel_post) else {
        return Ok(Vec::new());
    };
    Ok(message_of(message, raw)?
        .map(IncomingEvent::Message)
        .into_iter()
        .collect())
}

fn message_of(message: Message, raw: Value) -> Result<Option<InboundMessage>, PluginError> {
    let Some(text) = message
        .text
        .or(message.caption)
        .filter(|text| !text.is_empty())
    else {
        // A sticker, a photo without caption, a member joining: nothing to read.
        return Ok(None);
    };
    let sent_at = DateTime::from_timestamp(message.date, 0).ok_or_else(|| {
        PluginError::Other(format!(
            "the Telegram message date {} is out of range",
            message.date
        ))
    })?;
    let sender = match (message.from, &message.sender_chat) {
        (Some(user), _) => participant_of(&user),
        (None, Some(chat)) => Participant {
            address: chat.id.to_string(),
            display_name: chat_title(chat),
        },
        (None, None) => Participant {
            address: message.chat.id.to_string(),
            display_name: chat_title(&message.chat),
        },
    };
    Ok(Some(InboundMessage {
        provider_message_id: format!("{}:{}", message.chat.id, message.message_id),
        conversation_id: Some(message.chat.id.to_string()),
        conversation_title: chat_title(&message.chat),
        sender,
        recipients: Vec::new(),
        text,
        sent_at,
        raw,
    }))
}

/// A user as a participant: the numeric id, and the name Telegram shows.
pub(crate) fn participant_of(user: &User) -> Participant {
    Participant {
        address: user.id.to_string(),
        display_name: full_name(
            user.first_name.as_deref(),
            user.last_name.as_deref(),
            user.username.as_deref(),
        ),
    }
}

/// A group's or channel's title; for a private chat, the other person's name.
fn chat_title(chat: &Chat) -> Option<String> {
    chat.title.clone().filter(|t| !t.is_empty()).or_else(|| {
        full_name(
            chat.first_name.as_deref(),
            chat.last_name.as_deref(),
            chat.username.as_deref(),
        )
    })
}

/// `First Last`, else `First`, else `@username`.
fn full_name(first: Option<&str>, last: Option<&str>, username: Option<&str>) -> Option<String> {
    let name = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        return Some(name);
    }
    username.filter(|u| !u.is_empty()).map(|u| format!("@{u}"))
}
