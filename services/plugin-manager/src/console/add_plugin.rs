//! Adding a plugin from an archive in the browser: the Plugins page's "Add a plugin" form,
//! posted as `multipart/form-data` to [`ADD_PATH`] and added by the admin API's own call
//! ([`PluginManager::add_plugin_archive`](crate::PluginManager::add_plugin_archive)) under
//! the console's actor.
//!
//! The form works without JavaScript and is checked like every other form, in two steps,
//! because its body may be 64 MiB and [`auth::require_csrf`] reads only small urlencoded ones:
//! the middleware refuses it before reading a byte unless the session is signed in, and this
//! handler refuses it unless its **first** field is `csrf` holding the session's token
//! (browsers send fields in the form's order, and the hidden field comes first), before the
//! archive is read. The archive may weigh what the admin API takes,
//! [`MAX_ARCHIVE_BYTES`]; the whole body that and [`FORM_OVERHEAD_BYTES`] more.

use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tributary_proto::requests::{ApiError, ErrorCode};

use super::auth::{self, SignedIn};
use super::pages::{self, Flash};
use super::ConsoleState;
use crate::adding::Refusal;
use crate::error::RegistryError;
use crate::http_api::MAX_ARCHIVE_BYTES;

/// Where the form posts.
pub const ADD_PATH: &str = "/plugins/add";

/// What the form adds to its archive at most: the token, the checkbox and the multipart
/// framing.
pub const FORM_OVERHEAD_BYTES: usize = 64 * 1024;

/// The most a posted form may weigh: the admin API's archive limit and the form around it.
pub const MAX_FORM_BYTES: usize = MAX_ARCHIVE_BYTES + FORM_OVERHEAD_BYTES;

/// The archive field's name.
const ARCHIVE: &str = "archive";

/// What an archive over the limit is told.
pub fn too_large_message() -> String {
    format!(
        "The archive is too large: the plugin manager takes archives of at most {} MiB ({MAX_ARCHIVE_BYTES} bytes). Nothing was added.",
        MAX_ARCHIVE_BYTES / (1024 * 1024)
    )
}

/// The form's fields once read.
struct Posted {
    /// The archive's bytes.
    archive: Bytes,
    /// Its file name, for the messages.
    file_name: String,
    /// Whether "replace an existing version" was ticked.
    replace: bool,
}

/// Why the form was refused.
enum Refused {
    /// Its CSRF token is missing or wrong: the refusal page of every forged form.
    Forged,
    /// The Plugins page again, with this status and message.
    Page(StatusCode, ApiError),
}

/// `POST /plugins/add`: adds the archive posted, then goes to its row of the catalog with a
/// message; a refusal shows the Plugins page again, 4xx, saying why.
pub(crate) async fn add(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let posted = if declared.is_some_and(|length| length > MAX_FORM_BYTES as u64) {
        Err(too_large())
    } else {
        match multipart {
            Ok(multipart) => read(&signed_in, multipart).await,
            Err(e) => Err(Refused::Page(
                StatusCode::BAD_REQUEST,
                ApiError::bad_request(format!(
                    "This form is not a file upload ({e}): post it from the Plugins page."
                )),
            )),
        }
    };
    let posted = match posted {
        Ok(posted) => posted,
        Err(Refused::Forged) => {
            return auth::refused(&state, StatusCode::FORBIDDEN, auth::CSRF_REFUSED)
        }
        Err(Refused::Page(status, error)) => {
            return refused_page(&state, &signed_in, status, error)
        }
    };
    match state
        .manager
        .add_plugin_archive(posted.archive, posted.replace, &state.actor)
        .await
    {
        Ok(view) => {
            let message = format!(
                "Added {} ({}) {} from {}{}. Install an instance of it from its row below.",
                view.name,
                view.id,
                view.version,
                posted.file_name,
                if posted.replace {
                    ", replacing the copy of that version if there was one"
                } else {
                    ""
                }
            );
            let to = format!("/plugins#{}", row_id(&view.id, &view.version));
            signed_in.then(Flash::done(message), &to).await
        }
        Err(e) => {
            let (status, error) = add_refused(e);
            refused_page(&state, &signed_in, status, error)
        }
    }
}

/// The `id` of a plugin's row on the Plugins page.
pub(crate) fn row_id(plugin_id: &str, version: &str) -> String {
    let raw = format!("plugin-{plugin_id}-{version}");
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// The Plugins page with the refusal shown.
fn refused_page(
    state: &ConsoleState,
    signed_in: &SignedIn,
    status: StatusCode,
    error: ApiError,
) -> Response {
    let page = pages::plugins_page(state, &signed_in.csrf, Some(Flash::refused(error)));
    (status, page).into_response()
}

/// 413, naming the limit.
fn too_large() -> Refused {
    Refused::Page(
        StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::bad_request(too_large_message()),
    )
}

/// A refusal of [`add_plugin_archive`](crate::PluginManager::add_plugin_archive), in the
/// console's words where the admin API's name its query: over a size cap 413, the same id and
/// version 409 pointing at the checkbox, else the admin API's status and message.
fn add_refused(e: RegistryError) -> (StatusCode, ApiError) {
    match e {
        RegistryError::PluginRefused(
            refusal @ (Refusal::TooBig { .. } | Refusal::TooManyEntries { .. }),
        ) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::bad_request(format!("Not added: {}.", refusal.api_message())),
        ),
        RegistryError::PluginRefused(Refusal::AlreadyAdded { id, version, .. }) => (
            StatusCode::CONFLICT,
            ApiError::new(
                ErrorCode::Conflict,
                format!("Not added: `{id}` {version} is already added. To replace it, choose the file again and tick \u{201c}Replace an existing version\u{201d}."),
            ),
        ),
        other => {
            let error = ApiError::from(other);
            let status = StatusCode::from_u16(error.error.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = format!("Not added: {}.", error.message);
            (status, ApiError::new(error.error, message))
        }
    }
}

/// Reads the form: its first field the CSRF token (checked before anything else is read), then
/// the archive and the checkbox, in any order.
async fn read(signed_in: &SignedIn, mut multipart: Multipart) -> Result<Posted, Refused> {
    let first = multipart.next_field().await.map_err(|_| Refused::Forged)?;
    let given = match first {
        Some(field) if field.name() == Some("csrf") => {
            field.text().await.map_err(|_| Refused::Forged)?
        }
        _ => String::new(),
    };
    if !auth::tokens_match(&signed_in.csrf, &given) {
        tracing::warn!(
            path = ADD_PATH,
            "A console upload without a valid CSRF token was refused."
        );
        return Err(Refused::Forged);
    }
    let mut posted = Posted {
        archive: Bytes::new(),
        file_name: String::new(),
        replace: false,
    };
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Refused::Page(
                StatusCode::BAD_REQUEST,
                ApiError::bad_request(format!("The form could not be read: {}.", e.body_text())),
            )
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some(ARCHIVE) => {
                posted.file_name = field.file_name().unwrap_or_default().to_owned();
                posted.archive = archive(field).await.map_err(|e| match e {
                    Some(e) => unreadable(e),
                    None => too_large(),
                })?;
            }
            Some("replace") => posted.replace = field.text().await.map_err(unreadable)? == "true",
            _ => {}
        }
    }
    if posted.archive.is_empty() {
        return Err(Refused::Page(
            StatusCode::BAD_REQUEST,
            ApiError::bad_request(
                "Not added: no archive was chosen. Choose the plugin's .tar.gz (as `tributary plugins package` writes) and add it again.",
            ),
        ));
    }
    if posted.file_name.is_empty() {
        posted.file_name = "the uploaded archive".to_owned();
    }
    Ok(posted)
}

/// The archive field's bytes, read up to [`MAX_ARCHIVE_BYTES`]: `Err(None)` past it.
async fn archive(
    mut field: Field<'_>,
) -> Result<Bytes, Option<axum::extract::multipart::MultipartError>> {
    let mut bytes = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(Some)? {
        if bytes.len() + chunk.len() > MAX_ARCHIVE_BYTES {
            return Err(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}
