//! The Meilisearch backend: in progress (being written beside this checkout).

use tributary_kit::config::SearchConfig;

use crate::backend::SearchError;

/// Meilisearch, not yet built.
#[derive(Debug)]
pub struct MeilisearchBackend;

impl MeilisearchBackend {
    /// Not yet built.
    pub fn new(
        _config: &SearchConfig,
    ) -> Result<crate::backend::embedded::EmbeddedBackend, SearchError> {
        Err(SearchError::Rebuild("Meilisearch is not built yet"))
    }
}
