//! `GET /oauth/callback`: where providers send the person back after consent. It needs no
//! bearer token (a browser arrives here), only a `state` this hub issued, once, in time; it
//! answers with a short page saying what happened (the CLI that started the connect hears it
//! through `plugins.connect_status`). A refused state is a 400 and changes nothing.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tributary_kit::config::OAUTH_CALLBACK_PATH;
use tributary_proto::requests::plugins::AttemptStatus;

use super::consent::{CallbackOutcome, CallbackQuery};
use crate::manager::PluginManager;

/// The callback route, for the plugin manager's HTTP server.
pub fn router(manager: PluginManager) -> Router {
    Router::new()
        .route(OAUTH_CALLBACK_PATH, get(callback))
        .with_state(manager)
}

async fn callback(
    State(manager): State<PluginManager>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "The address is not one a provider sends back: its query string does not parse.",
        );
    };
    match manager.oauth_callback(query).await {
        Ok(CallbackOutcome::Refused(why)) => page(StatusCode::BAD_REQUEST, "Not connected", &why),
        Ok(CallbackOutcome::Ended(attempt)) => match attempt.status {
            AttemptStatus::Connected => {
                let who = attempt
                    .connected_as
                    .map(|who| format!(" as {who}"))
                    .unwrap_or_default();
                let scopes = if attempt.scopes.is_empty() {
                    String::new()
                } else {
                    format!(" Scopes granted: {}.", attempt.scopes.join(", "))
                };
                page(
                    StatusCode::OK,
                    "Connected",
                    &format!(
                        "{} is connected to {}{who}.{scopes} You can close this window.",
                        attempt.instance_id, attempt.provider
                    ),
                )
            }
            _ => {
                let why = attempt
                    .error
                    .map(|e| e.message)
                    .unwrap_or_else(|| "the attempt did not complete".to_owned());
                page(
                    StatusCode::OK,
                    "Not connected",
                    &format!("{} was not connected: {why}", attempt.instance_id),
                )
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "The OAuth callback failed.");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not connected",
                "The hub failed while completing the connection; its plugin manager's log has the cause.",
            )
        }
    }
}

/// A small HTML page, escaped, that no other site may frame and that is never cached.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Tributary</title></head>\
         <body><h1>{title}</h1><p>{}</p></body></html>",
        escape(text)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::escape("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
    }
}
