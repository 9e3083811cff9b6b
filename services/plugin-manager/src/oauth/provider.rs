//! The provider of one instance, every party having had its say: the manifest's `auth`
//! section (a built-in provider or its own endpoints), the deployment's
//! `[oauth.providers.<name>]` (its client, endpoint overrides, tenant), and the instance's
//! config (its tenant, its own client).

use secrecy::SecretString;
use serde_json::Value;
use tributary_proto::oauth::{AuthSpec, Endpoints, ProviderProfile};

use super::token_client::ClientCredentials;
use super::OAuthSettings;
use crate::error::RegistryError;
use crate::store::InstanceRow;

/// One instance's provider, ready for a consent or a token request.
#[derive(Debug, Clone)]
pub struct InstanceProvider {
    /// The manifest's section.
    pub auth: AuthSpec,
    /// The provider's conventions.
    pub profile: ProviderProfile,
    /// Its endpoints for this instance.
    pub endpoints: Endpoints,
    /// The client to authenticate as.
    pub client: ClientCredentials,
}

/// The `auth` section of `row`'s manifest, or the refusal naming the instance.
pub fn auth_of(row: &InstanceRow) -> Result<&AuthSpec, RegistryError> {
    row.manifest
        .auth
        .as_ref()
        .ok_or_else(|| RegistryError::NoAuth {
            instance_id: row.id.clone(),
            plugin_id: row.plugin_id.clone(),
        })
}

/// The string at top-level field `field` of `config`, when set and not blank.
fn config_string(config: &Value, field: &str) -> Option<String> {
    config
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Resolves `row`'s provider; `secrets` are its opened secrets (field pointer, value), for an
/// instance that brings its own client secret.
pub fn resolve(
    settings: &OAuthSettings,
    row: &InstanceRow,
    secrets: &[(String, String)],
) -> Result<InstanceProvider, RegistryError> {
    let auth = auth_of(row)?.clone();
    let profile = auth.profile();
    let deployment = settings.config.provider(&profile.name);
    let overrides = deployment.map(|d| d.overrides()).unwrap_or_default();
    let tenant = auth.instance_tenant(&row.config)?;
    let endpoints = profile.endpoints(&auth, tenant.as_deref(), &overrides)?;

    let own_id = auth
        .client
        .as_ref()
        .and_then(|c| config_string(&row.config, &c.id_field));
    let client = match own_id {
        Some(id) => {
            let secret = auth
                .client
                .as_ref()
                .and_then(|c| c.secret_field.as_deref())
                .and_then(|field| {
                    let pointer = format!("/{field}");
                    secrets
                        .iter()
                        .find(|(f, _)| *f == pointer)
                        .map(|(_, v)| v.trim().to_owned())
                })
                .filter(|s| !s.is_empty())
                .map(SecretString::from);
            ClientCredentials { id, secret }
        }
        None => {
            let configured = match deployment {
                Some(d) => d.client(&profile.name)?,
                None => None,
            };
            let Some(configured) = configured else {
                return Err(RegistryError::NoOAuthClient {
                    provider: profile.name.clone(),
                    redirect_uri: settings.redirect_uri.clone(),
                    instance_field: auth.client.as_ref().map(|c| c.id_field.clone()),
                });
            };
            ClientCredentials {
                id: configured.client_id,
                secret: configured.client_secret,
            }
        }
    };
    if auth.grant == tributary_proto::oauth::Grant::ClientCredentials && client.secret.is_none() {
        return Err(RegistryError::NoOAuthClient {
            provider: profile.name.clone(),
            redirect_uri: settings.redirect_uri.clone(),
            instance_field: auth.client.as_ref().and_then(|c| c.secret_field.clone()),
        });
    }
    Ok(InstanceProvider {
        auth,
        profile,
        endpoints,
        client,
    })
}
