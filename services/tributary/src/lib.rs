//! The `tributary` command line: `tributary up` runs all five services in one process.

pub mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Run all five services (plugin-manager, connector, etl, channel, search) in one process.
    Up,
    /// Print the effective configuration's non-secret settings and exit; fails, naming the key,
    /// when it is invalid.
    CheckConfig,
}
