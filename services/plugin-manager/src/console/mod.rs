//! The admin console: server-rendered HTML pages at `/`, served by the plugin manager next to
//! the admin API, for an operator in a browser.
//!
//! - **Templates** are minijinja (already the declarative connectors' template engine, so no
//!   second one), compiled into the binary with `include_str!` and HTML-escaped by their
//!   `.html` names; the CSS and the small script for live updates are embedded the same way
//!   and served under `/console/assets/`. No Node toolchain builds or runs any of it, and
//!   every page reads without JavaScript.
//! - **Sign-in** is with the admin token ([`auth`]), compared in constant time; a session
//!   (tower-sessions: random ids, kept server-side in PostgreSQL ([`session_store`]),
//!   expiring) follows in an HttpOnly,
//!   SameSite=Strict cookie, Secure when the plugin manager's public URL is https.
//! - **CSRF**: every POST carries a token in a hidden field, checked in constant time before
//!   any handler runs ([`auth::require_csrf`]); the upload form's, in its first field, before
//!   its archive is read ([`add_plugin`]).
//! - **Adding a plugin** from a `.tar.gz` chosen in the browser, checked and added as the
//!   admin API adds one ([`add_plugin`]).
//! - **Lifecycle**: install an instance with its permissions shown for consent, upgrade one
//!   with the permissions it adds highlighted, uninstall one (keep or purge) once confirmed,
//!   connect one to its account ([`lifecycle`]).
//! - **Live progress**: a running sync's counts and rate pushed as server-sent events
//!   ([`live`]).
//! - **The unified model**: search over everything indexed and a person's page, with her
//!   sources and merges and an Unmerge form ([`explore`]).
//! - **Dead letters** of every stream, replayed after a fix or discarded ([`dead_letters`]).
//! - **Timeline** of an instance: syncs, webhooks, sends, log lines and audit entries, newest
//!   first, filtered and paged ([`timeline`]).
//! - **API parity**: every action is the admin API's own call on the same [`PluginManager`]
//!   and [`Mesh`] ([`pages`]); the console adds no action of its own.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};

use crate::actor::Actor;
use crate::manager::PluginManager;
use crate::mesh::Mesh;

pub mod add_plugin;
pub mod auth;
pub mod config_form;
mod dead_letters;
mod explore;
mod lifecycle;
mod live;
mod pages;
pub mod session_store;
mod timeline;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tributary_console";

/// How long a session lasts after sign-in or the last change made through it.
pub const SESSION_IDLE_HOURS: i64 = 2;

/// The stylesheet, served at `/console/assets/console.css`.
const CSS: &str = include_str!("assets/console.css");
/// The live-update script, served at `/console/assets/console.js`.
const JS: &str = include_str!("assets/console.js");

/// Every template, by name; `layout.html` is the frame the others extend.
const TEMPLATES: [(&str, &str); 14] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("plugins.html", include_str!("templates/plugins.html")),
    ("instance.html", include_str!("templates/instance.html")),
    (
        "config_fields.html",
        include_str!("templates/config_fields.html"),
    ),
    ("install.html", include_str!("templates/install.html")),
    ("connect.html", include_str!("templates/connect.html")),
    ("message.html", include_str!("templates/message.html")),
    ("search.html", include_str!("templates/search.html")),
    ("person.html", include_str!("templates/person.html")),
    (
        "dead_letters.html",
        include_str!("templates/dead_letters.html"),
    ),
    ("timeline.html", include_str!("templates/timeline.html")),
    (
        "timeline_lines.html",
        include_str!("templates/timeline_lines.html"),
    ),
];

/// What every console handler shares.
#[derive(Clone)]
pub(crate) struct ConsoleState {
    /// The registry, as the admin API's routes use it.
    pub(crate) manager: PluginManager,
    /// The other services, as the admin API's sync and readiness routes ask them.
    pub(crate) mesh: Mesh,
    /// Who the audit log records for changes made through the console.
    pub(crate) actor: Arc<Actor>,
    /// The admin token, which signs in.
    pub(crate) token: SecretString,
    /// Its fingerprint, kept in a session: a session of another token is not signed in.
    pub(crate) fingerprint: String,
    /// The compiled templates.
    pub(crate) templates: Arc<Environment<'static>>,
    /// Whether cookies are marked Secure (the public URL is https).
    pub(crate) secure: bool,
    /// Cancelled when the plugin manager shuts down: ends the live event streams, so an open
    /// browser tab does not hold the shutdown up.
    pub(crate) stop: CancellationToken,
}

impl ConsoleState {
    /// Renders `template` with `context`; a template that fails is logged and answered 500
    /// without its detail.
    pub(crate) fn render(&self, template: &str, context: minijinja::Value) -> Response {
        match self
            .templates
            .get_template(template)
            .and_then(|t| t.render(context))
        {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template, error = %e, "A console page failed to render.");
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<!doctype html><title>Error</title><p>This page failed to render; the plugin manager's log says why.</p>"),
                )
                    .into_response()
            }
        }
    }
}

/// The audit actor of changes made through the console signed in with `token`:
/// `admin-console:<fingerprint>`, the same fingerprint as the admin API's actor.
pub fn console_actor(token: &SecretString) -> String {
    format!(
        "admin-console:{}",
        crate::http_api::token_fingerprint(token)
    )
}

/// The compiled templates; a template that does not parse fails here (and its test).
pub fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// The console's routes, with its sessions, CSRF check and security headers. `secure` marks
/// its cookies Secure (set it when browsers reach the plugin manager over https); `stop` ends
/// its live event streams.
pub fn router(
    manager: PluginManager,
    mesh: Mesh,
    token: SecretString,
    secure: bool,
    stop: CancellationToken,
) -> Result<Router, minijinja::Error> {
    let state = ConsoleState {
        manager,
        mesh,
        actor: Arc::new(Actor::new(console_actor(&token))),
        fingerprint: crate::http_api::token_fingerprint(&token),
        token,
        templates: Arc::new(templates()?),
        secure,
        stop,
    };
    let store = session_store::PgSessionStore::new(state.manager.pool().clone());
    tokio::spawn(delete_expired_sessions(store.clone(), state.stop.clone()));
    let sessions = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(CookieDuration::hours(
            SESSION_IDLE_HOURS,
        )));
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/plugins", get(pages::plugins))
        .route(
            add_plugin::ADD_PATH,
            post(add_plugin::add).layer(DefaultBodyLimit::max(add_plugin::MAX_FORM_BYTES)),
        )
        .route("/instances/{instance_id}", get(pages::instance))
        .route("/instances/{instance_id}/timeline", get(timeline::page))
        .route("/instances/{instance_id}/sync", post(pages::sync))
        .route("/instances/{instance_id}/cancel", post(pages::cancel))
        .route("/instances/{instance_id}/enable", post(pages::enable))
        .route("/instances/{instance_id}/disable", post(pages::disable))
        .route("/instances/{instance_id}/config", post(pages::configure))
        .route(
            "/plugins/{plugin_id}/install",
            get(lifecycle::install_page).post(lifecycle::install),
        )
        .route("/instances/{instance_id}/upgrade", post(lifecycle::upgrade))
        .route(
            "/instances/{instance_id}/uninstall",
            post(lifecycle::uninstall),
        )
        .route("/instances/{instance_id}/connect", post(lifecycle::connect))
        .route("/connect/{attempt_id}", get(lifecycle::connect_attempt))
        .route("/live/syncs", get(live::syncs))
        .route("/search", get(explore::search))
        .route("/people/{person_id}", get(explore::person))
        .route("/people/{person_id}/unmerge", post(explore::unmerge))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/replay", post(dead_letters::replay_all))
        .route("/dead-letters/discard", post(dead_letters::discard_all))
        .route(
            "/dead-letters/{sequence}/replay",
            post(dead_letters::replay),
        )
        .route(
            "/dead-letters/{sequence}/discard",
            post(dead_letters::discard),
        )
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_csrf,
        ))
        .layer(sessions)
        .with_state(state);
    let assets = Router::new()
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js));
    Ok(pages
        .merge(assets)
        .layer(axum::middleware::map_response(security_headers)))
}

/// How often expired sessions are deleted.
const EXPIRED_SESSIONS_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Deletes the expired sessions every [`EXPIRED_SESSIONS_EVERY`] until `stop`; a failure is
/// logged and tried again next time (an expired session is never loaded meanwhile).
async fn delete_expired_sessions(store: session_store::PgSessionStore, stop: CancellationToken) {
    loop {
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "Expired console sessions could not be deleted.");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EXPIRED_SESSIONS_EVERY) => {}
        }
    }
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}

/// The console's pages load only their own assets, are never framed (no clickjacking of
/// its buttons), send no referrer and are not cached (they show the registry's state).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        assert!(super::templates().is_ok(), "{:?}", super::templates().err());
    }
}
