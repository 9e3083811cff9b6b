//! The plugin manifest (`plugin.json`) and its permissions.
//!
//! [`PluginManifest::parse`] reads a manifest and reports every problem at once, each naming
//! the field it concerns, so a plugin author fixes them all in one pass. A `configSchema` is
//! checked as a JSON Schema, with problems named by their place inside it
//! (`configSchema.properties.token.type`); an `auth` section field by field
//! (`auth.endpoints.tokenUrl`, `auth.scopes[1]`), against the `configSchema` for the fields it
//! names.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::EntityType;
use crate::oauth::AuthSpec;

mod auth;
#[cfg(test)]
mod auth_tests;
mod config_schema;
#[cfg(test)]
mod tests;

/// What a plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginType {
    /// Pulls data out of an external service.
    Connector,
    /// Carries messages in and out through webhooks and provider APIs.
    Channel,
    /// Reacts to events inside the mesh.
    Operator,
}

impl PluginType {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginType::Connector => "connector",
            PluginType::Channel => "channel",
            PluginType::Operator => "operator",
        }
    }

    /// The type spelled `text` in a manifest, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            PluginType::Connector,
            PluginType::Channel,
            PluginType::Operator,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// A parsed `plugin.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginManifest {
    /// Reverse-DNS id, unique across plugins: `com.microsoft.graph`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Semantic version.
    #[schemars(with = "String")]
    pub version: semver::Version,
    /// Connector, channel or operator.
    #[serde(rename = "type")]
    pub plugin_type: PluginType,
    /// `builtin:<name>` for compiled-in plugins, `wasm:<relative path>.wasm` for components.
    pub entrypoint: String,
    /// What the plugin may do; anything else is refused.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// JSON Schema of an instance's configuration; `writeOnly` fields are secrets.
    #[serde(default = "empty_object_schema")]
    pub config_schema: Value,
    /// One paragraph on what it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For a `wasm:` entrypoint: the SHA-256 (hex, lower-case) of the component file. The
    /// component is refused when its content does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a `wasm:` entrypoint: the sandbox limits the plugin asks for, each bounded by the
    /// service's configuration.
    #[serde(default, skip_serializing_if = "WasmLimits::is_empty")]
    pub limits: WasmLimits,
    /// How the host connects an instance to its service with OAuth 2.0: the grant, the
    /// provider and the scopes (`tributary_proto::oauth`). The plugin never sees the client
    /// secret or the refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
}

/// The sandbox limits a WebAssembly plugin's manifest asks for (`limits` in `plugin.json`).
/// A limit left out takes the service's default; one above the service's maximum is lowered
/// to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmLimits {
    /// Linear memory of one instance, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// CPU time of one call into the guest, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_cpu_ms: Option<u32>,
    /// CPU time of a whole sync, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_cpu_ms: Option<u32>,
    /// Size of one item's JSON, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_bytes: Option<u32>,
    /// Length of one log line, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_line_bytes: Option<u32>,
    /// Log lines per second kept; the rest are dropped and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines_per_second: Option<u32>,
}

impl WasmLimits {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        *self == WasmLimits::default()
    }
}

fn empty_object_schema() -> Value {
    serde_json::json!({ "type": "object" })
}

/// The fields a manifest may have; any other is a typo worth reporting.
const KNOWN_FIELDS: [&str; 13] = [
    "id",
    "name",
    "version",
    "type",
    "entrypoint",
    "permissions",
    "configSchema",
    "description",
    "author",
    "homepage",
    "sha256",
    "limits",
    "auth",
];

/// One problem in a manifest, with the field it concerns (`permissions[2]`, `version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestProblem {
    /// The field, as a path into the manifest; empty for the document as a whole.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Every problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestErrors {
    /// The problems, in the order the fields were checked.
    pub problems: Vec<ManifestProblem>,
}

impl ManifestErrors {
    /// Whether one of the problems concerns `field`.
    pub fn names(&self, field: &str) -> bool {
        self.problems.iter().any(|p| p.field == field)
    }
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid plugin manifest:")?;
        for p in &self.problems {
            if p.field.is_empty() {
                write!(f, "\n  - {}", p.message)?;
            } else {
                write!(f, "\n  - `{}`: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

/// Collects problems while the fields are checked one by one.
#[derive(Default)]
struct Problems(Vec<ManifestProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ManifestProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// A required non-empty string field.
    fn string(&mut self, obj: &Map<String, Value>, field: &str) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) => {
                self.add(field, "is required");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.add(field, "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.add(field, format!("must be a string, found {}", kind_of(other)));
                None
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `id` is reverse-DNS: two or more dot-separated labels of lower-case letters, digits
/// and hyphens, each starting with a letter.
pub fn is_reverse_dns(id: &str) -> bool {
    let labels: Vec<&str> = id.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            l.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Whether `s` is a SHA-256 digest in lower-case hex.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

impl WasmLimits {
    /// Each limit with its manifest name.
    pub fn named(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("memoryMib", self.memory_mib),
            ("callCpuMs", self.call_cpu_ms),
            ("syncCpuMs", self.sync_cpu_ms),
            ("itemBytes", self.item_bytes),
            ("logLineBytes", self.log_line_bytes),
            ("logLinesPerSecond", self.log_lines_per_second),
        ]
    }
}

fn check_entrypoint(entrypoint: &str) -> Result<(), String> {
    if let Some(name) = entrypoint.strip_prefix("builtin:") {
        if name.is_empty() {
            return Err("`builtin:` must be followed by the built-in plugin's name".into());
        }
        return Ok(());
    }
    if let Some(path) = entrypoint.strip_prefix("wasm:") {
        if !path.ends_with(".wasm") || path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err("`wasm:` must be followed by a relative path to a .wasm file inside the plugin directory".into());
        }
        return Ok(());
    }
    if let Some(path) = entrypoint.strip_prefix("declarative:") {
        if !path.ends_with(".toml") || path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err("`declarative:` must be followed by a relative path to a .toml connector spec inside the plugin directory".into());
        }
        return Ok(());
    }
    Err(format!(
        "`{entrypoint}` is neither `builtin:<name>`, `wasm:<path>.wasm` nor `declarative:<path>.toml`"
    ))
}

impl PluginManifest {
    /// Parses and validates a manifest, reporting every problem at once.
    pub fn parse(json: &str) -> Result<Self, ManifestErrors> {
        let value: Value = serde_json::from_str(json).map_err(|e| ManifestErrors {
            problems: vec![ManifestProblem {
                field: String::new(),
                message: format!("not valid JSON: {e}"),
            }],
        })?;
        Self::from_value(&value)
    }

    /// Validates an already-parsed manifest document, reporting every problem at once.
    pub fn from_value(value: &Value) -> Result<Self, ManifestErrors> {
        let mut p = Problems::default();
        let Some(obj) = value.as_object() else {
            p.add(
                "",
                format!("a manifest must be a JSON object, found {}", kind_of(value)),
            );
            return Err(ManifestErrors { problems: p.0 });
        };

        for key in obj.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                p.add(
                    key.clone(),
                    format!("unknown field; expected one of {}", KNOWN_FIELDS.join(", ")),
                );
            }
        }

        let id = p.string(obj, "id");
        if let Some(id) = &id {
            if !is_reverse_dns(id) {
                p.add(
                    "id",
                    format!("`{id}` is not a reverse-DNS id such as `com.example.contacts`"),
                );
            }
        }
        let name = p.string(obj, "name");
        let version = p
            .string(obj, "version")
            .and_then(|v| match semver::Version::parse(&v) {
                Ok(version) => Some(version),
                Err(e) => {
                    p.add("version", format!("`{v}` is not a semantic version: {e}"));
                    None
                }
            });
        let plugin_type = p.string(obj, "type").and_then(|t| match t.as_str() {
            "connector" => Some(PluginType::Connector),
            "channel" => Some(PluginType::Channel),
            "operator" => Some(PluginType::Operator),
            other => {
                p.add(
                    "type",
                    format!("`{other}` is not one of connector, channel, operator"),
                );
                None
            }
        });
        let entrypoint = p.string(obj, "entrypoint");
        let mut is_wasm = false;
        if let Some(e) = &entrypoint {
            match check_entrypoint(e) {
                Ok(()) => is_wasm = e.starts_with("wasm:"),
                Err(message) => p.add("entrypoint", message),
            }
        }

        let mut permissions = Vec::new();
        match obj.get("permissions") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let field = format!("permissions[{i}]");
                    match item.as_str().map(str::parse::<Permission>) {
                        Some(Ok(perm)) => permissions.push(perm),
                        Some(Err(e)) => p.add(field, e.to_string()),
                        None => p.add(field, format!("must be a string, found {}", kind_of(item))),
                    }
                }
            }
            Some(other) => p.add(
                "permissions",
                format!("must be an array of strings, found {}", kind_of(other)),
            ),
        }

        let config_schema = match obj.get("configSchema") {
            None => empty_object_schema(),
            Some(schema) => {
                config_schema::check(schema, &mut p);
                schema.clone()
            }
        };

        for (i, perm) in permissions.iter().enumerate() {
            if let Some(property) = config_host_property(&perm.resource) {
                let declared = config_schema
                    .pointer(&format!("/properties/{property}/type"))
                    .and_then(Value::as_str);
                if declared != Some("string") {
                    p.add(
                        format!("permissions[{i}]"),
                        format!(
                            "`${{{property}}}` names no string property of configSchema; declare `{property}` as a string there"
                        ),
                    );
                }
            }
        }

        let description = match obj.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                p.add(
                    "description",
                    format!("must be a string, found {}", kind_of(other)),
                );
                None
            }
        };

        let sha256 = match obj.get("sha256") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if is_sha256_hex(s) => Some(s.clone()),
            Some(Value::String(s)) => {
                p.add(
                    "sha256",
                    format!("`{s}` is not a SHA-256 digest: 64 lower-case hex digits"),
                );
                None
            }
            Some(other) => {
                p.add(
                    "sha256",
                    format!("must be a string, found {}", kind_of(other)),
                );
                None
            }
        };
        if is_wasm && sha256.is_none() && !p.0.iter().any(|problem| problem.field == "sha256") {
            p.add(
                "sha256",
                "is required for a `wasm:` entrypoint: the SHA-256 of the component file",
            );
        }
        let limits = match obj.get("limits") {
            None | Some(Value::Null) => WasmLimits::default(),
            Some(value) => match WasmLimits::deserialize(value) {
                Ok(limits) if !is_wasm && !limits.is_empty() => {
                    p.add("limits", "applies only to a `wasm:` entrypoint");
                    limits
                }
                Ok(limits) => {
                    for (name, value) in limits.named() {
                        if value == Some(0) {
                            p.add(format!("limits.{name}"), "must be at least 1");
                        }
                    }
                    limits
                }
                Err(e) => {
                    p.add("limits", e.to_string());
                    WasmLimits::default()
                }
            },
        };

        let auth = match obj.get("auth") {
            None | Some(Value::Null) => None,
            Some(value) => auth::check(value, &config_schema, &mut p),
        };

        match (id, name, version, plugin_type, entrypoint) {
            (Some(id), Some(name), Some(version), Some(plugin_type), Some(entrypoint))
                if p.0.is_empty() =>
            {
                Ok(PluginManifest {
                    id,
                    name,
                    version,
                    plugin_type,
                    entrypoint,
                    permissions,
                    config_schema,
                    description,
                    sha256,
                    limits,
                    auth,
                })
            }
            _ => Err(ManifestErrors { problems: p.0 }),
        }
    }
}

/// The capability a permission grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Network access.
    Network,
    /// NATS events.
    Event,
    /// The unified model.
    Data,
}

/// The direction of a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Outbound network calls.
    Outbound,
    /// Inbound network traffic (webhooks).
    Inbound,
    /// Publishing events.
    Publish,
    /// Subscribing to events.
    Subscribe,
    /// Reading entities.
    Read,
    /// Writing entities.
    Write,
}

/// One permission: `capability:direction:resource`, such as `network:outbound:*.example.com`,
/// `event:publish:data.*`, `data:write:persons` or `network:inbound`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(with = "String")]
pub struct Permission {
    /// What it grants access to.
    pub capability: Capability,
    /// Which way.
    pub direction: Direction,
    /// A host pattern, subject pattern or entity plural; empty for `network:inbound`.
    pub resource: String,
}

/// A permission string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{permission}` is not a valid permission: {reason}")]
pub struct InvalidPermission {
    /// The string as given.
    pub permission: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The config property a `network:outbound:${property}` resource names, if it is one: the
/// grant is the host of the URL the instance's config holds there, which only the person
/// configuring the instance knows (a CardDAV server, a self-hosted API).
pub fn config_host_property(resource: &str) -> Option<&str> {
    let name = resource.strip_prefix("${")?.strip_suffix('}')?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    valid.then_some(name)
}

/// Whether `host` is a host name (`api.example.com`) or a `*.domain` pattern: dot-separated,
/// non-empty labels of ASCII letters, digits and hyphens. Also used by [`crate::grants`].
pub(crate) fn valid_host_pattern(host: &str) -> bool {
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The ports a `network:outbound` grant without a port allows: plain and TLS HTTP.
pub const STANDARD_PORTS: [u16; 2] = [80, 443];

/// Splits a `network:outbound` resource into its host pattern and port: `api.example.com`
/// is `("api.example.com", None)`, `127.0.0.1:8080` is `("127.0.0.1", Some(8080))`. `None`
/// when it is neither: a port must be written in digits without leading zeros, and never be
/// 80 or 443, which a grant of the host alone allows ([`STANDARD_PORTS`]), so each grant has
/// one spelling. Also used by [`crate::grants`].
pub(crate) fn outbound_target(resource: &str) -> Option<(&str, Option<u16>)> {
    let Some((host, port)) = resource.rsplit_once(':') else {
        return valid_host_pattern(resource).then_some((resource, None));
    };
    let number: u16 = port.parse().ok()?;
    let canonical = number != 0 && number.to_string() == port && !STANDARD_PORTS.contains(&number);
    (canonical && valid_host_pattern(host)).then_some((host, Some(number)))
}

/// Whether `subject` is a NATS subject pattern: non-empty tokens without whitespace, where `*`
/// and `>` stand alone and `>` comes last. Also used by [`crate::grants`].
pub(crate) fn valid_subject_pattern(subject: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && !t.chars().any(char::is_whitespace)
            && (*t == "*" || *t == ">" || !t.contains(['*', '>']))
            && (*t != ">" || i == tokens.len() - 1)
    })
}

impl FromStr for Permission {
    type Err = InvalidPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| InvalidPermission {
            permission: s.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = s.splitn(3, ':');
        let capability = parts.next().unwrap_or_default();
        let direction = parts.next();
        let resource = parts.next();
        let (capability, direction) = match (capability, direction) {
            ("network", Some("outbound")) => (Capability::Network, Direction::Outbound),
            ("network", Some("inbound")) => (Capability::Network, Direction::Inbound),
            ("event", Some("publish")) => (Capability::Event, Direction::Publish),
            ("event", Some("subscribe")) => (Capability::Event, Direction::Subscribe),
            ("data", Some("read")) => (Capability::Data, Direction::Read),
            ("data", Some("write")) => (Capability::Data, Direction::Write),
            ("network" | "event" | "data", _) => {
                return Err(fail("the direction must be outbound or inbound for network, publish or subscribe for event, read or write for data"))
            }
            _ => return Err(fail("the capability must be network, event or data")),
        };
        let resource = resource.unwrap_or_default();
        match direction {
            Direction::Inbound if !resource.is_empty() => {
                return Err(fail("`network:inbound` takes no resource"))
            }
            Direction::Inbound => {}
            Direction::Outbound
                if outbound_target(resource).is_none() && config_host_property(resource).is_none() =>
            {
                return Err(fail(
                    "the resource must be a host name or `*.domain`, either with a port other than 80 and 443 (`api.example.com:8443`; without one, only ports 80 and 443 are allowed), or `${property}` (the host and port of the URL in that config property)",
                ))
            }
            Direction::Publish | Direction::Subscribe if !valid_subject_pattern(resource) => {
                return Err(fail("the resource must be a NATS subject pattern such as `data.*`"))
            }
            Direction::Read | Direction::Write
                if resource != "*" && resource.parse::<EntityType>().is_err() =>
            {
                return Err(fail("the resource must be an entity type (persons, organizations, conversations, messages, calendar_events, documents) or `*`"))
            }
            _ => {}
        }
        Ok(Permission {
            capability,
            direction,
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cap, dir) = match (self.capability, self.direction) {
            (Capability::Network, Direction::Inbound) => return f.write_str("network:inbound"),
            (Capability::Network, d) => ("network", d),
            (Capability::Event, d) => ("event", d),
            (Capability::Data, d) => ("data", d),
        };
        let dir = match dir {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Publish => "publish",
            Direction::Subscribe => "subscribe",
            Direction::Read => "read",
            Direction::Write => "write",
        };
        write!(f, "{cap}:{dir}:{}", self.resource)
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
