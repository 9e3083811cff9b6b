//! The admin HTTP API, under `/api/v1`, and its OpenAPI document at `/api/v1/openapi.json`.
//! The routes and the document come from the same declarations (utoipa-axum), and every
//! route but the document requires `Authorization: Bearer <plugin_manager.admin_token>`.
//! Every error, a refused path, query or body included, is an [`ApiError`] in JSON, and the
//! document lists each status a route can answer. This is the registry's other edge: what
//! the manager refuses (a [`RegistryError`]) becomes an [`ApiError`] here, in [`refused`].

mod add_plugin;
mod dead_letters;

pub use add_plugin::{AddPluginQuery, MAX_ARCHIVE_BYTES};

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use tributary_proto::requests::plugins::{
    AuditEntry, AuditQuery, ConfigureRequest, ConnectAttempt, InstallRequest, InstanceFilter,
    InstanceView, PluginList, PluginView, UninstallOutcome, UninstallRequest, UpgradeRequest,
};
use tributary_proto::requests::{ApiError, ErrorCode};
use tributary_proto::timeline::{TimelinePage, TimelineQuery};

use tributary_proto::requests::connector::{CancelAccepted, SyncAccepted, SyncStateView};
use tributary_proto::requests::etl::{
    DecisionOutcome, Page, PersonShown, SharedPage, SuggestionPage,
};
use uuid::Uuid;

use crate::error::RegistryError;
use crate::manager::PluginManager;
use crate::mesh::{Mesh, MeshError, ServiceReadiness, SyncRequest};

/// Who the audit log records for admin API changes: `admin-api:` and the token's
/// fingerprint ([`token_fingerprint`]), so a change of token shows in the log.
#[derive(Debug, Clone)]
struct Actor(Arc<crate::actor::Actor>);

/// What the routes share: the registry and who acts through them.
#[derive(Debug, Clone)]
struct AdminState {
    /// The registry every route works on.
    manager: PluginManager,
    /// Recorded in the audit log for every change made through the API.
    actor: Actor,
    /// The other services: sync control and readiness.
    mesh: Mesh,
}

impl FromRef<AdminState> for Mesh {
    fn from_ref(state: &AdminState) -> Self {
        state.mesh.clone()
    }
}

impl FromRef<AdminState> for PluginManager {
    fn from_ref(state: &AdminState) -> Self {
        state.manager.clone()
    }
}

impl FromRef<AdminState> for Actor {
    fn from_ref(state: &AdminState) -> Self {
        state.actor.clone()
    }
}

/// A short, non-secret name for a bearer token: the first 8 hex digits of its SHA-256. It
/// tells tokens apart in the audit log; a token of 16 characters or more (the least
/// accepted) cannot be found again from it.
pub fn token_fingerprint(token: &SecretString) -> String {
    let digest = Sha256::digest(token.expose_secret().as_bytes());
    hex::encode(&digest[..4])
}

/// The audit actor of changes made with `token`: `admin-api:<fingerprint>`.
pub fn admin_actor(token: &SecretString) -> String {
    format!("admin-api:{}", token_fingerprint(token))
}

/// Where the OpenAPI document is served (without a token).
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// A path, query string or body (`what`) that does not parse, as the JSON error.
fn unreadable(what: &str, reason: String) -> ApiError {
    ApiError::new(
        ErrorCode::BadRequest,
        format!("the {what} is not valid: {reason}"),
    )
}

fn bad_body(rejection: JsonRejection) -> ApiError {
    unreadable("request body", rejection.body_text())
}

/// [`axum::extract::Path`], refusing with an [`ApiError`] (400) instead of plain text.
struct Path<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| HttpError(unreadable("path", e.body_text())))
    }
}

/// [`axum::extract::Query`], refusing with an [`ApiError`] (400) that names the parameter
/// instead of plain text.
struct Query<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| HttpError(unreadable("query string", e.body_text())))
    }
}

/// Adds the answers every route can give to each operation of the document, so none is
/// forgotten: 401 (the token check), 500, and 400 where the route reads a path, a query or a
/// body. The answers of one route (404, 409, 422) are declared on it.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let reads_input = operation.request_body.is_some()
                    || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if reads_input {
                    add_error(
                        operation,
                        400,
                        "the path, query string or body is not valid",
                    );
                }
                add_error(operation, 401, "no bearer token, or a wrong one");
                add_error(
                    operation,
                    500,
                    "the service failed (the cause is in its log)",
                );
            }
        }
    }
}

fn add_error(operation: &mut Operation, status: u16, description: &str) {
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build();
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert(RefOr::T(response));
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary plugin manager",
        description = "Plugins, instances, their configuration, permissions and lifecycle. Every route needs `Authorization: Bearer <plugin_manager.admin_token>`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "plugins", description = "Discovered plugins, and third-party plugins added from an archive"),
         (name = "instances", description = "Installed instances and their lifecycle"),
         (name = "syncs", description = "Sync control, asked of the connector service"),
         (name = "people", description = "People across sources: why a person is who she is, and mending a merge, asked of the ETL"),
         (name = "services", description = "Each service's readiness"),
         (name = "dead-letters", description = "What could never be processed, with the reason: replayed after a fix, or discarded"),
         (name = "audit", description = "Who changed what, when"))
)]
struct ApiDoc;

/// The admin API's routes (with their state and the token check) and its OpenAPI document;
/// `mesh` asks the other services what the sync and readiness routes need.
pub fn router(
    manager: PluginManager,
    mesh: Mesh,
    token: SecretString,
) -> (Router, utoipa::openapi::OpenApi) {
    let (routes, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_plugins, add_plugin::add_plugin))
        .routes(routes!(rescan_plugins))
        .routes(routes!(get_plugin))
        .routes(routes!(list_instances, install_instance))
        .routes(routes!(get_instance, uninstall_instance))
        .routes(routes!(configure_instance))
        .routes(routes!(enable_instance))
        .routes(routes!(disable_instance))
        .routes(routes!(upgrade_instance))
        .routes(routes!(audit_log))
        .routes(routes!(instance_timeline))
        .routes(routes!(connect_instance))
        .routes(routes!(connect_attempt))
        .routes(routes!(sync_state, sync_instance))
        .routes(routes!(cancel_sync))
        .routes(routes!(show_person))
        .routes(routes!(unmerge_person))
        .routes(routes!(merge_people))
        .routes(routes!(people_suggestions))
        .routes(routes!(accept_suggestion))
        .routes(routes!(reject_suggestion))
        .routes(routes!(shared_identifiers))
        .routes(routes!(service_readiness))
        .routes(routes!(dead_letters::list_dead_letters))
        .routes(routes!(
            dead_letters::get_dead_letter,
            dead_letters::discard_dead_letter
        ))
        .routes(routes!(dead_letters::replay_dead_letter))
        .routes(routes!(dead_letters::replay_all_dead_letters))
        .routes(routes!(dead_letters::discard_all_dead_letters))
        .split_for_parts();
    // After the routes: the document's own modifiers run before any path is in it.
    CommonAnswers.modify(&mut api);
    let state = AdminState {
        manager,
        actor: Actor(Arc::new(crate::actor::Actor::new(admin_actor(&token)))),
        mesh,
    };
    let routes = routes
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(token, require_bearer_token));
    let document = api.clone();
    let router = routes
        .route(
            OPENAPI_PATH,
            axum::routing::get(move || async move { Json(document) }),
        )
        .fallback(no_route);
    (router, api)
}

async fn method_not_allowed(request: Request) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not served on {}; the OpenAPI document ({OPENAPI_PATH}) lists what is",
            request.method(),
            request.uri().path()
        ),
    ))
}

async fn no_route(request: Request) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::NotFound,
        format!("no route {} {}", request.method(), request.uri().path()),
    ))
}

use tributary_kit::http::require_bearer_token;
use tributary_kit::http::HttpError;

/// What another service answered, or that it did not: a refusal with its code's status, no
/// answer as 503 (the JSON error says which service, on what subject).
fn mesh_refused(e: MeshError) -> axum::response::Response {
    use axum::response::IntoResponse;
    match e {
        MeshError::Refused(e) => HttpError(e).into_response(),
        MeshError::NotAnswering(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(e)).into_response(),
    }
}

/// What the manager refused, as the JSON error with its status.
fn refused(e: RegistryError) -> HttpError {
    HttpError(e.into())
}

/// List every plugin found, valid and invalid.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins",
    responses((status = 200, body = PluginList)))]
async fn list_plugins(State(m): State<PluginManager>) -> Json<PluginList> {
    Json(m.plugins())
}

/// Scan the plugin directories again.
#[utoipa::path(post, path = "/api/v1/plugins/rescan", tag = "plugins",
    responses((status = 200, body = PluginList)))]
async fn rescan_plugins(State(m): State<PluginManager>) -> Result<Json<PluginList>, HttpError> {
    m.rescan().await.map(Json).map_err(refused)
}

/// One plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{plugin_id}", tag = "plugins",
    params(("plugin_id" = String, Path, description = "Reverse-DNS plugin id")),
    responses((status = 200, body = PluginView), (status = 404, description = "no such plugin", body = ApiError)))]
async fn get_plugin(
    State(m): State<PluginManager>,
    Path(plugin_id): Path<String>,
) -> Result<Json<PluginView>, HttpError> {
    m.plugin(&plugin_id).map(Json).map_err(refused)
}

/// Installed instances.
#[utoipa::path(get, path = "/api/v1/instances", tag = "instances", params(InstanceFilter),
    responses((status = 200, body = Vec<InstanceView>)))]
async fn list_instances(
    State(m): State<PluginManager>,
    Query(filter): Query<InstanceFilter>,
) -> Result<Json<Vec<InstanceView>>, HttpError> {
    m.instances(&filter).await.map(Json).map_err(refused)
}

/// Install an instance; every permission the plugin asks for must be in `accept_permissions`.
#[utoipa::path(post, path = "/api/v1/instances", tag = "instances", request_body = InstallRequest,
    responses((status = 201, body = InstanceView), (status = 409, description = "permissions not accepted, or the id is taken", body = ApiError),
              (status = 422, description = "invalid configuration", body = ApiError), (status = 404, description = "no such plugin", body = ApiError)))]
async fn install_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    body: Result<Json<InstallRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<InstanceView>), HttpError> {
    let Json(request) = body.map_err(bad_body)?;
    m.install(request, &actor)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
        .map_err(refused)
}

/// One instance (secrets shown only as set or not set).
#[utoipa::path(get, path = "/api/v1/instances/{instance_id}", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id")),
    responses((status = 200, body = InstanceView), (status = 404, description = "no such instance", body = ApiError)))]
async fn get_instance(
    State(m): State<PluginManager>,
    Path(instance_id): Path<String>,
) -> Result<Json<InstanceView>, HttpError> {
    m.instance(&instance_id).await.map(Json).map_err(refused)
}

/// Uninstall an instance, keeping its data or purging it.
#[utoipa::path(delete, path = "/api/v1/instances/{instance_id}", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id"), UninstallRequest),
    responses((status = 200, body = UninstallOutcome), (status = 404, description = "no such instance", body = ApiError)))]
async fn uninstall_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Path(instance_id): Path<String>,
    Query(request): Query<UninstallRequest>,
) -> Result<Json<UninstallOutcome>, HttpError> {
    m.uninstall(&instance_id, request.purge, &actor)
        .await
        .map(Json)
        .map_err(refused)
}

/// Replace an instance's configuration; secrets left out keep their value.
#[utoipa::path(put, path = "/api/v1/instances/{instance_id}/config", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id")), request_body = ConfigureRequest,
    responses((status = 200, body = InstanceView), (status = 422, description = "invalid configuration", body = ApiError),
              (status = 404, description = "no such instance", body = ApiError), (status = 409, description = "the instance is uninstalled", body = ApiError)))]
async fn configure_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Path(instance_id): Path<String>,
    body: Result<Json<ConfigureRequest>, JsonRejection>,
) -> Result<Json<InstanceView>, HttpError> {
    let Json(request) = body.map_err(bad_body)?;
    m.configure(&instance_id, request.config, &actor)
        .await
        .map(Json)
        .map_err(refused)
}

/// Enable an instance: its service starts it.
#[utoipa::path(post, path = "/api/v1/instances/{instance_id}/enable", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id")),
    responses((status = 200, body = InstanceView), (status = 422, description = "configuration incomplete", body = ApiError),
              (status = 404, description = "no such instance", body = ApiError), (status = 409, description = "the instance is uninstalled", body = ApiError)))]
async fn enable_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Path(instance_id): Path<String>,
) -> Result<Json<InstanceView>, HttpError> {
    m.enable(&instance_id, &actor)
        .await
        .map(Json)
        .map_err(refused)
}

/// Disable an instance: its service stops it.
#[utoipa::path(post, path = "/api/v1/instances/{instance_id}/disable", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id")),
    responses((status = 200, body = InstanceView), (status = 404, description = "no such instance", body = ApiError),
              (status = 409, description = "the instance is uninstalled", body = ApiError)))]
async fn disable_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Path(instance_id): Path<String>,
) -> Result<Json<InstanceView>, HttpError> {
    m.disable(&instance_id, &actor)
        .await
        .map(Json)
        .map_err(refused)
}

/// Move an instance to the newest version found; held until added permissions are accepted.
#[utoipa::path(post, path = "/api/v1/instances/{instance_id}/upgrade", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id")), request_body = UpgradeRequest,
    responses((status = 200, body = InstanceView),
              (status = 409, description = "held: new permissions to accept; nothing newer; or the instance is uninstalled", body = ApiError),
              (status = 422, description = "an enabled instance's configuration does not satisfy the new version", body = ApiError),
              (status = 404, description = "no such instance", body = ApiError)))]
async fn upgrade_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Path(instance_id): Path<String>,
    body: Result<Json<UpgradeRequest>, JsonRejection>,
) -> Result<Json<InstanceView>, HttpError> {
    let Json(request) = body.map_err(bad_body)?;
    m.upgrade(&instance_id, &request.accept_permissions, &actor)
        .await
        .map(Json)
        .map_err(refused)
}

/// Start connecting an instance to its account (OAuth 2.0): the consent URL to open, or for
/// the client credentials grant the outcome at once. Follow it with `GET /api/v1/connect/{attempt_id}`.
#[utoipa::path(post, path = "/api/v1/instances/{instance_id}/connect", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id")),
    responses((status = 200, body = ConnectAttempt),
              (status = 404, description = "no such instance", body = ApiError),
              (status = 409, description = "its plugin connects to no account, or the instance is uninstalled", body = ApiError),
              (status = 422, description = "no OAuth client for its provider, or the provider is misconfigured", body = ApiError)))]
async fn connect_instance(
    State(m): State<PluginManager>,
    State(Actor(actor)): State<Actor>,
    Path(instance_id): Path<String>,
) -> Result<Json<ConnectAttempt>, HttpError> {
    m.connect(&instance_id, &actor)
        .await
        .map(Json)
        .map_err(refused)
}

/// Where a connect attempt stands: pending, connected (with the scopes granted), failed (with
/// the provider's reason) or expired.
#[utoipa::path(get, path = "/api/v1/connect/{attempt_id}", tag = "instances",
    params(("attempt_id" = uuid::Uuid, Path, description = "The attempt the connect answered with")),
    responses((status = 200, body = ConnectAttempt), (status = 404, description = "no such attempt", body = ApiError)))]
async fn connect_attempt(
    State(m): State<PluginManager>,
    Path(attempt_id): Path<uuid::Uuid>,
) -> Result<Json<ConnectAttempt>, HttpError> {
    m.connect_status(attempt_id)
        .await
        .map(Json)
        .map_err(refused)
}

/// The audit log: every lifecycle and permission change.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn audit_log(
    State(m): State<PluginManager>,
    Query(params): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, HttpError> {
    m.audit_log(params.instance_id.as_deref(), params.limit)
        .await
        .map(Json)
        .map_err(refused)
}

/// An instance's timeline, newest first: syncs that ended (duration, counts, error), webhooks
/// accepted and refused (with the reason, never the secret), messages sent and their delivery
/// statuses, the plugin's own log lines, and its audit entries. Filter by `kind` and
/// `status`; page with `before` set to the page's `next`.
#[utoipa::path(get, path = "/api/v1/instances/{instance_id}/timeline", tag = "instances",
    params(("instance_id" = String, Path, description = "Instance id"), TimelineQuery),
    responses((status = 200, body = TimelinePage),
              (status = 400, description = "a limit out of range, or a `before` no page gave", body = ApiError),
              (status = 404, description = "no such instance", body = ApiError)))]
async fn instance_timeline(
    State(m): State<PluginManager>,
    Path(instance_id): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Result<Json<TimelinePage>, HttpError> {
    m.timeline(&instance_id, &query)
        .await
        .map(Json)
        .map_err(refused)
}

/// Where an instance's syncs stand, as the connector service knows them.
#[utoipa::path(get, path = "/api/v1/instances/{instance_id}/sync", tag = "syncs",
    params(("instance_id" = String, Path, description = "Instance id")),
    responses((status = 200, body = SyncStateView),
              (status = 404, description = "the connector service knows no such instance", body = ApiError),
              (status = 503, description = "the connector service does not answer", body = ApiError)))]
async fn sync_state(
    State(mesh): State<Mesh>,
    Path(instance_id): Path<String>,
) -> Result<Json<SyncStateView>, axum::response::Response> {
    mesh.sync_state(&instance_id)
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// Start a sync of a connector instance now: incremental by default, `full`, or `backfill`
/// with `since`.
#[utoipa::path(post, path = "/api/v1/instances/{instance_id}/sync", tag = "syncs",
    params(("instance_id" = String, Path, description = "Instance id")), request_body = SyncRequest,
    responses((status = 200, body = SyncAccepted),
              (status = 404, description = "no such connector instance, or it is not enabled", body = ApiError),
              (status = 409, description = "a sync of it is running", body = ApiError),
              (status = 503, description = "the connector service does not answer", body = ApiError)))]
async fn sync_instance(
    State(mesh): State<Mesh>,
    Path(instance_id): Path<String>,
    body: Result<Json<SyncRequest>, JsonRejection>,
) -> Result<Json<SyncAccepted>, axum::response::Response> {
    use axum::response::IntoResponse;
    let Json(request) = body.map_err(|e| HttpError(bad_body(e)).into_response())?;
    mesh.sync(&instance_id, request)
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// Stop the running sync of a connector instance.
#[utoipa::path(post, path = "/api/v1/instances/{instance_id}/sync/cancel", tag = "syncs",
    params(("instance_id" = String, Path, description = "Instance id")),
    responses((status = 200, body = CancelAccepted),
              (status = 404, description = "no such connector instance", body = ApiError),
              (status = 409, description = "no sync of it is running", body = ApiError),
              (status = 503, description = "the connector service does not answer", body = ApiError)))]
async fn cancel_sync(
    State(mesh): State<Mesh>,
    Path(instance_id): Path<String>,
) -> Result<Json<CancelAccepted>, axum::response::Response> {
    mesh.cancel(&instance_id)
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// Every service's readiness: the checks its `/readyz` runs, asked over NATS.
#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, body = Vec<ServiceReadiness>)))]
async fn service_readiness(State(mesh): State<Mesh>) -> Json<Vec<ServiceReadiness>> {
    Json(mesh.readiness().await)
}

/// What `POST /api/v1/people/{person_id}/unmerge` splits off.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmergeRequest {
    /// Only the records of this plugin instance split off (together); without it, every
    /// source record becomes its own person.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub source: Option<String>,
}

/// Two persons, by id: the two to merge, or a suggestion's two sides (`a.person_id`,
/// `b.person_id`) to accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonPair {
    /// One of them.
    pub a: Uuid,
    /// The other.
    pub b: Uuid,
}

/// Reads a JSON body, refusing one that does not parse with the JSON error naming why.
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, HttpError> {
    body.map(|Json(value)| value)
        .map_err(|e| HttpError(bad_body(e)))
}

/// A person: her source records, the merges that built her (each with its rule, the shared
/// address or number, and who merged by hand), the decisions about her records, the open
/// suggestions naming her, her messages and events. An id that was merged answers
/// `status: merged` with the person it lives on in.
#[utoipa::path(get, path = "/api/v1/people/{person_id}", tag = "people",
    params(("person_id" = Uuid, Path, description = "Person id")),
    responses((status = 200, body = PersonShown),
              (status = 404, description = "no such person", body = ApiError),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn show_person(
    State(mesh): State<Mesh>,
    Path(person_id): Path<Uuid>,
) -> Result<Json<PersonShown>, axum::response::Response> {
    mesh.person(person_id).await.map(Json).map_err(mesh_refused)
}

/// Split a merged person back into the people her sources describe (or split off only one
/// instance's records with `source`), move what is linked through each record with it, and
/// remember the decision so no later sync merges them again. Recorded as the admin token's
/// name.
#[utoipa::path(post, path = "/api/v1/people/{person_id}/unmerge", tag = "people",
    params(("person_id" = Uuid, Path, description = "Person id")), request_body = UnmergeRequest,
    responses((status = 200, body = DecisionOutcome),
              (status = 404, description = "no such person", body = ApiError),
              (status = 409, description = "she comes from one source record, was merged into another person (use that id) or was deleted", body = ApiError),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn unmerge_person(
    State(mesh): State<Mesh>,
    State(actor): State<Actor>,
    Path(person_id): Path<Uuid>,
    body: Result<Json<UnmergeRequest>, JsonRejection>,
) -> Result<Json<DecisionOutcome>, axum::response::Response> {
    let request = json_body(body).map_err(axum::response::IntoResponse::into_response)?;
    mesh.unmerge_person(person_id, request.source, actor.0.name())
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// Merge two persons who may share nothing, recorded as merged by the admin token's name; later
/// syncs keep them one.
#[utoipa::path(post, path = "/api/v1/people/merge", tag = "people", request_body = PersonPair,
    responses((status = 200, body = DecisionOutcome),
              (status = 404, description = "no such person", body = ApiError),
              (status = 409, description = "they are one person already, or one was merged into another (use that id) or deleted", body = ApiError),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn merge_people(
    State(mesh): State<Mesh>,
    State(actor): State<Actor>,
    body: Result<Json<PersonPair>, JsonRejection>,
) -> Result<Json<DecisionOutcome>, axum::response::Response> {
    let pair = json_body(body).map_err(axum::response::IntoResponse::into_response)?;
    mesh.merge_people(pair.a, pair.b, actor.0.name())
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// The pairs of people who share an identifier but whose names do not match, best score
/// first, for a person to accept or reject.
#[utoipa::path(get, path = "/api/v1/people/suggestions", tag = "people", params(Page),
    responses((status = 200, body = SuggestionPage),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn people_suggestions(
    State(mesh): State<Mesh>,
    Query(page): Query<Page>,
) -> Result<Json<SuggestionPage>, axum::response::Response> {
    page.validate()
        .map_err(|e| axum::response::IntoResponse::into_response(HttpError(e)))?;
    mesh.people_suggestions(page)
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// Accept a suggestion: its two people are merged, recorded as the admin token's name.
#[utoipa::path(post, path = "/api/v1/people/suggestions/accept", tag = "people", request_body = PersonPair,
    responses((status = 200, body = DecisionOutcome),
              (status = 404, description = "no such person", body = ApiError),
              (status = 409, description = "they are one person already, or one was merged into another (use that id) or deleted", body = ApiError),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn accept_suggestion(
    State(mesh): State<Mesh>,
    State(actor): State<Actor>,
    body: Result<Json<PersonPair>, JsonRejection>,
) -> Result<Json<DecisionOutcome>, axum::response::Response> {
    decide_suggestion(mesh, actor, body, true).await
}

/// Reject a suggestion: its two people are kept apart for good, recorded as the admin token's
/// name.
#[utoipa::path(post, path = "/api/v1/people/suggestions/reject", tag = "people", request_body = PersonPair,
    responses((status = 200, body = DecisionOutcome),
              (status = 404, description = "no such person", body = ApiError),
              (status = 409, description = "they are one person (unmerge her instead), or one was merged into another or deleted", body = ApiError),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn reject_suggestion(
    State(mesh): State<Mesh>,
    State(actor): State<Actor>,
    body: Result<Json<PersonPair>, JsonRejection>,
) -> Result<Json<DecisionOutcome>, axum::response::Response> {
    decide_suggestion(mesh, actor, body, false).await
}

/// A suggestion accepted (`accept`) or rejected, recorded as the admin token's name.
async fn decide_suggestion(
    mesh: Mesh,
    actor: Actor,
    body: Result<Json<PersonPair>, JsonRejection>,
    accept: bool,
) -> Result<Json<DecisionOutcome>, axum::response::Response> {
    let pair = json_body(body).map_err(axum::response::IntoResponse::into_response)?;
    mesh.decide_suggestion(pair.a, pair.b, accept, actor.0.name())
        .await
        .map(Json)
        .map_err(mesh_refused)
}

/// The identifiers that merge nobody any more: carried by three or more people whose names do
/// not all match (a front desk number, `info@`), most carriers first.
#[utoipa::path(get, path = "/api/v1/people/shared", tag = "people", params(Page),
    responses((status = 200, body = SharedPage),
              (status = 503, description = "the ETL does not answer", body = ApiError)))]
async fn shared_identifiers(
    State(mesh): State<Mesh>,
    Query(page): Query<Page>,
) -> Result<Json<SharedPage>, axum::response::Response> {
    page.validate()
        .map_err(|e| axum::response::IntoResponse::into_response(HttpError(e)))?;
    mesh.shared_identifiers(page)
        .await
        .map(Json)
        .map_err(mesh_refused)
}
