//! Small pieces several channels share: phone numbers as addresses, conversation ids made of
//! a pair of addresses, and reading a provider's JSON error body when the SDK cut it short.

/// The separator between the two halves of a pair conversation id; it occurs in neither.
const PAIR_SEPARATOR: char = '|';

/// A phone number without the spaces, dashes, dots and parentheses people write in it
/// (`+1 (555) 765-4321` → `+15557654321`, the `+` kept when there is one); `None` when
/// `address` is not a phone number once those are gone (`whatsapp:+1555…`, a user name).
///
/// ```
/// use tributary_plugin_sdk::channel::compact_phone_number;
///
/// assert_eq!(compact_phone_number(" +1 555.765-4321 ").as_deref(), Some("+15557654321"));
/// assert_eq!(compact_phone_number("ACME Ltd"), None);
/// ```
pub fn compact_phone_number(address: &str) -> Option<String> {
    let compact: String = address
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())).then_some(compact)
}

/// The id of a conversation between our address `ours` and the other side's `theirs`, for
/// providers without conversations of their own (SMS, WhatsApp): `<ours>|<theirs>`, both as
/// given (normalise them first). [`split_pair_conversation_id`] takes it apart.
pub fn pair_conversation_id(ours: &str, theirs: &str) -> String {
    format!("{ours}{PAIR_SEPARATOR}{theirs}")
}

/// Splits a conversation id made by [`pair_conversation_id`] into our half and theirs;
/// `None` for any other id (no separator, an empty half, more than one separator).
pub fn split_pair_conversation_id(id: &str) -> Option<(&str, &str)> {
    let (ours, theirs) = id.split_once(PAIR_SEPARATOR)?;
    (!ours.is_empty() && !theirs.is_empty() && !theirs.contains(PAIR_SEPARATOR))
        .then_some((ours, theirs))
}

/// The JSON body in the message of a [`crate::PluginError::Http`] (`… {"error": …}`): from
/// its first `{` on, or empty when it has none.
pub fn error_body(message: &str) -> &str {
    message.find('{').map_or("", |start| &message[start..])
}

/// The value of `"key":` in a JSON text that may be cut short (the SDK keeps only the first
/// 300 characters of an error answer): a string, or a number as text.
///
/// ```
/// use tributary_plugin_sdk::channel::lenient_json_field;
///
/// let cut = r#"{"code":21211,"message":"The 'To' number is not valid","more_in"#;
/// assert_eq!(lenient_json_field(cut, "code").as_deref(), Some("21211"));
/// assert_eq!(lenient_json_field(cut, "more_info"), None);
/// ```
pub fn lenient_json_field(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let after = &text[text.find(&needle)? + needle.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    if let Some(quoted) = after.strip_prefix('"') {
        // The string ends at the first quote not escaped by a backslash.
        let mut escaped = false;
        for (index, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    return serde_json::from_str(&after[..index + 2]).ok();
                }
                _ => escaped = false,
            }
        }
        None
    } else {
        let number: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        (!number.is_empty()).then_some(number)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_json_cut_short() {
        let cut = r#"{"error":{"message":"Say \"hi\"","type":"OAuthException","code":131030,"error_data":{"det"#;
        assert_eq!(lenient_json_field(cut, "message").unwrap(), r#"Say "hi""#);
        assert_eq!(lenient_json_field(cut, "code").unwrap(), "131030");
        assert_eq!(lenient_json_field(cut, "details"), None);
        assert_eq!(
            lenient_json_field(r#"{"message":"unterminated"#, "message"),
            None
        );
    }

    #[test]
    fn phone_numbers_are_compacted_and_other_addresses_are_not_numbers() {
        assert_eq!(
            compact_phone_number(" +1 (650) 555-1234 ").unwrap(),
            "+16505551234"
        );
        assert_eq!(compact_phone_number("16505551234").unwrap(), "16505551234");
        assert_eq!(compact_phone_number("whatsapp:+15557654321"), None);
        assert_eq!(compact_phone_number("+"), None);
    }

    #[test]
    fn a_pair_conversation_id_splits_back_into_its_halves() {
        let id = pair_conversation_id("+15557654321", "+15551234567");
        assert_eq!(
            split_pair_conversation_id(&id).unwrap(),
            ("+15557654321", "+15551234567")
        );
        assert!(split_pair_conversation_id("C0123456").is_none());
        assert!(split_pair_conversation_id("a|b|c").is_none());
        assert!(split_pair_conversation_id("|b").is_none());
    }

    #[test]
    fn the_error_body_starts_at_the_first_brace() {
        assert_eq!(error_body("HTTP 400: {\"code\":1}"), "{\"code\":1}");
        assert_eq!(error_body("HTTP 502 Bad Gateway"), "");
    }
}
