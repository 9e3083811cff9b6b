//! Requests to a provider's token endpoint (RFC 6749 §4.1.3, §4.4.2, §6), read as its entry in
//! the catalog says it answers ([`TokenQuirks`]): GitHub's form-encoded and 200-with-`error`
//! answers, Slack's `ok: false` and `authed_user`, everyone else's RFC 6749 JSON.
//!
//! Why not the `oauth2` crate's `request_async`: its token response type needs
//! `access_token` at the top level and a success status to mean success; Slack's user token
//! sits under `authed_user`, and GitHub and Slack answer refusals with status 200. Reading
//! those through it would mean catching its parse errors and parsing the body again, so the
//! requests are made here with reqwest and read once, by the quirks.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tributary_proto::oauth::{
    ClientAuthentication, ErrorStyle, ProviderProfile, ResponseFormat, TokenErrorKind, TokenShape,
};
use url::Url;

/// The longest a token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an unreadable answer is quoted.
const QUOTED_BODY_CHARS: usize = 200;

/// The client the deployment (or the instance) registered with the provider.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The client id.
    pub id: String,
    /// The secret; `None` for a public client.
    pub secret: Option<SecretString>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What a token request asks for.
pub enum TokenGrant<'a> {
    /// A code the person's consent brought back, with its PKCE verifier.
    AuthorizationCode {
        /// The code.
        code: &'a str,
        /// The redirect URI the consent named.
        redirect_uri: &'a str,
        /// The PKCE verifier.
        verifier: &'a SecretString,
    },
    /// A refresh.
    Refresh {
        /// The refresh token.
        refresh_token: &'a SecretString,
    },
    /// The client's own token (`client_credentials`), for these scopes.
    ClientCredentials {
        /// The `scope` parameter.
        scope: String,
    },
}

impl TokenGrant<'_> {
    fn grant_type(&self) -> &'static str {
        match self {
            TokenGrant::AuthorizationCode { .. } => "authorization_code",
            TokenGrant::Refresh { .. } => "refresh_token",
            TokenGrant::ClientCredentials { .. } => "client_credentials",
        }
    }
}

/// Tokens a provider issued.
pub struct IssuedTokens {
    /// The access token.
    pub access_token: SecretString,
    /// A refresh token, when one came (a refresh that answers without one keeps the old).
    pub refresh_token: Option<SecretString>,
    /// Seconds the access token lasts; `None` when the provider says nothing (it does not
    /// expire).
    pub expires_in: Option<u64>,
    /// The scopes granted, when the provider says; otherwise those asked for (RFC 6749 §5.1).
    pub scopes: Option<Vec<String>>,
    /// Who the tokens act for, where the answer says (an ID token's e-mail, a Slack
    /// workspace).
    pub connected_as: Option<String>,
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFailure {
    /// The provider refused, with its error code.
    #[error("{code}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// The error code (`invalid_grant`).
        code: String,
        /// Its description, if the provider gave one.
        description: Option<String>,
        /// What it means for the connection.
        kind: TokenErrorKind,
    },
    /// The provider could not be reached, timed out or answered 5xx or 429.
    #[error("{0}")]
    Unreachable(String),
    /// The answer could not be read as tokens.
    #[error("{0}")]
    Unreadable(String),
}

impl TokenFailure {
    /// Whether trying again later may work.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenFailure::Unreachable(_) => true,
            TokenFailure::Refused { kind, .. } => *kind == TokenErrorKind::Transient,
            TokenFailure::Unreadable(_) => false,
        }
    }

    /// Whether the grant is gone and a person must connect again.
    pub fn grant_gone(&self) -> bool {
        matches!(
            self,
            TokenFailure::Refused {
                kind: TokenErrorKind::GrantGone,
                ..
            }
        )
    }
}

/// Makes token requests; one per plugin manager, cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenClient {
    http: reqwest::Client,
}

impl Default for TokenClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenClient {
    /// A client that follows no redirect (a token endpoint that redirects would take the
    /// client secret along) and gives each request [`TOKEN_TIMEOUT`].
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TOKEN_TIMEOUT)
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                // Only a TLS backend that cannot start fails here; the default client then
                // fails each request with the same cause.
                tracing::error!(error = %e, "Cannot build the OAuth token client.");
                reqwest::Client::default()
            });
        Self { http }
    }

    /// Asks `token_url` for tokens, authenticating `client` as `profile` says.
    pub async fn request(
        &self,
        profile: &ProviderProfile,
        token_url: &Url,
        client: &ClientCredentials,
        grant: TokenGrant<'_>,
    ) -> Result<IssuedTokens, TokenFailure> {
        let mut form: Vec<(&str, String)> = vec![("grant_type", grant.grant_type().to_owned())];
        match &grant {
            TokenGrant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                form.push(("code", (*code).to_owned()));
                form.push(("redirect_uri", (*redirect_uri).to_owned()));
                form.push(("code_verifier", verifier.expose_secret().to_owned()));
            }
            TokenGrant::Refresh { refresh_token } => {
                form.push(("refresh_token", refresh_token.expose_secret().to_owned()));
            }
            TokenGrant::ClientCredentials { scope } => {
                if !scope.is_empty() {
                    form.push(("scope", scope.clone()));
                }
            }
        }
        let mut request = self
            .http
            .post(token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (profile.client_authentication, &client.secret) {
            (ClientAuthentication::ClientSecretBasic, Some(secret)) => {
                // RFC 6749 §2.3.1: both form-encoded before they are joined.
                let user = form_encode(&client.id);
                let password = form_encode(secret.expose_secret());
                request = request.basic_auth(user, Some(password));
            }
            (ClientAuthentication::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", client.id.clone()));
                form.push(("client_secret", secret.expose_secret().to_owned()));
            }
            (_, None) => form.push(("client_id", client.id.clone())),
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                TokenFailure::Unreachable(format!(
                    "cannot reach {}: {}",
                    origin(token_url),
                    e.without_url()
                ))
            })?;
        let status = response.status();
        let form_encoded = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = response.bytes().await.map_err(|e| {
            TokenFailure::Unreachable(format!(
                "the answer of {} broke off: {}",
                origin(token_url),
                e.without_url()
            ))
        })?;
        read_answer(profile, status, form_encoded, &bytes)
    }
}

/// RFC 6749 Appendix B's encoding of the client id and secret before HTTP Basic.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Reads a token endpoint's answer as `profile`'s quirks describe it.
pub fn read_answer(
    profile: &ProviderProfile,
    status: reqwest::StatusCode,
    form_encoded: bool,
    body: &[u8],
) -> Result<IssuedTokens, TokenFailure> {
    let quirks = &profile.quirks;
    let parsed: Option<Map<String, Value>> =
        if form_encoded && quirks.response_format == ResponseFormat::FormUnlessAcceptJson {
            Some(
                url::form_urlencoded::parse(body)
                    .into_owned()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )
        } else {
            serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| match v {
                    Value::Object(map) => Some(map),
                    _ => None,
                })
        };
    let refusal = |map: &Map<String, Value>| -> Option<TokenFailure> {
        let code = map.get("error").and_then(Value::as_str)?.to_owned();
        let description = map
            .get("error_description")
            .and_then(Value::as_str)
            .map(|d| d.lines().next().unwrap_or(d).to_owned());
        Some(TokenFailure::Refused {
            kind: quirks.classify(&code),
            code,
            description,
        })
    };
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let said = parsed
            .as_ref()
            .and_then(refusal)
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Err(TokenFailure::Unreachable(format!(
            "the token endpoint answered {status}{said}"
        )));
    }
    let Some(map) = parsed else {
        return Err(TokenFailure::Unreadable(format!(
            "the token endpoint answered {status} with what is not a token response: {}",
            quote(body)
        )));
    };
    match quirks.errors {
        ErrorStyle::Rfc6749 if !status.is_success() => {
            return Err(refusal(&map).unwrap_or_else(|| {
                TokenFailure::Unreadable(format!(
                    "the token endpoint answered {status} without an `error`: {}",
                    quote(body)
                ))
            }))
        }
        ErrorStyle::Rfc6749 | ErrorStyle::ErrorFieldWithStatus200 => {
            if let Some(refused) = refusal(&map) {
                return Err(refused);
            }
        }
        ErrorStyle::SlackOkFalse => {
            if map.get("ok").and_then(Value::as_bool) == Some(false) {
                let code = map
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown_error")
                    .to_owned();
                return Err(TokenFailure::Refused {
                    kind: quirks.classify(&code),
                    code,
                    description: None,
                });
            }
        }
    }
    if !status.is_success() {
        return Err(TokenFailure::Unreadable(format!(
            "the token endpoint answered {status}: {}",
            quote(body)
        )));
    }
    let separator = quirks.response_scope_separator;
    let scopes_of = |map: &Map<String, Value>| -> Option<Vec<String>> {
        map.get("scope").and_then(Value::as_str).map(|s| {
            s.split(separator)
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect()
        })
    };
    // Slack: the bot token at the top level, else the user token under `authed_user`.
    let (token_map, mut scopes) = match quirks.token_shape {
        TokenShape::Rfc6749 => (&map, scopes_of(&map)),
        TokenShape::SlackV2 => {
            let user = map.get("authed_user").and_then(Value::as_object);
            let user_scopes = user.and_then(scopes_of);
            if map.get("access_token").is_some() {
                let mut scopes = scopes_of(&map);
                if let (Some(all), Some(more)) = (&mut scopes, user_scopes) {
                    all.extend(more);
                }
                (&map, scopes)
            } else if let Some(user) = user.filter(|u| u.get("access_token").is_some()) {
                (user, user_scopes)
            } else {
                (&map, None)
            }
        }
    };
    let access_token = token_map
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            TokenFailure::Unreadable("the token endpoint's answer holds no access_token".to_owned())
        })?;
    let refresh_token = token_map
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_owned()));
    let expires_in = match token_map.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    if let Some(scopes) = &mut scopes {
        scopes.retain(|s| !s.is_empty());
        scopes.dedup();
    }
    Ok(IssuedTokens {
        access_token: SecretString::from(access_token.to_owned()),
        refresh_token,
        expires_in,
        scopes,
        connected_as: who(&map),
    })
}

/// Who the answer says the tokens act for: the ID token's e-mail, preferred user name or name
/// (read without checking its signature: it came straight from the token endpoint over TLS,
/// as OpenID Connect Core §3.1.3.7 allows), or the Slack workspace.
fn who(map: &Map<String, Value>) -> Option<String> {
    if let Some(team) = map
        .get("team")
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
    {
        return Some(team.to_owned());
    }
    let id_token = map.get("id_token").and_then(Value::as_str)?;
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    ["email", "preferred_username", "upn", "name"]
        .iter()
        .find_map(|claim| claims.get(claim).and_then(Value::as_str))
        .map(str::to_owned)
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(QUOTED_BODY_CHARS).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use reqwest::StatusCode;
    use secrecy::ExposeSecret;
    use tributary_proto::oauth::{GITHUB, MICROSOFT, SLACK};

    fn read(
        p: &tributary_proto::oauth::BuiltinProvider,
        status: u16,
        form: bool,
        body: &str,
    ) -> Result<IssuedTokens, TokenFailure> {
        read_answer(
            &ProviderProfile::from(p),
            StatusCode::from_u16(status).unwrap(),
            form,
            body.as_bytes(),
        )
    }

    #[test]
    fn github_refusals_come_with_status_200_and_are_refusals() {
        let refused = read(
            &GITHUB,
            200,
            false,
            r#"{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}"#,
        )
        .err()
        .unwrap();
        assert!(refused.grant_gone(), "{refused}");
        let form = read(
            &GITHUB,
            200,
            true,
            "access_token=gho_abc&scope=repo%2Cuser&token_type=bearer",
        )
        .ok()
        .unwrap();
        assert_eq!(form.access_token.expose_secret(), "gho_abc");
        assert_eq!(form.scopes.unwrap(), ["repo", "user"]);
        assert_eq!(form.expires_in, None);
    }

    #[test]
    fn slack_user_tokens_are_read_from_authed_user_and_ok_false_is_a_refusal() {
        let user_only = read(
            &SLACK,
            200,
            false,
            r#"{"ok":true,"authed_user":{"id":"U1","scope":"search:read,users:read","access_token":"xoxe.xoxp-1","refresh_token":"xoxe-1-r","expires_in":43200,"token_type":"user"},"team":{"id":"T1","name":"Softball"}}"#,
        )
        .ok()
        .unwrap();
        assert_eq!(user_only.access_token.expose_secret(), "xoxe.xoxp-1");
        assert_eq!(user_only.expires_in, Some(43200));
        assert_eq!(user_only.scopes.unwrap(), ["search:read", "users:read"]);
        assert_eq!(user_only.connected_as.as_deref(), Some("Softball"));
        let refused = read(
            &SLACK,
            200,
            false,
            r#"{"ok":false,"error":"invalid_refresh_token"}"#,
        )
        .err()
        .unwrap();
        assert!(refused.grant_gone());
    }

    #[test]
    fn microsoft_errors_are_read_from_4xx_json_and_5xx_is_transient() {
        let refused = read(
            &MICROSOFT,
            400,
            false,
            r#"{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked.\r\nTrace ID: x","error_codes":[50173]}"#,
        )
        .err()
        .unwrap();
        assert!(refused.grant_gone());
        assert_eq!(
            refused.to_string(),
            "invalid_grant: AADSTS50173: The provided grant has expired due to it being revoked."
        );
        let down = read(&MICROSOFT, 503, false, "<html>busy</html>")
            .err()
            .unwrap();
        assert!(down.is_transient(), "{down}");
        let unreadable = read(&MICROSOFT, 200, false, "<html>").err().unwrap();
        assert!(!unreadable.is_transient() && !unreadable.grant_gone());
    }

    #[test]
    fn an_id_token_says_who_connected() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"email":"ada@example.com","name":"Ada"}"#);
        let body = format!(
            r#"{{"access_token":"a","expires_in":"3599","id_token":"h.{claims}.s","scope":"openid email"}}"#
        );
        let issued = read(&MICROSOFT, 200, false, &body).ok().unwrap();
        assert_eq!(issued.connected_as.as_deref(), Some("ada@example.com"));
        assert_eq!(issued.expires_in, Some(3599));
    }
}
