//! Runs the service on its own; `tributary up` runs it with the other four.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tributary_kit::exit_code(
        tributary_kit::run_service_main(
            tributary_connector::SERVICE.name,
            tributary_connector::build,
        )
        .await,
    )
}
