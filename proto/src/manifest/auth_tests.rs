//! The `auth` section against a matrix of bad sections, each row naming exactly the fields its
//! problems must concern, and the messages a plugin author reads.

use serde_json::{json, Value};

use super::*;
use crate::oauth::{ClientAuthentication, Grant};

/// A valid connector manifest with `auth` as its section.
fn with_auth(auth: Value) -> String {
    json!({
        "id": "com.example.mail",
        "name": "Example Mail",
        "version": "0.1.0",
        "type": "connector",
        "entrypoint": "builtin:example-mail",
        "permissions": ["network:outbound:graph.microsoft.com"],
        "configSchema": {
            "type": "object",
            "properties": {
                "tenantId": { "type": "string" },
                "pageSize": { "type": "integer" },
                "clientId": { "type": "string" },
                "clientSecret": { "type": "string", "writeOnly": true },
                "plainSecret": { "type": "string" }
            }
        },
        "auth": auth
    })
    .to_string()
}

fn microsoft() -> Value {
    json!({
        "grant": "authorization_code",
        "provider": "microsoft",
        "scopes": ["User.Read", "Mail.Read"]
    })
}

fn custom() -> Value {
    json!({
        "grant": "authorization_code",
        "provider": "hubspot",
        "endpoints": {
            "authorizationUrl": "https://app.hubspot.com/oauth/authorize",
            "tokenUrl": "https://api.hubapi.com/oauth/v1/token"
        },
        "scopes": ["oauth"]
    })
}

/// `base` with `field` set to `value` (`Value::Null` removes it).
fn set(mut base: Value, field: &str, value: Value) -> Value {
    let obj = base.as_object_mut().unwrap();
    if value.is_null() {
        obj.remove(field);
    } else {
        obj.insert(field.to_owned(), value);
    }
    base
}

fn fields_named(text: &str) -> Vec<String> {
    let mut fields: Vec<String> = match PluginManifest::parse(text) {
        Ok(_) => vec![],
        Err(e) => e.problems.into_iter().map(|p| p.field).collect(),
    };
    fields.sort();
    fields
}

#[test]
fn each_bad_auth_section_names_exactly_its_fields() {
    let endpoints = |e: Value| set(custom(), "endpoints", e);
    let cases: Vec<(&str, Value, &[&str])> = vec![
        ("not an object", json!("microsoft"), &["auth"]),
        (
            "unknown field",
            set(microsoft(), "scope", json!("x")),
            &["auth.scope"],
        ),
        (
            "missing grant",
            set(microsoft(), "grant", Value::Null),
            &["auth.grant"],
        ),
        (
            "unknown grant",
            set(microsoft(), "grant", json!("implicit")),
            &["auth.grant"],
        ),
        (
            "missing provider",
            set(microsoft(), "provider", Value::Null),
            &["auth.provider"],
        ),
        (
            "provider not a name",
            set(microsoft(), "provider", json!("Microsoft")),
            &["auth.provider"],
        ),
        (
            "unknown provider without endpoints",
            set(microsoft(), "provider", json!("hubspot")),
            &["auth.provider"],
        ),
        (
            "built-in provider with endpoints",
            set(custom(), "provider", json!("google")),
            &["auth.endpoints"],
        ),
        (
            "grant the provider lacks",
            set(
                set(microsoft(), "provider", json!("google")),
                "grant",
                json!("client_credentials"),
            ),
            &["auth.grant"],
        ),
        (
            "missing scopes",
            set(microsoft(), "scopes", Value::Null),
            &["auth.scopes"],
        ),
        (
            "scopes not a list",
            set(microsoft(), "scopes", json!("User.Read")),
            &["auth.scopes"],
        ),
        (
            "scope with a space",
            set(microsoft(), "scopes", json!(["User.Read", "Mail Read"])),
            &["auth.scopes[1]"],
        ),
        (
            "scope repeated",
            set(microsoft(), "scopes", json!(["a", "b", "a"])),
            &["auth.scopes[2]"],
        ),
        (
            "scope not a string",
            set(microsoft(), "scopes", json!(["a", 2])),
            &["auth.scopes[1]"],
        ),
        (
            "slack scope with its separator",
            json!({"grant": "authorization_code", "provider": "slack", "scopes": ["chat:write,im:read"]}),
            &["auth.scopes[0]"],
        ),
        (
            "slack with no scope at all",
            json!({"grant": "authorization_code", "provider": "slack", "scopes": []}),
            &["auth.scopes"],
        ),
        (
            "user scopes elsewhere",
            set(microsoft(), "userScopes", json!(["x"])),
            &["auth.userScopes"],
        ),
        (
            "microsoft client credentials without .default",
            set(
                set(microsoft(), "grant", json!("client_credentials")),
                "tenant",
                json!("contoso.com"),
            ),
            &["auth.scopes"],
        ),
        (
            "a parameter the host sets",
            set(
                microsoft(),
                "authorizationParams",
                json!({"state": "x", "redirect_uri": "y"}),
            ),
            &[
                "auth.authorizationParams.redirect_uri",
                "auth.authorizationParams.state",
            ],
        ),
        (
            "a parameter the catalog sets",
            set(
                set(microsoft(), "provider", json!("google")),
                "authorizationParams",
                json!({"prompt": "select_account"}),
            ),
            &["auth.authorizationParams.prompt"],
        ),
        (
            "a parameter not a string",
            set(microsoft(), "authorizationParams", json!({"login_hint": 3})),
            &["auth.authorizationParams.login_hint"],
        ),
        (
            "parameters for client credentials",
            set(
                custom_credentials(),
                "authorizationParams",
                json!({"a": "b"}),
            ),
            &["auth.authorizationParams"],
        ),
        (
            "tenant for a provider without one",
            set(
                set(microsoft(), "provider", json!("github")),
                "tenant",
                json!("common"),
            ),
            &["auth.tenant"],
        ),
        (
            "tenant that would change the URL",
            set(microsoft(), "tenant", json!("common/../x")),
            &["auth.tenant"],
        ),
        (
            "tenant from a property that is not there",
            set(microsoft(), "tenant", json!("${directory}")),
            &["auth.tenant"],
        ),
        (
            "tenant from a property that is no string",
            set(microsoft(), "tenant", json!("${pageSize}")),
            &["auth.tenant"],
        ),
        (
            "client id field missing",
            set(
                microsoft(),
                "client",
                json!({"idField": "appId", "secretField": "clientSecret"}),
            ),
            &["auth.client.idField"],
        ),
        (
            "client secret not a secret",
            set(
                microsoft(),
                "client",
                json!({"idField": "clientId", "secretField": "plainSecret"}),
            ),
            &["auth.client.secretField"],
        ),
        (
            "client with an unknown field",
            set(
                microsoft(),
                "client",
                json!({"idField": "clientId", "secret": "x"}),
            ),
            &["auth.client.secret"],
        ),
        (
            "client credentials without a secret field",
            set(
                custom_credentials(),
                "client",
                json!({"idField": "clientId"}),
            ),
            &["auth.client.secretField"],
        ),
        (
            "endpoints not an object",
            endpoints(json!("https://x")),
            &["auth.endpoints"],
        ),
        (
            "endpoint over plain http",
            endpoints(
                json!({"authorizationUrl": "http://app.hubspot.com/oauth/authorize", "tokenUrl": "https://api.hubapi.com/token"}),
            ),
            &["auth.endpoints.authorizationUrl"],
        ),
        (
            "token endpoint missing",
            endpoints(json!({"authorizationUrl": "https://app.hubspot.com/oauth/authorize"})),
            &["auth.endpoints.tokenUrl"],
        ),
        (
            "authorization endpoint missing",
            endpoints(json!({"tokenUrl": "https://api.hubapi.com/token"})),
            &["auth.endpoints.authorizationUrl"],
        ),
        (
            "authorization endpoint for client credentials",
            set(
                custom_credentials(),
                "endpoints",
                json!({"authorizationUrl": "https://a.example.com/authorize", "tokenUrl": "https://a.example.com/token"}),
            ),
            &["auth.endpoints.authorizationUrl"],
        ),
        (
            "unknown placeholder",
            endpoints(
                json!({"authorizationUrl": "https://{region}.example.com/authorize", "tokenUrl": "https://a.example.com/token"}),
            ),
            &["auth.endpoints.authorizationUrl"],
        ),
        (
            "bad separator and client authentication",
            endpoints(
                json!({"authorizationUrl": "https://a.example.com/authorize", "tokenUrl": "https://a.example.com/token", "scopeSeparator": "+", "clientAuthentication": "basic", "extra": 1}),
            ),
            &[
                "auth.endpoints.clientAuthentication",
                "auth.endpoints.extra",
                "auth.endpoints.scopeSeparator",
            ],
        ),
        (
            "everything at once",
            json!({"grant": "device_code", "provider": "hubspot", "endpoints": {"tokenUrl": "ftp://x"}, "scopes": ["a b"], "tenant": 3}),
            &[
                "auth.endpoints.authorizationUrl",
                "auth.endpoints.tokenUrl",
                "auth.grant",
                "auth.scopes[0]",
                "auth.tenant",
            ],
        ),
    ];
    for (case, auth, expected) in cases {
        let text = with_auth(auth);
        assert_eq!(fields_named(&text), expected, "{case}: {text}");
    }
}

fn custom_credentials() -> Value {
    json!({
        "grant": "client_credentials",
        "provider": "acme",
        "endpoints": { "tokenUrl": "https://login.acme.example/token" },
        "scopes": ["api.read"]
    })
}

#[test]
fn valid_sections_of_every_kind_parse_to_what_they_say() {
    let manifest =
        PluginManifest::parse(&with_auth(set(microsoft(), "tenant", json!("${tenantId}"))))
            .unwrap();
    let auth = manifest.auth.unwrap();
    assert_eq!(auth.grant, Grant::AuthorizationCode);
    assert_eq!(auth.provider, "microsoft");
    assert_eq!(auth.tenant_property(), Some("tenantId"));

    let app_only = json!({
        "grant": "client_credentials", "provider": "microsoft",
        "scopes": ["https://graph.microsoft.com/.default"], "tenant": "contoso.onmicrosoft.com",
        "client": {"idField": "clientId", "secretField": "clientSecret"}
    });
    let auth = PluginManifest::parse(&with_auth(app_only))
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(
        auth.client.unwrap().secret_field.as_deref(),
        Some("clientSecret")
    );

    let slack = json!({
        "grant": "authorization_code", "provider": "slack",
        "scopes": [], "userScopes": ["search:read"]
    });
    let auth = PluginManifest::parse(&with_auth(slack))
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.user_scopes, ["search:read"]);

    let github = json!({"grant": "authorization_code", "provider": "github", "scopes": []});
    assert!(
        PluginManifest::parse(&with_auth(github)).is_ok(),
        "GitHub's empty scope is read-only public access"
    );

    let own = set(
        custom_credentials(),
        "endpoints",
        json!({"tokenUrl": "http://127.0.0.1:8080/{tenant}/token", "clientAuthentication": "client_secret_post", "scopeSeparator": ","}),
    );
    let own = set(own, "tenant", json!("eu"));
    let auth = PluginManifest::parse(&with_auth(own))
        .unwrap()
        .auth
        .unwrap();
    let endpoints = auth.endpoints.clone().unwrap();
    assert_eq!(endpoints.scope_separator, ",");
    assert_eq!(
        endpoints.client_authentication,
        ClientAuthentication::ClientSecretPost
    );

    // A manifest without `auth` has none, and one with it serialises it back.
    let manifest = PluginManifest::parse(&with_auth(custom())).unwrap();
    let back = serde_json::to_value(&manifest).unwrap();
    assert_eq!(back["auth"], custom());
}

#[test]
fn auth_problems_say_what_to_do() {
    let cases = [
        (
            set(microsoft(), "provider", json!("hubspot")),
            "auth.provider",
            "not a built-in provider (microsoft, google, github, slack); give its `endpoints`",
        ),
        (
            set(custom(), "provider", json!("slack")),
            "auth.endpoints",
            "`slack` is a built-in provider with its own endpoints",
        ),
        (
            set(
                set(microsoft(), "provider", json!("github")),
                "grant",
                json!("client_credentials"),
            ),
            "auth.grant",
            "`github` does not offer the client_credentials grant",
        ),
        (
            set(
                microsoft(),
                "client",
                json!({"idField": "clientId", "secretField": "plainSecret"}),
            ),
            "auth.client.secretField",
            "mark it `\"writeOnly\": true`",
        ),
        (
            set(microsoft(), "tenant", json!("${directory}")),
            "auth.tenant",
            "declare `directory` as a string",
        ),
        (
            set(
                set(microsoft(), "provider", json!("google")),
                "authorizationParams",
                json!({"access_type": "online"}),
            ),
            "auth.authorizationParams.access_type",
            "set by the `google` provider (`offline`)",
        ),
        (
            set(
                custom(),
                "endpoints",
                json!({"authorizationUrl": "http://app.hubspot.com/a", "tokenUrl": "https://x.example/t"}),
            ),
            "auth.endpoints.authorizationUrl",
            "OAuth endpoints need TLS",
        ),
    ];
    for (auth, field, message) in cases {
        let err = PluginManifest::parse(&with_auth(auth.clone())).unwrap_err();
        let problem = err
            .problems
            .iter()
            .find(|p| p.field == field)
            .unwrap_or_else(|| panic!("{auth}: no problem names `{field}`: {err}"));
        assert!(
            problem.message.contains(message),
            "{auth}: `{}` lacks `{message}`",
            problem.message
        );
    }
}
