//! The one error type every SDK call and every plugin returns.

use tributary_proto::grants::PermissionDenied;

/// Why a plugin call failed: the caller's configuration, a refusal at the plugin boundary, the
/// remote service, or a transient condition worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The manifest does not grant what the call needs; names the missing permission.
    #[error(transparent)]
    PermissionDenied(#[from] PermissionDenied),
    /// The instance's configuration is missing a field or has one of the wrong type.
    #[error("config field `{field}`: {message}")]
    Config {
        /// The path of the field, such as `tenantId` or `auth.token`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The remote service answered with an error status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// What was asked (method, host, path) and the start of the answer.
        message: String,
    },
    /// A condition that may pass: a connection refused or reset, a timeout.
    #[error("transient: {0}")]
    Transient(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl PluginError {
    /// Whether trying again later may succeed: a [`PluginError::Transient`] error, or an HTTP
    /// 429 or 5xx answer. A refusal, a bad config or a 4xx never will.
    pub fn is_transient(&self) -> bool {
        match self {
            PluginError::Transient(_) => true,
            PluginError::Http { status, .. } => *status == 429 || *status >= 500,
            PluginError::PermissionDenied(_)
            | PluginError::Config { .. }
            | PluginError::Other(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retryable_failures_are_transient() {
        let http = |status| PluginError::Http {
            status,
            message: String::new(),
        };
        assert!(PluginError::Transient("reset".into()).is_transient());
        assert!(http(429).is_transient());
        assert!(http(503).is_transient());
        assert!(!http(404).is_transient());
        assert!(!PluginError::Other("x".into()).is_transient());
        let denied = tributary_proto::grants::Grants::default()
            .check_publish("data.x")
            .unwrap_err();
        assert!(!PluginError::from(denied).is_transient());
    }
}
