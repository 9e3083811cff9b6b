//! `tributary plugins test <DIR> --record`: a case's fixtures recorded from the real servers
//! its manifest grants.
//!
//! Each configuration field a `network:outbound:${field}` permission names is pointed at a
//! local recording proxy, which forwards every request to the field's real URL and keeps the
//! exchange. What is kept is scrubbed: the real URL becomes `${field}` (so the replay leads to
//! the fixture server), the value of every secret field becomes the made-up value the case
//! has for it, and only the response headers a plugin reads are kept (no cookies, no
//! `authorization`, nothing the provider identifies the account by). The case keeps the real
//! URLs of those fields, so that the replay asks for the paths recorded.
//!
//! A declarative spec's `base_url` as written gets a recording proxy of its own, the same
//! way: its real URL becomes `${base_url}` in what is kept.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tributary_kit::serve::LocalServer;

use super::cases::{CaseFile, Fixture, FixtureRequest, FixtureResponse};
use super::fixtures::{substitute, Substitutions};
use super::run::{rebase, CaseOutcome, CaseRunner, Target, BASE_URL_PLACEHOLDER};
use super::KitError;

/// The response headers a recording keeps (and any `x-ratelimit-*`).
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "link",
    "location",
    "etag",
    "last-modified",
    "retry-after",
    "cache-control",
];

/// The request headers not forwarded upstream.
const HOP_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "accept-encoding",
    "transfer-encoding",
];

struct Proxy {
    /// The field's real URL, without a trailing `/`.
    upstream: String,
    /// Where the plugin reaches it in the recording run, without a trailing `/`.
    local: String,
    /// `${field}`.
    placeholder: String,
    /// Each secret's real value and what the recording says instead.
    scrub: Substitutions,
    client: reqwest::Client,
    recorded: Arc<Mutex<Vec<Fixture>>>,
}

/// Records `file`'s fixtures: runs its case with `real` (fields overriding the case's
/// configuration: the real URLs and secrets) against the real servers through recording
/// proxies, stores the scrubbed exchanges as the case's fixtures and saves the file. Answers
/// what the recording run produced.
pub async fn record(
    runner: &CaseRunner,
    file: &mut CaseFile,
    real: &Value,
) -> Result<CaseOutcome, KitError> {
    let mut config = file.case.config.clone();
    if let (Some(config), Some(real)) = (config.as_object_mut(), real.as_object()) {
        for (key, value) in real {
            config.insert(key.clone(), value.clone());
        }
    }
    let scrub: Substitutions = runner
        .secret_fields()
        .iter()
        .filter_map(|field| {
            let secret = config.get(field)?.as_str()?.to_owned();
            let made_up = file
                .case
                .config
                .get(field)
                .and_then(Value::as_str)
                .filter(|made_up| *made_up != secret)
                .map_or_else(|| format!("<{field}>"), str::to_owned);
            (!secret.is_empty()).then_some((secret, made_up))
        })
        .collect();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| KitError::Host(format!("cannot make an HTTP client: {e}")))?;
    let proxy_to = |upstream: &str, placeholder: String| Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        local: String::new(),
        placeholder,
        scrub: scrub.clone(),
        client: client.clone(),
        recorded: recorded.clone(),
    };
    let mut servers = Vec::new();
    let mut real_urls = Vec::new();
    for field in runner.url_fields() {
        let Some(url) = config.get(field).and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        let (server, local) = start_proxy(&url, proxy_to(&url, format!("${{{field}}}"))).await?;
        real_urls.push((field.clone(), url.clone()));
        config[field.as_str()] = Value::String(local);
        servers.push(server);
    }
    let mut base_url = None;
    if let Some(url) = runner.base_url() {
        let (server, local) =
            start_proxy(url, proxy_to(url, BASE_URL_PLACEHOLDER.to_owned())).await?;
        base_url = Some(local);
        servers.push(server);
    }
    let case = file.case.clone();
    let target = Target { config, base_url };
    let outcome = runner.run_against(&file.name, &case, target).await;
    drop(servers);
    let fixtures = recorded.lock().map(|r| r.clone()).unwrap_or_default();
    file.case.fixtures = fixtures;
    // The replay must ask for the paths recorded: the case keeps the real URLs (not secrets:
    // they are what the grants name).
    for (field, url) in &real_urls {
        file.case.config[field.as_str()] = Value::String(url.clone());
    }
    file.save()?;
    outcome
}

/// Starts `proxy` on a free loopback port, in place of `url`: answers the server and the URL
/// that reaches `url` through it (`url`'s path kept).
async fn start_proxy(url: &str, mut proxy: Proxy) -> Result<(LocalServer, String), KitError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| KitError::Host(format!("cannot start a recording proxy: {e}")))?;
    let origin = listener
        .local_addr()
        .map(|addr| format!("http://{addr}"))
        .map_err(|e| KitError::Host(format!("cannot start a recording proxy: {e}")))?;
    let local = rebase(url, &origin);
    proxy.local = local.trim_end_matches('/').to_owned();
    let proxy = Arc::new(proxy);
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let proxy = proxy.clone();
            async move { forward(&proxy, method, uri, headers, body).await }
        },
    );
    let server = LocalServer::serve_on(listener, app)
        .map_err(|e| KitError::Host(format!("cannot start a recording proxy: {e}")))?;
    Ok((server, local))
}

async fn forward(
    proxy: &Proxy,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let local_path = proxy
        .local
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("");
    let upstream_path = path.strip_prefix(local_path).unwrap_or(&path);
    let url = format!("{}{upstream_path}", proxy.upstream);
    let mut request = proxy
        .client
        .request(method.clone(), &url)
        .body(body.to_vec());
    for (name, value) in &headers {
        if !HOP_HEADERS.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let text = format!("the recording proxy could not reach {url}: {e}\n");
            return (StatusCode::BAD_GATEWAY, text).into_response();
        }
    };
    let status = response.status();
    let upstream_headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();

    let to_local: Substitutions = vec![(proxy.upstream.clone(), proxy.local.clone())];
    let mut to_record = proxy.scrub.clone();
    to_record.push((proxy.upstream.clone(), proxy.placeholder.clone()));

    let mut kept = std::collections::BTreeMap::new();
    let mut answer = HeaderMap::new();
    for (name, value) in &upstream_headers {
        let name_text = name.as_str();
        if !(KEPT_HEADERS.contains(&name_text) || name_text.starts_with("x-ratelimit-")) {
            continue;
        }
        let value = value.to_str().unwrap_or_default();
        kept.insert(name_text.to_owned(), substitute(value, &to_record));
        if let Ok(local) = substitute(value, &to_local).parse() {
            answer.append(name.clone(), local);
        }
    }
    let is_json = kept.get("content-type").is_some_and(|t| t.contains("json"));
    let scrubbed = substitute(&text, &to_record);
    let (body, json) = match serde_json::from_str::<Value>(&scrubbed) {
        Ok(json) if is_json => (None, Some(json)),
        _ => ((!scrubbed.is_empty()).then_some(scrubbed), None),
    };
    let fixture = Fixture {
        request: FixtureRequest {
            method: method.to_string(),
            path: substitute(&path, &proxy.scrub),
        },
        response: FixtureResponse {
            status: status.as_u16(),
            headers: kept,
            body,
            json,
        },
    };
    if let Ok(mut recorded) = proxy.recorded.lock() {
        recorded.push(fixture);
    }
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, answer, substitute(&text, &to_local)).into_response()
}
