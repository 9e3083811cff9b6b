//! An instance's config as an admin-API caller sends it, checked by the plugin manager
//! against the `configSchema` of a built-in plugin: the first byte picks the plugin, the rest
//! is the config's JSON. The secrets are taken out, put back and the whole checked, as
//! `configure` does; no problem's message may contain a secret's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary_fuzz::config_schema::{self, SecretChange};
use tributary_proto::manifest::PluginManifest;

/// The manifests whose schemas configs are checked against.
const MANIFESTS: &[&str] = &[
    tributary_connector_dav::MANIFEST,
    tributary_channel_slack::MANIFEST,
    tributary_channel_telegram::MANIFEST,
    tributary_channel_twilio_sms::MANIFEST,
    tributary_channel_whatsapp::MANIFEST,
    tributary_channel_webhook::MANIFEST,
    include_str!("../../plugins/connectors/microsoft-365/plugin.json"),
    include_str!("../../plugins/connectors/google-contacts/plugin.json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, config)) = data.split_first() else {
        return;
    };
    let Ok(config) = serde_json::from_slice::<Value>(config) else {
        return;
    };
    if !config.is_object() {
        return;
    }
    let manifest = MANIFESTS[usize::from(pick) % MANIFESTS.len()];
    let Ok(manifest) = PluginManifest::parse(manifest) else {
        panic!("a built-in manifest does not parse");
    };
    let schema = &manifest.config_schema;
    let fields = config_schema::secret_fields(schema);
    let Ok((mut whole, changes)) = config_schema::take_secrets(config, &fields) else {
        return;
    };
    let secrets: Vec<(String, String)> = changes
        .into_iter()
        .filter_map(|(field, change)| match change {
            SecretChange::Set(value) => Some((field, value)),
            SecretChange::Clear => None,
        })
        .collect();
    config_schema::put_secrets(&mut whole, &secrets);
    let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();
    for problem in config_schema::validate(schema, &whole, &values) {
        // The message `validate` writes in place of one that showed a secret is fixed text: a
        // secret that happens to be part of it ("sfy `pattern") is not shown by it.
        if is_redacted(&problem.message) {
            continue;
        }
        for value in values.iter().filter(|v| v.len() >= 8) {
            assert!(
                !problem.message.contains(value.as_str()),
                "a problem's message shows a secret: {problem:?}"
            );
        }
    }
});

/// Whether `message` is the fixed text `validate` writes instead of one that showed a secret:
/// "does not satisfy `<keyword>`".
fn is_redacted(message: &str) -> bool {
    message
        .strip_prefix("does not satisfy `")
        .and_then(|rest| rest.strip_suffix('`'))
        .is_some_and(|keyword| {
            !keyword.is_empty() && keyword.chars().all(|c| c.is_ascii_alphabetic())
        })
}
