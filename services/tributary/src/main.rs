//! The `tributary` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;
use tributary::Cli;

/// The service allocates many small strings and JSON values per item; mimalloc serves them
/// faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tributary::run(Cli::parse()).await
}
