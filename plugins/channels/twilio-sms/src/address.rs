//! Phone numbers as addresses, and the conversation id of a pair of them.

use tributary_plugin_sdk::channel::{
    compact_phone_number, pair_conversation_id, split_pair_conversation_id,
};

/// The id of the conversation between the instance's number `our` and the number `their`:
/// `<our>|<their>`, both normalised with [`normalize_number`].
///
/// An inbound SMS gets `conversation_id(To, From)`; a message sent from `fromNumber` to a
/// recipient belongs to `conversation_id(fromNumber, recipient)`, the same id, so replies and
/// inbound messages land in one conversation.
///
/// ```
/// use tributary_channel_twilio_sms::conversation_id;
///
/// assert_eq!(
///     conversation_id("+1 (555) 765-4321", "+15551234567"),
///     "+15557654321|+15551234567"
/// );
/// ```
pub fn conversation_id(our: &str, their: &str) -> String {
    pair_conversation_id(&normalize_number(our), &normalize_number(their))
}

/// Splits a conversation id made by [`conversation_id`] into our number and theirs.
pub(crate) fn split_conversation_id(id: &str) -> Option<(&str, &str)> {
    split_pair_conversation_id(id)
}

/// A phone number without the spaces, dashes, dots and parentheses people write in it
/// (`+1 (555) 765-4321` → `+15557654321`). Anything that is not a phone number once those
/// are gone (`whatsapp:+1555…`, an alphanumeric sender id) is only trimmed.
pub fn normalize_number(address: &str) -> String {
    compact_phone_number(address).unwrap_or_else(|| address.trim().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_their_punctuation_and_other_addresses_are_kept() {
        assert_eq!(normalize_number(" +1 555.765-4321 "), "+15557654321");
        assert_eq!(
            normalize_number("whatsapp:+15557654321"),
            "whatsapp:+15557654321"
        );
        assert_eq!(normalize_number("ACME Ltd"), "ACME Ltd");
    }

    #[test]
    fn a_conversation_id_splits_back_into_its_numbers() {
        let id = conversation_id("+15557654321", "+1 555 123 4567");
        assert_eq!(
            split_conversation_id(&id).unwrap(),
            ("+15557654321", "+15551234567")
        );
        assert!(split_conversation_id("C0123456").is_none());
    }
}
