//! The embedded index: tantivy on disk under `<data_dir>/search/<index_name>/`, the default
//! backend when no Meilisearch URL is configured.
//!
//! The directory holds one generation of the index (`gen-<n>/`) and a `CURRENT` file naming
//! it. A rebuild fills the next generation beside the live one, then `CURRENT` is replaced
//! atomically (write and rename), the live index is swapped in memory and the old generation
//! removed. A rebuild cut short by a crash leaves a stray generation, removed at the next
//! start. One process owns the directory (tantivy's writer lock); a second search service on
//! the same directory refuses to start with a message that says so.

pub mod index;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::backend::{ApplyReport, SearchBackend, SearchError};
use crate::document::IndexChange;
use crate::query::{SearchQuery, SearchResults};
use index::TantivyIndex;

const CURRENT: &str = "CURRENT";

fn generation_dir(root: &Path, generation: u64) -> PathBuf {
    root.join(format!("gen-{generation:06}"))
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> SearchError {
    move |e| SearchError::Embedded(format!("{what}: {e}"))
}

#[derive(Debug)]
struct Generation {
    number: u64,
    index: Arc<TantivyIndex>,
}

/// The embedded backend: the live generation, and the next one while a rebuild fills it.
#[derive(Debug)]
pub struct EmbeddedBackend {
    root: PathBuf,
    writer_memory_mb: usize,
    live: RwLock<Arc<Generation>>,
    rebuild: RwLock<Option<Arc<Generation>>>,
}

fn poisoned() -> SearchError {
    SearchError::Embedded("the index state was poisoned by a panic".into())
}

/// Runs blocking index work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SearchError> + Send + 'static,
) -> Result<T, SearchError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SearchError::Embedded(format!("index task failed: {e}")))?
}

impl EmbeddedBackend {
    /// Opens the index under `root` (creating it on first start), removing what an
    /// interrupted rebuild left behind.
    pub fn open(root: &Path, writer_memory_mb: usize) -> Result<Self, SearchError> {
        std::fs::create_dir_all(root)
            .map_err(io_error(format!("cannot create {}", root.display())))?;
        let current = root.join(CURRENT);
        let number = match std::fs::read_to_string(&current) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| {
                SearchError::Embedded(format!(
                    "{} does not name an index generation: `{}`",
                    current.display(),
                    text.trim()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_current(root, 1)?;
                1
            }
            Err(e) => return Err(io_error(format!("cannot read {}", current.display()))(e)),
        };
        let index = TantivyIndex::open_or_create(&generation_dir(root, number), writer_memory_mb)?;
        remove_other_generations(root, number);
        Ok(Self {
            root: root.to_owned(),
            writer_memory_mb,
            live: RwLock::new(Arc::new(Generation {
                number,
                index: Arc::new(index),
            })),
            rebuild: RwLock::new(None),
        })
    }

    fn live(&self) -> Result<Arc<Generation>, SearchError> {
        Ok(self.live.read().map_err(|_| poisoned())?.clone())
    }

    fn rebuilding(&self) -> Result<Option<Arc<Generation>>, SearchError> {
        Ok(self.rebuild.read().map_err(|_| poisoned())?.clone())
    }

    /// The directory of the live generation.
    pub fn live_path(&self) -> Result<PathBuf, SearchError> {
        Ok(self.live()?.index.path.clone())
    }
}

fn write_current(root: &Path, number: u64) -> Result<(), SearchError> {
    let tmp = root.join(format!("{CURRENT}.tmp"));
    std::fs::write(&tmp, format!("{number}\n"))
        .map_err(io_error(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, root.join(CURRENT)).map_err(io_error(format!(
        "cannot replace {}",
        root.join(CURRENT).display()
    )))
}

fn remove_other_generations(root: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_other = name
            .strip_prefix("gen-")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n != keep);
        if is_other {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "Cannot remove an old index generation.");
            }
        }
    }
}

#[async_trait]
impl SearchBackend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn prepare(&self) -> Result<(), SearchError> {
        Ok(())
    }

    async fn check(&self) -> Result<(), SearchError> {
        let live = self.live()?;
        if live.index.path.is_dir() {
            Ok(())
        } else {
            Err(SearchError::Embedded(format!(
                "{} is gone",
                live.index.path.display()
            )))
        }
    }

    async fn apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError> {
        // Both read under the live lock, so a rebuild finishing meanwhile cannot leave this
        // batch written only to the generation being dropped.
        let (live, rebuild) = {
            let live = self.live.read().map_err(|_| poisoned())?;
            let rebuild = self.rebuild.read().map_err(|_| poisoned())?.clone();
            (live.clone(), rebuild)
        };
        blocking(move || {
            if let Some(next) = rebuild {
                next.index.apply(changes.clone())?;
            }
            live.index.apply(changes)
        })
        .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        let live = self.live()?;
        let query = query.clone();
        blocking(move || search::search(&live.index, &query)).await
    }

    async fn document_count(&self) -> Result<u64, SearchError> {
        let live = self.live()?;
        blocking(move || live.index.live_count()).await
    }

    async fn begin_rebuild(&self) -> Result<(), SearchError> {
        if self.rebuilding()?.is_some() {
            return Err(SearchError::Rebuild(
                "a rebuild of the index is already running",
            ));
        }
        let number = self.live()?.number + 1;
        let path = generation_dir(&self.root, number);
        let memory = self.writer_memory_mb;
        let index = blocking(move || {
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .map_err(io_error(format!("cannot clear {}", path.display())))?;
            }
            TantivyIndex::open_or_create(&path, memory)
        })
        .await?;
        let mut rebuild = self.rebuild.write().map_err(|_| poisoned())?;
        if rebuild.is_some() {
            index.close();
            return Err(SearchError::Rebuild(
                "a rebuild of the index is already running",
            ));
        }
        *rebuild = Some(Arc::new(Generation {
            number,
            index: Arc::new(index),
        }));
        Ok(())
    }

    async fn rebuild_apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError> {
        let next = self
            .rebuilding()?
            .ok_or(SearchError::Rebuild("no rebuild of the index is running"))?;
        blocking(move || next.index.apply(changes)).await
    }

    async fn finish_rebuild(&self) -> Result<(), SearchError> {
        let next = self
            .rebuilding()?
            .ok_or(SearchError::Rebuild("no rebuild of the index is running"))?;
        write_current(&self.root, next.number)?;
        let old = {
            let mut live = self.live.write().map_err(|_| poisoned())?;
            let mut rebuild = self.rebuild.write().map_err(|_| poisoned())?;
            *rebuild = None;
            std::mem::replace(&mut *live, next)
        };
        blocking(move || {
            old.index.close();
            std::fs::remove_dir_all(&old.index.path).map_err(io_error(format!(
                "cannot remove {}",
                old.index.path.display()
            )))
        })
        .await
    }

    async fn abandon_rebuild(&self) {
        let next = self.rebuild.write().ok().and_then(|mut r| r.take());
        if let Some(next) = next {
            let _ = blocking(move || {
                next.index.close();
                std::fs::remove_dir_all(&next.index.path).map_err(io_error(format!(
                    "cannot remove {}",
                    next.index.path.display()
                )))
            })
            .await;
        }
    }
}
