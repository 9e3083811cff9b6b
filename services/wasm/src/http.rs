//! Standard `wasi:http` requests (what `fetch()` compiles to in a JavaScript guest) sent
//! through the instance's permission-checked client: the same grant check before any
//! connection, redirects checked again, retries honouring `Retry-After`, the instance's rate
//! limit. A refused request is `HTTP request denied` to the guest, and written down so the
//! guest's failure names the missing permission.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use tributary_plugin_sdk::{HttpResponse, Method, PluginError, PluginHttp};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::state::InstanceShared;

/// The largest request or response body that crosses the sandbox, in bytes; a response's
/// body is held to the deployment's `plugins.max_response_bytes` too, when that is less.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The `wasi:http` hooks of one guest.
pub(crate) struct HttpHooks {
    shared: Arc<InstanceShared>,
}

impl HttpHooks {
    pub fn new(shared: Arc<InstanceShared>) -> Self {
        HttpHooks { shared }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        drop(fut);
        let shared = self.shared.clone();
        Box::new(async move {
            let response = send(&shared, request, options).await.map_err(|e| {
                if let PluginError::PermissionDenied(denied) = &e {
                    shared.refused(denied);
                    HttpError::HttpRequestDenied
                } else {
                    if !e.is_transient() {
                        shared.failed(&e.to_string());
                    }
                    HttpError::InternalError(Some(e.to_string()))
                }
            })?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

async fn send(
    shared: &InstanceShared,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, PluginError> {
    let (parts, body) = request.into_parts();
    let body = read_limited(body).await?;
    let http: &PluginHttp = shared.ctx.http();
    let method = Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|e| PluginError::Other(format!("invalid method: {e}")))?;
    let mut builder = http.request(method, &parts.uri.to_string());
    for (name, value) in &parts.headers {
        if name == http::header::HOST {
            continue;
        }
        if let Ok(value) = value.to_str() {
            builder = builder.header(name.as_str(), value);
        }
    }
    if let Some(timeout) = options.and_then(|o| o.first_byte_timeout) {
        builder = builder.timeout(timeout.max(Duration::from_millis(1)));
    }
    if !body.is_empty() {
        builder = builder.body(body);
    }
    let response = builder.fetch().await?;
    to_wasi_response(response).await
}

async fn read_limited(body: WasiBody) -> Result<Bytes, PluginError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    limited
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| {
            PluginError::Other(format!(
                "the request body cannot be read (at most {MAX_BODY_BYTES} bytes): {e}"
            ))
        })
}

async fn to_wasi_response(response: HttpResponse) -> Result<http::Response<WasiBody>, PluginError> {
    let status = response.status().as_u16();
    let mut builder = http::Response::builder().status(status);
    for (name, value) in response.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let body = read_response(response).await?;
    let body = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .body(body)
        .map_err(|e| PluginError::Other(format!("cannot hand the response over: {e}")))
}

/// Reads a response's body, refusing one over [`MAX_BODY_BYTES`] or the deployment's
/// `plugins.max_response_bytes`, whichever is less, with an error naming the limit.
pub(crate) async fn read_response(response: HttpResponse) -> Result<Bytes, PluginError> {
    response.at_most(MAX_BODY_BYTES as u64).bytes().await
}
