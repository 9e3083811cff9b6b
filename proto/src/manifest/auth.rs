//! Checks a manifest's `auth` section ([`crate::oauth::AuthSpec`]) field by field, naming each
//! problem's place (`auth.endpoints.tokenUrl`, `auth.scopes[2]`), and against the manifest's
//! `configSchema` for the fields it names (`auth.tenant`'s `${property}`, `auth.client`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{config_host_property, kind_of, Problems};
use crate::oauth::{
    builtin, builtin_names, check_endpoint, is_provider_name, is_scope_token, is_tenant, AuthSpec,
    ClientAuthentication, CustomEndpoints, Grant, InstanceClient, HOST_AUTHORIZATION_PARAMS,
    MICROSOFT, TENANT_PLACEHOLDER,
};

const FIELDS: [&str; 8] = [
    "grant",
    "provider",
    "endpoints",
    "scopes",
    "userScopes",
    "authorizationParams",
    "tenant",
    "client",
];

const ENDPOINT_FIELDS: [&str; 4] = [
    "authorizationUrl",
    "tokenUrl",
    "scopeSeparator",
    "clientAuthentication",
];

const CLIENT_FIELDS: [&str; 2] = ["idField", "secretField"];

/// Adds a problem for each unknown key of `obj`, named `<at>.<key>`.
fn unknown_keys(obj: &Map<String, Value>, known: &[&str], at: &str, p: &mut Problems) {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            p.add(
                format!("{at}.{key}"),
                format!("unknown field; expected one of {}", known.join(", ")),
            );
        }
    }
}

/// A required non-empty string at `field` (a full path) of `obj`, whose key is `key`.
fn required_string(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
    p: &mut Problems,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            p.add(field, "is required");
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            p.add(field, "must not be empty");
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            p.add(field, format!("must be a string, found {}", kind_of(other)));
            None
        }
    }
}

/// The type and secrecy of `property` in `config_schema`: `(is a string, is writeOnly)`, or
/// `None` when it declares no such property.
fn property_of(config_schema: &Value, property: &str) -> Option<(bool, bool)> {
    let declared = config_schema.get("properties")?.get(property)?;
    Some((
        declared.get("type").and_then(Value::as_str) == Some("string"),
        declared.get("writeOnly").and_then(Value::as_bool) == Some(true),
    ))
}

/// The scopes at `field`, each checked; empty after a problem with the list itself.
fn scope_list(
    value: Option<&Value>,
    field: &str,
    separator: &str,
    p: &mut Problems,
) -> Vec<String> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            p.add(
                field,
                format!("must be an array of strings, found {}", kind_of(other)),
            );
            return Vec::new();
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match item {
            Value::String(s) if !is_scope_token(s) => p.add(
                at,
                format!(
                    "`{s}` is not a scope: printable ASCII without spaces, `\"` or `\\` (RFC 6749 §3.3)"
                ),
            ),
            Value::String(s) if s.contains(separator) => p.add(
                at,
                format!("`{s}` holds the provider's scope separator `{separator}`"),
            ),
            Value::String(s) if out.contains(s) => p.add(at, format!("repeats `{s}`")),
            Value::String(s) => out.push(s.clone()),
            other => p.add(at, format!("must be a string, found {}", kind_of(other))),
        }
    }
    out
}

/// The `auth.endpoints` object of a provider of the plugin's own.
fn custom_endpoints(
    value: &Value,
    grant: Option<Grant>,
    p: &mut Problems,
) -> Option<CustomEndpoints> {
    let Some(obj) = value.as_object() else {
        p.add(
            "auth.endpoints",
            format!("must be an object, found {}", kind_of(value)),
        );
        return None;
    };
    unknown_keys(obj, &ENDPOINT_FIELDS, "auth.endpoints", p);
    let mut ok = true;
    let endpoint = |key: &str, p: &mut Problems| -> Option<String> {
        let field = format!("auth.endpoints.{key}");
        let url = required_string(obj, key, &field, p)?;
        match check_endpoint(&url) {
            Ok(()) => Some(url),
            Err(message) => {
                p.add(field, message);
                None
            }
        }
    };
    let authorization_url = match (grant, obj.contains_key("authorizationUrl")) {
        (Some(Grant::ClientCredentials), true) => {
            p.add(
                "auth.endpoints.authorizationUrl",
                "applies only to the `authorization_code` grant",
            );
            ok = false;
            None
        }
        (Some(Grant::ClientCredentials), false) => None,
        // Required for `authorization_code`; checked when the grant is unknown too.
        _ => {
            let url = endpoint("authorizationUrl", p);
            ok &= url.is_some();
            url
        }
    };
    let token_url = endpoint("tokenUrl", p);
    let scope_separator = match obj.get("scopeSeparator") {
        None => " ".to_owned(),
        Some(Value::String(s)) if s == " " || s == "," => s.clone(),
        Some(other) => {
            p.add(
                "auth.endpoints.scopeSeparator",
                format!("must be \" \" or \",\", found {other}"),
            );
            ok = false;
            " ".to_owned()
        }
    };
    let client_authentication = match obj.get("clientAuthentication") {
        None => ClientAuthentication::default(),
        Some(Value::String(s)) if s == "client_secret_basic" => {
            ClientAuthentication::ClientSecretBasic
        }
        Some(Value::String(s)) if s == "client_secret_post" => {
            ClientAuthentication::ClientSecretPost
        }
        Some(other) => {
            p.add(
                "auth.endpoints.clientAuthentication",
                format!("must be `client_secret_basic` or `client_secret_post`, found {other}"),
            );
            ok = false;
            ClientAuthentication::default()
        }
    };
    let token_url = token_url?;
    ok.then_some(CustomEndpoints {
        authorization_url,
        token_url,
        scope_separator,
        client_authentication,
    })
}

/// Checks `auth` against the rest of the manifest (its `configSchema`), adding a problem for
/// each thing wrong, and returns the section when it has none.
pub(super) fn check(value: &Value, config_schema: &Value, p: &mut Problems) -> Option<AuthSpec> {
    let Some(obj) = value.as_object() else {
        p.add(
            "auth",
            format!("must be an object, found {}", kind_of(value)),
        );
        return None;
    };
    let first = p.0.len();
    unknown_keys(obj, &FIELDS, "auth", p);

    let grant = required_string(obj, "grant", "auth.grant", p).and_then(|g| {
        let grant = Grant::ALL.into_iter().find(|known| known.as_str() == g);
        if grant.is_none() {
            p.add(
                "auth.grant",
                format!("`{g}` is not one of authorization_code, client_credentials"),
            );
        }
        grant
    });

    let provider = required_string(obj, "provider", "auth.provider", p).filter(|name| {
        let ok = is_provider_name(name);
        if !ok {
            p.add(
                "auth.provider",
                format!("`{name}` is not a provider name: lower-case letters, digits and `_`, starting with a letter"),
            );
        }
        ok
    });
    let catalog = provider.as_deref().and_then(builtin);

    let endpoints = match (obj.get("endpoints"), catalog, &provider) {
        (Some(_), Some(known), _) => {
            p.add(
                "auth.endpoints",
                format!(
                    "`{}` is a built-in provider with its own endpoints; leave `endpoints` out, or give your provider another name",
                    known.name
                ),
            );
            None
        }
        (Some(value), None, _) => custom_endpoints(value, grant, p),
        (None, None, Some(name)) => {
            p.add(
                "auth.provider",
                format!(
                    "`{name}` is not a built-in provider ({}); give its `endpoints`",
                    builtin_names()
                ),
            );
            None
        }
        (None, _, _) => None,
    };

    if let (Some(known), Some(grant)) = (catalog, grant) {
        if !known.grants.contains(&grant) {
            p.add(
                "auth.grant",
                format!("`{}` does not offer the {grant} grant", known.name),
            );
        }
    }

    let separator = match (catalog, &endpoints) {
        (Some(known), _) => known.scope_separator.to_owned(),
        (None, Some(e)) => e.scope_separator.clone(),
        (None, None) => " ".to_owned(),
    };
    if !obj.contains_key("scopes") {
        p.add("auth.scopes", "is required (an empty list asks for none)");
    }
    let scopes = scope_list(obj.get("scopes"), "auth.scopes", &separator, p);
    let user_scope_param = catalog.and_then(|c| c.user_scope_param);
    let user_scopes = match (obj.get("userScopes"), user_scope_param) {
        (Some(_), None) => {
            p.add(
                "auth.userScopes",
                "applies only to a provider with user scopes (slack)",
            );
            Vec::new()
        }
        (value, _) => scope_list(value, "auth.userScopes", &separator, p),
    };
    if user_scope_param.is_some()
        && scopes.is_empty()
        && user_scopes.is_empty()
        && !p.0[first..]
            .iter()
            .any(|x| x.field.starts_with("auth.scopes") || x.field.starts_with("auth.userScopes"))
    {
        p.add(
            "auth.scopes",
            "ask for bot `scopes`, `userScopes` or both: the provider needs at least one",
        );
    }
    if catalog.is_some_and(|c| c.name == MICROSOFT.name) && grant == Some(Grant::ClientCredentials)
    {
        match scopes.as_slice() {
            [one] if one.ends_with("/.default") => {}
            _ => p.add(
                "auth.scopes",
                "client credentials take exactly one scope, `<resource>/.default` (such as `https://graph.microsoft.com/.default`)",
            ),
        }
    }

    let mut authorization_params = BTreeMap::new();
    match obj.get("authorizationParams") {
        None | Some(Value::Null) => {}
        Some(_) if grant == Some(Grant::ClientCredentials) => p.add(
            "auth.authorizationParams",
            "applies only to the `authorization_code` grant",
        ),
        Some(Value::Object(params)) => {
            for (name, value) in params {
                let at = format!("auth.authorizationParams.{name}");
                let set_by_catalog = catalog.and_then(|c| {
                    c.authorization_params
                        .iter()
                        .find(|(k, _)| *k == name.as_str())
                });
                if HOST_AUTHORIZATION_PARAMS.contains(&name.as_str())
                    || user_scope_param == Some(name.as_str())
                {
                    p.add(at, "is set by the host for every consent");
                } else if let (Some(c), Some((_, v))) = (catalog, set_by_catalog) {
                    p.add(at, format!("is set by the `{}` provider (`{v}`)", c.name));
                } else if name.is_empty() {
                    p.add(at, "a parameter needs a name");
                } else {
                    match value {
                        Value::String(v) => {
                            authorization_params.insert(name.clone(), v.clone());
                        }
                        other => p.add(at, format!("must be a string, found {}", kind_of(other))),
                    }
                }
            }
        }
        Some(other) => p.add(
            "auth.authorizationParams",
            format!("must be an object of strings, found {}", kind_of(other)),
        ),
    }

    let takes_tenant = match (catalog, &endpoints) {
        (Some(c), _) => c.default_tenant.is_some(),
        (None, Some(e)) => {
            e.token_url.contains(TENANT_PLACEHOLDER)
                || e.authorization_url
                    .as_deref()
                    .is_some_and(|u| u.contains(TENANT_PLACEHOLDER))
        }
        (None, None) => true, // the provider is already at fault; do not pile on
    };
    let tenant = match obj.get("tenant") {
        None | Some(Value::Null) => None,
        Some(_) if !takes_tenant => {
            p.add(
                "auth.tenant",
                format!(
                    "the endpoints of `{}` take no tenant",
                    provider.as_deref().unwrap_or_default()
                ),
            );
            None
        }
        Some(Value::String(t)) => match config_host_property(t) {
            Some(property) => match property_of(config_schema, property) {
                Some((true, _)) => Some(t.clone()),
                _ => {
                    p.add(
                        "auth.tenant",
                        format!("`{t}` names no string property of configSchema; declare `{property}` as a string there"),
                    );
                    None
                }
            },
            None if is_tenant(t) => Some(t.clone()),
            None => {
                p.add(
                    "auth.tenant",
                    format!("`{t}` is neither a tenant (letters, digits, `.` and `-`) nor `${{property}}`"),
                );
                None
            }
        },
        Some(other) => {
            p.add(
                "auth.tenant",
                format!("must be a string, found {}", kind_of(other)),
            );
            None
        }
    };

    let client = match obj.get("client") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            unknown_keys(c, &CLIENT_FIELDS, "auth.client", p);
            let id_field = required_string(c, "idField", "auth.client.idField", p).filter(|f| {
                let ok = matches!(property_of(config_schema, f), Some((true, _)));
                if !ok {
                    p.add(
                        "auth.client.idField",
                        format!("`{f}` names no string property of configSchema"),
                    );
                }
                ok
            });
            let secret_field = match c.get("secretField") {
                None | Some(Value::Null) => {
                    if grant == Some(Grant::ClientCredentials) {
                        p.add(
                            "auth.client.secretField",
                            "is required for client credentials: a client without a secret cannot use them",
                        );
                    }
                    None
                }
                Some(Value::String(f)) => match property_of(config_schema, f) {
                    Some((true, true)) => Some(f.clone()),
                    Some((true, false)) => {
                        p.add(
                            "auth.client.secretField",
                            format!("`{f}` must be a secret: mark it `\"writeOnly\": true` in configSchema"),
                        );
                        None
                    }
                    _ => {
                        p.add(
                            "auth.client.secretField",
                            format!("`{f}` names no string property of configSchema"),
                        );
                        None
                    }
                },
                Some(other) => {
                    p.add(
                        "auth.client.secretField",
                        format!("must be a string, found {}", kind_of(other)),
                    );
                    None
                }
            };
            id_field.map(|id_field| InstanceClient {
                id_field,
                secret_field,
            })
        }
        Some(other) => {
            p.add(
                "auth.client",
                format!("must be an object, found {}", kind_of(other)),
            );
            None
        }
    };

    if p.0.len() > first {
        return None;
    }
    Some(AuthSpec {
        grant: grant?,
        provider: provider?,
        endpoints,
        scopes,
        user_scopes,
        authorization_params,
        tenant,
        client,
    })
}
