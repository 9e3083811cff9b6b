//! The Tributary plugin SDK.
//!
//! A plugin is a directory with a `plugin.json` manifest and a Rust type implementing
//! [`ConnectorPlugin`] or [`ChannelPlugin`]. Each instance is handed a [`PluginContext`]: its
//! config ([`require_config`]), a logger, an HTTP client ([`PluginHttp`]), event emission and
//! data access, every call checked against what its manifest grants. Helpers: [`with_retry`]
//! for transient failures, [`paginate`] for cursor-paged APIs, [`channel`] for what channels
//! share (phone numbers, pair conversation ids, error bodies cut short), [`validate_manifest`]
//! to check a manifest the way the plugin manager will. The `testing` feature adds a test
//! harness ([`testing`]).

use std::path::Path;

pub mod channel;
mod config;
mod context;
mod error;
mod http;
mod paginate;
mod retry;
pub mod signatures;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod traits;

pub use config::require_config;
pub use context::{
    DataReader, EventSink, JournalLevel, KeyValueStore, LogJournal, PluginContext,
    PluginContextBuilder, PluginData, PluginEvent, PluginKv,
};
pub use error::PluginError;
pub use http::{
    AccessTokens, HttpRequest, HttpResponse, PluginHttp, PluginHttpBuilder,
    DEFAULT_MAX_RESPONSE_BYTES,
};
pub use paginate::{paginate, paginate_pages, Page};
/// HTTP methods, statuses, URLs and header types, as [`PluginHttp`] takes and answers them.
/// The HTTP client itself is not handed out: every request goes through [`PluginHttp`]'s
/// checks.
pub use reqwest::{header, Method, StatusCode, Url};
pub use retry::{parse_retry_after, with_retry, RetryPolicy};
/// Secret strings for config fields, the version the SDK uses.
pub use secrecy;
pub use traits::{
    ChannelPlugin, ConnectorPlugin, Cursor, DeliveryStatusUpdate, InboundMessage, IncomingEvent,
    IncomingWebhook, OutboundMessage, Participant, SentMessage, SyncRequest, SyncStep,
    WebhookRejection, WebhookResponse, WebhookVerdict,
};
pub use tributary_proto::events::SyncMode;
pub use tributary_proto::grants::{Grants, PermissionDenied};
pub use tributary_proto::item::{ConnectorItem, ItemOperation};
pub use tributary_proto::manifest::{
    ManifestErrors, ManifestProblem, Permission, PluginManifest, PluginType,
};
pub use tributary_proto::EntityType;

/// A plugin directory could not be read as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum ManifestFileError {
    /// `plugin.json` could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It was read, and it has problems.
    #[error("{path}: {errors}")]
    Invalid {
        /// The file.
        path: String,
        /// Every problem, each naming its field.
        errors: ManifestErrors,
    },
}

/// Reads and validates `<dir>/plugin.json`, reporting every problem at once.
pub fn validate_manifest(dir: &Path) -> Result<PluginManifest, ManifestFileError> {
    let path = dir.join("plugin.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    PluginManifest::parse(&text).map_err(|errors| ManifestFileError::Invalid {
        path: path.display().to_string(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_manifest_file_names_the_file_and_the_field() {
        let dir = std::env::temp_dir().join(format!("sdk-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plugin.json"), r#"{"id": "x"}"#).unwrap();
        let err = validate_manifest(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("plugin.json"), "{err}");
        assert!(err.contains("`id`") && err.contains("`version`"), "{err}");
    }

    #[test]
    fn a_missing_manifest_is_a_read_error() {
        let err = validate_manifest(Path::new("/nonexistent-plugin")).unwrap_err();
        assert!(matches!(err, ManifestFileError::Read { .. }));
    }
}
