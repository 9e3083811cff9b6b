//! The plugin manager's admin HTTP API as a test calls it: at one address, with the admin
//! token, over the stack's HTTP client. It is cloned into a task that goes on calling while
//! the test kills or restarts the process, so a call the process never answered is an `Err`,
//! not a panic.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// The admin API of one plugin manager process (its address changes with each process: a
/// listener on port 0).
#[derive(Clone)]
pub struct AdminApi {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AdminApi {
    /// The admin API at `base` (`http://127.0.0.1:port`), called with `token`.
    pub fn new(http: reqwest::Client, base: String, token: SecretString) -> Self {
        Self { http, base, token }
    }

    /// `method path` with the admin token; the status and the JSON answer (a string when it
    /// is not JSON), or why no answer came (the process is gone, the connection was reset).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// The permissions `plugin` asks for (`GET /api/v1/plugins/<id>`), which must answer 200.
    pub async fn permissions(&self, plugin: &str) -> Result<Value, reqwest::Error> {
        let (status, info) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/plugins/{plugin}"),
                None,
            )
            .await?;
        assert_eq!(status, 200, "GET plugin {plugin}: {info}");
        Ok(info["permissions"].clone())
    }

    /// `POST /api/v1/instances`: installs `plugin` as `instance` with `config`, accepting
    /// `permissions`; the status (201 installed, 409 when it exists) and the answer.
    pub async fn install(
        &self,
        plugin: &str,
        instance: &str,
        config: Value,
        permissions: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/instances",
            Some(json!({
                "plugin_id": plugin,
                "instance_id": instance,
                "config": config,
                "accept_permissions": permissions,
            })),
        )
        .await
    }
}
