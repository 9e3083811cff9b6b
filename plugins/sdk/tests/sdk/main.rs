//! Integration tests of the SDK through its public API and test harness, over real HTTP.

mod connector;
mod context;
mod credentials;
mod egress;
mod http;
mod paginate;
mod tokens;

use std::time::Duration;

use tributary_plugin_sdk::{PluginHttpBuilder, RetryPolicy};

/// Fast retries, so a test of retrying does not wait the default backoff.
fn fast_retries(builder: PluginHttpBuilder, max_attempts: u32) -> PluginHttpBuilder {
    builder.retry_policy(RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    })
}

/// The grant that lets a test reach the fixture server.
const LOCAL: &str = "network:outbound:127.0.0.1";
