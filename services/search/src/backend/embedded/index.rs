//! One tantivy index on disk: its schema, and versioned changes written into it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tantivy::collector::{Count, DocSetCollector};
use tantivy::directory::MmapDirectory;
use tantivy::query::{TermQuery, TermSetQuery};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, NumericOptions, Schema,
    TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tributary_proto::model::EntityType;
use uuid::Uuid;

use crate::backend::{ApplyReport, SearchError};
use crate::document::{newest_per_entity, IndexChange, SearchDocument};

/// The analyzer of titles and texts: words split on anything not a letter or digit, lower-cased
/// and folded to ASCII, so `Zoë` is found as `zoe`.
pub const TEXT_ANALYZER: &str = "tributary_text";

/// The fields of the embedded index.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// The entity id, as text.
    pub id: Field,
    /// The entity type's snake_case name.
    pub entity_type: Field,
    /// The title, analysed.
    pub title: Field,
    /// The rest of the searchable text, analysed.
    pub text: Field,
    /// The plugin instances it came from.
    pub sources: Field,
    /// The date filters apply to.
    pub date: Field,
    /// The version, in microseconds since the epoch.
    pub version: Field,
    /// Whether this is a tombstone.
    pub deleted: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let analysed = TextOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TEXT_ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            id: builder.add_text_field("id", STRING | STORED),
            entity_type: builder.add_text_field("entity_type", STRING | STORED | FAST),
            title: builder.add_text_field("title", analysed.clone()),
            text: builder.add_text_field("text", analysed),
            sources: builder.add_text_field("sources", STRING | STORED),
            date: builder.add_date_field(
                "date",
                DateOptions::from(INDEXED | STORED | FAST)
                    .set_precision(DateTimePrecision::Microseconds),
            ),
            version: builder.add_i64_field("version", NumericOptions::default().set_stored()),
            deleted: builder.add_bool_field("deleted", INDEXED | STORED),
        };
        (builder.build(), fields)
    }
}

/// What the index holds for an entity, as far as applying a change needs to know.
#[derive(Debug, Clone)]
struct Held {
    version: i64,
    deleted: bool,
    sources: Vec<String>,
}

fn embedded_error(what: &str) -> impl Fn(tantivy::TantivyError) -> SearchError + '_ {
    move |e| SearchError::Embedded(format!("{what}: {e}"))
}

/// A tantivy index in one directory, with its single writer.
pub struct TantivyIndex {
    /// Where it lives.
    pub path: PathBuf,
    /// Its fields.
    pub fields: Fields,
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

impl TantivyIndex {
    /// Opens the index in `path`, creating it (and the directory) when there is none.
    /// `writer_memory_mb` is the writer's buffer.
    pub fn open_or_create(path: &Path, writer_memory_mb: usize) -> Result<Self, SearchError> {
        std::fs::create_dir_all(path)
            .map_err(|e| SearchError::Embedded(format!("cannot create {}: {e}", path.display())))?;
        let directory = MmapDirectory::open(path)
            .map_err(|e| SearchError::Embedded(format!("cannot open {}: {e}", path.display())))?;
        let (schema, fields) = Fields::schema();
        let index = Index::open_or_create(directory, schema)
            .map_err(embedded_error("cannot open the index"))?;
        index.tokenizers().register(
            TEXT_ANALYZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(AsciiFoldingFilter)
                .build(),
        );
        let writer = index
            .writer(writer_memory_mb.saturating_mul(1 << 20))
            .map_err(|e| {
                SearchError::Embedded(format!(
                    "cannot take the writer of {} (is another search service using it?): {e}",
                    path.display()
                ))
            })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(embedded_error("cannot read the index"))?;
        Ok(Self {
            path: path.to_owned(),
            fields,
            index,
            reader,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The tantivy index, for searching.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// A searcher over what was last committed.
    pub fn searcher(&self) -> tantivy::Searcher {
        self.reader.searcher()
    }

    /// The analyzer titles and texts were indexed with.
    pub fn analyzer(&self) -> Result<TextAnalyzer, SearchError> {
        self.index
            .tokenizer_for_field(self.fields.text)
            .map_err(embedded_error("no analyzer"))
    }

    fn held(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Held>, SearchError> {
        let searcher = self.searcher();
        let terms = ids
            .iter()
            .map(|id| Term::from_field_text(self.fields.id, &id.to_string()));
        let found = searcher
            .search(&TermSetQuery::new(terms), &DocSetCollector)
            .map_err(embedded_error("cannot look documents up"))?;
        let mut held = HashMap::with_capacity(found.len());
        for address in found {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(embedded_error("cannot read a document"))?;
            let Some(id) = doc
                .get_first(self.fields.id)
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
            else {
                continue;
            };
            held.insert(
                id,
                Held {
                    version: doc
                        .get_first(self.fields.version)
                        .and_then(|v| v.as_i64())
                        .unwrap_or(i64::MIN),
                    deleted: doc
                        .get_first(self.fields.deleted)
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false),
                    sources: strings(&doc, self.fields.sources),
                },
            );
        }
        Ok(held)
    }

    fn tantivy_document(&self, doc: &SearchDocument, deleted: bool) -> TantivyDocument {
        let f = self.fields;
        let mut out = TantivyDocument::default();
        out.add_text(f.id, doc.id.to_string());
        out.add_text(f.entity_type, doc.entity_type.as_str());
        out.add_text(f.title, &doc.title);
        out.add_text(f.text, &doc.text);
        for source in &doc.sources {
            out.add_text(f.sources, source);
        }
        out.add_date(
            f.date,
            tantivy::DateTime::from_timestamp_micros(micros(doc.date)),
        );
        out.add_i64(f.version, micros(doc.version));
        out.add_bool(f.deleted, deleted);
        out
    }

    /// Applies a batch: each change only when it is at least as new as what is held for its
    /// entity; a deletion leaves a tombstone. Commits once, then makes the batch searchable.
    pub fn apply(&self, changes: Vec<IndexChange>) -> Result<ApplyReport, SearchError> {
        let changes = newest_per_entity(changes);
        if changes.is_empty() {
            return Ok(ApplyReport::default());
        }
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| SearchError::Embedded("the index writer was poisoned".into()))?;
        let writer = guard
            .as_mut()
            .ok_or_else(|| SearchError::Embedded("the index is closed".into()))?;
        let ids: Vec<Uuid> = changes.iter().map(IndexChange::id).collect();
        let held = self.held(&ids)?;
        let mut report = ApplyReport::default();
        for change in changes {
            let before = held.get(&change.id());
            if before.is_some_and(|h| micros(change.version()) < h.version) {
                report.stale += 1;
                continue;
            }
            let (doc, deleted) = match change {
                IndexChange::Upsert(mut doc) => {
                    if let Some(before) = before.filter(|h| !h.deleted && !doc.sources_complete) {
                        let mut sources: Vec<String> = before.sources.clone();
                        let known: HashSet<String> = sources.iter().cloned().collect();
                        sources.extend(doc.sources.into_iter().filter(|s| !known.contains(s)));
                        doc.sources = sources;
                    }
                    (doc, false)
                }
                IndexChange::Delete {
                    id,
                    entity_type,
                    version,
                } => (
                    SearchDocument {
                        id,
                        entity_type,
                        title: String::new(),
                        text: String::new(),
                        sources: Vec::new(),
                        sources_complete: true,
                        date: version,
                        version,
                    },
                    true,
                ),
            };
            writer.delete_term(Term::from_field_text(self.fields.id, &doc.id.to_string()));
            writer
                .add_document(self.tantivy_document(&doc, deleted))
                .map_err(embedded_error("cannot add a document"))?;
            report.applied += 1;
        }
        writer.commit().map_err(embedded_error("cannot commit"))?;
        self.reader
            .reload()
            .map_err(embedded_error("cannot reload the reader"))?;
        Ok(report)
    }

    /// Documents searchable now (tombstones not counted).
    pub fn live_count(&self) -> Result<u64, SearchError> {
        let searcher = self.searcher();
        let tombstones = searcher
            .search(
                &TermQuery::new(
                    Term::from_field_bool(self.fields.deleted, true),
                    IndexRecordOption::Basic,
                ),
                &Count,
            )
            .map_err(embedded_error("cannot count"))?;
        Ok(searcher.num_docs().saturating_sub(tombstones as u64))
    }

    /// Stops the writer, waiting for its merges, so the directory can be removed.
    pub fn close(&self) {
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            if let Err(e) = writer.wait_merging_threads() {
                tracing::warn!(path = %self.path.display(), error = %e, "Index merges did not finish cleanly.");
            }
        }
    }
}

/// Every text value of `field` in `doc`.
pub fn strings(doc: &TantivyDocument, field: Field) -> Vec<String> {
    doc.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The entity type stored in `doc`.
pub fn entity_type_of(doc: &TantivyDocument, field: Field) -> Option<EntityType> {
    doc.get_first(field)
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
}

/// The date stored in `doc`'s `field`.
pub fn date_of(doc: &TantivyDocument, field: Field) -> Option<DateTime<Utc>> {
    let date = doc.get_first(field)?.as_datetime()?;
    DateTime::from_timestamp_micros(date.into_timestamp_micros())
}
