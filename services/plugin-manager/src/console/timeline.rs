//! The console's timeline of an instance (`/instances/<id>/timeline`): its syncs, webhooks,
//! sends, log lines and audit entries, newest first, filtered by kind and status and paged;
//! the same [`crate::PluginManager::timeline`] call as `GET /api/v1/instances/<id>/timeline`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use tributary_proto::requests::ApiError;
use tributary_proto::timeline::{TimelineKind, TimelineQuery, TimelineStatus};

use super::auth::SignedIn;
use super::pages::{instance_path, not_found};
use super::ConsoleState;
use crate::RegistryError;

/// Lines the instance page shows of its timeline.
pub(crate) const NEWEST_ON_INSTANCE_PAGE: i64 = 10;

/// The filter form's fields, as the browser sends them: empty for "every".
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TimelineForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    before: String,
}

impl TimelineForm {
    /// The query the form asks for, or why it asks for none.
    fn query(&self) -> Result<TimelineQuery, String> {
        let kind = match self.kind.trim() {
            "" => None,
            name => Some(TimelineKind::from_name(name).ok_or_else(|| {
                format!(
                    "`kind` must be one of {}; got {name:?}",
                    names(TimelineKind::ALL.map(TimelineKind::as_str))
                )
            })?),
        };
        let status = match self.status.trim() {
            "" => None,
            name => Some(TimelineStatus::from_name(name).ok_or_else(|| {
                format!(
                    "`status` must be one of {}; got {name:?}",
                    names(TimelineStatus::ALL.map(TimelineStatus::as_str))
                )
            })?),
        };
        let before = Some(self.before.trim().to_owned()).filter(|b| !b.is_empty());
        Ok(TimelineQuery {
            kind,
            status,
            before,
            limit: None,
        })
    }

    /// The page's address with this filter and `before`.
    fn path(&self, instance_id: &str, before: Option<&str>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("kind", self.kind.trim()), ("status", self.status.trim())] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        if let Some(before) = before {
            query.append_pair("before", before);
        }
        let query = query.finish();
        let base = format!("{}/timeline", instance_path(instance_id));
        match query.is_empty() {
            true => base,
            false => format!("{base}?{query}"),
        }
    }
}

fn names<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

/// `GET /instances/<id>/timeline[?kind=&status=&before=]`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(instance_id): Path<String>,
    Query(form): Query<TimelineForm>,
) -> Response {
    let instance = match state.manager.instance(&instance_id).await {
        Ok(view) => view,
        Err(e) => return not_found(&state, ApiError::from(e).message),
    };
    let (page, error, status) = match form.query() {
        Err(message) => (None, Some(message), StatusCode::BAD_REQUEST),
        Ok(query) => match state.manager.timeline(&instance_id, &query).await {
            Ok(page) => (Some(page), None, StatusCode::OK),
            Err(e) => {
                let status = match e {
                    RegistryError::TimelineCursor(_) | RegistryError::TimelineLimit(_) => {
                        StatusCode::BAD_REQUEST
                    }
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                (None, Some(ApiError::from(e).message), status)
            }
        },
    };
    let older = page
        .as_ref()
        .and_then(|p| p.next.as_deref())
        .map(|next| form.path(&instance_id, Some(next)));
    let newest = (!form.before.trim().is_empty()).then(|| form.path(&instance_id, None));
    let rendered = state.render(
        "timeline.html",
        context! {
            title => format!("Timeline of {}", instance.id), nav => "instance",
            csrf => signed_in.csrf, flash => signed_in.take_flash().await,
            instance => instance, path => instance_path(&instance_id),
            page => page, error => error, older => older, newest => newest,
            kinds => TimelineKind::ALL.map(TimelineKind::as_str),
            statuses => TimelineStatus::ALL.map(TimelineStatus::as_str),
            kind => form.kind.trim(), status => form.status.trim(),
        },
    );
    (status, rendered).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_keeps_its_filter_in_the_older_link_and_refuses_unknown_values() {
        let form = TimelineForm {
            kind: "webhook".into(),
            status: "error".into(),
            before: String::new(),
        };
        let query = form.query().unwrap();
        assert_eq!(query.kind, Some(TimelineKind::Webhook));
        assert_eq!(query.status, Some(TimelineStatus::Error));
        assert_eq!(
            form.path("sms 1", Some("17-t3")),
            "/instances/sms+1/timeline?kind=webhook&status=error&before=17-t3"
        );
        assert_eq!(
            TimelineForm::default().path("a", None),
            "/instances/a/timeline"
        );
        let bad = TimelineForm {
            kind: "gossip".into(),
            ..TimelineForm::default()
        };
        assert!(bad
            .query()
            .unwrap_err()
            .contains("`kind` must be one of sync, webhook"));
    }
}
