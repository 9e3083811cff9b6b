//! An [`OutboundMessage`] as an e-mail: headers, threading, and the plain-text body.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Address, Message};
use tributary_plugin_sdk::{OutboundMessage, PluginError};

/// The longest subject derived from a message's text, in characters.
const DERIVED_SUBJECT_CHARS: usize = 78;
/// The subject of a message without a subject and without text.
const EMPTY_SUBJECT: &str = "(no subject)";

/// The `Message-ID` of Tributary message `msg` sent from `from`: `<id@from-domain>`. The same
/// message sent twice (a retry, a redelivered send request) carries the same `Message-ID`,
/// so a receiving system can tell the copies apart.
pub fn message_id(msg: &OutboundMessage, from: &Mailbox) -> String {
    format!("<{}@{}>", msg.id, from.email.domain())
}

/// The subject of `msg`: its own, or the first non-blank line of its text cut to 78
/// characters (with `…` when cut), or `(no subject)`.
pub fn subject(msg: &OutboundMessage) -> String {
    if let Some(subject) = msg
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        return subject.to_owned();
    }
    let Some(line) = msg.text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return EMPTY_SUBJECT.to_owned();
    };
    if line.chars().count() <= DERIVED_SUBJECT_CHARS {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(DERIVED_SUBJECT_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// A message id as it goes in `In-Reply-To` and `References`: in angle brackets.
fn bracketed(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        id.to_owned()
    } else {
        format!("<{}>", id.trim_start_matches('<').trim_end_matches('>'))
    }
}

/// The e-mail for `msg` from `from`, with its `Message-ID`.
pub(crate) fn build(
    msg: &OutboundMessage,
    from: &Mailbox,
) -> Result<(Message, String), PluginError> {
    if msg.recipients.is_empty() {
        return Err(PluginError::Other(
            "the message has no recipients: an e-mail needs at least one address".to_owned(),
        ));
    }
    let id = message_id(msg, from);
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject(msg))
        .message_id(Some(id.clone()))
        .header(ContentType::TEXT_PLAIN);
    for recipient in &msg.recipients {
        let address: Address = recipient.address.trim().parse().map_err(|e| {
            PluginError::Other(format!(
                "the recipient `{}` is not an e-mail address: {e}",
                recipient.address
            ))
        })?;
        let name = recipient
            .display_name
            .clone()
            .filter(|n| !n.trim().is_empty());
        builder = builder.to(Mailbox::new(name, address));
    }
    if let Some(parent) = msg.in_reply_to.as_deref().filter(|p| !p.trim().is_empty()) {
        let parent = bracketed(parent);
        builder = builder.in_reply_to(parent.clone()).references(parent);
    }
    let email = builder
        .body(msg.text.clone())
        .map_err(|e| PluginError::Other(format!("cannot build the e-mail: {e}")))?;
    Ok((email, id))
}
