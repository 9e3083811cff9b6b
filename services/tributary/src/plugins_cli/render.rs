//! What `tributary plugins …` prints for people: aligned tables and detail pages. Every
//! function returns the text, so it can be checked without a terminal.

use std::fmt::Write as _;

use serde_json::Value;
use tributary_proto::requests::plugins::{
    AuditEntry, InstanceView, InvalidPluginView, PluginView, SecretStatus,
};

use tributary_proto::grants::Grants;
use tributary_proto::manifest::{config_host_property, Permission};

use super::config_input::dotted;

pub mod auth;

/// Shown in a cell with nothing to say.
const EMPTY: &str = "-";

/// Columns aligned with two spaces between them; the last column is not padded.
#[derive(Debug, Clone)]
pub struct Table {
    /// The column titles.
    headers: Vec<String>,
    /// The rows, each as long as `headers`.
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; empty cells show as `-`, and line breaks as spaces.
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        let cells = cells
            .into_iter()
            .map(|c| {
                let c = c.replace(['\n', '\r'], " ");
                if c.trim().is_empty() {
                    EMPTY.to_owned()
                } else {
                    c
                }
            })
            .collect();
        self.rows.push(cells);
        self
    }

    /// The table as text, one line per row after the titles, each line ending in `\n`.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                if i + 1 < line.len() {
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `plugins list`: the valid plugins, the invalid ones with their problems, the instances.
pub fn plugin_list(
    plugins: &[PluginView],
    invalid: &[InvalidPluginView],
    instances: &[InstanceView],
) -> String {
    let mut out = String::new();
    out.push_str(&plugin_table(plugins, invalid));
    out.push('\n');
    if instances.is_empty() {
        out.push_str("No instances installed (`tributary plugins install <plugin-id>`).\n");
    } else {
        out.push_str("Instances:\n");
        let mut table = Table::new(&["INSTANCE", "PLUGIN", "VERSION", "STATE", "LAST ERROR"]);
        for i in instances {
            table.row(vec![
                i.id.clone(),
                i.plugin_id.clone(),
                i.version.clone(),
                i.state.clone(),
                i.last_error.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&table.render());
        for i in instances.iter().filter(|i| i.state == NEEDS_RECONNECT) {
            let _ = writeln!(
                out,
                "`{}` needs its account connected again: `{}`",
                i.id,
                auth::connect_command(&i.id)
            );
        }
    }
    out
}

/// The state of an instance whose OAuth grant is gone (`InstanceState::NeedsReconnect`).
const NEEDS_RECONNECT: &str = "needs_reconnect";

/// The plugins found, then the invalid ones with each problem.
pub fn plugin_table(plugins: &[PluginView], invalid: &[InvalidPluginView]) -> String {
    let mut out = String::new();
    if plugins.is_empty() {
        out.push_str("No plugins found.\n");
    } else {
        out.push_str("Plugins:\n");
        let mut table = Table::new(&["ID", "VERSION", "TYPE", "NAME", "LOCATION"]);
        for p in plugins {
            table.row(vec![
                p.id.clone(),
                p.version.clone(),
                p.plugin_type.clone(),
                p.name.clone(),
                p.location.clone(),
            ]);
        }
        out.push_str(&table.render());
    }
    if !invalid.is_empty() {
        out.push_str("\nInvalid plugins (not loaded):\n");
        for i in invalid {
            match &i.id {
                Some(id) => {
                    let _ = writeln!(out, "{} ({id})", i.location);
                }
                None => {
                    let _ = writeln!(out, "{}", i.location);
                }
            }
            for problem in &i.problems {
                let field = if problem.field.is_empty() {
                    "(manifest)"
                } else {
                    problem.field.as_str()
                };
                let _ = writeln!(out, "  {field}: {}", problem.message);
            }
        }
    }
    out
}

/// One field of a plugin's configuration schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaField {
    /// Its dotted key, as `--set` takes it.
    pub key: String,
    /// Its JSON type (and format).
    pub kind: String,
    /// Whether the schema requires it.
    pub required: bool,
    /// Whether it is a secret (`writeOnly`): stored encrypted and never shown.
    pub secret: bool,
    /// What it is for.
    pub description: String,
}

/// The fields of a configuration schema, nested objects' fields as dotted keys.
pub fn schema_fields(schema: &Value) -> Vec<SchemaField> {
    let mut fields = Vec::new();
    collect_fields(schema, "", &mut fields);
    fields
}

fn collect_fields(schema: &Value, prefix: &str, fields: &mut Vec<SchemaField>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let key = format!("{prefix}{name}");
        let mut kind = match property.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("|"),
            _ => String::new(),
        };
        if let Some(format) = property.get("format").and_then(Value::as_str) {
            kind = format!("{kind} ({format})");
        }
        let secret = property.get("writeOnly").and_then(Value::as_bool) == Some(true);
        fields.push(SchemaField {
            key: key.clone(),
            kind,
            required: required.contains(&name.as_str()),
            secret,
            description: property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
        if !secret {
            collect_fields(property, &format!("{key}."), fields);
        }
    }
}

/// `plugins info <plugin>`.
pub fn plugin_details(plugin: &PluginView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}) {}", plugin.name, plugin.id, plugin.version);
    let _ = writeln!(out, "type:      {}", plugin.plugin_type);
    let _ = writeln!(out, "location:  {}", plugin.location);
    if let Some(description) = &plugin.description {
        let _ = writeln!(out, "\n{description}");
    }
    out.push_str("\nPermissions it asks for:\n");
    list_lines(&mut out, &plugin.permissions);
    let fields = schema_fields(&plugin.config_schema);
    out.push_str("\nConfiguration:\n");
    if fields.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let described = fields.iter().any(|f| !f.description.is_empty());
        let mut headers = vec!["FIELD", "TYPE", "REQUIRED", "SECRET"];
        if described {
            headers.push("DESCRIPTION");
        }
        let mut table = Table::new(&headers);
        for f in fields {
            let mut cells = vec![
                f.key,
                f.kind,
                yes_no(f.required),
                if f.secret { "yes (write-only)" } else { "no" }.to_owned(),
            ];
            if described {
                cells.push(f.description);
            }
            table.row(cells);
        }
        indent(&mut out, &table.render());
    }
    out
}

/// What `plugins info` and `install` say of a channel instance's webhook route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Webhook {
    /// The URL to give the provider, and whether the route answers now (it does once the
    /// instance is enabled).
    Url {
        /// `<channel.public_base_url>/webhooks/<channel>/<instance>`.
        url: String,
        /// Whether the channel service serves it now.
        served: bool,
    },
    /// The channel takes no webhooks (it has no `network:inbound`).
    NoRoute,
    /// The channel service could not be asked; why.
    Unknown(String),
}

/// `plugins info <instance>`: everything but secret values and tokens, which it never has; for
/// a channel instance, `webhook` is its route; for one whose plugin connects to an account,
/// its Auth section ([`auth::section`]).
pub fn instance_details(instance: &InstanceView, webhook: Option<&Webhook>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "instance:        {}", instance.id);
    let _ = writeln!(
        out,
        "plugin:          {} {} ({})",
        instance.plugin_id, instance.version, instance.plugin_type
    );
    if instance.state == NEEDS_RECONNECT {
        let _ = writeln!(
            out,
            "state:           {} (run `{}`)",
            instance.state,
            auth::connect_command(&instance.id)
        );
    } else {
        let _ = writeln!(out, "state:           {}", instance.state);
    }
    match webhook {
        Some(Webhook::Url { url, served: true }) => {
            let _ = writeln!(out, "webhook URL:     {url}");
        }
        Some(Webhook::Url { url, served: false }) => {
            let _ = writeln!(out, "webhook URL:     {url} (answers once enabled)");
        }
        Some(Webhook::NoRoute) => {
            out.push_str("webhook URL:     none (this channel takes no webhooks)\n");
        }
        Some(Webhook::Unknown(why)) => {
            let _ = writeln!(out, "webhook URL:     unknown: {why}");
        }
        None => {}
    }
    if let Some(available) = &instance.available_version {
        let _ = writeln!(
            out,
            "available:       {available} (`tributary plugins upgrade {}`)",
            instance.id
        );
    }
    let heartbeat = instance
        .last_heartbeat
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "never".to_owned());
    let _ = writeln!(out, "last heartbeat:  {heartbeat}");
    let _ = writeln!(
        out,
        "last error:      {}",
        instance.last_error.as_deref().unwrap_or(EMPTY)
    );
    let _ = writeln!(
        out,
        "installed:       {}",
        instance.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(
        out,
        "updated:         {}",
        instance.updated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(held) = &instance.held_upgrade {
        let _ = writeln!(
            out,
            "\nHeld upgrade to {}: it asks for these permissions (accept them with `tributary plugins upgrade {} --accept-permissions`):",
            held.version, instance.id
        );
        list_lines(&mut out, &held.new_permissions);
    }
    if let Some(view) = &instance.auth {
        out.push_str(&auth::section(view, &instance.id, chrono::Utc::now()));
    }
    out.push_str("\nConfiguration:\n");
    let mut lines = Vec::new();
    flatten(&instance.config, "", &mut lines);
    if lines.is_empty() {
        out.push_str("  (empty)\n");
    } else {
        let mut table = Table::new(&["FIELD", "VALUE"]);
        for (key, value) in lines {
            table.row(vec![key, value]);
        }
        indent(&mut out, &table.render());
    }
    if !instance.secrets.is_empty() {
        out.push_str("\nSecrets:\n");
        let mut table = Table::new(&["FIELD", "STATUS"]);
        for (field, status) in &instance.secrets {
            let status = match status {
                SecretStatus::Set => "set",
                SecretStatus::NotSet => "not set",
            };
            table.row(vec![dotted(field), status.to_owned()]);
        }
        indent(&mut out, &table.render());
    }
    out.push_str("\nPermissions accepted:\n");
    list_lines(
        &mut out,
        &resolved_permissions(&instance.permissions, &instance.config),
    );
    out
}

/// Each accepted permission as it is granted: one that names a config property
/// (`network:outbound:${url}`) is followed by what the instance's config makes of it, as the
/// services grant it (`network:outbound:${url} → network:outbound:dav.example.com`), or by
/// why it grants nothing yet.
pub fn resolved_permissions(permissions: &[String], config: &Value) -> Vec<String> {
    permissions
        .iter()
        .map(|text| {
            let Ok(permission) = text.parse::<Permission>() else {
                return text.clone();
            };
            let Some(property) = config_host_property(&permission.resource) else {
                return text.clone();
            };
            let granted = Grants::for_instance([permission.clone()], config);
            match granted.permissions().first() {
                Some(resolved) => format!("{text} → {resolved}"),
                None => format!("{text} → nothing: `{property}` is not set to a URL with a host"),
            }
        })
        .collect()
}

/// `plugins audit`: oldest first.
pub fn audit(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "No changes recorded.\n".to_owned();
    }
    let mut table = Table::new(&[
        "SEQ", "AT", "ACTOR", "ACTION", "INSTANCE", "PLUGIN", "DETAIL",
    ]);
    for e in entries {
        // What a NATS request claimed about who asked is shown as a claim beside the actor the
        // plugin manager recorded, not in the detail.
        let mut detail = e.detail.clone();
        let claimed = detail
            .as_object_mut()
            .and_then(|map| map.remove("claimed_actor"))
            .and_then(|c| c.as_str().map(str::to_owned));
        let actor = match claimed {
            Some(claimed) => format!("{} (claims {claimed})", e.actor),
            None => e.actor.clone(),
        };
        let detail = match &detail {
            Value::Object(map) if map.is_empty() => String::new(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        table.row(vec![
            e.seq.to_string(),
            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor,
            e.action.clone(),
            e.instance_id.clone().unwrap_or_default(),
            e.plugin_id.clone().unwrap_or_default(),
            detail,
        ]);
    }
    table.render()
}

/// Plain configuration values as dotted keys and JSON values.
fn flatten(value: &Value, prefix: &str, lines: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (key, inner) in map {
                flatten(inner, &format!("{prefix}{key}."), lines);
            }
        }
        other => lines.push((prefix.trim_end_matches('.').to_owned(), other.to_string())),
    }
}

fn list_lines(out: &mut String, items: &[String]) {
    if items.is_empty() {
        out.push_str("  (none)\n");
    }
    for item in items {
        let _ = writeln!(out, "  {item}");
    }
}

fn indent(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_and_empty_cells_show_a_dash() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["a".into(), "first".into()]);
        table.row(vec!["longer-id".into(), String::new()]);
        assert_eq!(
            table.render(),
            "ID         NAME\na          first\nlonger-id  -\n"
        );
    }

    #[test]
    fn a_permission_naming_a_config_property_shows_the_host_it_grants() {
        let permissions = vec![
            "network:outbound:${server}".to_owned(),
            "network:outbound:${apiBaseUrl}".to_owned(),
            "data:write:persons".to_owned(),
        ];
        let config = json!({"server": "https://DAV.example.com:8443/user/"});
        assert_eq!(
            resolved_permissions(&permissions, &config),
            vec![
                "network:outbound:${server} → network:outbound:dav.example.com:8443",
                "network:outbound:${apiBaseUrl} → nothing: `apiBaseUrl` is not set to a URL with a host",
                "data:write:persons",
            ]
        );
    }

    #[test]
    fn schema_fields_name_nested_keys_and_secrets() {
        let schema = json!({"type": "object", "required": ["server"], "properties": {
            "server": {"type": "string", "format": "uri"},
            "auth": {"type": "object", "properties": {"token": {"type": "string", "writeOnly": true}}}
        }});
        let fields = schema_fields(&schema);
        let keys: Vec<(&str, &str, bool, bool)> = fields
            .iter()
            .map(|f| (f.key.as_str(), f.kind.as_str(), f.required, f.secret))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("auth", "object", false, false),
                ("auth.token", "string", false, true),
                ("server", "string (uri)", true, false),
            ]
        );
    }
}
