//! The query API: `GET /search` (bearer token) and the NATS requests `search.query`,
//! `search.stats` and `search.reindex`, all answering in the mesh's one reply shape.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use secrecy::SecretString;
use tributary_kit::http::{require_bearer_token, HttpError};
use tributary_kit::{requests, KitError, ServiceRuntime};
use tributary_proto::requests::search::{StartReindex, StatsQuery};
use tributary_proto::requests::{ApiError, ErrorCode};

use crate::backend::{SearchBackend, SearchError};
use crate::query::{InvalidParameter, SearchQuery, SearchResults};
use crate::reindex::{ReindexError, Reindexer};

/// The path of the HTTP search route.
pub const SEARCH_PATH: &str = "/search";

pub use tributary_proto::requests::search::IndexStats;

fn bad_parameter(e: InvalidParameter) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, e.to_string())
}

fn backend_failed(e: SearchError) -> ApiError {
    tracing::warn!(error = %e, "A search failed.");
    ApiError::internal(format!("the search index failed: {e}"))
}

async fn run_query(
    backend: &dyn SearchBackend,
    query: SearchQuery,
) -> Result<SearchResults, ApiError> {
    query.validate().map_err(bad_parameter)?;
    backend.search(&query).await.map_err(backend_failed)
}

/// `GET /search?q=&type=&source=&from=&to=&limit=&offset=`, behind the bearer token.
pub fn router(backend: Arc<dyn SearchBackend>, token: SecretString) -> Router {
    Router::new()
        .route(SEARCH_PATH, get(search_route))
        .with_state(backend)
        .layer(middleware::from_fn_with_state(token, require_bearer_token))
}

async fn search_route(
    State(backend): State<Arc<dyn SearchBackend>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<SearchResults>, HttpError> {
    let query = SearchQuery::from_params(&params).map_err(bad_parameter)?;
    Ok(Json(run_query(backend.as_ref(), query).await?))
}

/// Adds the `search.*` endpoints and answers them until the service stops.
pub async fn serve(
    runtime: &ServiceRuntime,
    backend: Arc<dyn SearchBackend>,
    reindexer: Reindexer,
) -> Result<(), KitError> {
    let searching = backend.clone();
    requests::serve(runtime, move |query: SearchQuery| {
        let backend = searching.clone();
        async move { run_query(backend.as_ref(), query).await }
    })
    .await?;

    let jobs = reindexer.clone();
    requests::serve(runtime, move |_: StatsQuery| {
        let (backend, jobs) = (backend.clone(), jobs.clone());
        async move {
            Ok(IndexStats {
                backend: backend.name().to_owned(),
                documents: backend.document_count().await.map_err(backend_failed)?,
                reindexing: jobs.is_running(),
            })
        }
    })
    .await?;

    requests::serve(runtime, move |_: StartReindex| {
        let jobs = reindexer.clone();
        async move {
            jobs.start().await.map_err(|e| match e {
                ReindexError::Busy | ReindexError::Index(SearchError::Rebuild(_)) => {
                    ApiError::new(ErrorCode::Conflict, e.to_string())
                }
                other => ApiError::internal(other.to_string()),
            })
        }
    })
    .await
}
