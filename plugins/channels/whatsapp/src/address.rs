//! WhatsApp addresses, and the conversation id of a business number and a user.

use tributary_plugin_sdk::channel::{
    compact_phone_number, pair_conversation_id, split_pair_conversation_id,
};

/// What a group's half of a conversation id starts with.
pub(crate) const GROUP_PREFIX: &str = "group:";

/// The id of the conversation between the business phone number `phone_number_id` and the
/// WhatsApp user `wa_id`: `<phone_number_id>|<wa_id>`, the user's number reduced to digits
/// (`+1 650-555-1234` → `16505551234`, the form of a `wa_id`).
///
/// An inbound message gets `conversation_id(metadata.phone_number_id, from)`; a message sent
/// from the configured `phoneNumberId` to a recipient belongs to
/// `conversation_id(phoneNumberId, recipient)`, the same id.
///
/// ```
/// use tributary_channel_whatsapp::conversation_id;
///
/// assert_eq!(
///     conversation_id("106540352242922", "+1 650-555-1234"),
///     "106540352242922|16505551234"
/// );
/// ```
pub fn conversation_id(phone_number_id: &str, wa_id: &str) -> String {
    pair_conversation_id(phone_number_id.trim(), &normalize_wa_id(wa_id))
}

/// The conversation of a group, `<phone_number_id>|group:<group_id>`.
pub(crate) fn group_conversation_id(phone_number_id: &str, group_id: &str) -> String {
    pair_conversation_id(
        phone_number_id.trim(),
        &format!("{GROUP_PREFIX}{}", group_id.trim()),
    )
}

/// Splits a conversation id made by [`conversation_id`] into its two halves.
pub(crate) fn split_conversation_id(id: &str) -> Option<(&str, &str)> {
    split_pair_conversation_id(id)
}

/// A phone number as a `wa_id`: its digits alone. An address with anything else in it (a
/// username, a business-scoped user id) is only trimmed.
pub fn normalize_wa_id(address: &str) -> String {
    match compact_phone_number(address) {
        Some(number) => number.trim_start_matches('+').to_owned(),
        None => address.trim().to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_digits_and_other_ids_are_kept() {
        assert_eq!(normalize_wa_id(" +1 (650) 555-1234 "), "16505551234");
        assert_eq!(
            normalize_wa_id("US.13491208655302741918"),
            "US.13491208655302741918"
        );
    }

    #[test]
    fn a_conversation_id_splits_back_into_its_halves() {
        let id = conversation_id("106540352242922", "+16505551234");
        assert_eq!(
            split_conversation_id(&id).unwrap(),
            ("106540352242922", "16505551234")
        );
        assert!(split_conversation_id("nothing").is_none());
    }
}
