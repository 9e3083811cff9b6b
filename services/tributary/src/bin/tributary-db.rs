//! `tributary-db provision`: the database's provisioning step, run as the owner of the schema
//! before the services start (compose's `db-provision` service). It migrates, creates or
//! updates each service's role and grants it what deploy/postgres/grants.sql says
//! ([`tributary_kit::db::provision`]); the services then connect as those roles with
//! `database.migrate = false`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tributary_kit::db::provision;
use tributary_kit::{Config, ConfigSources};

/// The database's provisioning step.
#[derive(Debug, Parser)]
#[command(name = "tributary-db", version, about)]
struct Cli {
    /// A TOML configuration file (overrides the built-in defaults; TRIBUTARY__… variables
    /// override it). Defaults to $TRIBUTARY_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// As `database.user` (the schema's owner): create the database when missing and its
    /// role may, run the migrations, create or update each `database.roles.<service>` role
    /// with its password, and grant each exactly what deploy/postgres/grants.sql says.
    Provision,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sources = ConfigSources::from_process(Config::file_from_env(cli.config.as_deref()));
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Provision => match provision::provision(&config.database).await {
            Ok(done) => {
                println!(
                    "Database {} is at migration {}; roles granted deploy/postgres/grants.sql:",
                    done.database, done.schema_version
                );
                for (service, role, created) in &done.roles {
                    let how = if *created { "created" } else { "updated" };
                    println!("  {service}: {role} ({how})");
                }
                if done.ran_as_superuser {
                    eprintln!(
                        "warning: provisioning ran as {}, a superuser; the schema's owner with CREATEROLE is enough",
                        config.database.user
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
