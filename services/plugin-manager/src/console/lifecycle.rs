//! The console's lifecycle pages: install an instance of a plugin with its permissions shown
//! for consent and its configuration as a form, upgrade one with the permissions it would add
//! highlighted, uninstall one (keeping or purging its data) once confirmed, and connect one to
//! its account (OAuth 2.0). Each action is the admin API's own call on the
//! [`PluginManager`](crate::PluginManager), under the console's actor.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use minijinja::context;
use serde_json::{json, Value};
use tributary_proto::requests::plugins::{AttemptStatus, InstallRequest, PluginView};
use tributary_proto::requests::ApiError;

use super::auth::SignedIn;
use super::config_form;
use super::pages::{instance_path, not_found, Flash};
use super::ConsoleState;

/// The form field each accepted permission is posted in (once per permission).
const ACCEPT: &str = "accept";
/// The install form's instance id field.
const INSTANCE_ID: &str = "instance_id";
/// The install form's "enable it once installed" box.
const ENABLE: &str = "enable";
/// The uninstall form's choice: `keep` or `purge`.
const DATA: &str = "data";
/// The uninstall form's confirmation box.
const CONFIRM: &str = "confirm";

/// The session key of a connect attempt's consent URL. Only the connect's answer carries it
/// (it holds the attempt's `state`), so the console keeps it in the signed-in session, held
/// server-side, for the attempt's page.
fn consent_key(attempt_id: uuid::Uuid) -> String {
    format!("consent:{attempt_id}")
}

/// The link to a plugin's install page.
pub(crate) fn install_path(plugin_id: &str) -> String {
    format!("/plugins/{}/install", encoded(plugin_id))
}

fn encoded(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Every value of `name` in a submitted form.
fn all_of<'a>(form: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    form.iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The first value of `name` in a submitted form, trimmed; empty when absent.
fn one_of<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

/// What the install page shows of what was posted, when an install was refused.
#[derive(Default)]
struct Posted {
    instance_id: String,
    config: Value,
    accepted: Vec<String>,
    enable: bool,
}

/// Renders the install page of `plugin` with `posted` filled back in and `flash` shown.
fn install_form(
    state: &ConsoleState,
    signed_in: &SignedIn,
    plugin: &PluginView,
    posted: &Posted,
    flash: Option<Flash>,
) -> Response {
    let fields = config_form::fields(&plugin.config_schema, &posted.config, &BTreeMap::new());
    let permissions: Vec<_> = plugin
        .permissions
        .iter()
        .enumerate()
        .map(|(n, p)| {
            context! {
                name => p, input => format!("accept-{n}"),
                accepted => posted.accepted.iter().any(|a| a == p),
            }
        })
        .collect();
    state.render(
        "install.html",
        context! {
            title => format!("Install {}", plugin.name), nav => "plugins", csrf => signed_in.csrf,
            flash => flash,
            action => install_path(&plugin.id),
            plugin => plugin, permissions => permissions, fields => fields,
            instance_id => posted.instance_id, enable => posted.enable,
        },
    )
}

/// `GET /plugins/{plugin_id}/install`: the permissions its newest version asks for, each to
/// be accepted, an instance id and its configuration form.
pub(crate) async fn install_page(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(plugin_id): Path<String>,
) -> Response {
    let plugin = match state.manager.plugin(&plugin_id) {
        Ok(plugin) => plugin,
        Err(e) => return not_found(&state, ApiError::from(e).message),
    };
    let posted = Posted {
        config: json!({}),
        enable: true,
        ..Posted::default()
    };
    let flash = signed_in.take_flash().await;
    install_form(&state, &signed_in, &plugin, &posted, flash)
}

/// `POST /plugins/{plugin_id}/install`: `POST /api/v1/instances` with the permissions ticked
/// as `accept_permissions`, then, when asked, `POST /api/v1/instances/{id}/enable`. A refusal
/// shows the form again, filled in as posted (but for secrets), with every problem.
pub(crate) async fn install(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(plugin_id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let plugin = match state.manager.plugin(&plugin_id) {
        Ok(plugin) => plugin,
        Err(e) => return not_found(&state, ApiError::from(e).message),
    };
    let mut posted = Posted {
        instance_id: one_of(&form, INSTANCE_ID).to_owned(),
        config: json!({}),
        accepted: all_of(&form, ACCEPT).map(str::to_owned).collect(),
        enable: one_of(&form, ENABLE) == "true",
    };
    let refused = |posted: &Posted, flash: Flash| {
        let page = install_form(&state, &signed_in, &plugin, posted, Some(flash));
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let config = match config_form::config_from_form(&plugin.config_schema, &json!({}), &form) {
        Ok(config) => config,
        Err(problems) => {
            let flash = Flash::refused(ApiError {
                problems,
                ..ApiError::bad_request("Not installed: some fields do not parse.")
            });
            return refused(&posted, flash);
        }
    };
    posted.config = config.clone();
    let request = InstallRequest {
        plugin_id: plugin.id.clone(),
        instance_id: (!posted.instance_id.is_empty()).then(|| posted.instance_id.clone()),
        config: Some(config),
        accept_permissions: posted.accepted.clone(),
    };
    let installed = match state.manager.install(request, &state.actor).await {
        Ok(view) => view,
        Err(e) => return refused(&posted, Flash::refused(e.into())),
    };
    let flash = if !posted.enable {
        Flash::done(format!(
            "Installed {}; enable it when it is ready.",
            installed.id
        ))
    } else {
        match state.manager.enable(&installed.id, &state.actor).await {
            Ok(_) => Flash::done(format!(
                "Installed and enabled {}: its service starts it.",
                installed.id
            )),
            Err(e) => {
                let e = ApiError::from(e);
                Flash::refused(ApiError {
                    message: format!("Installed {}, but not enabled: {}", installed.id, e.message),
                    ..e
                })
            }
        }
    };
    signed_in.then(flash, &instance_path(&installed.id)).await
}

/// `POST /instances/{id}/upgrade`: `POST /api/v1/instances/{id}/upgrade` with the new
/// permissions ticked as `accept_permissions`.
pub(crate) async fn upgrade(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let accepted: Vec<String> = all_of(&form, ACCEPT).map(str::to_owned).collect();
    let flash = match state
        .manager
        .upgrade(&instance_id, &accepted, &state.actor)
        .await
    {
        Ok(view) => Flash::done(format!("Upgraded to {}.", view.version)),
        Err(e) => Flash::refused(e.into()),
    };
    signed_in.then(flash, &instance_path(&instance_id)).await
}

/// `POST /instances/{id}/uninstall`: `DELETE /api/v1/instances/{id}` (`?purge=true` when
/// purging), only once its confirmation box is ticked.
pub(crate) async fn uninstall(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let here = instance_path(&instance_id);
    let purge = match one_of(&form, DATA) {
        "keep" => false,
        "purge" => true,
        other => {
            let message = format!(
                "Not uninstalled: `{other}` is neither keep nor purge; choose what becomes of its data."
            );
            return signed_in
                .then(Flash::refused(ApiError::bad_request(message)), &here)
                .await;
        }
    };
    if one_of(&form, CONFIRM) != "yes" {
        let message = "Not uninstalled: tick the box that confirms it first.";
        return signed_in
            .then(Flash::refused(ApiError::bad_request(message)), &here)
            .await;
    }
    match state
        .manager
        .uninstall(&instance_id, purge, &state.actor)
        .await
    {
        Ok(outcome) if outcome.purged => {
            let message = format!(
                "Uninstalled {} and purged its configuration, credentials and data ({} items sent to be deleted).",
                outcome.instance_id, outcome.items_deleted
            );
            signed_in.then(Flash::done(message), "/").await
        }
        Ok(outcome) => {
            let message = format!("Uninstalled {}; its data is kept.", outcome.instance_id);
            signed_in.then(Flash::done(message), "/").await
        }
        Err(e) => signed_in.then(Flash::refused(e.into()), &here).await,
    }
}

/// `POST /instances/{id}/connect`: `POST /api/v1/instances/{id}/connect`. Leads to the
/// attempt's page, which links to the provider's consent page and shows the outcome as it
/// comes.
pub(crate) async fn connect(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
) -> Response {
    match state.manager.connect(&instance_id, &state.actor).await {
        Ok(attempt) => {
            let to = format!("/connect/{}", attempt.attempt_id);
            if let Some(url) = &attempt.consent_url {
                let kept = signed_in
                    .session
                    .insert(&consent_key(attempt.attempt_id), url)
                    .await;
                if let Err(e) = kept {
                    tracing::warn!(error = %e, "A consent URL could not be kept for its page.");
                }
            }
            let flash = match attempt.status {
                AttemptStatus::Pending => {
                    Flash::done("Open the provider's page to consent; this page follows it.")
                }
                _ => Flash::done("Asked the provider."),
            };
            signed_in.then(flash, &to).await
        }
        Err(e) => {
            signed_in
                .then(Flash::refused(e.into()), &instance_path(&instance_id))
                .await
        }
    }
}

/// `GET /connect/{attempt_id}`: `GET /api/v1/connect/{attempt_id}`: the consent link while
/// pending, then connected (with the scopes granted), failed (with the provider's reason) or
/// expired.
pub(crate) async fn connect_attempt(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(attempt_id): Path<String>,
) -> Response {
    let Ok(attempt_id) = attempt_id.parse::<uuid::Uuid>() else {
        return not_found(&state, format!("{attempt_id} is not a connect attempt"));
    };
    let attempt = match state.manager.connect_status(attempt_id).await {
        Ok(attempt) => attempt,
        Err(e) => return not_found(&state, ApiError::from(e).message),
    };
    let pending = attempt.status == AttemptStatus::Pending;
    let key = consent_key(attempt_id);
    let consent_url: Option<String> = if pending {
        signed_in.session.get(&key).await.ok().flatten()
    } else {
        // Spent: forget it.
        signed_in
            .session
            .remove::<String>(&key)
            .await
            .ok()
            .flatten();
        None
    };
    state.render(
        "connect.html",
        context! {
            title => format!("Connect {}", attempt.instance_id), nav => "instance", csrf => signed_in.csrf,
            flash => signed_in.take_flash().await,
            instance_path => instance_path(&attempt.instance_id),
            status => attempt.status, pending => pending, consent_url => consent_url,
            attempt => attempt,
        },
    )
}
