//! Checking a spec against its manifest, reporting every problem at once, each with its path
//! in the spec (`streams[0].request.url`).
//!
//! First the spec's shape, against the JSON Schema generated from [`Spec`] (unknown keys,
//! wrong types, missing keys: all of them, not the first serde meets); then what a schema
//! cannot say: templates and expressions that do not parse, names the context lacks
//! (`config.tenant` when `configSchema` has no `tenant`), hosts no `network:outbound`
//! permission grants, an OAuth spec without an `auth` section, streams that do not fit.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;
use serde_json::Value as Json;
use tributary_proto::grants::Grants;
use tributary_proto::manifest::{config_host_property, PluginManifest};

use crate::expr::{self, roots};
use crate::spec::{Auth, Changes, Pagination, Partitions, Spec};

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecProblem {
    /// Where in the spec: `streams[0].request.url`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem a spec has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the connector spec has {} problem(s): {}", .problems.len(), .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SpecErrors {
    /// Each problem, in spec order.
    pub problems: Vec<SpecProblem>,
}

/// The JSON Schema of a spec, as `proto/schemas/declarative-spec.json` holds it.
pub fn spec_schema() -> Json {
    let schema = schemars::schema_for!(Spec);
    serde_json::to_value(&schema).unwrap_or(Json::Null)
}

/// Reads spec `text` (TOML) and checks it against `manifest`.
pub fn validate(text: &str, manifest: &PluginManifest) -> Result<Spec, SpecErrors> {
    let mut p = Problems::default();
    let document: Json = match toml::from_str(text) {
        Ok(document) => document,
        Err(e) => {
            p.add("", format!("not valid TOML: {}", e.message()));
            return Err(p.into_errors());
        }
    };
    check_shape(&document, &mut p);
    if !p.0.is_empty() {
        return Err(p.into_errors());
    }
    let spec: Spec = match serde_path_to_error::deserialize(&document) {
        Ok(spec) => spec,
        Err(e) => {
            p.add(dotted(&e.path().to_string()), e.inner().to_string());
            return Err(p.into_errors());
        }
    };
    Checker::new(manifest, &spec, &mut p).check(&spec, manifest);
    if p.0.is_empty() {
        Ok(spec)
    } else {
        Err(p.into_errors())
    }
}

#[derive(Default)]
struct Problems(Vec<SpecProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn into_errors(self) -> SpecErrors {
        SpecErrors { problems: self.0 }
    }
}

/// Unknown keys, wrong types and missing keys, from the JSON Schema; a section of several
/// forms (`auth`, `pagination`, `changes`) that fits none is explained by serde, which names
/// the key or the `type` it does not know.
fn check_shape(document: &Json, p: &mut Problems) {
    static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> =
        LazyLock::new(|| jsonschema::validator_for(&spec_schema()).map_err(|e| e.to_string()));
    let validator = match &*VALIDATOR {
        Ok(validator) => validator,
        Err(e) => {
            p.add("", format!("the spec schema cannot be used: {e}"));
            return;
        }
    };
    let mut forms = false;
    for error in validator.iter_errors(document) {
        let path = pointer_to_path(error.instance_path().as_str());
        match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    p.add(join(&path, key), "unknown key");
                }
            }
            jsonschema::error::ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                p.add(join(&path, name), "is required");
            }
            jsonschema::error::ValidationErrorKind::OneOfNotValid { .. }
            | jsonschema::error::ValidationErrorKind::AnyOf { .. } => forms = true,
            _ => p.add(path, short(&error.to_string())),
        }
    }
    if forms {
        let as_serde: Result<Spec, _> = serde_path_to_error::deserialize(document);
        if let Err(e) = as_serde {
            p.add(dotted(&e.path().to_string()), e.inner().to_string());
        }
    }
}

/// A JSON Schema message without the whole offending value, when it is long.
fn short(message: &str) -> String {
    if message.len() > 200 {
        format!("{}…", message.chars().take(200).collect::<String>())
    } else {
        message.to_owned()
    }
}

/// `/streams/0/request/url` → `streams[0].request.url`.
fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            path = join(&path, &segment);
        }
    }
    path
}

/// serde_path_to_error's `streams[0].auth.type` is already dotted; `.` alone is the root.
fn dotted(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The checks a schema cannot make.
struct Checker<'a> {
    env: Environment<'a>,
    /// The top-level properties of `configSchema`.
    config: BTreeSet<String>,
    /// The manifest's permissions as granted, `${property}` hosts left as they are.
    grants: Grants,
    /// The `${property}` hosts the manifest grants.
    config_hosts: BTreeSet<String>,
    has_auth_section: bool,
    base_url: Option<String>,
    p: &'a mut Problems,
}

impl<'a> Checker<'a> {
    fn new(manifest: &PluginManifest, spec: &Spec, p: &'a mut Problems) -> Self {
        let config = manifest
            .config_schema
            .get("properties")
            .and_then(Json::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default();
        let config_hosts = manifest
            .permissions
            .iter()
            .filter_map(|perm| config_host_property(&perm.resource).map(str::to_owned))
            .collect();
        Checker {
            env: expr::new_environment(),
            config,
            grants: Grants::new(manifest.permissions.clone()),
            config_hosts,
            has_auth_section: manifest.auth.is_some(),
            base_url: spec.base_url.clone(),
            p,
        }
    }

    fn check(&mut self, spec: &'a Spec, manifest: &PluginManifest) {
        if manifest.plugin_type != tributary_proto::manifest::PluginType::Connector {
            self.p.add(
                "",
                format!(
                    "a spec runs a connector, and plugin.json says the type is {}",
                    manifest.plugin_type.as_str()
                ),
            );
        }
        if spec.version != 1 {
            self.p.add(
                "version",
                format!("version {} is not known; this engine reads 1", spec.version),
            );
        }
        if let Some(base) = &spec.base_url {
            self.template("base_url", base, roots::CONFIG);
        }
        match &spec.auth {
            Auth::None => {}
            Auth::ApiKey { value, .. } => self.template("auth.value", value, roots::REQUEST),
            Auth::Bearer { token } => self.template("auth.token", token, roots::REQUEST),
            Auth::Basic { username, password } => {
                self.template("auth.username", username, roots::REQUEST);
                self.template("auth.password", password, roots::REQUEST);
            }
            Auth::Oauth => {
                if !self.has_auth_section {
                    self.p.add(
                        "auth.type",
                        "`oauth` needs an `auth` section in plugin.json saying how to connect",
                    );
                }
            }
        }
        for (i, rule) in spec.errors.retry_when.iter().enumerate() {
            self.expression(
                &format!("errors.retry_when[{i}].when"),
                &rule.when,
                &["config", "status", "body", "headers"],
            );
        }
        let fail_roots: &[&str] = &["config", "status", "body"];
        for (i, rule) in spec.errors.fail.iter().enumerate() {
            self.template(
                &format!("errors.fail[{i}].message"),
                &rule.message,
                fail_roots,
            );
        }
        if spec.streams.is_empty() {
            self.p.add("streams", "a spec needs at least one stream");
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, stream) in spec.streams.iter().enumerate() {
            let at = format!("streams[{i}]");
            if seen.contains(&stream.name.as_str()) {
                self.p.add(
                    format!("{at}.name"),
                    format!("`{}` names an earlier stream too", stream.name),
                );
            }
            self.stream(&at, stream, &seen);
            seen.push(&stream.name);
        }
    }

    fn stream(&mut self, at: &str, stream: &'a crate::spec::Stream, earlier: &[&str]) {
        if let Some(when) = &stream.when {
            self.expression(&format!("{at}.when"), when, roots::CONFIG);
        }
        let request = &stream.request;
        if reqwest_method(&request.method).is_none() {
            self.p.add(
                format!("{at}.request.method"),
                format!("`{}` is not an HTTP method", request.method),
            );
        }
        self.template(&format!("{at}.request.url"), &request.url, roots::REQUEST);
        self.url_host(&format!("{at}.request.url"), &request.url);
        for (name, value) in &request.query {
            self.template(&format!("{at}.request.query.{name}"), value, roots::REQUEST);
        }
        for (name, value) in &request.headers {
            self.template(
                &format!("{at}.request.headers.{name}"),
                value,
                roots::REQUEST,
            );
        }
        if let Some(body) = &request.body {
            self.template(&format!("{at}.request.body"), body, roots::REQUEST);
        }
        for (name, value) in &request.form {
            self.template(&format!("{at}.request.form.{name}"), value, roots::REQUEST);
        }
        if request.body.is_some() && !request.form.is_empty() {
            self.p.add(
                format!("{at}.request.form"),
                "a request sends `body` or `form`, not both",
            );
        }
        self.expression(
            &format!("{at}.records.path"),
            &stream.records.path,
            roots::RESPONSE,
        );
        match &stream.pagination {
            Pagination::NextUrl { next } => {
                self.expression(&format!("{at}.pagination.next"), next, roots::RESPONSE)
            }
            Pagination::Cursor { token, .. } => {
                self.expression(&format!("{at}.pagination.token"), token, roots::RESPONSE)
            }
            Pagination::Offset { limit, .. } if *limit == 0 => self
                .p
                .add(format!("{at}.pagination.limit"), "must be at least 1"),
            Pagination::None
            | Pagination::LinkHeader
            | Pagination::Offset { .. }
            | Pagination::PageNumber { .. } => {}
        }
        match &stream.partitions {
            None => {}
            Some(Partitions::Config { list }) => {
                self.expression(&format!("{at}.partitions.list"), list, roots::CONFIG)
            }
            Some(Partitions::Parent {
                stream: parent,
                value,
            }) => {
                if !earlier.contains(&parent.as_str()) {
                    self.p.add(
                        format!("{at}.partitions.stream"),
                        format!("`{parent}` names no earlier stream"),
                    );
                }
                self.expression(&format!("{at}.partitions.value"), value, roots::RECORD);
            }
        }
        let expired = match &stream.changes {
            Changes::None => None,
            Changes::DatetimeCursor { field, .. } => {
                self.expression(&format!("{at}.changes.field"), field, roots::RECORD);
                None
            }
            Changes::DeltaLink { link, expired } => {
                self.expression(&format!("{at}.changes.link"), link, roots::RESPONSE);
                Some(expired)
            }
            Changes::SyncToken {
                token,
                param,
                expired,
            } => {
                self.expression(&format!("{at}.changes.token"), token, roots::RESPONSE);
                // Without a parameter the token reaches the API only through a template.
                let templates = request
                    .query
                    .values()
                    .chain(request.headers.values())
                    .chain(request.form.values())
                    .chain(request.body.iter());
                if param.is_none() && !templates.into_iter().any(|t| t.contains("state.token")) {
                    self.p.add(
                        format!("{at}.changes.param"),
                        "without `param`, a query, header, form or body template of the request must send `state.token`",
                    );
                }
                Some(expired)
            }
        };
        if let Some(when) = expired.and_then(|e| e.when.as_deref()) {
            self.expression(&format!("{at}.changes.expired.when"), when, roots::RESPONSE);
        }
        if let Some(map) = &stream.map {
            self.mapping(&format!("{at}.map"), map);
        }
        for (j, map) in stream.also.iter().enumerate() {
            self.mapping(&format!("{at}.also[{j}]"), map);
        }
    }

    fn mapping(&mut self, at: &str, map: &'a crate::spec::Mapping) {
        self.expression(&format!("{at}.id"), &map.id, roots::RECORD);
        let optional = [
            ("modified", &map.modified),
            ("deleted", &map.deleted),
            ("skip", &map.skip),
        ];
        for (name, source) in optional {
            if let Some(source) = source {
                self.expression(&format!("{at}.{name}"), source, roots::RECORD);
            }
        }
        for (name, field) in &map.fields {
            self.expression(&format!("{at}.fields.{name}"), field, roots::RECORD);
        }
    }

    fn template(&mut self, path: &str, source: &'a str, allowed: &[&str]) {
        match self.env.template_from_str(source) {
            Ok(template) => {
                let names = template.undeclared_variables(true);
                self.names(path, "template", names, allowed);
            }
            Err(e) => self.p.add(
                path,
                format!("template does not parse: {}", expr::detail(&e)),
            ),
        }
    }

    fn expression(&mut self, path: &str, source: &'a str, allowed: &[&str]) {
        if let Some(problem) = expr::unbalanced_close(source) {
            self.p
                .add(path, format!("expression does not parse: {problem}"));
            return;
        }
        match self.env.compile_expression(source) {
            Ok(expression) => {
                let names = expression.undeclared_variables(true);
                self.names(path, "expression", names, allowed);
            }
            Err(e) => self.p.add(
                path,
                format!("expression does not parse: {}", expr::detail(&e)),
            ),
        }
    }

    /// Each name a template or expression uses must be in its context, and each
    /// `config.<name>` in `configSchema`.
    fn names(
        &mut self,
        path: &str,
        kind: &str,
        names: std::collections::HashSet<String>,
        allowed: &[&str],
    ) {
        let names: BTreeSet<String> = names.into_iter().collect();
        for name in names {
            let mut parts = name.split('.');
            let root = parts.next().unwrap_or_default();
            // The environment's functions (`days_from_today`, `range`) are no context names.
            if self.env.globals().any(|(global, _)| global == root) {
                continue;
            }
            if !allowed.contains(&root) {
                self.p.add(
                    path,
                    format!(
                        "{kind} names `{root}`, which is not available here; it may use {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            if root == "config" {
                if let Some(property) = parts.next() {
                    if !self.config.contains(property) {
                        self.p.add(
                            path,
                            format!("{kind} names config.{property}, which configSchema lacks"),
                        );
                    }
                }
            }
        }
    }

    /// `url` rendered, `base_url` first (as the engine renders it, with `config` only), with
    /// each config property standing for `placeholder(property)`; `None` when it does not
    /// render (its template problems are reported apart).
    fn render_url(&self, url: &str, placeholder: impl Fn(&str) -> String) -> Option<String> {
        let mut config = serde_json::Map::new();
        for property in &self.config {
            config.insert(property.clone(), Json::String(placeholder(property)));
        }
        let config = Json::Object(config);
        let base = match &self.base_url {
            Some(base) => Json::String(
                self.env
                    .render_str(base, expr::context(&[("config", &config)]))
                    .ok()?,
            ),
            None => Json::Null,
        };
        let ctx = expr::context(&[
            ("config", &config),
            ("base_url", &base),
            ("state", &Json::Object(Default::default())),
            ("partition", &Json::String("partition".to_owned())),
        ]);
        self.env.render_str(url, ctx).ok()
    }

    /// The host of a request URL must be granted: a literal host by a `network:outbound`
    /// permission, a host from a config property by `network:outbound:${property}`, a host
    /// made with a config value (`https://{{ config.subdomain }}.zendesk.com`) by a
    /// permission that grants it whatever the value (`network:outbound:*.zendesk.com`).
    /// The engine checks the host a run renders against the instance's grants again.
    fn url_host(&mut self, path: &str, url: &str) {
        let placeholder = |name: &str| format!("config-host-{name}.invalid");
        let Some(rendered) = self.render_url(url, |name| format!("https://{}", placeholder(name)))
        else {
            return;
        };
        let as_url = url::Url::parse(&rendered).ok();
        let whole = as_url
            .as_ref()
            .and_then(url::Url::host_str)
            .is_some_and(|h| h.starts_with("config-host-") && h.ends_with(".invalid"));
        // Each config value as a DNS label instead: where one is part of the host, the host
        // parses with the label in its place, and differs from the one above.
        let as_label = self
            .render_url(url, |name| format!("config-{}", label(name)))
            .and_then(|r| url::Url::parse(&r).ok())
            .filter(|u| {
                u.host_str().is_some()
                    && u.host_str() != as_url.as_ref().and_then(url::Url::host_str)
            });
        if let (false, Some(parsed)) = (whole, as_label) {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port_or_known_default().unwrap_or(443);
            if self.grants.check_outbound(host, port).is_err() {
                self.p.add(
                    path,
                    format!("the URL's host `{host}` is made with a config value, and no `network:outbound:` permission grants it whatever the value (grant a `*.` domain, or take the whole URL from a config property granted by `network:outbound:${{property}}`)"),
                );
            }
            return;
        }
        let Ok(parsed) = url::Url::parse(&rendered) else {
            self.p.add(
                path,
                format!("`{rendered}` is not an absolute URL (start it with `{{{{ base_url }}}}` or https://)"),
            );
            return;
        };
        let Some(host) = parsed.host_str() else {
            self.p.add(path, "the URL has no host");
            return;
        };
        if let Some(property) = host
            .strip_prefix("config-host-")
            .and_then(|h| h.strip_suffix(".invalid"))
        {
            if !self.config_hosts.contains(property) {
                self.p.add(
                    path,
                    format!("the URL's host comes from config.{property}, which no `network:outbound:${{{property}}}` permission grants"),
                );
            }
            return;
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        if self.grants.check_outbound(host, port).is_err() {
            let shown = match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            self.p.add(
                path,
                format!("the URL's host `{shown}` is granted by no `network:outbound:` permission"),
            );
        }
    }
}

/// `name` as a DNS label: lower-case letters, digits and `-`.
fn label(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The method `name` names, if it is one.
pub(crate) fn reqwest_method(name: &str) -> Option<reqwest::Method> {
    let method = reqwest::Method::from_bytes(name.as_bytes()).ok()?;
    [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "REPORT", "PROPFIND",
    ]
    .contains(&method.as_str())
    .then_some(method)
}
