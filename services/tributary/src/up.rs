//! `tributary up`: the whole mesh in one process. The services still talk only over NATS;
//! sharing a process only saves memory and start-up time. NATS and PostgreSQL are started
//! too when nobody configured them and none answers ([`crate::local`]).

use std::future::Future;

use clap::Args;
use futures::future::join_all;
use tokio_util::sync::CancellationToken;
use tributary_kit::{Config, ConfigSources, KitError, ServiceRuntime};
use tributary_proto::ServiceName;

use crate::local::database_roles::ServiceRoles;
use crate::local::nats_users::{NatsUsers, ADMIN_USER};
use crate::local::LocalServers;

/// `tributary up`'s options.
#[derive(Debug, Clone, Default, Args)]
pub struct UpArgs {
    /// Also install the demo connector instance `demo`, which syncs a bundled sample set
    /// (people, conversations and messages, calendar events, documents), and print how to
    /// search it.
    #[arg(long)]
    pub demo: bool,
    /// Start a private NATS and PostgreSQL under the data directory, each on a free port, even
    /// when servers are configured or answer on the default ports.
    #[arg(long)]
    pub own_servers: bool,
    /// Do not install a missing nats-server or PostgreSQL with the system's package manager
    /// (apt-get, as root or with passwordless sudo); say what to install instead.
    #[arg(long)]
    pub no_install: bool,
}

/// The configuration each part of the mesh runs with: the same, but for the NATS user when
/// `tributary up` knows the users of its server ([`NatsUsers`]), and the PostgreSQL role when
/// it runs its own cluster ([`ServiceRoles`]): then each service connects as its own, as in a
/// compose deployment, and the demo as `admin`.
#[derive(Debug)]
pub struct MeshConfig {
    /// The configuration as loaded and completed by `tributary up`.
    pub base: Config,
    /// The NATS server's users, when `nats.user` is not configured.
    pub users: Option<NatsUsers>,
    /// The services' PostgreSQL roles, when `tributary up` runs its own cluster; `base`'s
    /// database user is then the cluster's owner, which provisions them.
    pub roles: Option<ServiceRoles>,
}

impl MeshConfig {
    /// One configuration for everything: the configured NATS user, or none, and the
    /// configured database role.
    pub fn shared(config: Config) -> Self {
        MeshConfig {
            base: config,
            users: None,
            roles: None,
        }
    }

    /// The configuration of the NATS user `user`: `base` with `user`'s password when the
    /// users are known, `base` itself otherwise.
    pub fn as_user(&self, user: &str) -> Config {
        match &self.users {
            Some(users) => users.config_as(&self.base, user),
            None => self.base.clone(),
        }
    }

    /// The configuration `service` runs with: its own NATS user, and its own database role
    /// when the roles are known.
    pub fn of(&self, service: ServiceName) -> Config {
        let config = self.as_user(service.as_str());
        match &self.roles {
            Some(roles) => roles.config_of(&config, service),
            None => config,
        }
    }
}

/// Starts the five services, in order, and returns them started. If one cannot start, the
/// error says what to fix and none keeps running.
pub async fn start_all(config: &MeshConfig) -> Result<Vec<ServiceRuntime>, KitError> {
    Ok(vec![
        tributary_plugin_manager::build(config.of(ServiceName::PluginManager)).await?,
        tributary_connector::build(config.of(ServiceName::Connector)).await?,
        tributary_etl::build(config.of(ServiceName::Etl)).await?,
        tributary_channel::build(config.of(ServiceName::Channel)).await?,
        tributary_search::build(config.of(ServiceName::Search)).await?,
    ])
}

/// Starts the servers nobody configured, runs the mesh until `shutdown` resolves, stops
/// every service cleanly and then the servers it started.
pub async fn run_with_servers(
    mut config: Config,
    sources: &ConfigSources,
    args: UpArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), KitError> {
    let mut servers =
        LocalServers::start_missing(&mut config, sources, args.own_servers, !args.no_install)
            .await
            .map_err(|e| KitError::Unexpected(anyhow::Error::new(e)))?;
    let mesh = MeshConfig {
        base: config,
        users: servers.nats_users.take(),
        roles: servers.database_roles.take(),
    };
    let outcome = run(mesh, args.demo, shutdown).await;
    let stopped = servers
        .stop()
        .await
        .map_err(|e| KitError::Unexpected(anyhow::Error::new(e)));
    outcome.and(stopped)
}

/// Runs the whole mesh until `shutdown` resolves, then stops every service cleanly. With
/// `demo`, installs the demo connector instance once the services are up.
pub async fn run(
    mesh: MeshConfig,
    demo: bool,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), KitError> {
    // The streams and consumers first, as their own identity: no service may make them.
    tributary_kit::nats::provision_all(&mesh.as_user(tributary_kit::nats::PROVISION_USER)).await?;
    // The database's too, as the cluster's owner, when each service has its own role.
    if mesh.roles.is_some() {
        tributary_kit::db::provision::provision(&mesh.base.database)
            .await
            .map_err(|e| KitError::Unexpected(anyhow::Error::new(e)))?;
    }
    let runtimes = start_all(&mesh).await?;
    let config = mesh.as_user(ADMIN_USER);
    for rt in &runtimes {
        tracing::info!(service = rt.spec.name.as_str(), health = %format!("http://{}/readyz", rt.http_addr()), "Service ready.");
    }
    tracing::info!(nats = %config.nats.url, database = %config.database.name, "Tributary is up. Press ctrl-c to stop.");
    if let Some(pm) = runtimes
        .iter()
        .find(|rt| rt.spec.name == ServiceName::PluginManager)
    {
        println!("{}", console_line(pm.http_addr(), &config));
    }
    let search_addr = runtimes
        .iter()
        .find(|rt| rt.spec.name == ServiceName::Search)
        .map(ServiceRuntime::http_addr);
    let stop = CancellationToken::new();
    if let (true, Some(search_addr)) = (demo, search_addr) {
        let config = config.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                outcome = crate::demo::install_and_announce(&config, search_addr) => {
                    if let Err(e) = outcome {
                        eprintln!("error: the demo data could not be set up: {e:#}");
                    }
                }
                _ = stop.cancelled() => {}
            }
        });
    }
    let running = join_all(runtimes.into_iter().map(|rt| {
        let stop = stop.clone();
        async move { rt.run_until_stopped(stop.cancelled_owned()).await }
    }));
    tokio::pin!(running);
    let results = tokio::select! {
        results = &mut running => results,
        _ = shutdown => {
            stop.cancel();
            running.await
        }
    };
    results.into_iter().collect::<Result<Vec<()>, KitError>>()?;
    Ok(())
}

/// The line `tributary up` prints about the admin console: its URL, and where the admin token
/// that signs in is (its file, or the setting that holds it).
pub fn console_line(addr: std::net::SocketAddr, config: &tributary_kit::Config) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let file = &config.plugin_manager.admin_token_file;
    let token = if file.as_os_str().is_empty() {
        "plugin_manager.admin_token".to_owned()
    } else {
        file.display().to_string()
    };
    format!(
        "The admin console: http://{host}:{}/ (sign in with the admin token in {token})",
        addr.port()
    )
}

#[cfg(test)]
mod console_line_tests {
    use super::*;

    #[test]
    fn the_console_line_names_the_url_and_where_the_token_is() {
        let mut config = tributary_kit::Config::defaults().unwrap_or_else(|e| panic!("{e}"));
        config.plugin_manager.admin_token_file = "/data/secrets/admin.token".into();
        let addr: std::net::SocketAddr = "0.0.0.0:8081".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            console_line(addr, &config),
            "The admin console: http://127.0.0.1:8081/ (sign in with the admin token in /data/secrets/admin.token)"
        );
    }
}
