//! The `search.*` requests the search service answers: `search.query` (also `GET /search`),
//! `search.stats` and `search.reindex`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ErrorCode::{BadRequest, Conflict, Internal};
use crate::model::EntityType;
use crate::subjects::ServiceName;

/// Results per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// The most results one page may hold.
pub const MAX_LIMIT: usize = 1000;
/// The deepest a page may reach: `offset + limit` at most. A backend reserves room for
/// `offset + limit` hits to rank them (tantivy's top-docs collector does it up front), so an
/// unbounded offset is a request that can take the whole process down. Elasticsearch stops at
/// the same depth by default (`index.max_result_window`).
pub const MAX_RESULT_WINDOW: usize = 10_000;
/// The longest query text accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 512;
/// The tag a snippet opens around a matched word.
pub const HIGHLIGHT_START: &str = "<mark>";
/// The tag a snippet closes after a matched word.
pub const HIGHLIGHT_END: &str = "</mark>";

/// A piece of a snippet, as plain text: its words, and whether they matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnippetPart {
    /// The text, entities decoded.
    pub text: String,
    /// Whether it is a matched word (between [`HIGHLIGHT_START`] and [`HIGHLIGHT_END`]).
    pub matched: bool,
}

/// A snippet (escaped HTML with `<mark>` around matched words) as plain-text parts, for a
/// reader that escapes or styles text itself (a terminal, a template that escapes everything
/// it prints). An unclosed `<mark>` marks the rest.
pub fn snippet_parts(snippet: &str) -> Vec<SnippetPart> {
    fn decoded(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }
    let mut parts = Vec::new();
    let mut rest = snippet;
    while !rest.is_empty() {
        let (before, after) = match rest.split_once(HIGHLIGHT_START) {
            Some((before, after)) => (before, Some(after)),
            None => (rest, None),
        };
        if !before.is_empty() {
            parts.push(SnippetPart {
                text: decoded(before),
                matched: false,
            });
        }
        let Some(after) = after else { break };
        let (word, next) = after.split_once(HIGHLIGHT_END).unwrap_or((after, ""));
        if !word.is_empty() {
            parts.push(SnippetPart {
                text: decoded(word),
                matched: true,
            });
        }
        rest = next;
    }
    parts
}

/// What to search for: words (typos tolerated; empty finds everything), filters and a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The words to find. Empty: every document that passes the filters, newest first.
    #[serde(default)]
    pub q: String,
    /// Only these entity types; empty for all.
    #[serde(default, rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<EntityType>,
    /// Only documents from this plugin instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only documents dated at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Only documents dated at or before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Results per page.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Results to skip.
    #[serde(default)]
    pub offset: usize,
}

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            q: String::new(),
            types: Vec::new(),
            source: None,
            from: None,
            to: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// A request parameter that cannot be used, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{parameter}`: {problem}")]
pub struct InvalidParameter {
    /// The parameter at fault (`limit`, `from`).
    pub parameter: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl InvalidParameter {
    fn new(parameter: &'static str, problem: impl Into<String>) -> Self {
        Self {
            parameter,
            problem: problem.into(),
        }
    }
}

/// Reads a date parameter: an RFC 3339 time, or a day (`2026-03-01`), which means its first
/// moment for `from` and its last for `to`.
fn parse_date(
    parameter: &'static str,
    value: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, InvalidParameter> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        InvalidParameter::new(
            parameter,
            format!(
                "`{value}` is not a date (2026-03-01) or an RFC 3339 time (2026-03-01T09:00:00Z)"
            ),
        )
    })?;
    let time = if end_of_day {
        NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
    } else {
        Some(NaiveTime::MIN)
    };
    Ok(day.and_time(time.unwrap_or(NaiveTime::MIN)).and_utc())
}

fn parse_count(parameter: &'static str, value: &str) -> Result<usize, InvalidParameter> {
    value.trim().parse::<usize>().map_err(|_| {
        InvalidParameter::new(parameter, format!("`{value}` is not a whole number ≥ 0"))
    })
}

impl SearchQuery {
    /// Reads a query from URL parameters (`q`, `type`, `source`, `from`, `to`, `limit`,
    /// `offset`); `type` may list several types separated by commas. An unknown parameter is
    /// refused too, so a misspelt filter is not silently ignored.
    pub fn from_params(params: &HashMap<String, String>) -> Result<Self, InvalidParameter> {
        let mut query = SearchQuery::default();
        for (name, value) in params {
            match name.as_str() {
                "q" => query.q = value.clone(),
                "type" => {
                    query.types = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| {
                            t.parse::<EntityType>()
                                .map_err(|e| InvalidParameter::new("type", e.to_string()))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "source" => {
                    query.source = Some(value.trim().to_owned()).filter(|s| !s.is_empty())
                }
                "from" => query.from = Some(parse_date("from", value, false)?),
                "to" => query.to = Some(parse_date("to", value, true)?),
                "limit" => query.limit = parse_count("limit", value)?,
                "offset" => query.offset = parse_count("offset", value)?,
                other => {
                    return Err(InvalidParameter {
                        parameter: "(unknown)",
                        problem: format!(
                            "`{other}` is not a search parameter; use q, type, source, from, to, limit or offset"
                        ),
                    })
                }
            }
        }
        query.validate()?;
        Ok(query)
    }

    /// Checks what no type can: a page size in range, a query of bounded length, a date range
    /// that is not reversed.
    pub fn validate(&self) -> Result<(), InvalidParameter> {
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(InvalidParameter::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, not {}", self.limit),
            ));
        }
        if self.q.chars().count() > MAX_QUERY_CHARS {
            return Err(InvalidParameter::new(
                "q",
                format!("is longer than {MAX_QUERY_CHARS} characters"),
            ));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(InvalidParameter::new(
                    "from",
                    format!("{from} is after `to` ({to})"),
                ));
            }
        }
        if self.offset.saturating_add(self.limit) > MAX_RESULT_WINDOW {
            return Err(InvalidParameter::new(
                "offset",
                format!(
                    "with `limit` reaches past result {MAX_RESULT_WINDOW} (offset {} + limit {}); \
                     narrow the search with `type`, `source`, `from` or `to` to page further",
                    self.offset, self.limit
                ),
            ));
        }
        Ok(())
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    /// The entity's type.
    pub entity_type: EntityType,
    /// The entity's id in the unified model.
    pub id: Uuid,
    /// Its title, as plain text.
    pub title: String,
    /// The part of its text that matched, HTML-escaped, with each matched word inside
    /// `<mark>…</mark>`; the start of its text when only the title matched.
    pub snippet: String,
    /// Relevance, higher first. Comparable between the hits of one backend only.
    pub score: f32,
    /// The date the `from`/`to` filters apply to.
    pub date: DateTime<Utc>,
    /// The plugin instances it came from.
    pub sources: Vec<String>,
}

/// A page of results and how many there are in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResults {
    /// The hits of this page, best first.
    pub hits: Vec<SearchHit>,
    /// How many documents match, across all pages.
    pub total: usize,
    /// The page size asked for.
    pub limit: usize,
    /// The hits skipped.
    pub offset: usize,
    /// The backend that answered: `embedded` or `meilisearch`.
    pub backend: String,
}

/// `search.stats`: what the index holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatsQuery {}

/// The answer to `search.stats`: what the index holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IndexStats {
    /// `embedded` or `meilisearch`.
    pub backend: String,
    /// Documents searchable now.
    pub documents: u64,
    /// Whether a reindex is running.
    pub reindexing: bool,
}

/// `search.reindex`: rebuild the index from the unified model, in the background.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StartReindex {}

/// The answer to `search.reindex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReindexStarted {
    /// The job's id; its progress messages carry it.
    pub job_id: Uuid,
    /// The backend being rebuilt.
    pub backend: String,
    /// Where progress is published.
    pub progress_subject: String,
}

super::requests! {
    ServiceName::Search;
    SearchQuery => "query", SearchResults, &[BadRequest, Internal];
    StatsQuery => "stats", IndexStats, &[BadRequest, Internal];
    StartReindex => "reindex", ReindexStarted, &[BadRequest, Conflict, Internal];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_is_plain_text_parts_with_its_matched_words() {
        let parts = snippet_parts("a &lt;b&gt; &amp; <mark>caf&#39;e</mark> x<mark>y");
        let shown: Vec<(&str, bool)> = parts.iter().map(|p| (p.text.as_str(), p.matched)).collect();
        assert_eq!(
            shown,
            [
                ("a <b> & ", false),
                ("caf'e", true),
                (" x", false),
                ("y", true)
            ]
        );
        assert!(snippet_parts("").is_empty());
    }
}
