//! The HTTP health server every service runs: `/healthz` (alive), `/readyz` (each dependency
//! checked and named) and `/metrics` (Prometheus text). Services add their own routes to it.

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
use serde::Serialize;
use sqlx::PgPool;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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
        CheckResult {
            name: self.name,
            ok: outcome.is_ok(),
            error: outcome.err(),
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
    /// What went wrong, when it did not.
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

/// The health routes of a service, ready to be merged with its own.
pub fn router(service: &'static str, checks: Vec<ReadinessCheck>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HealthState {
            service,
            checks: Arc::new(checks),
        })
}
