//! The access token of an instance whose plugin's manifest has an `auth` section, from the
//! plugin manager's token broker (`plugins.token`): what [`crate::InstanceContexts`] gives
//! such an instance's HTTP client, which attaches it to each request ([`AccessTokens`]).

use async_trait::async_trait;
use tributary_kit::client::{CallError, MeshClient};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{AccessTokens, PluginError};
use tributary_proto::manifest::PluginType;
use tributary_proto::requests::plugins::AccessTokenQuery;
use tributary_proto::requests::ErrorCode;

/// One instance's access tokens, asked of the plugin manager over NATS each time a request
/// needs one (the broker refreshes them; this side holds none between requests, so a token
/// refreshed by another process is picked up at once).
#[derive(Debug, Clone)]
pub struct BrokeredTokens {
    /// Asks `plugins.token`.
    plugins: MeshClient,
    /// The type of plugin the asking service runs: it asks `plugins.token.<type>`.
    plugin_type: PluginType,
    /// The instance whose token it asks for.
    instance_id: String,
}

impl BrokeredTokens {
    /// The tokens of `instance_id`, an instance of a `plugin_type` plugin, asked through
    /// `plugins`.
    pub fn new(
        plugins: MeshClient,
        plugin_type: PluginType,
        instance_id: impl Into<String>,
    ) -> Self {
        Self {
            plugins,
            plugin_type,
            instance_id: instance_id.into(),
        }
    }
}

#[async_trait]
impl AccessTokens for BrokeredTokens {
    async fn access_token(&self, rejected: Option<&str>) -> Result<SecretString, PluginError> {
        let query = AccessTokenQuery {
            plugin_type: Some(self.plugin_type),
            instance_id: self.instance_id.clone(),
            rejected: rejected.map(str::to_owned),
        };
        match self.plugins.call(&query).await {
            Ok(token) => Ok(SecretString::from(token.access_token)),
            Err(e) => Err(refusal(e)),
        }
    }
}

/// What a plugin and its sync read when no token can be had: a reconnect needed or never
/// connected (`conflict`) in the plugin manager's words, which name the command to run; a
/// client missing or refused (`invalid_config`) as the `auth` config's fault; a token
/// endpoint failing for now (`internal`), or a plugin manager that does not answer, as
/// transient.
fn refusal(error: CallError) -> PluginError {
    match error {
        CallError::Api(e) => match e.error {
            ErrorCode::Conflict => PluginError::Other(e.message),
            ErrorCode::Internal => PluginError::Transient(e.message),
            ErrorCode::InvalidConfig => PluginError::Config {
                field: "auth".to_owned(),
                message: e.message,
            },
            _ => PluginError::Other(e.message),
        },
        e @ (CallError::NotAnswering { .. } | CallError::Send { .. }) => {
            PluginError::Transient(format!("cannot get the access token: {e}"))
        }
        e @ CallError::BadReply { .. } => {
            PluginError::Other(format!("cannot get the access token: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_proto::requests::ApiError;

    fn api(code: ErrorCode, message: &str) -> PluginError {
        refusal(CallError::Api(ApiError::new(code, message)))
    }

    #[test]
    fn a_reconnect_needed_reads_as_the_plugin_manager_says_it() {
        let message = "reconnect needed: google refused the refresh: invalid_grant; run `tributary plugins connect mail`";
        let err = api(ErrorCode::Conflict, message);
        assert!(matches!(err, PluginError::Other(_)), "{err:?}");
        assert_eq!(err.to_string(), message);
        assert!(!err.is_transient());
    }

    #[test]
    fn a_failing_token_endpoint_is_transient_and_a_missing_client_is_the_auth_configs_fault() {
        let err = api(ErrorCode::Internal, "the token endpoint answered 503");
        assert!(err.is_transient(), "{err:?}");
        let err = api(
            ErrorCode::InvalidConfig,
            "no OAuth client is configured for google",
        );
        assert!(
            matches!(&err, PluginError::Config { field, message } if field == "auth" && message.contains("no OAuth client")),
            "{err:?}"
        );
        let err = api(ErrorCode::NotFound, "no instance `x`");
        assert!(matches!(err, PluginError::Other(_)), "{err:?}");
    }

    #[test]
    fn a_plugin_manager_that_does_not_answer_is_transient() {
        let err = refusal(CallError::NotAnswering {
            service: "plugin manager",
            subject: "plugins.token".to_owned(),
        });
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("access token"), "{err}");
    }
}
