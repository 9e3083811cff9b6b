//! Searching one tantivy index the way Meilisearch searches: every word must match, each with
//! the typos Meilisearch allows (one from five letters, two from nine), the last word also as
//! a prefix; matches in the title weigh more; filters on type, source and date; snippets with
//! the matched words marked.
//!
//! Typo-tolerant words are expanded into the real terms of the index (through the Levenshtein
//! automaton of [`FuzzyTermQuery`]) and searched as ordinary term queries, so results are
//! scored by BM25 and the snippet generator marks the words that actually matched.

use std::collections::BTreeSet;
use std::ops::Bound;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::snippet::{collapse_overlapped_ranges, Snippet, SnippetGenerator};
use tantivy::{DocAddress, Order, Score, Searcher, TantivyDocument, Term};

use crate::backend::embedded::index::{date_of, entity_type_of, strings, TantivyIndex};
use crate::backend::SearchError;
use crate::query::{
    escape_html, leading_excerpt, SearchHit, SearchQuery, SearchResults, HIGHLIGHT_END,
    HIGHLIGHT_START,
};

/// Characters of text a snippet shows.
pub const SNIPPET_CHARS: usize = 200;
/// Index terms one query word may expand to through typos and prefixes.
const MAX_EXPANSIONS_PER_WORD: usize = 50;
/// How much more a match in the title counts than one in the text.
const TITLE_BOOST: Score = 3.0;
/// How much more the exact word counts than a typo or prefix of it.
const EXACT_BOOST: Score = 2.0;

/// The typos Meilisearch tolerates by default: none below five letters, one from five, two
/// from nine.
pub fn typos_allowed(word: &str) -> u8 {
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

fn search_error(e: tantivy::TantivyError) -> SearchError {
    SearchError::Embedded(format!("search failed: {e}"))
}

/// The words of `text` as the index analysed them, each once, in order.
fn words(index: &TantivyIndex, text: &str) -> Result<Vec<String>, SearchError> {
    let mut analyzer = index.analyzer()?;
    let mut stream = analyzer.token_stream(text);
    let mut seen = BTreeSet::new();
    let mut words = Vec::new();
    while stream.advance() {
        let word = stream.token().text.clone();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    Ok(words)
}

/// The index terms of `field` within `word`'s typos (and, for the last word, starting so).
fn expansions(
    searcher: &Searcher,
    field: Field,
    word: &str,
    prefix: bool,
) -> Result<BTreeSet<String>, SearchError> {
    let term = Term::from_field_text(field, word);
    let typos = typos_allowed(word);
    let fuzzy = if prefix {
        FuzzyTermQuery::new_prefix(term, typos, true)
    } else {
        FuzzyTermQuery::new(term, typos, true)
    };
    let mut found = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(search_error)?;
        let automaton = fuzzy.automaton().map_err(search_error)?;
        let mut stream = inverted
            .terms()
            .search(automaton)
            .into_stream()
            .map_err(|e| SearchError::Embedded(format!("cannot read terms: {e}")))?;
        while let Some((bytes, _)) = stream.next() {
            if let Ok(text) = std::str::from_utf8(bytes) {
                found.insert(text.to_owned());
            }
            if found.len() >= MAX_EXPANSIONS_PER_WORD {
                return Ok(found);
            }
        }
    }
    Ok(found)
}

/// The query one word becomes: any of its expansions in the title or the text.
fn word_query(
    searcher: &Searcher,
    index: &TantivyIndex,
    word: &str,
    prefix: bool,
) -> Result<Option<Box<dyn Query>>, SearchError> {
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (field, field_boost) in [(index.fields.title, TITLE_BOOST), (index.fields.text, 1.0)] {
        for term_text in expansions(searcher, field, word, prefix)? {
            let boost = if term_text == word {
                field_boost * EXACT_BOOST
            } else {
                field_boost
            };
            let term = TermQuery::new(
                Term::from_field_text(field, &term_text),
                IndexRecordOption::WithFreqs,
            );
            alternatives.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(term), boost)),
            ));
        }
    }
    if alternatives.is_empty() {
        return Ok(None);
    }
    Ok(Some(Box::new(BooleanQuery::new(alternatives))))
}

fn filters(index: &TantivyIndex, query: &SearchQuery) -> Vec<(Occur, Box<dyn Query>)> {
    let f = index.fields;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::MustNot,
        Box::new(TermQuery::new(
            Term::from_field_bool(f.deleted, true),
            IndexRecordOption::Basic,
        )),
    )];
    if !query.types.is_empty() {
        let any_type = query
            .types
            .iter()
            .map(|t| -> (Occur, Box<dyn Query>) {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.entity_type, t.as_str()),
                        IndexRecordOption::Basic,
                    )),
                )
            })
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any_type))));
    }
    if let Some(source) = &query.source {
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(f.sources, source),
                IndexRecordOption::Basic,
            )),
        ));
    }
    if query.from.is_some() || query.to.is_some() {
        let bound = |time: Option<chrono::DateTime<chrono::Utc>>| match time {
            Some(t) => Bound::Included(Term::from_field_date(
                f.date,
                tantivy::DateTime::from_timestamp_micros(t.timestamp_micros()),
            )),
            None => Bound::Unbounded,
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(bound(query.from), bound(query.to))),
        ));
    }
    clauses
}

/// Runs `query` against `index`.
pub fn search(index: &TantivyIndex, query: &SearchQuery) -> Result<SearchResults, SearchError> {
    let searcher = index.searcher();
    let words = words(index, &query.q)?;
    let empty = |total| SearchResults {
        hits: Vec::new(),
        total,
        limit: query.limit,
        offset: query.offset,
        backend: "embedded".into(),
    };
    let mut clauses = filters(index, query);
    let last = words.len().saturating_sub(1);
    for (i, word) in words.iter().enumerate() {
        match word_query(&searcher, index, word, i == last)? {
            Some(q) => clauses.push((Occur::Must, q)),
            // A word nothing in the index is close to: nothing matches every word.
            None => return Ok(empty(0)),
        }
    }
    if words.is_empty() {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    let full = BooleanQuery::new(clauses);
    let page = TopDocs::with_limit(query.limit).and_offset(query.offset);
    let (total, top): (usize, Vec<(Score, DocAddress)>) = if words.is_empty() {
        // Browsing: newest first.
        let (total, by_date) = searcher
            .search(
                &full,
                &(
                    Count,
                    page.order_by_fast_field::<tantivy::DateTime>("date", Order::Desc),
                ),
            )
            .map_err(search_error)?;
        (total, by_date.into_iter().map(|(_, a)| (1.0, a)).collect())
    } else {
        searcher
            .search(&full, &(Count, page.order_by_score()))
            .map_err(search_error)?
    };
    let mut snippets =
        SnippetGenerator::create(&searcher, &full, index.fields.text).map_err(search_error)?;
    snippets.set_max_num_chars(SNIPPET_CHARS);
    let mut hits = Vec::with_capacity(top.len());
    for (score, address) in top {
        let doc: TantivyDocument = searcher.doc(address).map_err(search_error)?;
        if let Some(hit) = hit_of(index, &doc, score, &snippets) {
            hits.push(hit);
        }
    }
    Ok(SearchResults {
        hits,
        ..empty(total)
    })
}

/// The snippet as HTML: the whole text when it is short, otherwise the fragment with `…` where
/// it was cut; escaped, with the matched words inside `<mark>`.
fn marked(text: &str, snippet: &Snippet) -> String {
    let fragment = snippet.fragment_range();
    // Highlights are positions within the fragment.
    let offset = fragment.start;
    let shown = if text.chars().count() <= SNIPPET_CHARS {
        0..text.len()
    } else {
        fragment
    };
    let mut html = String::new();
    if shown.start > 0 {
        html.push('…');
    }
    let mut at = shown.start;
    for range in collapse_overlapped_ranges(snippet.highlighted()) {
        let (start, end) = (range.start + offset, range.end + offset);
        if start < at
            || end > shown.end
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
        {
            continue;
        }
        html.push_str(&escape_html(&text[at..start]));
        html.push_str(HIGHLIGHT_START);
        html.push_str(&escape_html(&text[start..end]));
        html.push_str(HIGHLIGHT_END);
        at = end;
    }
    html.push_str(&escape_html(&text[at..shown.end]));
    if shown.end < text.len() {
        html.push('…');
    }
    html
}

fn hit_of(
    index: &TantivyIndex,
    doc: &TantivyDocument,
    score: Score,
    snippets: &SnippetGenerator,
) -> Option<SearchHit> {
    let f = index.fields;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let full_text = text(f.text);
    let snippet = snippets.snippet(&full_text);
    let snippet = if snippet.is_empty() {
        escape_html(&leading_excerpt(&full_text, SNIPPET_CHARS))
    } else {
        marked(&full_text, &snippet)
    };
    Some(SearchHit {
        entity_type: entity_type_of(doc, f.entity_type)?,
        id: text(f.id).parse().ok()?,
        title: text(f.title),
        snippet,
        score,
        date: date_of(doc, f.date)?,
        sources: strings(doc, f.sources),
    })
}
