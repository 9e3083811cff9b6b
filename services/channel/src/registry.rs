//! The channel plugins this service can run, by manifest entrypoint (`builtin:slack`): the
//! host's [`ChannelRegistry`], built from its one list of built-in plugins. The route of an
//! instance is named after its entrypoint: `builtin:twilio-sms` serves
//! `/webhooks/twilio-sms/<instance>`.

use tributary_host::builtin::BUILTIN_PREFIX;
pub use tributary_host::ChannelRegistry;

/// The route name of an entrypoint: `builtin:twilio-sms` → `twilio-sms`; any other form is
/// used whole, with characters that cannot be in a URL path segment or a NATS token made `-`.
pub fn channel_name(entrypoint: &str) -> String {
    entrypoint
        .strip_prefix(BUILTIN_PREFIX)
        .unwrap_or(entrypoint)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_come_from_entrypoints() {
        assert_eq!(channel_name("builtin:twilio-sms"), "twilio-sms");
        assert_eq!(channel_name("wasm:acme/chat.wasm"), "wasm-acme-chat-wasm");
    }
}
