//! The DAV requests this connector makes, through the instance's [`PluginHttp`].

use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::Method;
use tributary_plugin_sdk::{PluginError, PluginHttp};
use url::Url;

use crate::webdav::{parse_multistatus, Multistatus};

/// How deep a `PROPFIND` or `REPORT` reaches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Depth {
    /// The resource itself.
    Zero,
    /// The resource and its members.
    One,
}

impl Depth {
    fn header(self) -> &'static str {
        match self {
            Depth::Zero => "0",
            Depth::One => "1",
        }
    }
}

/// Sends WebDAV requests with the instance's credentials.
#[derive(Clone)]
pub(crate) struct DavClient {
    http: PluginHttp,
    /// The basic-auth user, if the server needs one.
    username: Option<String>,
    /// Never logged; handed to the HTTP client only.
    password: Option<SecretString>,
}

impl std::fmt::Debug for DavClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavClient")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl DavClient {
    /// A client sending through `http`, authenticating as `username` when given.
    pub fn new(http: PluginHttp, username: Option<String>, password: Option<SecretString>) -> Self {
        DavClient {
            http,
            username,
            password,
        }
    }

    /// `PROPFIND` on `url` with `body`.
    pub async fn propfind(
        &self,
        url: &Url,
        depth: Depth,
        body: String,
    ) -> Result<Multistatus, PluginError> {
        self.multistatus("PROPFIND", url, depth, body).await
    }

    /// `REPORT` on `url` with `body`.
    pub async fn report(
        &self,
        url: &Url,
        depth: Depth,
        body: String,
    ) -> Result<Multistatus, PluginError> {
        self.multistatus("REPORT", url, depth, body).await
    }

    async fn multistatus(
        &self,
        method: &'static str,
        url: &Url,
        depth: Depth,
        body: String,
    ) -> Result<Multistatus, PluginError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| PluginError::Other(format!("invalid method {method}: {e}")))?;
        let mut request = self
            .http
            .request(method.clone(), url.as_str())
            .header("Depth", depth.header())
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body);
        let what = format!("{method} {}", url.path());
        if let Some(username) = &self.username {
            // `url` checked the configured URL; an href a server answers with may still name
            // plain http to another host (or the same one), where the password would go in
            // clear.
            if self.password.is_some() && crate::config::in_clear(url) {
                return Err(PluginError::Config {
                    field: "url".to_owned(),
                    message: format!(
                        "{what}: the server sent the sync to http://{}, where the password would travel in clear; it is not sent. Use https:// on the server",
                        url.host_str().unwrap_or_default()
                    ),
                });
            }
            request = request.basic_auth(username, self.password.as_ref());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.explain(&what, url, e))?;
        let base = response.url().clone();
        let status = response.status().as_u16();
        // The SDK names the request and, for a body over the deployment's limit, the limit.
        let text = response.text().await?;
        if status != 207 {
            return Err(PluginError::Http {
                status,
                message: format!(
                    "{what}: expected a 207 Multi-Status answer; is `url` a CardDAV or CalDAV server?"
                ),
            });
        }
        parse_multistatus(base, &text)
            .map_err(|e| PluginError::Other(format!("{what}: unreadable multistatus: {e}")))
    }

    /// Makes an authentication failure say so, naming the fields to check.
    fn explain(&self, what: &str, url: &Url, error: PluginError) -> PluginError {
        match error {
            PluginError::Http { status: 401, .. } => PluginError::Http {
                status: 401,
                message: match &self.username {
                    Some(user) => format!(
                        "{what}: authentication failed: {} refused user `{user}`; check `username` and `password`",
                        url.host_str().unwrap_or_default()
                    ),
                    None => format!(
                        "{what}: authentication failed: {} requires a login; set `username` and `password`",
                        url.host_str().unwrap_or_default()
                    ),
                },
            },
            other => other,
        }
    }
}
