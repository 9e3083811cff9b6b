//! The embedded search index: indexing throughput through [`EmbeddedBackend::apply`] in
//! batches of 500 (the indexer's `search.batch_size`), and query latency through
//! [`EmbeddedBackend::search`] (typo expansion, filters, snippets), each against plain tantivy
//! measured in the same run on the same documents: the same schema and analyzer, one commit
//! per 500 documents and no version lookups; the same words as exact term queries, no typo
//! expansion and no snippets (the top 20 stored documents are still read).
//!
//! `cargo bench -p tributary-search --bench search [-- DOCUMENTS]` (100,000 by default).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, NumericOptions, Schema,
    TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer};
use tantivy::{DocAddress, Index, Order, Score, TantivyDocument, Term};
use tributary_proto::model::EntityType;
use tributary_search::backend::embedded::EmbeddedBackend;
use tributary_search::backend::SearchBackend;
use tributary_search::document::{IndexChange, SearchDocument};
use tributary_search::query::SearchQuery;
use uuid::Uuid;

const BATCH: usize = 500;
const QUERIES: usize = 1200;
const WRITER_MEMORY_MB: usize = 64;
const SOURCES: [&str; 5] = ["mail-work", "mail-home", "slack-team", "calendar", "drive"];
const TYPES: [EntityType; 4] = [
    EntityType::Message,
    EntityType::Person,
    EntityType::Document,
    EntityType::CalendarEvent,
];
const REAL: &str = "meeting project budget invoice report review schedule update team client \
    contract proposal deadline release design draft office travel lunch dinner weekend flight \
    hotel ticket payment order delivery account password security server database backup \
    migration deploy feature issue ticket sprint planning roadmap quarter revenue forecast \
    marketing launch campaign customer support feedback survey interview hiring onboarding \
    training workshop conference presentation slides agenda minutes notes summary analysis \
    research prototype testing quality manager engineer designer product partner vendor \
    supplier shipment warehouse inventory pricing discount renewal subscription license \
    compliance audit policy legal finance expense receipt salary bonus holiday vacation \
    birthday party wedding family doctor appointment dentist school homework garden kitchen \
    recipe coffee morning afternoon evening monday tuesday wednesday thursday friday january \
    february march april september october november december london paris berlin tokyo";
const FIRST: &str = "ada alan grace linus margaret dennis barbara ken radia tim sophie lucas \
    emma noah olivia liam mia hugo chloe louis zoe arthur alice jules lea paul marie jean";
const LAST: &str = "lovelace turing hopper torvalds hamilton ritchie liskov thompson perlman \
    berners martin bernard dubois moreau laurent simon michel lefebvre leroy roux david";

/// SplitMix64: deterministic, seeded, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A vocabulary rank skewed towards the common words (`skew` 3 for text, 2 for queries).
    fn rank(&mut self, len: usize, skew: i32) -> usize {
        ((len as f64 * self.unit().powi(skew)) as usize).min(len - 1)
    }
}

/// ~5000 words, most common first: real words, then synthetic ones built from syllables.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut words: Vec<String> = REAL.split_whitespace().map(str::to_owned).collect();
    words.retain(|w| seen.insert(w.clone()));
    let (consonants, vowels) = (b"bcdfghklmnprstvz", b"aeiouy");
    while words.len() < 5000 {
        let mut word = String::new();
        for _ in 0..2 + rng.below(3) {
            word.push(*rng.pick(consonants) as char);
            word.push(*rng.pick(vowels) as char);
            if rng.below(3) == 0 {
                word.push(*rng.pick(consonants) as char);
            }
        }
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut out = Vec::with_capacity(words);
    for i in 0..words {
        let word = &vocab[rng.rank(vocab.len(), 3)];
        out.push(if i % 12 == 11 {
            format!("{word}.")
        } else {
            word.clone()
        });
    }
    out.join(" ")
}

fn documents(rng: &mut Rng, vocab: &[String], n: usize) -> Vec<SearchDocument> {
    let (first, last): (Vec<&str>, Vec<&str>) = (
        FIRST.split_whitespace().collect(),
        LAST.split_whitespace().collect(),
    );
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let email = |rng: &mut Rng| {
        let (f, l) = (*rng.pick(&first), *rng.pick(&last));
        format!("{f}.{l}@{}.com", vocab[rng.below(vocab.len())])
    };
    (0..n)
        .map(|_| {
            let (title, text, sources, entity_type) = match rng.below(20) {
                0..=11 => {
                    let subject = sentence(rng, vocab, 3 + rng.below(6));
                    let body = sentence(rng, vocab, 30 + rng.below(51));
                    let people = [email(rng), email(rng), email(rng)].join(" ");
                    let source = SOURCES[rng.below(3)];
                    (
                        subject,
                        format!("{body} {people}"),
                        vec![source],
                        EntityType::Message,
                    )
                }
                12..=14 => {
                    let (f, l) = (*rng.pick(&first), *rng.pick(&last));
                    let org = &vocab[rng.below(vocab.len())];
                    let text = format!("{f} {l} {f}.{l}@{org}.com {f}@mail.example {org}");
                    let sources = SOURCES[..1 + rng.below(2)].to_vec();
                    (format!("{f} {l}"), text, sources, EntityType::Person)
                }
                15..=17 => {
                    let title = sentence(rng, vocab, 2 + rng.below(5));
                    let content = sentence(rng, vocab, 150 + rng.below(250));
                    let path = format!("/docs/{}/{}.md", vocab[rng.below(200)], rng.below(1000));
                    (
                        title,
                        format!("{content} {path}"),
                        vec![SOURCES[4]],
                        EntityType::Document,
                    )
                }
                _ => {
                    let title = sentence(rng, vocab, 2 + rng.below(4));
                    let description = sentence(rng, vocab, 10 + rng.below(21));
                    let text = format!("{description} {} {}", email(rng), email(rng));
                    (title, text, vec![SOURCES[3]], EntityType::CalendarEvent)
                }
            };
            let date = start + chrono::Duration::seconds(rng.below(730 * 86_400) as i64);
            SearchDocument {
                id: Uuid::from_u64_pair(rng.next(), rng.next()),
                entity_type,
                title,
                text,
                sources: sources.into_iter().map(str::to_owned).collect(),
                date,
                version: date + chrono::Duration::seconds(rng.below(3600) as i64),
            }
        })
        .collect()
}

/// A word of ≥5 letters with one letter replaced.
fn typo(rng: &mut Rng, vocab: &[String]) -> String {
    loop {
        let word = &vocab[rng.rank(vocab.len(), 2)];
        if word.len() >= 5 {
            let mut bytes = word.clone().into_bytes();
            let at = 1 + rng.below(bytes.len() - 1);
            bytes[at] = if bytes[at] == b'x' { b'q' } else { b'x' };
            return String::from_utf8(bytes).unwrap();
        }
    }
}

fn queries(rng: &mut Rng, vocab: &[String]) -> Vec<SearchQuery> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let word = |rng: &mut Rng| vocab[rng.rank(vocab.len(), 2)].clone();
    (0..QUERIES)
        .map(|i| {
            let mut query = SearchQuery::default();
            let kind = i % 20;
            query.q = match kind {
                0..=5 | 14..=16 => word(rng),
                6..=8 => format!("{} {}", word(rng), word(rng)),
                9..=11 => typo(rng, vocab),
                12 | 13 => loop {
                    let w = word(rng);
                    if w.len() >= 6 {
                        break w[..3 + rng.below(3)].to_owned();
                    }
                },
                _ => String::new(),
            };
            if (14..=16).contains(&kind) || (kind >= 17 && rng.below(2) == 0) {
                match rng.below(3) {
                    0 => query.types = vec![*rng.pick(&TYPES)],
                    1 => query.source = Some((*rng.pick(&SOURCES)).to_owned()),
                    _ => {
                        let from = start + chrono::Duration::days(rng.below(670) as i64);
                        (query.from, query.to) =
                            (Some(from), Some(from + chrono::Duration::days(60)));
                    }
                }
            }
            query
        })
        .collect()
}

/// The baseline: the embedded index's schema and analyzer on a bare tantivy index.
struct Baseline {
    index: Index,
    f: [Field; 8],
}

impl Baseline {
    fn create(path: &Path) -> Self {
        let mut b = Schema::builder();
        let analysed = TextOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("bench_text")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let date = DateOptions::from(INDEXED | STORED | FAST)
            .set_precision(DateTimePrecision::Microseconds);
        let f = [
            b.add_text_field("id", STRING | STORED),
            b.add_text_field("entity_type", STRING | STORED | FAST),
            b.add_text_field("title", analysed.clone()),
            b.add_text_field("text", analysed),
            b.add_text_field("sources", STRING | STORED),
            b.add_date_field("date", date),
            b.add_i64_field("version", NumericOptions::default().set_stored()),
            b.add_bool_field("deleted", INDEXED | STORED),
        ];
        let index = Index::create_in_dir(path, b.build()).unwrap();
        let analyzer = tantivy::tokenizer::TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        index.tokenizers().register("bench_text", analyzer);
        Self { index, f }
    }

    /// Indexes `docs` with one commit per batch; returns the time until the last commit.
    fn fill(&self, docs: &[SearchDocument]) -> Duration {
        let f = self.f;
        let started = Instant::now();
        let mut writer = self
            .index
            .writer::<TantivyDocument>(WRITER_MEMORY_MB << 20)
            .unwrap();
        for batch in docs.chunks(BATCH) {
            for doc in batch {
                let mut out = TantivyDocument::default();
                out.add_text(f[0], doc.id.to_string());
                out.add_text(f[1], doc.entity_type.as_str());
                out.add_text(f[2], &doc.title);
                out.add_text(f[3], &doc.text);
                for source in &doc.sources {
                    out.add_text(f[4], source);
                }
                out.add_date(f[5], tantivy_date(doc.date));
                out.add_i64(f[6], doc.version.timestamp_micros());
                out.add_bool(f[7], false);
                writer.add_document(out).unwrap();
            }
            writer.commit().unwrap();
        }
        let elapsed = started.elapsed();
        writer.wait_merging_threads().unwrap();
        elapsed
    }

    /// The words as exact terms (each in the title or the text), the same filters.
    fn query(&self, q: &SearchQuery) -> BooleanQuery {
        let f = self.f;
        let term = |field, text: &str| -> Box<dyn Query> {
            let term = Term::from_field_text(field, text);
            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in q.q.split_whitespace() {
            let either = vec![
                (Occur::Should, term(f[2], word)),
                (Occur::Should, term(f[3], word)),
            ];
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(either))));
        }
        if q.q.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        for t in &q.types {
            clauses.push((Occur::Must, term(f[1], t.as_str())));
        }
        if let Some(source) = &q.source {
            clauses.push((Occur::Must, term(f[4], source)));
        }
        if let (Some(from), Some(to)) = (q.from, q.to) {
            let bound = |t| std::ops::Bound::Included(Term::from_field_date(f[5], tantivy_date(t)));
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(from), bound(to))),
            ));
        }
        BooleanQuery::new(clauses)
    }
}

fn tantivy_date(time: DateTime<Utc>) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(time.timestamp_micros())
}

fn dir_stats(path: &Path) -> (u64, usize) {
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .fold((0, 0), |(size, files), entry| {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                let (s, n) = dir_stats(&entry.path());
                (size + s, files + n)
            } else {
                (size + meta.len(), files + 1)
            }
        })
}

struct Latencies(Vec<Duration>, Duration);

impl Latencies {
    fn at(&self, q: f64) -> f64 {
        let i = ((self.0.len() as f64 * q) as usize).min(self.0.len() - 1);
        self.0[i].as_secs_f64() * 1e3
    }
    fn per_second(&self) -> f64 {
        self.0.len() as f64 / self.1.as_secs_f64()
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut rng = Rng(0x5EA2_C4B3_7C4E_0001);
    let vocab = vocabulary(&mut rng);
    let docs = documents(&mut rng, &vocab, n);
    let queries = queries(&mut rng, &vocab);
    let words: usize = docs
        .iter()
        .map(|d| d.title.split(' ').count() + d.text.split(' ').count())
        .sum();
    println!(
        "search benchmark: {n} documents ({} words), {} vocabulary words, {QUERIES} queries",
        words,
        vocab.len()
    );

    // Indexing: the baseline, then the embedded backend, each into a fresh directory.
    let (base_dir, embedded_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let baseline = Baseline::create(base_dir.path());
    let base_time = baseline.fill(&docs);
    let base_rate = n as f64 / base_time.as_secs_f64();
    println!(
        "baseline indexed in {:.1} s: {base_rate:.0} docs/s",
        base_time.as_secs_f64()
    );

    let backend = EmbeddedBackend::open(embedded_dir.path(), WRITER_MEMORY_MB).unwrap();
    let last = docs.last().cloned().unwrap();
    let started = Instant::now();
    let mut remaining = docs.into_iter();
    loop {
        let batch: Vec<IndexChange> = remaining
            .by_ref()
            .take(BATCH)
            .map(IndexChange::Upsert)
            .collect();
        if batch.is_empty() {
            break;
        }
        backend.apply(batch).await.unwrap();
    }
    let embedded_time = started.elapsed();
    let embedded_rate = n as f64 / embedded_time.as_secs_f64();
    println!(
        "embedded indexed in {:.1} s: {embedded_rate:.0} docs/s",
        embedded_time.as_secs_f64()
    );
    // Let its merges finish (no change on disk for 3 s), then apply one more change so its
    // reader sees the merged segments, as the baseline's does.
    let (mut seen, mut stable) = (dir_stats(embedded_dir.path()), 0);
    while stable < 6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = dir_stats(embedded_dir.path());
        (stable, seen) = if now == seen {
            (stable + 1, now)
        } else {
            (0, now)
        };
    }
    backend
        .apply(vec![IndexChange::Upsert(last)])
        .await
        .unwrap();
    assert_eq!(backend.document_count().await.unwrap(), n as u64);
    let live = Index::open_in_dir(backend.live_path().unwrap()).unwrap();
    let embedded_segments = live.searchable_segment_metas().unwrap().len();

    // Queries, sequentially, each timed; a first pass over 100 of them warms both up.
    let searcher = baseline.index.reader().unwrap().searcher();
    let base_segments = searcher.segment_readers().len();
    let run_base = |q: &SearchQuery| -> usize {
        let query = baseline.query(q);
        let (total, top): (usize, Vec<(Score, DocAddress)>) = if q.q.is_empty() {
            let by_date = TopDocs::with_limit(q.limit)
                .order_by_fast_field::<tantivy::DateTime>("date", Order::Desc);
            let (total, top) = searcher.search(&query, &(Count, by_date)).unwrap();
            (total, top.into_iter().map(|(_, a)| (1.0, a)).collect())
        } else {
            let by_score = TopDocs::with_limit(q.limit).order_by_score();
            searcher.search(&query, &(Count, by_score)).unwrap()
        };
        for (_, address) in top {
            searcher.doc::<TantivyDocument>(address).unwrap();
        }
        total
    };
    for q in queries.iter().take(100) {
        run_base(q);
    }
    let (mut base_hits, mut base_latencies) = (0, Vec::with_capacity(QUERIES));
    let started = Instant::now();
    for q in &queries {
        let sent = Instant::now();
        base_hits += run_base(q);
        base_latencies.push(sent.elapsed());
    }
    let base_total = started.elapsed();

    for q in queries.iter().take(100) {
        backend.search(q).await.unwrap();
    }
    let (mut hits, mut empty, mut latencies) = (0, 0, Vec::with_capacity(QUERIES));
    let started = Instant::now();
    for q in &queries {
        let sent = Instant::now();
        let results = backend.search(q).await.unwrap();
        latencies.push(sent.elapsed());
        hits += results.total;
        empty += usize::from(results.total == 0);
    }
    let embedded_total = started.elapsed();
    base_latencies.sort_unstable();
    latencies.sort_unstable();
    let (base, embedded) = (
        Latencies(base_latencies, base_total),
        Latencies(latencies, embedded_total),
    );
    let (base_size, embedded_size) = (
        dir_stats(base_dir.path()).0,
        dir_stats(embedded_dir.path()).0,
    );

    println!();
    println!("embedded index, {n} documents ({cores} cores)");
    println!(
        "indexing   baseline tantivy {base_rate:>8.0} docs/s | embedded {embedded_rate:>8.0} docs/s | {:.2}×",
        embedded_rate / base_rate
    );
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        let (b, e) = (base.at(q), embedded.at(q));
        println!(
            "query {name}  baseline {b:>8.2} ms    | embedded {e:>8.2} ms    | {:.1}×",
            e / b
        );
    }
    let (bq, eq) = (base.per_second(), embedded.per_second());
    println!(
        "queries/s  baseline {bq:>8.0}        | embedded {eq:>8.0}        | {:.2}×",
        eq / bq
    );
    println!(
        "avg hits   baseline {:>8.0}        | embedded {:>8.0}        | embedded: {empty} of {QUERIES} queries found nothing",
        base_hits as f64 / QUERIES as f64,
        hits as f64 / QUERIES as f64
    );
    println!(
        "on disk    baseline {:>8.1} MB     | embedded {:>8.1} MB     | {:.2}×",
        mb(base_size),
        mb(embedded_size),
        embedded_size as f64 / base_size as f64
    );
    println!("segments   baseline {base_segments:>8}        | embedded {embedded_segments:>8}");
}
