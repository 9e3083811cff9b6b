//! The `tributary` command line: `tributary up` runs all five services in one process
//! (starting NATS and PostgreSQL too when none is configured or running, [`local`]),
//! `tributary plugins …` manages the plugin registry ([`plugins_cli`]) and builds, tests and
//! packages third-party plugins ([`plugin_kit`]), `tributary sync …`
//! runs and follows connector syncs ([`sync_cli`]), `tributary send …` sends a message
//! through a channel instance ([`send_cli`]), `tributary search …` searches the index and
//! rebuilds it ([`search_cli`]), `tributary people …` shows why a person is who she is and
//! mends a merge ([`people_cli`]). `tributary db provision`, `tributary nats provision` and
//! `tributary meili provision` are a deployment's provisioning steps ([`provision_cli`]).

pub mod demo;
pub mod local;
pub mod output;
pub mod people_cli;
pub mod plugin_kit;
pub mod plugins_cli;
pub mod provision_cli;
pub mod search_cli;
pub mod send_cli;
pub mod sync_cli;
pub mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tributary_kit::config::{Config, ConfigCheck};
use tributary_kit::{ConfigError, ConfigSources, KitError};

/// Tributary: a self-hosted integration hub.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about)]
pub struct Cli {
    /// A TOML configuration file (overrides the built-in defaults; TRIBUTARY__… variables
    /// override it). Defaults to $TRIBUTARY_CONFIG.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run all five services (plugin-manager, connector, etl, channel, search) in one process,
    /// starting NATS and PostgreSQL under the data directory when none is configured or
    /// answering on the default port.
    Up(up::UpArgs),
    /// Print the effective configuration's non-secret settings and exit; fails, naming the key,
    /// when it is invalid.
    CheckConfig,
    /// Manage plugins: list, install, configure, enable, upgrade, uninstall, audit, keys.
    Plugins(plugins_cli::PluginsArgs),
    /// Sync a connector instance now and follow it (`tributary sync <instance>`), list every
    /// instance's sync state (`tributary sync status`), or stop a sync (`… cancel <instance>`).
    Sync(sync_cli::SyncArgs),
    /// Send a message through a channel instance:
    /// `tributary send <instance> --to <address> "text"`.
    Send(send_cli::SendArgs),
    /// Search everything indexed: `tributary search "budget review" --type message`;
    /// rebuild the index from PostgreSQL: `tributary search reindex`.
    Search(search_cli::SearchArgs),
    /// People across sources: `tributary people show <id>` (her sources and the merges that
    /// built her), `unmerge <id> [--source <instance>]`, `merge <a> <b>`, `suggestions`,
    /// `accept <a> <b>`, `reject <a> <b>`, `shared`.
    People(people_cli::PeopleArgs),
    /// The database's provisioning step (compose's `db-provision`):
    /// `tributary db provision` migrates as the schema's owner and grants each service's role.
    Db(provision_cli::DbArgs),
    /// NATS's provisioning step (compose's `nats-provision`): `tributary nats provision`
    /// creates or updates the streams and durable consumers as the NATS user `provision`.
    Nats(provision_cli::NatsArgs),
    /// Meilisearch's provisioning step (compose's `meili-provision`):
    /// `tributary meili provision` makes the search service's own key with the master key.
    Meili(provision_cli::MeiliArgs),
}

impl Command {
    /// Whether the command connects as the NATS admin user of the servers `tributary up`
    /// started, when the configuration names no NATS server or user: every command that asks
    /// the mesh does; `up` runs the servers itself, and the provisioning steps connect only
    /// with the credentials they are given.
    fn connects_as_local_admin(&self) -> bool {
        !matches!(
            self,
            Command::Up(_) | Command::Db(_) | Command::Nats(_) | Command::Meili(_)
        )
    }
}

/// Runs a parsed command line: loads the configuration, runs the command, and returns the
/// process exit code (errors are printed on standard error).
pub async fn run(cli: Cli) -> ExitCode {
    let sources = ConfigSources::from_process(Config::file_from_env(cli.config.as_deref()));
    let mut config = match Config::load(&sources) {
        Ok(config) => config,
        Err(e) => return tributary_kit::exit_code(Err(e.into())),
    };
    if cli.command.connects_as_local_admin() {
        if let Err(e) = local::nats_users::connect_as_admin(&mut config, &sources) {
            return tributary_kit::exit_code(Err(KitError::Unexpected(anyhow::Error::new(e))));
        }
    }
    match cli.command {
        Command::Up(args) => tributary_kit::exit_code(up(config, &sources, args).await),
        Command::CheckConfig => check_config(&config),
        Command::Plugins(args) => plugins_cli::run(&config, args).await,
        Command::Sync(args) => sync_cli::run(&config, args).await,
        Command::Send(args) => send_cli::run(&config, args).await,
        Command::Search(args) => search_cli::run(&config, args).await,
        Command::People(args) => people_cli::run(&config, args).await,
        Command::Db(args) => provision_cli::run_db(&config, args).await,
        Command::Nats(args) => provision_cli::run_nats(&config, args).await,
        Command::Meili(args) => provision_cli::run_meili(&config, args).await,
    }
}

/// `tributary up`: makes the local keys when none are configured, then runs the mesh (and the
/// servers it needs) until SIGINT or SIGTERM.
async fn up(mut config: Config, sources: &ConfigSources, args: up::UpArgs) -> Result<(), KitError> {
    let _telemetry = tributary_kit::telemetry::init(&config.telemetry, "tributary")?;
    let made = tributary_plugin_manager::keys::ensure_local_keys(&mut config).map_err(|e| {
        KitError::Unexpected(anyhow::anyhow!(
            "cannot write the local keys under {}: {e}",
            config.data_dir.display()
        ))
    })?;
    for key in made {
        tracing::info!(file = %key.file.display(), "Made a local key: {}.", key.purpose);
    }
    up::run_with_servers(config, sources, args, tributary_kit::shutdown::signal()).await
}

/// What each service checks of the configuration before it starts, beyond its shape: one
/// function per service, the same one its `build` runs.
const START_UP_CHECKS: [ConfigCheck; 4] = [
    tributary_plugin_manager::check_config,
    tributary_connector::check_config,
    tributary_etl::check_config,
    tributary_search::check_config,
];

/// `tributary check-config`: every check the services run at start-up, on the configuration
/// `tributary up` would run with (the keys it makes when none is configured are assumed, not
/// written); then the settings that are not secret. Exits 1 naming each key at fault.
fn check_config(config: &Config) -> ExitCode {
    let mut assumed = config.clone();
    let made_by_up = tributary_plugin_manager::keys::assume_local_keys(&mut assumed);
    let problems: Vec<ConfigError> = START_UP_CHECKS
        .iter()
        .filter_map(|check| check(&assumed).err())
        .collect();
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        return ExitCode::FAILURE;
    }
    outln!("configuration is valid");
    outln!("nats.url = {}", config.nats.url);
    outln!(
        "database = {}@{}:{}/{}",
        config.database.user,
        config.database.host,
        config.database.port,
        config.database.name
    );
    for service in tributary_proto::ServiceName::ALL {
        outln!("{service}: http://{}", config.http_addr_of(service));
    }
    for (setting, file) in made_by_up {
        outln!(
            "{setting} is not set: `tributary up` makes one in {} (a service started on its own refuses to start without it)",
            file.display()
        );
    }
    ExitCode::SUCCESS
}
