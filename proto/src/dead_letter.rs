//! Dead letters: messages that can never be processed, kept with the reason.
//!
//! A dead letter is published on `deadletter.<consumer>` (for the ETL, `deadletter.etl-items`)
//! into the `DEADLETTERS` stream. Its body is the original payload, byte for byte; its headers
//! say why and where it came from, so it can be inspected, fixed and published again.

/// Why the message can never be processed: one line, naming the problem.
pub const REASON_HEADER: &str = "Tributary-Dead-Letter-Reason";
/// The subject the message was first published on.
pub const ORIGINAL_SUBJECT_HEADER: &str = "Tributary-Original-Subject";
/// Its sequence number in the stream it came from.
pub const ORIGINAL_SEQUENCE_HEADER: &str = "Tributary-Original-Sequence";
/// How many times it was delivered before it was given up on.
pub const DELIVERIES_HEADER: &str = "Tributary-Deliveries";

/// The longest reason kept in a header; longer ones are cut, marked with `…`.
pub const MAX_REASON_LEN: usize = 2000;

/// A reason as a header value: on one line, at most [`MAX_REASON_LEN`] bytes.
pub fn reason_header_value(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.len() <= MAX_REASON_LEN {
        return one_line;
    }
    let mut end = MAX_REASON_LEN;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_on_one_header_line() {
        assert_eq!(reason_header_value("bad\r\nvalue"), "bad  value");
        let long = "é".repeat(MAX_REASON_LEN);
        let cut = reason_header_value(&long);
        assert!(cut.len() <= MAX_REASON_LEN + "…".len());
        assert!(cut.ends_with('…'));
    }
}
