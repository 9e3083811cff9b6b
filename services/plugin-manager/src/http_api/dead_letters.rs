//! `/api/v1/dead-letters`: the dead letters of every stream, listed, shown, replayed after a
//! fix and discarded ([`crate::dead_letters`]).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tributary_kit::http::HttpError;
use tributary_proto::requests::ApiError;

use super::{json_body, Actor, Path, Query};
use crate::dead_letters::{
    BulkOutcome, DeadLetter, DeadLetterError, DeadLetterFilter, DeadLetterPage, DeadLetterQuery,
    Replayed,
};
use crate::manager::PluginManager;

/// A refusal with its status; the stream out of reach as 503.
fn refused(e: DeadLetterError) -> Response {
    match e {
        DeadLetterError::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(ApiError::from(e))).into_response()
        }
        other => HttpError(other.into()).into_response(),
    }
}

/// The dead letters, oldest first: why each could never be processed, where it came from,
/// the start of its payload, and whether it can be replayed.
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "dead-letters", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage),
              (status = 503, description = "the dead-letter stream cannot be reached", body = ApiError)))]
pub(super) async fn list_dead_letters(
    State(m): State<PluginManager>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<DeadLetterPage>, Response> {
    m.dead_letters()
        .list(&query)
        .await
        .map(Json)
        .map_err(refused)
}

/// One dead letter with the whole of its payload.
#[utoipa::path(get, path = "/api/v1/dead-letters/{sequence}", tag = "dead-letters",
    params(("sequence" = u64, Path, description = "Its sequence in DEAD_LETTERS")),
    responses((status = 200, body = DeadLetter),
              (status = 404, description = "no such dead letter", body = ApiError),
              (status = 503, description = "the dead-letter stream cannot be reached", body = ApiError)))]
pub(super) async fn get_dead_letter(
    State(m): State<PluginManager>,
    Path(sequence): Path<u64>,
) -> Result<Json<DeadLetter>, Response> {
    m.dead_letters()
        .get(sequence)
        .await
        .map(Json)
        .map_err(refused)
}

/// Discard a dead letter: it is deleted, not replayed.
#[utoipa::path(delete, path = "/api/v1/dead-letters/{sequence}", tag = "dead-letters",
    params(("sequence" = u64, Path, description = "Its sequence in DEAD_LETTERS")),
    responses((status = 204, description = "discarded"),
              (status = 404, description = "no such dead letter", body = ApiError),
              (status = 503, description = "the dead-letter stream cannot be reached", body = ApiError)))]
pub(super) async fn discard_dead_letter(
    State(m): State<PluginManager>,
    State(actor): State<Actor>,
    Path(sequence): Path<u64>,
) -> Result<StatusCode, Response> {
    m.dead_letters()
        .discard(sequence, actor.0.name())
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replay a dead letter after its cause is fixed: its payload is published again on its
/// original subject (stored once, whatever happens twice) and the dead letter deleted. Its
/// consumer handles it as any other message, and dead-letters it again if it still fails.
#[utoipa::path(post, path = "/api/v1/dead-letters/{sequence}/replay", tag = "dead-letters",
    params(("sequence" = u64, Path, description = "Its sequence in DEAD_LETTERS")),
    responses((status = 200, body = Replayed),
              (status = 404, description = "no such dead letter", body = ApiError),
              (status = 409, description = "it cannot be replayed (a search indexer's, or one kept without its payload); the message says why", body = ApiError),
              (status = 503, description = "the dead-letter stream cannot be reached", body = ApiError)))]
pub(super) async fn replay_dead_letter(
    State(m): State<PluginManager>,
    State(actor): State<Actor>,
    Path(sequence): Path<u64>,
) -> Result<Json<Replayed>, Response> {
    let replayed = m
        .dead_letters()
        .replay(sequence, actor.0.name())
        .await
        .map_err(refused)?;
    Ok(Json(replayed))
}

/// Replay every replayable dead letter (of one consumer, when `consumer` is given), oldest
/// first; those that cannot be are left, each with why.
#[utoipa::path(post, path = "/api/v1/dead-letters/replay", tag = "dead-letters", request_body = DeadLetterFilter,
    responses((status = 200, body = BulkOutcome),
              (status = 503, description = "the dead-letter stream cannot be reached", body = ApiError)))]
pub(super) async fn replay_all_dead_letters(
    State(m): State<PluginManager>,
    State(actor): State<Actor>,
    body: Result<Json<DeadLetterFilter>, JsonRejection>,
) -> Result<Json<BulkOutcome>, Response> {
    let filter = json_body(body).map_err(IntoResponse::into_response)?;
    let outcome = m
        .dead_letters()
        .replay_all(&filter, actor.0.name())
        .await
        .map_err(refused)?;
    Ok(Json(outcome))
}

/// Discard every dead letter (of one consumer, when `consumer` is given).
#[utoipa::path(post, path = "/api/v1/dead-letters/discard", tag = "dead-letters", request_body = DeadLetterFilter,
    responses((status = 200, body = BulkOutcome),
              (status = 503, description = "the dead-letter stream cannot be reached", body = ApiError)))]
pub(super) async fn discard_all_dead_letters(
    State(m): State<PluginManager>,
    State(actor): State<Actor>,
    body: Result<Json<DeadLetterFilter>, JsonRejection>,
) -> Result<Json<BulkOutcome>, Response> {
    let filter = json_body(body).map_err(IntoResponse::into_response)?;
    let outcome = m
        .dead_letters()
        .discard_all(&filter, actor.0.name())
        .await
        .map_err(refused)?;
    Ok(Json(outcome))
}
