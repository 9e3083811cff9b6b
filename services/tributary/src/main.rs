//! The `tributary` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;
use tributary::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    tributary::run(Cli::parse()).await
}
