//! The console's pages and the actions their forms post. Each action is the admin API's own
//! call: the same [`PluginManager`](crate::PluginManager) method or [`Mesh`](crate::mesh::Mesh)
//! request its route makes, under the console's actor; its outcome is shown on the next page
//! (post, redirect, get).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use tributary_proto::events::SyncMode;
use tributary_proto::requests::connector::SyncStatus;
use tributary_proto::requests::plugins::InstanceFilter;
use tributary_proto::requests::{ApiError, ConfigProblem};
use tributary_proto::timeline::TimelineQuery;

use super::auth::SignedIn;
use super::config_form;
use super::ConsoleState;
use crate::mesh::SyncRequest;

/// The session key of the message shown once on the next page.
const FLASH: &str = "flash";

/// An action's outcome, shown once on the page it leads to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// Whether it worked.
    ok: bool,
    /// What happened.
    message: String,
    /// Each problem, for a refused configuration.
    #[serde(default)]
    problems: Vec<ConfigProblem>,
}

impl Flash {
    /// An action that worked, saying what it did.
    pub(crate) fn done(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// An action refused, saying why.
    pub(crate) fn refused(e: ApiError) -> Self {
        Self {
            ok: false,
            message: e.message,
            problems: e.problems,
        }
    }
}

impl SignedIn {
    /// Takes the message left for this page, if any.
    pub(crate) async fn take_flash(&self) -> Option<Flash> {
        self.session.remove::<Flash>(FLASH).await.ok().flatten()
    }

    /// Leaves `flash` for the next page and goes there.
    pub(crate) async fn then(&self, flash: Flash, to: &str) -> Response {
        if let Err(e) = self.session.insert(FLASH, flash).await {
            tracing::warn!(error = %e, "A console message could not be kept for the next page.");
        }
        Redirect::to(to).into_response()
    }
}

/// The link to an instance's page.
pub(crate) fn instance_path(instance_id: &str) -> String {
    format!(
        "/instances/{}",
        url::form_urlencoded::byte_serialize(instance_id.as_bytes()).collect::<String>()
    )
}

/// The not-found page, saying what was not found.
pub(crate) fn not_found(state: &ConsoleState, message: String) -> Response {
    let page = state.render(
        "message.html",
        context! { title => "Not found", message => message },
    );
    (StatusCode::NOT_FOUND, page).into_response()
}

/// `GET /`: every service's readiness, instances by state, syncs running now, dead letters
/// waiting.
pub(crate) async fn overview(State(state): State<ConsoleState>, signed_in: SignedIn) -> Response {
    let every = InstanceFilter::default();
    let dead_letters = state.manager.dead_letters();
    let (services, instances, syncs, waiting) = tokio::join!(
        state.mesh.readiness(),
        state.manager.instances(&every),
        state.mesh.sync_states(),
        dead_letters.count(None),
    );
    let (dead_letters, dead_letters_error) = match waiting {
        Ok(n) => (Some(n), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (instances, instances_error) = match instances {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(ApiError::from(e).message)),
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for instance in &instances {
        *counts.entry(instance.state.clone()).or_default() += 1;
    }
    let (syncs, syncs_error) = match syncs {
        Ok(states) => (states, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let running: Vec<_> = syncs
        .iter()
        .filter(|s| s.status == SyncStatus::Running)
        .collect();
    let sync_of: BTreeMap<&str, &str> = syncs
        .iter()
        .map(|s| (s.instance_id.as_str(), s.status.as_str()))
        .collect();
    let rows: Vec<_> = instances
        .iter()
        .map(|i| {
            context! {
                id => i.id, plugin_id => i.plugin_id, plugin_type => i.plugin_type,
                state => i.state, sync => sync_of.get(i.id.as_str()).copied(),
                href => instance_path(&i.id),
            }
        })
        .collect();
    let all_ready = services.iter().all(|s| s.ready);
    state.render(
        "overview.html",
        context! {
            title => "Overview", nav => "overview", csrf => signed_in.csrf,
            flash => signed_in.take_flash().await,
            services => services, all_ready => all_ready,
            counts => counts, total => instances.len(), instances => rows,
            instances_error => instances_error,
            running => running, syncs_error => syncs_error,
            dead_letters => dead_letters, dead_letters_error => dead_letters_error,
        },
    )
}

/// `GET /plugins`: the catalog, built-in and added, the plugins found invalid, and the form
/// adding one from an archive.
pub(crate) async fn plugins(State(state): State<ConsoleState>, signed_in: SignedIn) -> Response {
    let flash = signed_in.take_flash().await;
    plugins_page(&state, &signed_in.csrf, flash)
}

/// The Plugins page with its forms' CSRF token `csrf`, showing `flash`.
pub(crate) fn plugins_page(state: &ConsoleState, csrf: &str, flash: Option<Flash>) -> Response {
    let list = state.manager.plugins();
    let plugins: Vec<_> = list
        .plugins
        .iter()
        .map(|p| {
            context! {
                id => p.id, name => p.name, version => p.version, plugin_type => p.plugin_type,
                description => p.description, permissions => p.permissions,
                builtin => p.location == "builtin", location => p.location,
                install => super::lifecycle::install_path(&p.id),
                row => super::add_plugin::row_id(&p.id, &p.version),
            }
        })
        .collect();
    state.render(
        "plugins.html",
        context! {
            title => "Plugins", nav => "plugins", csrf => csrf, flash => flash,
            plugins => plugins, invalid => list.invalid,
            add_action => super::add_plugin::ADD_PATH,
            max_archive_mib => crate::http_api::MAX_ARCHIVE_BYTES / (1024 * 1024),
        },
    )
}

/// `GET /instances/{id}`: its status, its sync, its actions and its configuration form.
pub(crate) async fn instance(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
) -> Response {
    let view = match state.manager.instance(&instance_id).await {
        Ok(view) => view,
        Err(e) => return not_found(&state, ApiError::from(e).message),
    };
    let is_connector = view.plugin_type == "connector";
    let (sync, sync_error) = if is_connector {
        match state.mesh.sync_state(&instance_id).await {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    // A channel's webhook URL, from the channel service; a channel taking no webhooks, or a
    // channel service not answering, shows none.
    let webhook = if view.plugin_type == "channel" {
        match state.mesh.webhook(&instance_id).await {
            Ok(webhook) => Some(webhook),
            Err(e) => {
                tracing::debug!(instance = %instance_id, error = %e, "No webhook URL for the console.");
                None
            }
        }
    } else {
        None
    };
    let newest = state.manager.plugin(&view.plugin_id).ok();
    // What an upgrade would add: the held upgrade's, or what the newest version asks for
    // beyond what this instance was granted.
    let new_permissions: Vec<String> = match (&view.held_upgrade, &view.available_version) {
        (Some(held), _) => held.new_permissions.clone(),
        (None, Some(_)) => newest
            .iter()
            .flat_map(|p| p.permissions.iter())
            .filter(|p| !view.permissions.contains(p))
            .cloned()
            .collect(),
        (None, None) => Vec::new(),
    };
    let schema = newest.map(|p| p.config_schema).unwrap_or_default();
    let fields = config_form::fields(&schema, &view.config, &view.secrets);
    let running = sync
        .as_ref()
        .is_some_and(|s| s.status == SyncStatus::Running);
    let newest = TimelineQuery {
        limit: Some(super::timeline::NEWEST_ON_INSTANCE_PAGE),
        ..TimelineQuery::default()
    };
    let (timeline, timeline_error) = match state.manager.timeline(&instance_id, &newest).await {
        Ok(page) => (Some(page), None),
        Err(e) => (None, Some(ApiError::from(e).message)),
    };
    state.render(
        "instance.html",
        context! {
            title => format!("Instance {}", view.id), nav => "instance", csrf => signed_in.csrf,
            flash => signed_in.take_flash().await,
            path => instance_path(&view.id),
            instance => view, is_connector => is_connector,
            sync => sync, sync_error => sync_error, running => running,
            fields => fields,
            new_permissions => new_permissions,
            webhook_url => webhook.as_ref().and_then(|w| w.webhook_url.clone()),
            webhook_served => webhook.as_ref().is_some_and(|w| w.served),
            modes => SyncMode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            timeline => timeline, timeline_error => timeline_error,
        },
    )
}

/// The sync form's fields.
#[derive(Deserialize)]
pub(crate) struct SyncForm {
    /// `incremental`, `full` or `backfill`.
    #[serde(default)]
    mode: String,
    /// For a backfill: a date (`2026-01-31`).
    #[serde(default)]
    since: String,
}

/// What the sync form asks for, or why it cannot be asked.
fn sync_request(form: &SyncForm) -> Result<SyncRequest, String> {
    let mode = match form.mode.trim() {
        "" => SyncMode::Incremental,
        name => SyncMode::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| {
                format!("`{name}` is not a sync mode (incremental, full or backfill)")
            })?,
    };
    let since = match form.since.trim() {
        "" => None,
        date => Some(
            NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc))
                .ok_or_else(|| format!("`{date}` is not a date (YYYY-MM-DD)"))?,
        ),
    };
    // The connector service refuses `since` for anything but a backfill.
    let since = if mode == SyncMode::Backfill {
        since
    } else {
        None
    };
    Ok(SyncRequest {
        mode: Some(mode),
        since,
    })
}

/// `POST /instances/{id}/sync`: `POST /api/v1/instances/{id}/sync`.
pub(crate) async fn sync(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
    Form(form): Form<SyncForm>,
) -> Response {
    let flash = match sync_request(&form) {
        Err(message) => Flash::refused(ApiError::bad_request(message)),
        Ok(request) => {
            let mode = request.mode.unwrap_or(SyncMode::Incremental);
            match state.mesh.sync(&instance_id, request).await {
                Ok(accepted) => Flash::done(format!(
                    "{} sync {} started{}.",
                    capitalised(mode.as_str()),
                    accepted.sync_id,
                    if accepted.resumed {
                        " (resuming the interrupted one)"
                    } else {
                        ""
                    }
                )),
                Err(e) => Flash::refused(e.into_api_error()),
            }
        }
    };
    signed_in.then(flash, &instance_path(&instance_id)).await
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `POST /instances/{id}/cancel`: `POST /api/v1/instances/{id}/sync/cancel`.
pub(crate) async fn cancel(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
) -> Response {
    let flash = match state.mesh.cancel(&instance_id).await {
        Ok(accepted) => Flash::done(format!("Sync {} asked to stop.", accepted.sync_id)),
        Err(e) => Flash::refused(e.into_api_error()),
    };
    signed_in.then(flash, &instance_path(&instance_id)).await
}

/// `POST /instances/{id}/enable`: `POST /api/v1/instances/{id}/enable`.
pub(crate) async fn enable(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
) -> Response {
    switch(&state, signed_in, &instance_id, true).await
}

/// `POST /instances/{id}/disable`: `POST /api/v1/instances/{id}/disable`.
pub(crate) async fn disable(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
) -> Response {
    switch(&state, signed_in, &instance_id, false).await
}

/// Enables (`on`) or disables an instance, as the admin API's routes do, and shows how it went.
async fn switch(
    state: &ConsoleState,
    signed_in: SignedIn,
    instance_id: &str,
    on: bool,
) -> Response {
    let done = if on {
        state.manager.enable(instance_id, &state.actor).await
    } else {
        state.manager.disable(instance_id, &state.actor).await
    };
    let flash = match done {
        Ok(_) if on => Flash::done("Enabled: its service starts it."),
        Ok(_) => Flash::done("Disabled: its service stops it."),
        Err(e) => Flash::refused(e.into()),
    };
    signed_in.then(flash, &instance_path(instance_id)).await
}

/// `POST /instances/{id}/config`: `PUT /api/v1/instances/{id}/config` with the form's
/// fields as the configuration.
pub(crate) async fn configure(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let flash = async {
        let view = state.manager.instance(&instance_id).await?;
        let schema = state.manager.plugin(&view.plugin_id)?.config_schema;
        Ok::<_, crate::RegistryError>((view, schema))
    };
    let flash = match flash.await {
        Err(e) => Flash::refused(e.into()),
        Ok((view, schema)) => match config_form::config_from_form(&schema, &view.config, &form) {
            Err(problems) => Flash {
                ok: false,
                message: "The configuration was not saved: some fields do not parse.".into(),
                problems,
            },
            Ok(config) => match state
                .manager
                .configure(&instance_id, config, &state.actor)
                .await
            {
                Ok(_) => Flash::done("Configuration saved."),
                Err(e) => Flash::refused(e.into()),
            },
        },
    };
    signed_in.then(flash, &instance_path(&instance_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_form_asks_for_a_mode_and_a_backfill_date() {
        let ask = |mode: &str, since: &str| {
            sync_request(&SyncForm {
                mode: mode.into(),
                since: since.into(),
            })
        };
        assert_eq!(
            ask("", "").ok().and_then(|r| r.mode),
            Some(SyncMode::Incremental)
        );
        let backfill = ask("backfill", "2026-01-31").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            backfill.since.map(|d| d.to_rfc3339()).as_deref(),
            Some("2026-01-31T00:00:00+00:00")
        );
        assert_eq!(ask("full", "2026-01-31").ok().and_then(|r| r.since), None);
        assert!(ask("sideways", "").is_err_and(|e| e.contains("sideways")));
        assert!(ask("backfill", "31/01/2026").is_err_and(|e| e.contains("YYYY-MM-DD")));
    }
}
