//! The answer a plugin is handed: status, headers, and a body read only up to the
//! deployment's limit (`plugins.max_response_bytes`), so that a hostile or broken server
//! cannot make an instance hold gigabytes.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::PluginError;

/// An answer to a [`crate::PluginHttp`] request.
///
/// Its body is read whole by [`HttpResponse::bytes`], [`HttpResponse::text`] or
/// [`HttpResponse::json`], each refusing a body over the client's limit with an error naming
/// the limit (before reading, when `Content-Length` already says so).
#[derive(Debug)]
pub struct HttpResponse {
    inner: reqwest::Response,
    /// The most body bytes read.
    limit: u64,
    /// Method, host and path, for errors.
    what: String,
}

impl HttpResponse {
    pub(crate) fn new(inner: reqwest::Response, limit: u64, what: String) -> Self {
        HttpResponse { inner, limit, what }
    }

    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The headers of the answer.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The URL that answered, after any redirect.
    pub fn url(&self) -> &Url {
        self.inner.url()
    }

    /// The length the answer announces, if it does.
    pub fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// The same answer with its body read up to `bytes` at most, when that is below the
    /// client's limit (a sandbox that holds less).
    pub fn at_most(mut self, bytes: u64) -> Self {
        self.limit = self.limit.min(bytes);
        self
    }

    /// The whole body, at most the client's limit.
    pub async fn bytes(self) -> Result<Bytes, PluginError> {
        let limit = self.limit;
        let what = self.what.clone();
        read_limited(self.inner, limit).await.map_err(|e| match e {
            Limited::Over => over_limit(&what, limit),
            Limited::Read(e) => PluginError::Transient(format!(
                "{what}: the answer could not be read: {}",
                e.without_url()
            )),
        })
    }

    /// The whole body as text (invalid UTF-8 replaced), at most the client's limit.
    pub async fn text(self) -> Result<String, PluginError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The whole body as JSON, at most the client's limit.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, PluginError> {
        let what = self.what.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PluginError::Other(format!("{what}: invalid JSON: {e}")))
    }
}

/// Why a body was not read whole.
pub(crate) enum Limited {
    /// It is longer than the limit.
    Over,
    /// The connection failed.
    Read(reqwest::Error),
}

/// Reads `response`'s body, refusing one over `limit` bytes without reading past it.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Bytes, Limited> {
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(Limited::Over);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Limited::Read)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Limited::Over);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The error of a body over the limit.
pub(crate) fn over_limit(what: &str, limit: u64) -> PluginError {
    PluginError::Other(format!(
        "{what}: the response body is over {limit} bytes, the most a plugin is handed (`plugins.max_response_bytes`)"
    ))
}
