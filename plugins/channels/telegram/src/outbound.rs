//! Sending through the Bot API's `sendMessage`.
//!
//! The bot token is part of every Bot API URL (`/bot<token>/sendMessage`), and
//! [`tributary_plugin_sdk::PluginHttp`] names a request by its method, host and path in its
//! errors and in the warning it logs before each retry. So the request is sent once
//! ([`tributary_plugin_sdk::HttpRequest::once`]: never retried, so never logged), this module
//! does the retrying itself, honouring the Bot API's `retry_after`, and every error is built
//! here or passed through [`crate::redact_error`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_plugin_sdk::secrecy::ExposeSecret;
use tributary_plugin_sdk::{OutboundMessage, PluginContext, PluginError, RetryPolicy, SentMessage};

use crate::config::TelegramConfig;
use crate::inbound::{participant_of, User};
use crate::{redact, redact_error};

/// The body of a `sendMessage` call.
#[derive(Debug, Serialize)]
struct SendMessage<'a> {
    chat_id: ChatId,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_parameters: Option<ReplyParameters>,
}

/// A chat's numeric id, or a channel's `@username`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum ChatId {
    Id(i64),
    Username(String),
}

impl ChatId {
    fn parse(text: &str) -> Self {
        text.trim()
            .parse()
            .map(ChatId::Id)
            .unwrap_or_else(|_| ChatId::Username(text.trim().to_owned()))
    }
}

/// The Bot API's `ReplyParameters` (Bot API 7.0; it replaced `reply_to_message_id`).
#[derive(Debug, Serialize)]
struct ReplyParameters {
    message_id: i64,
    /// The chat of the replied-to message, when it is not the chat sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_id: Option<ChatId>,
    /// Send anyway if the replied-to message was deleted. Only allowed within one chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_sending_without_reply: Option<bool>,
}

/// Every Bot API answer, success or failure.
#[derive(Debug, Deserialize)]
struct ApiResponse {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

/// Why a request failed, in the Bot API's terms.
#[derive(Debug, Default, Deserialize)]
struct ResponseParameters {
    /// Flood control: seconds to wait before trying again.
    #[serde(default)]
    retry_after: Option<u64>,
    /// The group became this supergroup; send there instead.
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// The `Message` that `sendMessage` returns.
#[derive(Debug, Deserialize)]
struct SentResult {
    message_id: i64,
    date: i64,
    chat: SentChat,
    #[serde(default)]
    from: Option<User>,
}

#[derive(Debug, Deserialize)]
struct SentChat {
    id: i64,
}

/// One HTTP answer from the Bot API, whatever its status.
struct Answer {
    status: u16,
    /// The body read as a Bot API response, if it is one.
    api: Option<ApiResponse>,
    /// The start of the body otherwise, with the token taken out.
    text: String,
}

/// Sends `msg`, retrying flood control (429) and server errors.
pub(crate) async fn send(
    ctx: &PluginContext,
    msg: OutboundMessage,
) -> Result<SentMessage, PluginError> {
    let config = TelegramConfig::load(ctx)?;
    let token = config.bot_token.expose_secret();
    let (chat_id, reply_parameters) = destination(&msg)?;
    let body = serde_json::to_string(&SendMessage {
        chat_id,
        text: &msg.text,
        reply_parameters,
    })
    .map_err(|e| PluginError::Other(format!("cannot encode the sendMessage request: {e}")))?;
    let url = config.method_url("sendMessage");
    let policy = RetryPolicy::default();
    let mut attempt = 1;
    loop {
        let answer = post_once(ctx, &url, &body, token).await?;
        if answer.status < 400 {
            if let Some(api) = &answer.api {
                if api.ok {
                    return sent(&msg, api.result.clone());
                }
            }
        }
        let failure = Failure::of(answer);
        let wait = match failure.retry_after {
            Some(wait) if wait > policy.max_retry_after => None,
            Some(wait) => Some(wait),
            None => Some(policy.backoff(attempt)),
        };
        match wait {
            Some(wait) if failure.is_retryable() && attempt < policy.attempts() => {
                ctx.span().in_scope(|| {
                    tracing::warn!(
                        method = "sendMessage",
                        status = failure.status,
                        attempt,
                        ?wait,
                        "Retrying a Telegram request the Bot API could not serve."
                    );
                });
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            _ => return Err(failure.into_error()),
        }
    }
}

/// Posts `body` once: the SDK's client does not retry it (and so never logs the URL); an
/// HTTP error comes back as an [`Answer`] to decide on here.
async fn post_once(
    ctx: &PluginContext,
    url: &str,
    body: &str,
    token: &str,
) -> Result<Answer, PluginError> {
    let sent = ctx
        .http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .once()
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(|e| redact_error(e, token))?;
            Ok(Answer {
                status,
                api: serde_json::from_slice(&bytes).ok(),
                text: redact(&String::from_utf8_lossy(&bytes), token),
            })
        }
        // The SDK's message is `POST <host><path>: <start of the body>`, and the path holds
        // the token: keep only the body.
        Err(PluginError::Http { status, message }) => {
            let body = message.find('{').map(|at| &message[at..]);
            Ok(Answer {
                status,
                api: body.and_then(|body| serde_json::from_str(body).ok()),
                text: redact(&message, token),
            })
        }
        Err(other) => Err(redact_error(other, token)),
    }
}

/// A failed answer, read.
struct Failure {
    status: u16,
    description: String,
    retry_after: Option<Duration>,
    migrate_to_chat_id: Option<i64>,
}

impl Failure {
    fn of(answer: Answer) -> Self {
        let (error_code, description, parameters) = match answer.api {
            Some(api) => (
                api.error_code,
                api.description,
                api.parameters.unwrap_or_default(),
            ),
            None => (None, None, ResponseParameters::default()),
        };
        // The Bot API answers with the HTTP status of its `error_code`; an `ok: false` in a
        // 200 is read by its code, and without one it is a bad gateway of sorts.
        let status = match (answer.status, error_code) {
            (status, _) if status >= 400 => status,
            (_, Some(code)) if code >= 400 => code,
            _ => 502,
        };
        let description = description.unwrap_or_else(|| {
            if answer.text.is_empty() {
                format!("HTTP {status}")
            } else {
                answer.text
            }
        });
        Failure {
            status,
            description,
            retry_after: parameters.retry_after.map(Duration::from_secs),
            migrate_to_chat_id: parameters.migrate_to_chat_id,
        }
    }

    fn is_retryable(&self) -> bool {
        self.status == 429 || self.status >= 500
    }

    fn into_error(self) -> PluginError {
        let mut message = format!("Telegram sendMessage: {}", self.description);
        if let Some(chat) = self.migrate_to_chat_id {
            message.push_str(&format!(" (the group is now the supergroup {chat})"));
        }
        if let (429, Some(wait)) = (self.status, self.retry_after) {
            message.push_str(&format!(" (retry after {} s)", wait.as_secs()));
        }
        PluginError::Http {
            status: self.status,
            message,
        }
    }
}

/// The chat to send to and what the message replies to.
///
/// The chat is the message's `conversation_id`, else the chat of `in_reply_to`, else its one
/// recipient. `in_reply_to` is a provider message id, `<chat id>:<message id>` (or a bare
/// message id, taken as one in the chat sent to).
fn destination(msg: &OutboundMessage) -> Result<(ChatId, Option<ReplyParameters>), PluginError> {
    let reply_to = match msg.in_reply_to.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => {
            let (chat, message) = match id.rsplit_once(':') {
                Some((chat, message)) => (Some(chat), message),
                None => (None, id),
            };
            let message_id: i64 = message.trim().parse().map_err(|_| {
                PluginError::Other(format!(
                    "in_reply_to `{id}` is not a Telegram message id (`<chat id>:<message id>`)"
                ))
            })?;
            Some((chat.map(ChatId::parse), message_id))
        }
        None => None,
    };
    let conversation = msg.conversation_id.as_deref().filter(|c| !c.is_empty());
    let chat = match (conversation, &reply_to, msg.recipients.as_slice()) {
        (Some(conversation), _, _) => ChatId::parse(conversation),
        (None, Some((Some(chat), _)), _) => chat.clone(),
        (None, _, [only]) => ChatId::parse(&only.address),
        (None, _, recipients) => {
            return Err(PluginError::Other(format!(
                "a Telegram message needs a conversation_id or exactly one recipient (a chat id), not {}",
                recipients.len()
            )))
        }
    };
    let reply_parameters = reply_to.map(|(reply_chat, message_id)| match reply_chat {
        Some(reply_chat) if reply_chat != chat => ReplyParameters {
            message_id,
            chat_id: Some(reply_chat),
            allow_sending_without_reply: None,
        },
        _ => ReplyParameters {
            message_id,
            chat_id: None,
            allow_sending_without_reply: Some(true),
        },
    });
    Ok((chat, reply_parameters))
}

/// The sent message the Bot API returned.
fn sent(msg: &OutboundMessage, result: Option<Value>) -> Result<SentMessage, PluginError> {
    let result = result.ok_or_else(|| {
        PluginError::Other("Telegram accepted sendMessage but returned no message".to_owned())
    })?;
    let result = SentResult::deserialize(&result).map_err(|e| {
        PluginError::Other(format!(
            "Telegram accepted sendMessage but its message is not readable: {e}"
        ))
    })?;
    Ok(SentMessage {
        id: msg.id,
        provider_message_id: format!("{}:{}", result.chat.id, result.message_id),
        status: "sent".to_owned(),
        sender: result.from.as_ref().map(participant_of),
        sent_at: DateTime::from_timestamp(result.date, 0).unwrap_or_else(Utc::now),
    })
}
