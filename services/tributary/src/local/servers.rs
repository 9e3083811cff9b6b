//! Which servers `tributary up` starts for itself: only those nobody configured and nothing
//! answers for on the default port.

use tributary_kit::{Config, ConfigSources};

use super::install::{install_if_missing, NATS_SERVER, POSTGRESQL};
use super::{answers_on, postgres_search_dirs, LocalNats, LocalPostgres, LocalServerError};

/// The default NATS port; an embedded NATS takes it when it is free, so that the other
/// `tributary` commands find it without configuration.
const NATS_PORT: u16 = 4222;
/// The default PostgreSQL port.
const POSTGRES_PORT: u16 = 5432;

/// The servers `tributary up` started; [`LocalServers::stop`] stops them, last.
#[derive(Debug, Default)]
pub struct LocalServers {
    /// The NATS server, when one was started.
    pub nats: Option<LocalNats>,
    /// The PostgreSQL server, when one was started.
    pub postgres: Option<LocalPostgres>,
}

impl LocalServers {
    /// Starts what is missing and points `config` at it.
    ///
    /// - NATS: unless `nats.url` is set (file or environment) or something answers on
    ///   127.0.0.1:4222, starts `nats-server` with JetStream, on 4222.
    /// - PostgreSQL: unless `database.host` or `database.port` is set or something answers
    ///   on 127.0.0.1:5432, starts the private cluster under `<data_dir>/postgres` on a free
    ///   port. Unless the database is configured, a private cluster made by an earlier run is
    ///   used again, so its data is not left behind when another server appears on 5432.
    ///
    /// With `own_servers`, both are started whatever answers, each on a free port. With
    /// `install`, a server program that is missing is installed first where the system's
    /// package manager allows ([`super::install`]).
    pub async fn start_missing(
        config: &mut Config,
        sources: &ConfigSources,
        own_servers: bool,
        install: bool,
    ) -> Result<Self, LocalServerError> {
        let data_dir = config.data_dir.clone();
        let path_var = std::env::var_os("PATH");
        let mut servers = LocalServers::default();
        if own_servers || (!sources.sets("nats.url") && !answers_on(NATS_PORT)) {
            install_if_missing(
                NATS_SERVER,
                path_var.as_deref(),
                Vec::new,
                super::nats::INSTALL_NATS,
                install,
            )
            .await?;
            let port = if own_servers { 0 } else { NATS_PORT };
            let nats = LocalNats::start(&data_dir, port).await?;
            tracing::info!(url = %nats.url(), data = %nats.dir().display(), "Started NATS with JetStream (no NATS server was configured or answering).");
            config.nats.url = nats.url();
            servers.nats = Some(nats);
        }
        let configured = sources.sets("database.host") || sources.sets("database.port");
        let made_before = LocalPostgres::cluster_exists(&data_dir);
        if own_servers || (!configured && (made_before || !answers_on(POSTGRES_PORT))) {
            install_if_missing(
                POSTGRESQL,
                path_var.as_deref(),
                postgres_search_dirs,
                super::postgres::INSTALL_POSTGRES,
                install,
            )
            .await?;
            let postgres = LocalPostgres::start(&data_dir, 0).await?;
            tracing::info!(port = postgres.port(), data = %postgres.dir().display(), "Started a private PostgreSQL cluster.");
            config.database.host = postgres.host().to_owned();
            config.database.port = postgres.port();
            config.database.user = postgres.user().to_owned();
            config.database.password = postgres.password();
            servers.postgres = Some(postgres);
        }
        Ok(servers)
    }

    /// Stops PostgreSQL, then NATS (the services must be stopped already).
    pub async fn stop(mut self) -> Result<(), LocalServerError> {
        if let Some(postgres) = self.postgres.as_mut() {
            postgres.stop().await?;
            tracing::info!("Stopped PostgreSQL.");
        }
        if let Some(nats) = self.nats.as_mut() {
            nats.stop().await?;
            tracing::info!("Stopped NATS.");
        }
        Ok(())
    }
}
