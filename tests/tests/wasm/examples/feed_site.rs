//! A web site on `127.0.0.1` serving feeds, as `com.example.rss-feed` reads them: each with an
//! `ETag` (and a `Last-Modified` when it has one), answering conditional GETs as RFC 9110 says.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tributary_kit::serve::LocalServer;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::DateTime;

/// One feed the site serves: its body and validators.
#[derive(Clone)]
pub struct Feed {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The XML.
    pub body: String,
    /// Its entity tag, quotes included (`"r-1"`).
    pub etag: String,
    /// Its `Last-Modified` (an HTTP date), if it has one.
    pub last_modified: Option<String>,
}

/// One request the site answered.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRequest {
    /// The path asked for.
    pub path: String,
    /// Its `If-None-Match`.
    pub if_none_match: Option<String>,
    /// Its `If-Modified-Since`.
    pub if_modified_since: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct SiteState {
    /// By path.
    feeds: BTreeMap<String, Feed>,
    requests: Vec<FeedRequest>,
}

/// A web site on `127.0.0.1` serving feeds with an `ETag` (and a `Last-Modified` when the feed
/// has one), answering a conditional GET as RFC 9110 says: `If-None-Match` naming the current
/// entity tag (weak comparison), or, without `If-None-Match`, `If-Modified-Since` not before
/// `Last-Modified`, is answered `304 Not Modified` with no body. Any other path is 404. It
/// records every request. Stops when dropped.
pub struct FeedSite {
    addr: SocketAddr,
    state: Arc<Mutex<SiteState>>,
    _server: LocalServer,
}

impl FeedSite {
    /// Serves no feed yet, on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(SiteState::default()));
        let app = Router::new().fallback(serve_feed).with_state(state.clone());
        let server = LocalServer::serve_on(listener, app).unwrap();
        Self {
            addr,
            state,
            _server: server,
        }
    }

    /// The URL of `path` on the site.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `feed` at `path` from now on.
    pub fn publish(&self, path: &str, feed: Feed) {
        self.state
            .lock()
            .unwrap()
            .feeds
            .insert(path.to_owned(), feed);
    }

    /// The requests answered since the last call.
    pub fn take_requests(&self) -> Vec<FeedRequest> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }
}

/// Whether an `If-None-Match` value names `etag`: `*`, or a list holding it (weak comparison:
/// `W/` ignored).
fn none_match_names(value: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    value.trim() == "*" || value.split(',').any(|tag| opaque(tag) == opaque(etag))
}

async fn serve_feed(
    State(state): State<Arc<Mutex<SiteState>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (if_none_match, if_modified_since) =
        (text(header::IF_NONE_MATCH), text(header::IF_MODIFIED_SINCE));
    let mut state = state.lock().unwrap();
    let feed = state.feeds.get(uri.path()).cloned();
    let not_modified = feed.as_ref().is_some_and(|feed| match &if_none_match {
        Some(tags) => none_match_names(tags, &feed.etag),
        None => {
            let date = |v: &str| DateTime::parse_from_rfc2822(v).ok();
            match (
                if_modified_since.as_deref().and_then(date),
                feed.last_modified.as_deref().and_then(date),
            ) {
                (Some(since), Some(modified)) => modified <= since,
                _ => false,
            }
        }
    });
    let response = match feed {
        None => (StatusCode::NOT_FOUND, "no such feed").into_response(),
        Some(feed) if not_modified => {
            (StatusCode::NOT_MODIFIED, [(header::ETAG, feed.etag)]).into_response()
        }
        Some(feed) => {
            let mut response = (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, feed.content_type.to_owned()),
                    (header::ETAG, feed.etag),
                ],
                feed.body,
            )
                .into_response();
            if let Some(modified) = feed.last_modified {
                response
                    .headers_mut()
                    .insert(header::LAST_MODIFIED, modified.parse().unwrap());
            }
            response
        }
    };
    state.requests.push(FeedRequest {
        path: uri.path().to_owned(),
        if_none_match,
        if_modified_since,
        status: response.status().as_u16(),
    });
    response
}
