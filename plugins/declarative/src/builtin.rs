//! The declarative connectors built into Tributary: each a `plugin.json` and its spec under
//! `plugins/connectors/<name>/`, compiled in. The host lists their manifests with the other
//! built-ins and runs them with [`crate::DeclarativeConnector`].

/// One built-in declarative connector.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinSpec {
    /// The text of its `plugin.json`.
    pub manifest: &'static str,
    /// Its plugin id, as the manifest says.
    pub plugin_id: &'static str,
    /// The text of the spec its entrypoint names.
    pub spec: &'static str,
}

/// Every built-in declarative connector.
pub const BUILTIN_SPECS: &[BuiltinSpec] = &[
    BuiltinSpec {
        manifest: include_str!("../../connectors/microsoft-365/plugin.json"),
        plugin_id: "tributary.microsoft-365",
        spec: include_str!("../../connectors/microsoft-365/graph.toml"),
    },
    BuiltinSpec {
        manifest: include_str!("../../connectors/google-contacts/plugin.json"),
        plugin_id: "tributary.google-contacts",
        spec: include_str!("../../connectors/google-contacts/contacts.toml"),
    },
    BuiltinSpec {
        manifest: include_str!("../../connectors/google-calendar/plugin.json"),
        plugin_id: "tributary.google-calendar",
        spec: include_str!("../../connectors/google-calendar/calendar.toml"),
    },
    BuiltinSpec {
        manifest: include_str!("../../connectors/hubspot/plugin.json"),
        plugin_id: "tributary.hubspot",
        spec: include_str!("../../connectors/hubspot/crm.toml"),
    },
    BuiltinSpec {
        manifest: include_str!("../../connectors/todoist/plugin.json"),
        plugin_id: "tributary.todoist",
        spec: include_str!("../../connectors/todoist/sync.toml"),
    },
    BuiltinSpec {
        manifest: include_str!("../../connectors/zendesk/plugin.json"),
        plugin_id: "tributary.zendesk",
        spec: include_str!("../../connectors/zendesk/tickets.toml"),
    },
];

/// The built-in spec of the plugin `plugin_id`, if it is one.
pub fn builtin_spec(plugin_id: &str) -> Option<&'static BuiltinSpec> {
    BUILTIN_SPECS.iter().find(|b| b.plugin_id == plugin_id)
}
