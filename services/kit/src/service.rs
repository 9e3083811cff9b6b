//! The runtime every service stands on: connected to NATS and PostgreSQL, its streams
//! there (provisioned beforehand, [`crate::provision`]), registered as a NATS micro service, serving health, and shutting down cleanly.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream;
use async_nats::service::ServiceExt;
use axum::Router;
use futures::StreamExt;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary_proto::{ServiceName, Subjects};

use crate::config::{config_section, Config};
use crate::health::{self, ReadinessCheck};
use crate::http::AllowedHosts;
use crate::KitError;

/// What a service is, for registration and health.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Its name on NATS.
    pub name: ServiceName,
    /// Its version, reported by `$SRV.INFO`.
    pub version: &'static str,
    /// One line on what it does, reported by `$SRV.INFO`.
    pub description: &'static str,
    /// Whether it keeps state in PostgreSQL (and so checks it for readiness).
    pub uses_database: bool,
}

/// A started service: its connections, its HTTP listener and its micro-service registration.
/// Services add their own work with [`ServiceRuntime::spawn_worker`] and their own routes with
/// [`ServiceRuntime::merge_routes`], then call [`ServiceRuntime::run_until_stopped`].
pub struct ServiceRuntime {
    /// What this service is.
    pub spec: ServiceSpec,
    /// The configuration it was started with.
    pub config: Arc<Config>,
    /// Its subjects (with the configured prefix).
    pub subjects: Subjects,
    /// Its NATS connection.
    pub nats: async_nats::Client,
    /// JetStream on that connection.
    pub jetstream: jetstream::Context,
    /// Its database pool, when it uses one.
    pub db: Option<PgPool>,
    /// Cancelled when the service is asked to stop; workers watch it.
    pub shutdown: CancellationToken,
    listener: TcpListener,
    http_addr: SocketAddr,
    router: Router,
    /// The Host check of a loopback listener (none for one others can reach), applied to
    /// every route, the service's own included, when it starts serving.
    allowed_hosts: Option<AllowedHosts>,
    micro: async_nats::service::Service,
    workers: TaskTracker,
}

impl std::fmt::Debug for ServiceRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRuntime")
            .field("service", &self.spec.name)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl ServiceRuntime {
    /// Connects, checks that the streams it uses exist, migrates, binds the HTTP listener and
    /// registers the micro service. Fails with a message that says what to start when NATS or
    /// PostgreSQL cannot be reached, and names `tributary nats provision` when a stream is
    /// missing.
    pub async fn start(spec: ServiceSpec, config: Config) -> Result<Self, KitError> {
        Self::start_with_checks(spec, config, Vec::new()).await
    }

    /// [`ServiceRuntime::start`], with more dependencies for `/readyz` to check than NATS and
    /// PostgreSQL (the search index, say).
    pub async fn start_with_checks(
        spec: ServiceSpec,
        config: Config,
        extra_checks: Vec<ReadinessCheck>,
    ) -> Result<Self, KitError> {
        let name = spec.name.as_str();
        let subjects = config.subjects();
        let nats = crate::nats::connect(&config.nats, &format!("tributary-{name}")).await?;
        let jetstream = jetstream::new(nats.clone());
        crate::nats::check_streams(&jetstream, &subjects, spec.name).await?;

        let db = if spec.uses_database {
            Some(crate::db::connect(&config.database).await?)
        } else {
            None
        };
        let mut checks = vec![ReadinessCheck::nats(nats.clone())];
        if let Some(pool) = &db {
            checks.push(ReadinessCheck::postgresql(pool.clone()));
        }
        checks.extend(extra_checks);

        let wanted = config.http_addr_of(spec.name);
        let bind_failed = |source| KitError::Bind {
            key: format!("{}.http_addr", config_section(spec.name)),
            addr: wanted,
            source,
        };
        let listener = TcpListener::bind(wanted).await.map_err(bind_failed)?;
        let http_addr = listener.local_addr().map_err(bind_failed)?;
        let metrics = health::MetricsAccess::for_listener(http_addr, config.metrics.token()?);
        if matches!(metrics, health::MetricsAccess::Off) {
            tracing::info!(
                service = name,
                http_addr = %http_addr,
                "/metrics is off on a listener others can reach; set metrics.token to serve it to a scraper."
            );
        }
        let allowed_hosts = AllowedHosts::for_listener(http_addr, config.allowed_http_hosts());

        let micro = nats
            .service_builder()
            .description(spec.description)
            .metadata(HashMap::from([
                ("subject_prefix".to_owned(), subjects.prefix().to_owned()),
                ("http_addr".to_owned(), http_addr.to_string()),
            ]))
            .start(name, spec.version)
            .await
            .map_err(|e| KitError::Register {
                service: name,
                reason: e.to_string(),
            })?;

        let runtime = Self {
            spec,
            config: Arc::new(config),
            subjects,
            nats,
            jetstream,
            db,
            shutdown: CancellationToken::new(),
            listener,
            http_addr,
            router: health::router(name, checks.clone(), metrics),
            allowed_hosts,
            micro,
            workers: TaskTracker::new(),
        };
        runtime.serve_status(checks).await?;
        tracing::info!(service = name, http_addr = %http_addr, "Service started.");
        Ok(runtime)
    }

    /// The address the HTTP listener is bound to (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The micro service, to add endpoints to.
    pub fn micro_service(&self) -> &async_nats::service::Service {
        &self.micro
    }

    /// Adds a service's own HTTP routes next to the health routes.
    pub fn merge_routes(&mut self, routes: Router) {
        let router = std::mem::take(&mut self.router);
        self.router = router.merge(routes);
    }

    /// Runs a piece of the service's work until it ends or the service stops; shutdown waits
    /// for it (up to `shutdown_timeout_secs`).
    pub fn spawn_worker<F>(&self, what: &'static str, work: F)
    where
        F: Future<Output = Result<(), KitError>> + Send + 'static,
    {
        let service = self.spec.name.as_str();
        self.workers.spawn(async move {
            if let Err(e) = work.await {
                tracing::error!(service, worker = what, error = %e, "Worker stopped with an error.");
            }
        });
    }

    /// The tracker of the service's work, for tasks started while it runs (one per sync, one
    /// per request); shutdown waits for them as for workers.
    pub fn task_tracker(&self) -> TaskTracker {
        self.workers.clone()
    }

    /// Answers `<service>.status` with the service's readiness.
    async fn serve_status(&self, checks: Vec<ReadinessCheck>) -> Result<(), KitError> {
        let name = self.spec.name.as_str();
        let mut endpoint = self
            .micro
            .group(self.subjects.request_group(self.spec.name))
            .endpoint("status")
            .await
            .map_err(|e| KitError::Register {
                service: name,
                reason: e.to_string(),
            })?;
        let token = self.shutdown.clone();
        self.workers.spawn(async move {
            loop {
                let request = tokio::select! {
                    _ = token.cancelled() => break,
                    request = endpoint.next() => match request {
                        Some(request) => request,
                        None => break,
                    },
                };
                let readiness = health::readiness(name, &checks).await;
                let body = serde_json::to_vec(&readiness).unwrap_or_default();
                if let Err(e) = request.respond(Ok(body.into())).await {
                    tracing::warn!(error = %e, "Cannot answer a status request.");
                }
            }
        });
        Ok(())
    }

    /// Serves until `shutdown` resolves, then stops taking new work, lets in-flight work
    /// finish (up to `shutdown_timeout_secs`), deregisters and flushes NATS.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), KitError> {
        let name = self.spec.name.as_str();
        let token = self.shutdown.clone();
        let http_token = token.clone();
        let router = match self.allowed_hosts {
            Some(allowed) => self.router.layer(axum::middleware::from_fn_with_state(
                allowed,
                crate::http::require_allowed_host,
            )),
            None => self.router,
        };
        let server = crate::serve::serve(
            self.listener,
            router,
            self.config.http_header_read_timeout(),
            self.config.shutdown_timeout(),
            async move { http_token.cancelled().await },
        );
        let http = tokio::spawn(server);

        tokio::select! {
            _ = shutdown => {},
            _ = token.cancelled() => {},
        }
        tracing::info!(service = name, "Stopping: finishing in-flight work.");
        token.cancel();
        self.workers.close();
        if tokio::time::timeout(self.config.shutdown_timeout(), self.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = name,
                "In-flight work did not finish within the shutdown timeout."
            );
        }
        if let Err(e) = self.micro.stop().await {
            tracing::warn!(service = name, error = %e, "Cannot deregister the micro service.");
        }
        if let Err(e) = http.await {
            tracing::warn!(service = name, error = %e, "HTTP server task failed.");
        }
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(service = name, error = %e, "Cannot flush NATS on shutdown.");
        }
        if let Some(pool) = self.db {
            pool.close().await;
        }
        tracing::info!(service = name, "Stopped.");
        Ok(())
    }
}
