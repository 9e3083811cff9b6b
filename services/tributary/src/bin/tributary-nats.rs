//! `tributary-nats provision`: NATS's provisioning step, run as the NATS user `provision`
//! before the services start (compose's `nats-provision` service; `tributary up` calls the
//! same function itself). It creates or updates every JetStream stream (sized by
//! `nats.max_bytes`), every service's durable pull consumer (filtered to its stream's
//! subject) and the consumers `[[nats.consumers]]` lists for your own programs
//! ([`tributary_kit::provision::provision_all`]). No service may create or change a stream or
//! a consumer itself (issue 27, findings 2 and 11).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tributary_kit::{Config, ConfigSources};

/// NATS's provisioning step.
#[derive(Debug, Parser)]
#[command(name = "tributary-nats", version, about)]
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
    /// As `nats.user` (`provision` in deploy/nats-server.conf): create or update the seven
    /// streams, the services' durable pull consumers and the `[[nats.consumers]]`.
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
        Command::Provision => match tributary_kit::provision::provision_all(&config).await {
            Ok(done) => {
                println!("NATS at {} provisioned:", config.nats.url);
                for stream in &done.streams {
                    println!("  stream {stream}");
                }
                for consumer in &done.consumers {
                    println!("  consumer {consumer}");
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
