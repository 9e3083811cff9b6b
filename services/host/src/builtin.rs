//! The plugins compiled into Tributary: one list, [`BUILTINS`], one line per plugin. The
//! plugin manager lists their manifests from it and the connector and channel services run
//! their constructors from it, so the two can never disagree.
//!
//! Adding a built-in plugin is one crate under `plugins/connectors/` or `plugins/channels/`
//! (exporting `MANIFEST`, its `plugin.json`, and the type implementing the SDK's trait) and
//! one line here; the crate is also named in the workspace's `Cargo.toml` and this crate's.

use std::sync::Arc;

use tributary_channel_email as email;
use tributary_channel_slack as slack;
use tributary_channel_telegram as telegram;
use tributary_channel_twilio_sms as twilio_sms;
use tributary_channel_webhook as webhook;
use tributary_channel_whatsapp as whatsapp;
use tributary_connector_dav as dav;
use tributary_connector_demo as demo;
use tributary_connector_folder as folder;
use tributary_declarative::BUILTIN_SPECS;
use tributary_plugin_sdk::{ChannelPlugin, ConnectorPlugin};
use tributary_proto::manifest::{ManifestErrors, PluginManifest, PluginType};

/// Every built-in plugin: its manifest and how to make it. A test holds each line to its
/// manifest (it parses, its type is the constructor's kind, its entrypoint `builtin:<name>`).
pub const BUILTINS: &[BuiltinPlugin] = &[
    BuiltinPlugin::connector(dav::MANIFEST, || Arc::new(dav::DavConnector::new())),
    BuiltinPlugin::connector(folder::MANIFEST, || {
        Arc::new(folder::FolderConnector::default())
    }),
    BuiltinPlugin::connector(demo::MANIFEST, || Arc::new(demo::DemoConnector)),
    BuiltinPlugin::channel(twilio_sms::MANIFEST, || Arc::new(twilio_sms::TwilioSms)),
    BuiltinPlugin::channel(slack::MANIFEST, || Arc::new(slack::Slack)),
    BuiltinPlugin::channel(telegram::MANIFEST, || Arc::new(telegram::Telegram)),
    BuiltinPlugin::channel(whatsapp::MANIFEST, || Arc::new(whatsapp::WhatsApp)),
    BuiltinPlugin::channel(webhook::MANIFEST, || Arc::new(webhook::GenericWebhook)),
    BuiltinPlugin::channel(email::MANIFEST, || Arc::new(email::Email)),
];

/// The prefix of a built-in plugin's entrypoint (`builtin:dav`).
pub const BUILTIN_PREFIX: &str = "builtin:";

/// How a built-in plugin is made, by the trait it implements.
#[derive(Clone, Copy)]
pub enum BuiltinKind {
    /// A connector, run by the connector service.
    Connector(fn() -> Arc<dyn ConnectorPlugin>),
    /// A channel, run by the channel service.
    Channel(fn() -> Arc<dyn ChannelPlugin>),
}

impl BuiltinKind {
    /// The manifest `type` a plugin of this kind must have.
    pub fn plugin_type(self) -> PluginType {
        match self {
            BuiltinKind::Connector(_) => PluginType::Connector,
            BuiltinKind::Channel(_) => PluginType::Channel,
        }
    }
}

/// One plugin compiled in: its `plugin.json` and its constructor.
#[derive(Clone, Copy)]
pub struct BuiltinPlugin {
    /// The text of its `plugin.json`, as the plugin crate exports it (`MANIFEST`).
    pub manifest: &'static str,
    /// Its constructor, which also says whether it is a connector or a channel.
    pub kind: BuiltinKind,
}

impl std::fmt::Debug for BuiltinPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinPlugin")
            .field("type", &self.kind.plugin_type())
            .field("manifest_bytes", &self.manifest.len())
            .finish()
    }
}

impl BuiltinPlugin {
    /// A built-in connector with `manifest`, made by `make`.
    pub const fn connector(manifest: &'static str, make: fn() -> Arc<dyn ConnectorPlugin>) -> Self {
        BuiltinPlugin {
            manifest,
            kind: BuiltinKind::Connector(make),
        }
    }

    /// A built-in channel with `manifest`, made by `make`.
    pub const fn channel(manifest: &'static str, make: fn() -> Arc<dyn ChannelPlugin>) -> Self {
        BuiltinPlugin {
            manifest,
            kind: BuiltinKind::Channel(make),
        }
    }

    /// Its manifest, parsed and checked as the plugin manager checks every manifest.
    pub fn parse(&self) -> Result<PluginManifest, ManifestErrors> {
        PluginManifest::parse(self.manifest)
    }
}

/// The manifest texts of every built-in plugin, in [`BUILTINS`] order, then those of the
/// built-in declarative connectors ([`tributary_declarative::BUILTIN_SPECS`], run from their
/// compiled-in specs): what the plugin manager discovers before the plugin directories.
pub const MANIFESTS: [&str; BUILTINS.len() + BUILTIN_SPECS.len()] = {
    let mut manifests = [""; BUILTINS.len() + BUILTIN_SPECS.len()];
    let mut i = 0;
    while i < BUILTINS.len() {
        manifests[i] = BUILTINS[i].manifest;
        i += 1;
    }
    let mut j = 0;
    while j < BUILTIN_SPECS.len() {
        manifests[i + j] = BUILTIN_SPECS[j].manifest;
        j += 1;
    }
    manifests
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_builtin_manifest_parses_and_names_a_builtin_entrypoint_of_its_constructors_kind() {
        let mut entrypoints = HashSet::new();
        let mut ids = HashSet::new();
        for plugin in BUILTINS {
            let manifest = plugin
                .parse()
                .unwrap_or_else(|e| panic!("a built-in manifest: {e}\n{}", plugin.manifest));
            assert_eq!(
                manifest.plugin_type,
                plugin.kind.plugin_type(),
                "{}: the manifest's type against its constructor",
                manifest.id
            );
            let name = manifest
                .entrypoint
                .strip_prefix(BUILTIN_PREFIX)
                .unwrap_or_else(|| {
                    panic!("{}: {} is not builtin:", manifest.id, manifest.entrypoint)
                });
            assert!(!name.is_empty(), "{}: an empty builtin name", manifest.id);
            assert!(
                entrypoints.insert(manifest.entrypoint.clone()),
                "{} twice",
                manifest.entrypoint
            );
            assert!(ids.insert(manifest.id.clone()), "{} twice", manifest.id);
        }
        let connectors = BUILTINS
            .iter()
            .filter(|p| matches!(p.kind, BuiltinKind::Connector(_)))
            .count();
        assert_eq!((connectors, BUILTINS.len() - connectors), (3, 6));
    }

    #[test]
    fn the_manifest_list_is_the_builtin_list_then_the_builtin_specs() {
        assert_eq!(MANIFESTS.len(), BUILTINS.len() + BUILTIN_SPECS.len());
        for (text, plugin) in MANIFESTS.iter().zip(BUILTINS) {
            assert_eq!(*text, plugin.manifest);
        }
        for (text, builtin) in MANIFESTS[BUILTINS.len()..].iter().zip(BUILTIN_SPECS) {
            assert_eq!(*text, builtin.manifest);
            let manifest = PluginManifest::parse(text).unwrap();
            assert!(manifest.entrypoint.starts_with("declarative:"));
            tributary_declarative::validate(builtin.spec, &manifest)
                .unwrap_or_else(|e| panic!("{}: {e}", builtin.plugin_id));
        }
    }
}
