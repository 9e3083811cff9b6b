//! Runs the service on its own; `tributary up` runs it with the other four.

use std::process::ExitCode;

/// The service allocates many small strings and JSON values per item; mimalloc serves them
/// faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tributary_kit::exit_code(
        tributary_kit::run_service_main(tributary_etl::SERVICE.name, tributary_etl::build).await,
    )
}
