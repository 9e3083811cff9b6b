//! OAuth 2.0 (issue 23) against local servers answering as Microsoft, Google, GitHub and Slack
//! document their authorization and token endpoints ([`tributary_kit::testing::oauth`]): the
//! consent flow driven by a test user agent, the callback's refusals, refresh ahead of expiry
//! and on a 401, rotation, `needs_reconnect`, one refresh across processes, transient
//! failures, and no token, refresh token or client secret anywhere it should not be.

mod broker;
mod consent;
mod durability;

use std::time::Duration;

use serde_json::{json, Value};
use tributary_kit::testing::oauth::{Provider, ProviderServer, ServerSettings};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_kit::Config;
use tributary_proto::requests::plugins::{
    AccessToken, AccessTokenQuery, AttemptStatus, Call, ConnectAttempt, ConnectStatusQuery,
    EnableRequest, InstallRequest, InstanceCall, InstanceInfo, InstanceView,
};
use tributary_proto::requests::ApiError;

use crate::support::*;

/// The test plugin that connects to an account.
pub const MAIL: &str = "com.example.mail";

/// Its permissions.
pub const MAIL_PERMISSIONS: [&str; 2] = [
    "network:outbound:*.example.com",
    "network:outbound:${apiBaseUrl}",
];

/// The mail plugin's manifest with `auth` as its auth section.
pub fn mail_manifest(auth: Value) -> String {
    json!({
        "id": MAIL,
        "name": "Example Mail",
        "version": "1.0.0",
        "type": "connector",
        "entrypoint": "builtin:example",
        "permissions": MAIL_PERMISSIONS,
        "auth": auth,
        "configSchema": {
            "type": "object",
            "properties": {
                "folder": { "type": "string" },
                "apiBaseUrl": { "type": "string" }
            },
            "additionalProperties": false
        }
    })
    .to_string()
}

/// The auth section asking `provider` for `scopes` with the authorization code grant.
pub fn code_grant(provider: Provider, scopes: &[&str]) -> Value {
    json!({ "grant": "authorization_code", "provider": provider.name(), "scopes": scopes })
}

/// A plugin manager with the mail plugin, a local provider configured as the deployment's,
/// and an instance `mail` installed.
pub struct OAuthEnv {
    /// The test's environment.
    pub env: TestEnv,
    /// The plugin directory (kept alive).
    pub _dir: PluginDir,
    /// The provider.
    pub provider: ProviderServer,
    /// The plugin manager.
    pub pm: RunningService,
    /// The test user agent: follows no redirect by itself.
    pub browser: reqwest::Client,
}

impl OAuthEnv {
    /// Starts `provider` with `settings`, and a plugin manager whose mail plugin declares
    /// `auth`; `tweak` may change the configuration first.
    pub async fn start(
        provider: Provider,
        settings: ServerSettings,
        auth: Value,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let server = ProviderServer::start_with(provider, settings)
            .await
            .unwrap();
        let mut env = TestEnv::new().await;
        let dir = PluginDir::new();
        dir.write("mail", &mail_manifest(auth));
        env.config.plugin_manager.plugin_dirs = vec![dir.0.clone()];
        server.configure(&mut env.config);
        tweak(&mut env.config);
        let pm = RunningPm::start(env.config.clone()).await;
        let this = Self {
            env,
            _dir: dir,
            provider: server,
            pm,
            browser: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        this.install("mail").await;
        this
    }

    /// [`OAuthEnv::start`] with Microsoft, as its API documents it, and the mail plugin
    /// asking for `scopes` with the authorization code grant.
    pub async fn microsoft(scopes: &[&str]) -> Self {
        Self::start(
            Provider::Microsoft,
            ServerSettings::of(Provider::Microsoft),
            code_grant(Provider::Microsoft, scopes),
            |_| {},
        )
        .await
    }

    /// Installs an instance of the mail plugin.
    pub async fn install(&self, instance: &str) -> InstanceView {
        ask::<Call<InstallRequest>, _>(
            &self.env,
            json!({ "plugin_id": MAIL, "instance_id": instance, "config": {},
                    "accept_permissions": MAIL_PERMISSIONS, "actor": "test" }),
        )
        .await
        .unwrap_or_else(|e| panic!("install {instance}: {e:?}"))
    }

    /// `plugins.connect`.
    pub async fn connect(&self, instance: &str) -> Result<ConnectAttempt, ApiError> {
        ask::<InstanceCall<tributary_proto::requests::plugins::ConnectRequest>, _>(
            &self.env,
            json!({ "instance_id": instance, "actor": "cli:ada" }),
        )
        .await
    }

    /// `plugins.connect_status`.
    pub async fn status(&self, attempt: &ConnectAttempt) -> ConnectAttempt {
        ask::<ConnectStatusQuery, _>(&self.env, json!({ "attempt_id": attempt.attempt_id }))
            .await
            .unwrap()
    }

    /// The person opens the consent URL and answers: the callback URL the provider redirects
    /// the browser back to, not followed yet.
    pub async fn answered(&self, attempt: &ConnectAttempt) -> String {
        let url = attempt.consent_url.as_deref().expect("a consent URL");
        let at_provider = self.browser.get(url).send().await.unwrap();
        assert!(
            at_provider.status().is_redirection(),
            "the provider redirects back: {} {}",
            at_provider.status(),
            at_provider.text().await.unwrap_or_default()
        );
        at_provider
            .headers()
            .get(reqwest::header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The person opens the consent URL: the provider answers with its redirect, which the
    /// browser follows to the hub's callback. Answers the callback's status and page, and the
    /// callback URL (to replay).
    pub async fn consent(&self, attempt: &ConnectAttempt) -> (u16, String, String) {
        let back = self.answered(attempt).await;
        let (status, page) = self.open(&back).await;
        (status, page, back)
    }

    /// A GET of `url` by the browser: status and body.
    pub async fn open(&self, url: &str) -> (u16, String) {
        let response = self.browser.get(url).send().await.unwrap();
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    /// Connects `instance` through the whole flow; answers the ended attempt.
    pub async fn connected(&self, instance: &str) -> ConnectAttempt {
        let attempt = self.connect(instance).await.unwrap();
        assert_eq!(attempt.status, AttemptStatus::Pending, "{attempt:?}");
        let (status, page, _) = self.consent(&attempt).await;
        assert_eq!(status, 200, "{page}");
        let ended = self.status(&attempt).await;
        assert_eq!(ended.status, AttemptStatus::Connected, "{ended:?}\n{page}");
        ended
    }

    /// `plugins.token`.
    pub async fn token(
        &self,
        instance: &str,
        rejected: Option<&str>,
    ) -> Result<AccessToken, ApiError> {
        ask::<AccessTokenQuery, _>(
            &self.env,
            json!({ "instance_id": instance, "rejected": rejected }),
        )
        .await
    }

    /// The instance as the APIs show it.
    pub async fn view(&self, instance: &str) -> InstanceView {
        ask::<InstanceInfo, _>(&self.env, json!({ "instance_id": instance }))
            .await
            .unwrap()
    }

    /// The instance's auth state once it records a refresh (the provider counts a refresh
    /// before the plugin manager commits what it answered).
    pub async fn refreshed(&self, instance: &str) -> tributary_proto::requests::plugins::AuthView {
        for _ in 0..50 {
            let auth = self.view(instance).await.auth.unwrap();
            if auth.last_refresh_at.is_some() {
                return auth;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{instance} records a refresh within 5 s");
    }

    /// `plugins.enable`.
    pub async fn enable(&self, instance: &str) -> Result<InstanceView, ApiError> {
        ask::<InstanceCall<EnableRequest>, _>(&self.env, json!({ "instance_id": instance })).await
    }

    /// The instance's audit actions, in order.
    pub async fn actions(&self, instance: &str) -> Vec<String> {
        audit_of(&self.env, instance).await.1
    }

    /// Waits up to `secs` for `done`.
    pub async fn until(&self, secs: u64, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} within {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
