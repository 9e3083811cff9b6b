//! The `tributary` binary.

use std::process::ExitCode;

use clap::Parser;
use tributary::{Cli, Command};
use tributary_kit::{config::Config, ConfigSources, KitError};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tributary_kit::exit_code(run(cli).await)
}

async fn run(cli: Cli) -> Result<(), KitError> {
    let sources = ConfigSources::from_process(Config::file_from_env(cli.config.as_deref()));
    let config = Config::load(&sources)?;
    match cli.command {
        Command::Up => {
            let _telemetry = tributary_kit::telemetry::init(&config.telemetry, "tributary")?;
            tributary::up::run(config, tributary_kit::shutdown::signal()).await
        }
        Command::CheckConfig => {
            println!("configuration is valid");
            println!("nats.url = {}", config.nats.url);
            println!(
                "database = {}@{}:{}/{}",
                config.database.user,
                config.database.host,
                config.database.port,
                config.database.name
            );
            for service in tributary_proto::ServiceName::ALL {
                println!("{service}: http://{}", config.http_addr_of(service));
            }
            Ok(())
        }
    }
}
