//! The Meilisearch backend: in progress.
