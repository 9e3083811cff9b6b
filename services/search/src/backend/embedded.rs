//! The embedded index (tantivy): in progress.
