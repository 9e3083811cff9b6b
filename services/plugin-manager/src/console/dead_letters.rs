//! The console's dead-letters page: what every stream's consumers gave up on, with the
//! reason and the payload, replayed (one or all) after the cause is fixed, or discarded; the
//! same [`crate::dead_letters::DeadLetterBox`] calls as the admin API's `/api/v1/dead-letters`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;
use tributary_proto::requests::ApiError;
use tributary_proto::streams::ConsumerKey;

use super::auth::SignedIn;
use super::pages::Flash;
use super::ConsoleState;
use crate::dead_letters::{DeadLetterError, DeadLetterFilter, DeadLetterQuery};

/// The page's address, for one consumer's dead letters or every one.
fn page_path(consumer: Option<&str>) -> String {
    match consumer.filter(|c| !c.is_empty()) {
        Some(name) => format!("/dead-letters?consumer={}", urlencoding(name)),
        None => "/dead-letters".to_owned(),
    }
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `GET /dead-letters`: a page of dead letters, oldest first, each with its Replay and
/// Discard buttons; Replay all and Discard all for the filter shown.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Query(query): Query<DeadLetterQuery>,
) -> Response {
    let consumers: Vec<&str> = ConsumerKey::ALL.iter().map(|k| k.durable_name()).collect();
    let consumer = query.consumer.clone().unwrap_or_default();
    let (page, error, status) = match state.manager.dead_letters().list(&query).await {
        Ok(page) => (Some(page), None, StatusCode::OK),
        Err(e) => {
            let status = match e {
                DeadLetterError::BadRequest(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (None, Some(e.to_string()), status)
        }
    };
    let next = page.as_ref().and_then(|p| p.next_after).map(|after| {
        let mut path = page_path(Some(&consumer));
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str(&format!("after={after}"));
        path
    });
    let rendered = state.render(
        "dead_letters.html",
        context! {
            title => "Dead letters", nav => "dead-letters", csrf => signed_in.csrf,
            flash => signed_in.take_flash().await,
            consumers => consumers, consumer => consumer,
            page => page, error => error, next => next,
            back => page_path(query.consumer.as_deref()),
        },
    );
    (status, rendered).into_response()
}

/// The consumer filter a bulk form carries, and where to go back to.
#[derive(Deserialize)]
pub(crate) struct BulkForm {
    /// The consumer shown; empty for every one.
    #[serde(default)]
    consumer: String,
    /// Ticked to confirm a discard of all.
    #[serde(default)]
    confirm: Option<String>,
}

impl BulkForm {
    fn filter(&self) -> DeadLetterFilter {
        DeadLetterFilter {
            consumer: Some(self.consumer.trim().to_owned()).filter(|c| !c.is_empty()),
        }
    }
}

fn refused(e: DeadLetterError) -> Flash {
    Flash::refused(ApiError::from(e))
}

/// `POST /dead-letters/{sequence}/replay`: `POST /api/v1/dead-letters/{sequence}/replay`.
pub(crate) async fn replay(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(sequence): Path<u64>,
    Form(form): Form<BulkForm>,
) -> Response {
    let flash = match state
        .manager
        .dead_letters()
        .replay(sequence, state.actor.name())
        .await
    {
        Ok(replayed) => Flash::done(format!(
            "Dead letter {sequence} replayed onto {}{}.",
            replayed.subject,
            if replayed.duplicate {
                " (it was there already: stored once)"
            } else {
                ""
            }
        )),
        Err(e) => refused(e),
    };
    signed_in
        .then(flash, &page_path(Some(&form.consumer)))
        .await
}

/// `POST /dead-letters/{sequence}/discard`: `DELETE /api/v1/dead-letters/{sequence}`.
pub(crate) async fn discard(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(sequence): Path<u64>,
    Form(form): Form<BulkForm>,
) -> Response {
    let flash = match state
        .manager
        .dead_letters()
        .discard(sequence, state.actor.name())
        .await
    {
        Ok(()) => Flash::done(format!("Dead letter {sequence} discarded.")),
        Err(e) => refused(e),
    };
    signed_in
        .then(flash, &page_path(Some(&form.consumer)))
        .await
}

/// `POST /dead-letters/replay`: `POST /api/v1/dead-letters/replay`.
pub(crate) async fn replay_all(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Form(form): Form<BulkForm>,
) -> Response {
    let flash = match state
        .manager
        .dead_letters()
        .replay_all(&form.filter(), state.actor.name())
        .await
    {
        Ok(outcome) => {
            let mut message = format!("{} dead letters replayed.", outcome.done.len());
            for left in &outcome.left {
                message.push_str(&format!(" {} left: {}.", left.sequence, left.reason));
            }
            Flash::done(message)
        }
        Err(e) => refused(e),
    };
    signed_in
        .then(flash, &page_path(Some(&form.consumer)))
        .await
}

/// `POST /dead-letters/discard`: `POST /api/v1/dead-letters/discard`, once confirmed.
pub(crate) async fn discard_all(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Form(form): Form<BulkForm>,
) -> Response {
    if form.confirm.is_none() {
        let flash = Flash::refused(ApiError::new(
            tributary_proto::requests::ErrorCode::BadRequest,
            "Nothing was discarded: tick “I mean it” to discard every dead letter shown.",
        ));
        return signed_in
            .then(flash, &page_path(Some(&form.consumer)))
            .await;
    }
    let flash = match state
        .manager
        .dead_letters()
        .discard_all(&form.filter(), state.actor.name())
        .await
    {
        Ok(outcome) => Flash::done(format!("{} dead letters discarded.", outcome.done.len())),
        Err(e) => refused(e),
    };
    signed_in
        .then(flash, &page_path(Some(&form.consumer)))
        .await
}
