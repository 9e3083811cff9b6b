//! Meilisearch's answers in [`SearchError`] terms: client errors, and the task objects of
//! `GET /tasks/{uid}`.
//!
//! Task objects are read as JSON rather than as the SDK's `Task`, which (in 0.33) has no
//! `canceled` status and would turn a cancelled task into a parse error.

use serde_json::Value;

use crate::backend::SearchError;

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// `enqueued` or `processing`.
    Pending,
    /// `succeeded`.
    Succeeded,
    /// `failed` or `canceled`, with the error's code and message.
    Failed { code: String, message: String },
}

/// Reads a task object's status (and error, when it failed or was cancelled).
pub(super) fn outcome(task: &Value) -> Result<Outcome, String> {
    let text = |field: &str| task["error"][field].as_str().map(str::to_owned);
    match task["status"].as_str() {
        Some("enqueued" | "processing") => Ok(Outcome::Pending),
        Some("succeeded") => Ok(Outcome::Succeeded),
        Some("failed") => Ok(Outcome::Failed {
            code: text("code").unwrap_or_else(|| "unknown".to_owned()),
            message: text("message").unwrap_or_else(|| "the task failed".to_owned()),
        }),
        Some("canceled") => Ok(Outcome::Failed {
            code: "canceled".to_owned(),
            message: match task["canceledBy"].as_u64() {
                Some(by) => format!("the task was canceled by task {by}"),
                None => "the task was canceled".to_owned(),
            },
        }),
        Some(other) => Err(format!("the task has an unknown status `{other}`")),
        None => Err(format!("not a task object: {task}")),
    }
}

/// An SDK error as one line: its message and each cause (a refused connection says so), with
/// the API key cut out wherever it might appear.
pub(super) fn describe(err: &meilisearch_sdk::errors::Error, api_key: Option<&str>) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    match api_key {
        Some(key) if !key.is_empty() => message.replace(key, "[redacted]"),
        _ => message,
    }
}

/// `operation` failed for the reason given.
pub(super) fn failed(operation: &'static str, message: impl Into<String>) -> SearchError {
    // A transport error repeats the URL, which may carry credentials.
    let message = message.into();
    SearchError::Meilisearch {
        operation,
        message: tributary_proto::redact::redact_urls(&message).into_owned(),
    }
}

/// The oldest Meilisearch (major, minor) whose settings the backend uses: granular filterable
/// attributes and `facetSearch` came in 1.14.
pub(super) const MINIMUM_VERSION: (u64, u64) = (1, 14);

/// Refuses a Meilisearch `found` older than [`MINIMUM_VERSION`], naming the version.
pub(super) fn require_version(found: &str) -> Result<(), String> {
    match version_at_least(found, MINIMUM_VERSION) {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "Meilisearch {found} is too old: the search service needs {}.{} or later",
            MINIMUM_VERSION.0, MINIMUM_VERSION.1
        )),
        None => Err(format!("`{found}` is not a Meilisearch version")),
    }
}

/// Whether the version `found` (`1.50.0`, `1.14.0-rc.1`) is at least `minimum` (major, minor);
/// `None` when `found` does not start with two numbers.
pub(super) fn version_at_least(found: &str, minimum: (u64, u64)) -> Option<bool> {
    let mut parts = found.trim().trim_start_matches('v').split(['.', '-']);
    let major = parts.next()?.parse::<u64>().ok()?;
    let minor = parts.next()?.parse::<u64>().ok()?;
    Some((major, minor) >= minimum)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_never_shows_the_credentials_of_the_server_url() {
        let error = super::failed(
            "check key",
            "cannot reach https://ada:hunter2@search.example: connection refused",
        );
        let shown = error.to_string();
        assert!(
            !shown.contains("hunter2") && shown.contains("https://***@search.example"),
            "{shown}"
        );
    }

    #[test]
    fn statuses_are_read_with_their_errors() {
        assert_eq!(
            outcome(&json!({"status": "processing"})),
            Ok(Outcome::Pending)
        );
        let failed = json!({"status": "failed", "error": {"message": "m", "code": "c",
            "type": "invalid_request", "link": "https://docs.meilisearch.com/errors#c"}});
        assert_eq!(
            outcome(&failed),
            Ok(Outcome::Failed {
                code: "c".into(),
                message: "m".into()
            })
        );
        let canceled = outcome(&json!({"status": "canceled", "canceledBy": 9})).unwrap();
        assert!(matches!(canceled, Outcome::Failed { code, message }
            if code == "canceled" && message.contains("task 9")));
        assert!(outcome(&json!({"status": "paused"})).is_err());
    }

    #[test]
    fn versions_are_compared_by_major_then_minor() {
        assert_eq!(version_at_least("1.50.0", (1, 14)), Some(true));
        assert_eq!(version_at_least("1.14.0-rc.1", (1, 14)), Some(true));
        assert_eq!(version_at_least("2.0.0", (1, 14)), Some(true));
        assert_eq!(version_at_least("1.11.3", (1, 14)), Some(false));
        assert_eq!(version_at_least("0.30.5", (1, 14)), Some(false));
        assert_eq!(version_at_least("nightly", (1, 14)), None);
    }
}
