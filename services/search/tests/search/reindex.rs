//! reindex
