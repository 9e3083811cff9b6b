//! Why a batch could not be written, sorted by what the pipeline should do about it.

/// A batch that could not be written. The transaction was rolled back: nothing of it is
/// stored and nothing is acked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL cannot be reached or is shutting down; wait and write the batch again.
    #[error("PostgreSQL is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Another writer changed the same records at the same time; write the batch again.
    #[error("a concurrent write touched the same records: {0}")]
    Conflict(String),
    /// PostgreSQL refused the batch; one of its items is at fault.
    #[error("PostgreSQL refused the batch: {0}")]
    Refused(#[source] sqlx::Error),
    /// A row or an event could not be written as JSON.
    #[error("cannot encode a row or an event: {0}")]
    Encode(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // serialization_failure, deadlock_detected, unique_violation (a racing insert)
                Some("40001" | "40P01" | "23505") => StoreError::Conflict(db.message().to_owned()),
                // connection_exception, admin_shutdown, crash_shutdown, cannot_connect_now,
                // insufficient_resources, read_only_sql_transaction (a failover)
                Some(code)
                    if code.starts_with("08")
                        || code.starts_with("57P")
                        || code.starts_with("53")
                        || code == "25006" =>
                {
                    StoreError::Unavailable(e)
                }
                _ => StoreError::Refused(e),
            },
            _ => StoreError::Refused(e),
        }
    }
}

impl StoreError {
    /// Whether writing the same batch again can succeed without changing it.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }
}
