//! The search service: indexes every data event and answers search queries.
//!
//! Data events arrive on `data.*` through the durable pull consumer `search-indexer`; the
//! [`indexer`] turns each into versioned [`document::IndexChange`]s and applies them in
//! batches to a [`backend::SearchBackend`]: the embedded tantivy index by default, Meilisearch
//! when `search.meilisearch_url` is set. [`api`] answers `GET /search` and `search.query`;
//! [`reindex`] rebuilds the index from PostgreSQL beside the live one. `main.rs` only runs
//! [`build`] until a signal arrives, and `tributary up` runs it next to the other four.

pub mod api;
pub mod backend;
pub mod document;
pub mod indexer;
pub mod query;
pub mod reindex;

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tributary_kit::config::SearchConfig;
use tributary_kit::health::ReadinessCheck;
use tributary_kit::http::{bearer_token_from, inline_or_file};
use tributary_kit::{Config, ConfigError, KitError, ServiceRuntime, ServiceSpec};
use tributary_proto::streams::ConsumerKey;
use tributary_proto::ServiceName;

use crate::backend::embedded::EmbeddedBackend;
use crate::backend::meilisearch::{keys, MeilisearchBackend};
use crate::backend::{SearchBackend, SearchError};
use crate::indexer::Indexer;
use crate::reindex::Reindexer;

/// What this service is, for NATS registration and health.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: ServiceName::Search,
    version: env!("CARGO_PKG_VERSION"),
    description: "Indexes every data event and answers search queries.",
    uses_database: false,
};

/// Where the embedded index lives: `<data_dir>/search/<index_name>`.
pub fn embedded_index_dir(config: &Config) -> PathBuf {
    config
        .data_dir
        .join("search")
        .join(&config.search.index_name)
}

/// The configured backend: Meilisearch when `search.meilisearch_url` is set, otherwise the
/// embedded index, opened (or created) on disk.
pub fn open_backend(config: &Config) -> Result<Arc<dyn SearchBackend>, SearchError> {
    if config.search.uses_meilisearch() {
        let mut settings = config.search.clone();
        settings.meilisearch_api_key =
            meilisearch_key(&config.search).map_err(|e| SearchError::Meilisearch {
                operation: "read key",
                message: e.to_string(),
            })?;
        Ok(Arc::new(MeilisearchBackend::new(&settings)?))
    } else {
        Ok(Arc::new(EmbeddedBackend::open(
            &embedded_index_dir(config),
            config.search.embedded_writer_memory_mb,
        )?))
    }
}

fn index_failed(e: SearchError) -> KitError {
    KitError::Unexpected(anyhow::anyhow!("cannot open the search index: {e}"))
}

/// Checks what the search service reads of `config` beyond its shape, as [`build`] does
/// before it starts: `tributary check-config` runs it too.
pub fn check_config(config: &Config) -> Result<(), ConfigError> {
    if config.search.uses_meilisearch() {
        meilisearch_key(&config.search)?;
    }
    api_token(config).map(|_| ())
}

/// Meilisearch's API key: `search.meilisearch_api_key`, or the file
/// `search.meilisearch_api_key_file` names (0600, as `tributary meili provision` writes it);
/// empty when neither is set (a Meilisearch without a master key).
pub fn meilisearch_key(search: &SearchConfig) -> Result<SecretString, ConfigError> {
    if search.meilisearch_api_key.expose_secret().trim().is_empty()
        && search.meilisearch_api_key_file.as_os_str().is_empty()
    {
        return Ok(SecretString::default());
    }
    inline_or_file(
        &search.meilisearch_api_key,
        &search.meilisearch_api_key_file,
        "search.meilisearch_api_key",
        "Meilisearch's API key",
    )
}

/// `search.api_token` (or the file `search.api_token_file` names), long enough.
fn api_token(config: &Config) -> Result<secrecy::SecretString, ConfigError> {
    bearer_token_from(
        &config.search.api_token,
        &config.search.api_token_file,
        "search.api_token",
        "the search API's bearer token",
    )
}

/// Starts the service: opens the index and applies its settings, connects to NATS,
/// opens the `search-indexer` consumer (provisioned beforehand), runs the indexer and serves the query API.
pub async fn build(config: Config) -> Result<ServiceRuntime, KitError> {
    let settings = config.search.clone();
    let token = api_token(&config)?;
    let backend = open_backend(&config).map_err(index_failed)?;
    if config.search.uses_meilisearch() {
        let key = meilisearch_key(&config.search)?;
        keys::refuse_key_manager(&config.search.meilisearch_url, Some(key.expose_secret()))
            .await
            .map_err(index_failed)?;
    }
    backend.prepare().await.map_err(index_failed)?;
    let checked = backend.clone();
    let index_ready = ReadinessCheck::new("index", move || {
        let backend = checked.clone();
        async move { backend.check().await.map_err(|e| e.to_string()) }
    });
    let mut runtime = ServiceRuntime::start_with_checks(SERVICE, config, vec![index_ready]).await?;
    runtime.merge_routes(api::router(backend.clone(), token));

    let consumer = tributary_kit::nats::open_consumer(
        &runtime.jetstream,
        &runtime.subjects,
        ConsumerKey::SearchIndexer,
        indexer::delivery_limits(&runtime.config),
    )
    .await?;
    let indexer = Indexer::new(
        backend.clone(),
        runtime.jetstream.clone(),
        &runtime.subjects,
        settings,
    );
    let shutdown = runtime.shutdown.clone();
    runtime.spawn_worker("indexer", async move {
        indexer.run(consumer, shutdown).await;
        Ok(())
    });
    let reindexer = Reindexer::new(
        backend.clone(),
        runtime.config.database.clone(),
        runtime.nats.clone(),
        &runtime.subjects,
        runtime.task_tracker(),
    );
    api::serve(&runtime, backend, reindexer).await?;
    Ok(runtime)
}
