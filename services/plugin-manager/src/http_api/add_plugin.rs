//! `POST /api/v1/plugins`: a third-party plugin added from the `.tar.gz` in the request body
//! ([`PluginManager::add_plugin_archive`]), as `tributary plugins add` adds one.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tributary_kit::http::HttpError;
use tributary_proto::requests::plugins::PluginView;
use tributary_proto::requests::{ApiError, ErrorCode};

use super::{refused, Actor, Query};
use crate::adding::Refusal;
use crate::error::RegistryError;
use crate::manager::PluginManager;

/// The most an uploaded archive may weigh as sent (compressed): 64 MiB. Its files may add up
/// to [`crate::adding::DEFAULT_MAX_BYTES`] unpacked.
pub const MAX_ARCHIVE_BYTES: usize = 64 * 1024 * 1024;

/// What `POST /api/v1/plugins` is asked besides the archive.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddPluginQuery {
    /// Replace the same id and version when it was added before.
    #[serde(default)]
    pub replace: bool,
}

/// The request body: a gzip-compressed tar of the plugin's directory (`plugin.json` at its
/// top, or in its one top-level directory), as `tributary plugins package` writes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct PluginArchive(Vec<u8>);

/// A refusal with its status: over a size cap 413, else as the registry's table says.
fn add_refused(e: RegistryError) -> Response {
    match e {
        RegistryError::PluginRefused(
            refusal @ (Refusal::TooBig { .. } | Refusal::TooManyEntries { .. }),
        ) => too_large(refusal.api_message()),
        other => refused(other).into_response(),
    }
}

/// 413 with the JSON error.
fn too_large(message: String) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(ApiError::new(ErrorCode::BadRequest, message)),
    )
        .into_response()
}

/// Add a third-party plugin (WebAssembly, or a declarative connector) from a `.tar.gz`: checked
/// as `tributary plugins add` checks it (manifest, component digest and imports, or the
/// connector spec; entries that would reach outside the plugin), then put in the managed
/// plugin directory `<data_dir>/plugins/<id>/<version>/` and found by a rescan. Install it
/// next with `POST /api/v1/instances`.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", params(AddPluginQuery),
    request_body(
        description = "The plugin as a .tar.gz (at most 64 MiB; its files at most 256 MiB unpacked)",
        content(
            (PluginArchive = "application/gzip"),
            (PluginArchive = "application/octet-stream"),
        )
    ),
    responses((status = 201, description = "added, as the catalog lists it", body = PluginView),
              (status = 400, description = "not a readable .tar.gz, or the plugin in it is refused; the message names the entry, file or field and why", body = ApiError),
              (status = 409, description = "the same id and version is added already (`replace=true` replaces it), or the plugin manager would not load it (the same id and version in a configured plugin directory)", body = ApiError),
              (status = 413, description = "the archive is over 64 MiB, or its files over 256 MiB or 10,000 entries", body = ApiError)))]
pub(super) async fn add_plugin(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Query(query): Query<AddPluginQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PluginView>), Response> {
    let over = || {
        too_large(format!(
            "the archive is over {MAX_ARCHIVE_BYTES} bytes, the most the plugin manager takes, or was cut off"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_ARCHIVE_BYTES as u64) {
        return Err(over());
    }
    let archive = axum::body::to_bytes(body, MAX_ARCHIVE_BYTES)
        .await
        .map_err(|_| over())?;
    if archive.is_empty() {
        return Err(HttpError(ApiError::bad_request(
            "the request body is empty: send the plugin's .tar.gz as the body",
        ))
        .into_response());
    }
    m.add_plugin_archive(archive, query.replace, &actor)
        .await
        .map(|view| (StatusCode::CREATED, Json(view)))
        .map_err(add_refused)
}
