//! The embedded search index: indexing throughput through [`EmbeddedBackend::apply`] in
//! batches of 500 (the indexer's `search.batch_size`), and query latency through
//! [`EmbeddedBackend::search`] (typo expansion, filters, snippets), each against plain tantivy
//! measured in the same run on the same documents: the embedded index's own schema and
//! analyzer, one commit per 500 documents and no version lookups; the same words as exact
//! term queries with the same filters, no typo expansion and no snippets (the page's 20
//! stored documents are still read).
//!
//! With `MEILISEARCH_URL` (and `MEILISEARCH_API_KEY`) set, the same documents and queries go
//! through the Meilisearch backend too, into fresh indexes on that server: indexing with one
//! batch at a time (each batch's task awaited before the next is sent) against
//! `MEILISEARCH_TASKS_IN_FLIGHT` batches at once (the indexer's
//! `search.meilisearch_tasks_in_flight`, 16 by default), and the queries against the embedded
//! index's. The one-at-a-time baseline indexes at most `MEILISEARCH_SERIAL_DOCUMENTS`
//! documents (20,000 by default), so a slow baseline does not make the run take minutes.
//!
//! `cargo bench -p tributary-search --bench search [-- DOCUMENTS]` (100,000 by default).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::ops::{Bound::Included, Range};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Index, Order, Searcher, TantivyDocument, Term};
use tributary_proto::model::EntityType::{self, CalendarEvent, Document, Message, Person};
use tributary_search::backend::embedded::index::{Fields, TantivyIndex, TEXT_ANALYZER};
use tributary_search::backend::embedded::EmbeddedBackend;
use tributary_search::backend::SearchBackend;
use tributary_search::document::{IndexChange, SearchDocument};
use tributary_search::query::SearchQuery;
use uuid::Uuid;

const BATCH: usize = 500;
const QUERIES: usize = 1200;
const WRITER_MEMORY_MB: usize = 64;
const SOURCES: [&str; 5] = ["mail-work", "mail-home", "slack-team", "calendar", "drive"];
const TYPES: [EntityType; 4] = [Message, Person, Document, CalendarEvent];
const REAL: &str = "meeting project budget invoice report review schedule update team client \
    contract proposal deadline release design draft office travel lunch dinner weekend flight \
    hotel payment order delivery account password security server database backup migration \
    feature issue ticket sprint planning roadmap quarter revenue forecast marketing launch \
    customer support feedback survey interview hiring training workshop conference agenda \
    minutes summary analysis research prototype testing quality manager engineer product";
const FIRST: &str = "ada alan grace linus margaret dennis barbara ken radia tim sophie lucas \
    emma noah olivia liam mia hugo chloe louis zoe arthur alice jules lea paul marie jean";
const LAST: &str = "lovelace turing hopper torvalds hamilton ritchie liskov thompson perlman \
    berners martin bernard dubois moreau laurent simon michel lefebvre leroy roux david";

/// SplitMix64: deterministic, seeded, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn within(&mut self, range: Range<usize>) -> usize {
        range.start + self.below(range.len())
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A vocabulary word, the common ones (first) likelier: `skew` 3 for text, 2 for queries.
    fn word<'a>(&mut self, vocab: &'a [String], skew: i32) -> &'a str {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        &vocab[(vocab.len() as f64 * unit.powi(skew)) as usize]
    }
}

/// 5000 words: real ones first (the commonest), then words made of syllables.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    let mut words: Vec<String> = REAL.split_whitespace().map(str::to_owned).collect();
    let mut seen: HashSet<String> = words.iter().cloned().collect();
    while words.len() < 5000 {
        let mut word = String::new();
        for _ in 0..rng.within(2..5) {
            word.push(*rng.pick(b"bcdfghklmnprstvz") as char);
            word.push(*rng.pick(b"aeiouy") as char);
            if rng.below(3) == 0 {
                word.push(*rng.pick(b"bdklmnrst") as char);
            }
        }
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

fn sentence(rng: &mut Rng, vocab: &[String], words: Range<usize>) -> String {
    let words = rng.within(words);
    let mut out = String::new();
    for i in 1..=words {
        out.push_str(rng.word(vocab, 3));
        out.push_str(if i % 12 == 0 { ". " } else { " " });
    }
    out.trim_end().to_owned()
}

/// Messages (60 %), people, documents and calendar events, dated over two years.
fn documents(rng: &mut Rng, vocab: &[String], n: usize) -> Vec<SearchDocument> {
    let first: Vec<&str> = FIRST.split_whitespace().collect();
    let last: Vec<&str> = LAST.split_whitespace().collect();
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut docs = Vec::with_capacity(n);
    for _ in 0..n {
        let (f, l) = (*rng.pick(&first), *rng.pick(&last));
        let email = format!("{f}.{l}@{}.com", rng.pick(vocab));
        let (entity_type, title, text, sources) = match rng.below(20) {
            0..=2 => {
                let text = format!("{f} {l} {email} {f}@mail.example {}", rng.pick(vocab));
                let name = format!("{f} {l}");
                (Person, name, text, &SOURCES[..rng.within(1..3)])
            }
            kind => {
                let (entity_type, title, words, sources) = match kind {
                    3..=14 => (Message, 3..9, 30..81, &SOURCES[rng.below(3)..][..1]),
                    15..=17 => (Document, 2..7, 150..401, &SOURCES[4..]),
                    _ => (CalendarEvent, 2..6, 10..31, &SOURCES[3..4]),
                };
                let title = sentence(rng, vocab, title);
                let text = format!("{} {email}", sentence(rng, vocab, words));
                (entity_type, title, text, sources)
            }
        };
        let date = start + chrono::Duration::seconds(rng.below(730 * 86_400) as i64);
        docs.push(SearchDocument {
            id: Uuid::from_u64_pair(rng.next(), rng.next()),
            entity_type,
            title,
            text,
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            sources_complete: false,
            date,
            version: date + chrono::Duration::seconds(rng.below(3600) as i64),
        });
    }
    docs
}

/// Per 20: 6 one-word, 3 two-word, 3 with a typo, 2 prefixes, 3 filtered, 3 browses.
fn queries(rng: &mut Rng, vocab: &[String]) -> Vec<SearchQuery> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let longer = |rng: &mut Rng, min: usize| loop {
        let word = rng.word(vocab, 2);
        if word.len() >= min {
            break word.to_owned();
        }
    };
    let mut queries = Vec::with_capacity(QUERIES);
    for i in 0..QUERIES {
        let q = match i % 20 {
            0..=5 | 14..=16 => rng.word(vocab, 2).to_owned(),
            6..=8 => format!("{} {}", rng.word(vocab, 2), rng.word(vocab, 2)),
            9..=11 => {
                let mut word = longer(rng, 5).into_bytes();
                let at = rng.within(1..word.len());
                word[at] = if word[at] == b'x' { b'q' } else { b'x' };
                String::from_utf8(word).unwrap()
            }
            12 | 13 => longer(rng, 6)[..rng.within(3..6)].to_owned(),
            _ => String::new(),
        };
        let mut query = SearchQuery {
            q,
            ..SearchQuery::default()
        };
        if (14..=16).contains(&(i % 20)) || (i % 20 >= 17 && rng.below(2) == 0) {
            match rng.below(3) {
                0 => query.types = vec![*rng.pick(&TYPES)],
                1 => query.source = Some((*rng.pick(&SOURCES)).to_owned()),
                _ => {
                    let from = start + chrono::Duration::days(rng.below(670) as i64);
                    query.from = Some(from);
                    query.to = Some(from + chrono::Duration::days(60));
                }
            }
        }
        queries.push(query);
    }
    queries
}

/// The words exactly (each in the title or the text) and the same filters, as tantivy
/// queries; everything when there are no words.
fn exact_query(f: &Fields, q: &SearchQuery) -> BooleanQuery {
    let term = |field, text: &str| -> Box<dyn Query> {
        let term = Term::from_field_text(field, text);
        Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
    };
    let mut must: Vec<Box<dyn Query>> = Vec::new();
    for word in q.q.split_whitespace() {
        let either = [f.title, f.text].map(|field| (Occur::Should, term(field, word)));
        must.push(Box::new(BooleanQuery::new(either.into())));
    }
    must.extend(q.types.iter().map(|t| term(f.entity_type, t.as_str())));
    must.extend(q.source.iter().map(|s| term(f.sources, s)));
    if let (Some(from), Some(to)) = (q.from, q.to) {
        let bound = |t| Included(Term::from_field_date(f.date, micros(t)));
        must.push(Box::new(RangeQuery::new(bound(from), bound(to))));
    }
    if must.is_empty() {
        must.push(Box::new(AllQuery));
    }
    BooleanQuery::new(must.into_iter().map(|q| (Occur::Must, q)).collect())
}

fn micros(time: DateTime<Utc>) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(time.timestamp_micros())
}

/// One page from the baseline, newest first when there are no words (as the embedded index
/// browses), with its stored documents read; returns the total.
fn baseline_search(searcher: &Searcher, f: &Fields, q: &SearchQuery) -> usize {
    let (query, page) = (exact_query(f, q), TopDocs::with_limit(q.limit));
    let (total, top): (usize, Vec<DocAddress>) = if q.q.is_empty() {
        let by_date = page.order_by_fast_field::<tantivy::DateTime>("date", Order::Desc);
        let (total, top) = searcher.search(&query, &(Count, by_date)).unwrap();
        (total, top.into_iter().map(|(_, a)| a).collect())
    } else {
        let by_score = page.order_by_score();
        let (total, top) = searcher.search(&query, &(Count, by_score)).unwrap();
        (total, top.into_iter().map(|(_, a)| a).collect())
    };
    for address in top {
        searcher.doc::<TantivyDocument>(address).unwrap();
    }
    total
}

/// Bytes and files under `path`.
fn dir_stats(path: &Path) -> (u64, usize) {
    let mut stats = (0, 0);
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        let (bytes, files) = if meta.is_dir() {
            dir_stats(&entry.path())
        } else {
            (meta.len(), 1)
        };
        stats = (stats.0 + bytes, stats.1 + files);
    }
    stats
}

/// Every query in turn, each timed, after a warm-up pass over the first 100.
struct Run {
    latencies: Vec<Duration>,
    per_second: f64,
    avg_hits: f64,
    empty: usize,
}

impl Run {
    fn measure(queries: &[SearchQuery], mut search: impl FnMut(&SearchQuery) -> usize) -> Self {
        queries.iter().take(100).for_each(|q| _ = search(q));
        let (started, mut hits, mut empty) = (Instant::now(), 0, 0);
        let mut latencies: Vec<Duration> = Vec::with_capacity(queries.len());
        for q in queries {
            let sent = Instant::now();
            let total = search(q);
            latencies.push(sent.elapsed());
            (hits, empty) = (hits + total, empty + usize::from(total == 0));
        }
        let per_second = queries.len() as f64 / started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let avg_hits = hits as f64 / queries.len() as f64;
        Run {
            latencies,
            per_second,
            avg_hits,
            empty,
        }
    }

    fn ms_at(&self, q: f64) -> f64 {
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1e3
    }
}

fn main() {
    let n = tributary_kit::testing::count_argument(100_000);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rng = Rng(0x5EA2_C4B3_7C4E_0001);
    let vocab = vocabulary(&mut rng);
    let docs = documents(&mut rng, &vocab, n);
    let queries = queries(&mut rng, &vocab);
    let words: usize = docs.iter().map(|d| d.text.split(' ').count()).sum();
    let distinct = vocab.len();
    println!("{n} documents, {words} words of text drawn from {distinct} words");
    println!(
        "{QUERIES} queries of 20 results, per 20: 6 one-word, 3 two-word, 3 with a typo, \
        2 prefixes, 3 filtered, 3 browses"
    );

    // The baseline: a bare tantivy index with the embedded index's schema and analyzer.
    let [base_dir, embedded_dir, model_dir] = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let model = TantivyIndex::open_or_create(model_dir.path(), 15).unwrap();
    let (f, schema) = (model.fields, model.index().schema());
    let analyzer = model.index().tokenizers().get(TEXT_ANALYZER).unwrap();
    drop(model);
    let base = Index::create_in_dir(base_dir.path(), schema).unwrap();
    base.tokenizers().register(TEXT_ANALYZER, analyzer);
    let started = Instant::now();
    let mut writer = base.writer(WRITER_MEMORY_MB << 20).unwrap();
    for batch in docs.chunks(BATCH) {
        for doc in batch {
            let mut out = TantivyDocument::default();
            out.add_text(f.id, doc.id.to_string());
            out.add_text(f.entity_type, doc.entity_type.as_str());
            out.add_text(f.title, &doc.title);
            out.add_text(f.text, &doc.text);
            doc.sources.iter().for_each(|s| out.add_text(f.sources, s));
            out.add_date(f.date, micros(doc.date));
            out.add_i64(f.version, doc.version.timestamp_micros());
            out.add_bool(f.deleted, false);
            writer.add_document(out).unwrap();
        }
        writer.commit().unwrap();
    }
    let base_rate = n as f64 / started.elapsed().as_secs_f64();
    writer.wait_merging_threads().unwrap();

    // The embedded backend, in batches of 500.
    let backend = EmbeddedBackend::open(embedded_dir.path(), WRITER_MEMORY_MB).unwrap();
    let last = docs.last().cloned().unwrap();
    let all_docs = docs.clone();
    let (started, mut docs) = (Instant::now(), docs.into_iter());
    loop {
        let batch: Vec<_> = docs.by_ref().take(BATCH).map(IndexChange::Upsert).collect();
        if batch.is_empty() {
            break;
        }
        runtime.block_on(backend.apply(batch)).unwrap();
    }
    let embedded_rate = n as f64 / started.elapsed().as_secs_f64();
    // Its merges finish (nothing changes on disk for 3 s), then one more change makes its
    // reader see the merged segments, as the baseline's does after waiting for its merges.
    let (mut seen, mut stable) = (dir_stats(embedded_dir.path()), 0);
    while stable < 6 {
        std::thread::sleep(Duration::from_millis(500));
        let now = dir_stats(embedded_dir.path());
        stable = if now == seen { stable + 1 } else { 0 };
        seen = now;
    }
    let again = vec![IndexChange::Upsert(last)];
    runtime.block_on(backend.apply(again)).unwrap();
    let count = runtime.block_on(backend.document_count()).unwrap();
    assert_eq!(count, n as u64);
    let live = Index::open_in_dir(backend.live_path().unwrap()).unwrap();
    let embedded_segments = live.searchable_segment_metas().unwrap().len();

    // Queries, one at a time.
    let searcher = base.reader().unwrap().searcher();
    let base_q = Run::measure(&queries, |q| baseline_search(&searcher, &f, q));
    let search = |q: &SearchQuery| runtime.block_on(backend.search(q)).unwrap().total;
    let embedded_q = Run::measure(&queries, search);
    let meilisearch = std::env::var("MEILISEARCH_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .map(|url| runtime.block_on(meilisearch::run(&url, &all_docs, &queries)));
    let base_size = dir_stats(base_dir.path()).0 as f64 / 1e6;
    let embedded_size = dir_stats(embedded_dir.path()).0 as f64 / 1e6;

    println!("\nembedded index, {n} documents ({cores} cores)");
    row("indexing", base_rate, embedded_rate, "docs/s");
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        row(name, base_q.ms_at(q), embedded_q.ms_at(q), "ms");
    }
    row("queries/s", base_q.per_second, embedded_q.per_second, "");
    row("avg hits", base_q.avg_hits, embedded_q.avg_hits, "");
    row("no hits", base_q.empty as f64, embedded_q.empty as f64, "");
    row("on disk", base_size, embedded_size, "MB");
    let segments = searcher.segment_readers().len();
    println!("segments   baseline tantivy {segments:>14} | embedded {embedded_segments:>14}");
    if let Some(meili) = meilisearch {
        meili.print(n, embedded_rate, &embedded_q);
    }
}

/// The Meilisearch backend on the same documents and queries.
mod meilisearch {
    use super::*;
    use futures::StreamExt;
    use tributary_search::backend::meilisearch::MeilisearchBackend;

    /// What the Meilisearch backend measured.
    pub struct Figures {
        serial_docs: usize,
        serial_rate: f64,
        in_flight: usize,
        pipelined_rate: f64,
        queries: Run,
    }

    fn var(name: &str, default: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// A backend on a fresh index of the server at `url`.
    async fn backend(url: &str, index: &str) -> MeilisearchBackend {
        let mut config = tributary_kit::Config::defaults().unwrap().search;
        config.meilisearch_url = url.to_owned();
        config.meilisearch_api_key = std::env::var("MEILISEARCH_API_KEY")
            .unwrap_or_default()
            .into();
        config.meilisearch_task_timeout_secs = 600;
        config.index_name = index.to_owned();
        let backend = MeilisearchBackend::new(&config).unwrap();
        backend.prepare().await.unwrap();
        backend
    }

    /// Indexes `docs` in batches of 500 with `in_flight` batches at once, until the index
    /// holds them all; documents per second.
    async fn index(backend: &MeilisearchBackend, docs: &[SearchDocument], in_flight: usize) -> f64 {
        let started = Instant::now();
        futures::stream::iter(docs.chunks(BATCH))
            .for_each_concurrent(in_flight, |batch| async move {
                let changes = batch.iter().cloned().map(IndexChange::Upsert).collect();
                backend.apply(changes).await.unwrap();
            })
            .await;
        let rate = docs.len() as f64 / started.elapsed().as_secs_f64();
        assert_eq!(backend.document_count().await.unwrap(), docs.len() as u64);
        rate
    }

    /// Both indexing runs, then the queries on the pipelined run's index.
    pub async fn run(url: &str, docs: &[SearchDocument], queries: &[SearchQuery]) -> Figures {
        let run = Uuid::new_v4().simple().to_string();
        let serial_docs = docs.len().min(var("MEILISEARCH_SERIAL_DOCUMENTS", 20_000));
        let serial = backend(url, &format!("bench_serial_{}", &run[..8])).await;
        let serial_rate = index(&serial, &docs[..serial_docs], 1).await;
        let in_flight = var("MEILISEARCH_TASKS_IN_FLIGHT", 8).max(1);
        let pipelined = backend(url, &format!("bench_pipelined_{}", &run[..8])).await;
        let pipelined_rate = index(&pipelined, docs, in_flight).await;
        let queries = tokio::task::block_in_place(|| {
            let handle = tokio::runtime::Handle::current();
            Run::measure(queries, |q| {
                handle.block_on(pipelined.search(q)).unwrap().total
            })
        });
        Figures {
            serial_docs,
            serial_rate,
            in_flight,
            pipelined_rate,
            queries,
        }
    }

    impl Figures {
        /// The Meilisearch table: indexing against one batch at a time and against the
        /// embedded index, queries against the embedded index.
        pub fn print(&self, n: usize, embedded_rate: f64, embedded: &Run) {
            println!("\nMeilisearch backend, {n} documents");
            println!(
                "indexing   one batch at a time ({} docs) {:>9.0} docs/s | {} in flight {:>9.0} docs/s | {:.2}×",
                self.serial_docs,
                self.serial_rate,
                self.in_flight,
                self.pipelined_rate,
                self.pipelined_rate / self.serial_rate
            );
            let cmp = |name: &str, embedded: f64, meili: f64, unit: &str| {
                println!(
                    "{name:<10} embedded {embedded:>12.2} {unit} | Meilisearch {meili:>12.2} {unit} | {:.2}×",
                    meili / embedded
                );
            };
            cmp("indexing", embedded_rate, self.pipelined_rate, "docs/s");
            for (name, q) in [("query p50", 0.5), ("query p90", 0.9), ("query p99", 0.99)] {
                cmp(name, embedded.ms_at(q), self.queries.ms_at(q), "ms");
            }
            cmp(
                "queries/s",
                embedded.per_second,
                self.queries.per_second,
                "",
            );
            cmp("avg hits", embedded.avg_hits, self.queries.avg_hits, "");
        }
    }
}

/// One line of the table: the baseline's figure, the embedded index's, and their ratio.
fn row(name: &str, base: f64, embedded: f64, unit: &str) {
    let ratio = embedded / base;
    let digits = match unit {
        "ms" => 2,
        "MB" => 1,
        _ => 0,
    };
    let name = format!("{}{name}", if unit == "ms" { "query " } else { "" });
    let figure = |value: f64| format!("{value:.digits$} {unit}").trim_end().to_owned();
    let (b, e) = (figure(base), figure(embedded));
    println!("{name:<10} baseline tantivy {b:>14} | embedded {e:>14} | {ratio:.2}×");
}
