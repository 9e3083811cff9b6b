//! The HTTP health server every service runs: `/healthz` (alive), `/readyz` (each dependency
//! checked and named) and `/metrics` (Prometheus text). Services add their own routes to it.
//!
//! `/readyz` is open (orchestrators probe it without credentials), so it says which dependency
//! is down and never why: the cause (a database error with its host, role or SQL state) goes
//! to the log. `/metrics` is open only on a loopback listener, or to [`MetricsAccess::Token`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use tributary_proto::requests::{ApiError, ErrorCode};

use crate::http::HttpError;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a failed check reports, whatever the cause: the cause itself is logged.
pub const CHECK_FAILED: &str = "unavailable; the service's log says why";

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One dependency `/readyz` checks, with the name it reports.
#[derive(Clone)]
pub struct ReadinessCheck {
    name: &'static str,
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl std::fmt::Debug for ReadinessCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadinessCheck")
            .field("name", &self.name)
            .finish()
    }
}

impl ReadinessCheck {
    /// A check named `name` that runs `check`.
    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// NATS is ready while the client is connected.
    pub fn nats(client: async_nats::Client) -> Self {
        Self::new("nats", move || {
            let client = client.clone();
            async move {
                match client.connection_state() {
                    async_nats::connection::State::Connected => Ok(()),
                    state => Err(format!("connection is {state}")),
                }
            }
        })
    }

    /// PostgreSQL is ready while it answers `SELECT 1`.
    pub fn postgresql(pool: PgPool) -> Self {
        Self::new("postgresql", move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    }

    /// The name reported for this check.
    pub fn name(&self) -> &'static str {
        self.name
    }

    async fn run(&self) -> CheckResult {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        };
        // The cause may name hosts, roles, databases or SQL: it is for the operator's log,
        // not for whoever asks `/readyz` (or `<service>.status`).
        if let Err(cause) = &outcome {
            tracing::warn!(dependency = self.name, error = %cause, "A readiness check failed.");
        }
        CheckResult {
            name: self.name,
            ok: outcome.is_ok(),
            error: outcome.err().map(|_| CHECK_FAILED.to_owned()),
        }
    }
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The dependency (`nats`, `postgresql`).
    pub name: &'static str,
    /// Whether it answered.
    pub ok: bool,
    /// [`CHECK_FAILED`] when it did not; the cause is in the service's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// The service answering.
    pub service: &'static str,
    /// Whether every check passed.
    pub ready: bool,
    /// Each dependency and its state.
    pub checks: Vec<CheckResult>,
}

/// Runs every check concurrently.
pub async fn readiness(service: &'static str, checks: &[ReadinessCheck]) -> Readiness {
    let results = futures::future::join_all(checks.iter().map(ReadinessCheck::run)).await;
    Readiness {
        service,
        ready: results.iter().all(|r| r.ok),
        checks: results,
    }
}

/// The process-wide Prometheus recorder; every service in the process shares it.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours then still renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Who may read a service's `/metrics`. Metrics name instances, plugins and counts of what
/// flows through the mesh: nothing secret, but not for the internet either, so a listener
/// others can reach serves them only to a scraper with the metrics token.
#[derive(Clone, Debug)]
pub enum MetricsAccess {
    /// Anyone who reaches the listener: a loopback listener without `metrics.token`.
    Open,
    /// Requests with `Authorization: Bearer <metrics.token>`.
    Token(SecretString),
    /// Nobody (404): a listener others can reach, without `metrics.token`.
    Off,
}

impl MetricsAccess {
    /// The access for a listener bound to `addr`, with the configured metrics token.
    pub fn for_listener(addr: std::net::SocketAddr, token: Option<SecretString>) -> Self {
        match token {
            Some(token) => MetricsAccess::Token(token),
            None if addr.ip().is_loopback() => MetricsAccess::Open,
            None => MetricsAccess::Off,
        }
    }
}

#[derive(Clone)]
struct HealthState {
    service: &'static str,
    checks: Arc<Vec<ReadinessCheck>>,
}

async fn healthz(State(state): State<HealthState>) -> impl IntoResponse {
    Json(serde_json::json!({ "service": state.service, "alive": true }))
}

async fn readyz(State(state): State<HealthState>) -> impl IntoResponse {
    let readiness = readiness(state.service, &state.checks).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

async fn metrics_text() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}

async fn metrics_off() -> HttpError {
    HttpError(ApiError::new(ErrorCode::NotFound, "no such route"))
}

/// The health routes of a service, ready to be merged with its own; `/metrics` as `metrics`
/// says.
pub fn router(
    service: &'static str,
    checks: Vec<ReadinessCheck>,
    metrics: MetricsAccess,
) -> Router {
    let metrics_route = match metrics {
        MetricsAccess::Open => Router::new().route("/metrics", get(metrics_text)),
        MetricsAccess::Token(token) => Router::new()
            .route("/metrics", get(metrics_text))
            .route_layer(axum::middleware::from_fn_with_state(
                token,
                crate::http::require_bearer_token,
            )),
        MetricsAccess::Off => Router::new().route("/metrics", get(metrics_off)),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(HealthState {
            service,
            checks: Arc::new(checks),
        })
        .merge(metrics_route)
}
