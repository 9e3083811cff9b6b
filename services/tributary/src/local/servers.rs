//! Which servers `tributary up` starts for itself: those nobody configured, unless a NATS
//! server that lets no anonymous client in answers on the default port.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use tributary_kit::{Config, ConfigSources};

use super::database_roles::ServiceRoles;
use super::install::{install_if_missing, NATS_SERVER, POSTGRESQL};
use super::nats_users::{url_file, NatsUsers};
use super::{postgres_search_dirs, LocalNats, LocalPostgres, LocalServerError};

/// The default NATS port; an embedded NATS takes it when it is free, so that the other
/// `tributary` commands find it without configuration.
const NATS_PORT: u16 = 4222;

/// The servers `tributary up` started; [`LocalServers::stop`] stops them, last.
#[derive(Debug, Default)]
pub struct LocalServers {
    /// The NATS server, when one was started.
    pub nats: Option<LocalNats>,
    /// The users of the NATS server `tributary up` uses when `nats.user` is not configured:
    /// those of its own server, or of one found on the default port that refuses anonymous
    /// clients. Each service connects as its own.
    pub nats_users: Option<NatsUsers>,
    /// The PostgreSQL server, when one was started.
    pub postgres: Option<LocalPostgres>,
    /// The services' roles on that server, when it was started: each service connects as
    /// its own, provisioned by `tributary up` as the cluster's owner.
    pub database_roles: Option<ServiceRoles>,
}

/// What answers on a port where a NATS server might be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsProbe {
    /// Nothing accepts connections there.
    Nothing,
    /// A NATS server that lets anonymous clients in: anyone on the machine may do anything
    /// through it, so `tributary up` does not use it unless `nats.url` names it.
    Anonymous,
    /// A NATS server that requires every client to authenticate.
    AuthRequired,
    /// Something that is not a NATS server (no `INFO` line).
    NotNats,
}

/// Reads the `INFO` line a NATS server sends every client that connects to
/// `127.0.0.1:port`, and says whether it lets anonymous clients in (`auth_required`).
pub fn probe_nats(port: u16) -> NatsProbe {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(300)) else {
        return NatsProbe::Nothing;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return NatsProbe::NotNats;
    }
    let Some(info) = line.strip_prefix("INFO ") else {
        return NatsProbe::NotNats;
    };
    match serde_json::from_str::<serde_json::Value>(info.trim()) {
        Ok(info) if info["auth_required"] == serde_json::Value::Bool(true) => {
            NatsProbe::AuthRequired
        }
        Ok(_) => NatsProbe::Anonymous,
        Err(_) => NatsProbe::NotNats,
    }
}

impl LocalServers {
    /// Starts what is missing and points `config` at it.
    ///
    /// - NATS: unless `nats.url` is set (file or environment), starts `nats-server` with
    ///   JetStream on 4222, running `deploy/nats-server.conf` with passwords of its own
    ///   ([`NatsUsers`]), and writes its URL to `<data_dir>/nats/url` for the other commands.
    ///   A server already on 4222 is used only when it refuses anonymous clients (an earlier
    ///   `tributary up`'s, or one you secured); one that lets anyone in is left alone, and the
    ///   embedded server takes a free port instead.
    /// - PostgreSQL: unless `database.host` or `database.port` is set, starts the private
    ///   cluster under `<data_dir>/postgres` on a free port (made on the first run, used again
    ///   after). A server on 5432 is never adopted unconfigured.
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
        let found = if own_servers || sources.sets("nats.url") {
            NatsProbe::Nothing
        } else {
            probe_nats(NATS_PORT)
        };
        if own_servers || (!sources.sets("nats.url") && found != NatsProbe::AuthRequired) {
            install_if_missing(
                NATS_SERVER,
                path_var.as_deref(),
                Vec::new,
                super::nats::INSTALL_NATS,
                install,
            )
            .await?;
            let port = if own_servers || found != NatsProbe::Nothing {
                0
            } else {
                NATS_PORT
            };
            if found == NatsProbe::Anonymous {
                tracing::warn!("A NATS server that lets anyone in answers on 127.0.0.1:{NATS_PORT}: not using it, as every local user could read secrets through it. Starting Tributary's own on a free port instead; set nats.url to use a server you run.");
            }
            if !config.nats.subject_prefix.is_empty() {
                return Err(LocalServerError::failed(
                    "starting NATS",
                    "nats.subject_prefix is set, but the NATS server `tributary up` starts allows \
                     each service the subjects of deploy/nats-server.conf, which have no prefix: \
                     unset nats.subject_prefix, or set nats.url to a server you run",
                ));
            }
            let users = NatsUsers::ensure(&data_dir)?;
            let nats = LocalNats::start_with_users(&data_dir, port, &users).await?;
            let url_file = url_file(&data_dir);
            std::fs::write(&url_file, format!("{}\n", nats.url()))
                .map_err(|e| LocalServerError::io(&url_file, e))?;
            tracing::info!(url = %nats.url(), data = %nats.dir().display(), "Started NATS with JetStream, each service as its own user (no NATS server was configured).");
            config.nats.url = nats.url();
            servers.nats = Some(nats);
            servers.nats_users = Some(users);
        } else if found == NatsProbe::AuthRequired && !sources.sets("nats.user") {
            tracing::info!(url = %config.nats.url, users = %super::nats_users::users_dir(&data_dir).display(), "Using the NATS server found on 127.0.0.1:{NATS_PORT}, which refuses anonymous clients, each service as its own user.");
            servers.nats_users = Some(NatsUsers::ensure(&data_dir)?);
        }
        // A server found on 5432 is not used unless configured: one that lets this user in
        // without a password lets every local user in, and one that asks for a password needs
        // it configured anyway.
        let configured = sources.sets("database.host") || sources.sets("database.port");
        if own_servers || !configured {
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
            let roles = ServiceRoles::ensure(&data_dir)?;
            roles.fill(config);
            servers.database_roles = Some(roles);
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
            let data_dir = nats.dir().parent().map(std::path::Path::to_path_buf);
            nats.stop().await?;
            if let Some(data_dir) = data_dir {
                let _ = std::fs::remove_file(url_file(&data_dir));
            }
            tracing::info!("Stopped NATS.");
        }
        Ok(())
    }
}
