//! A [`SearchQuery`] in Meilisearch's terms (filter expression, page), and its hits back.

use chrono::{DateTime, Utc};
use meilisearch_sdk::search::SearchResult;
use serde::Deserialize;
use serde_json::Value;
use tributary_proto::model::EntityType;
use uuid::Uuid;

use crate::query::{
    escape_html, leading_excerpt, SearchHit, SearchQuery, HIGHLIGHT_END, HIGHLIGHT_START,
};

/// What Meilisearch puts before a matched word: a control character no stored text contains
/// (they are removed on write), so it survives HTML escaping and becomes `<mark>` after it.
pub(super) const HIGHLIGHT_PRE: &str = "\u{1}";
/// What Meilisearch puts after a matched word; becomes `</mark>`.
pub(super) const HIGHLIGHT_POST: &str = "\u{2}";
/// Words of text around the matches a snippet keeps.
pub(super) const CROP_WORDS: usize = 30;
/// Characters of text a snippet keeps when the text has no match (only the title matched).
const EXCERPT_CHARS: usize = 200;

/// `value` as a double-quoted string of Meilisearch's filter syntax: backslashes and double
/// quotes escaped with a backslash, so no value can end the string or add a condition.
pub(super) fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `id IN ["…", …]`: the documents of these entities.
pub(super) fn ids_filter(ids: impl IntoIterator<Item = Uuid>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| quoted(&id.to_string())).collect();
    format!("id IN [{}]", ids.join(", "))
}

/// The filter expression of a query: live documents only, then each filter it names, joined by
/// `AND`. Dates compare in whole seconds, as stored: a bound inside a second keeps that second.
pub(super) fn filter(query: &SearchQuery) -> String {
    let mut parts = vec!["deleted = false".to_owned()];
    if !query.types.is_empty() {
        let types: Vec<String> = query.types.iter().map(|t| quoted(t.as_str())).collect();
        parts.push(format!("entity_type IN [{}]", types.join(", ")));
    }
    if let Some(source) = &query.source {
        parts.push(format!("sources = {}", quoted(source)));
    }
    if let Some(from) = query.from {
        parts.push(format!("date >= {}", from.timestamp()));
    }
    if let Some(to) = query.to {
        parts.push(format!("date <= {}", to.timestamp()));
    }
    parts.join(" AND ")
}

/// How a page is asked for. `page`/`hitsPerPage` makes Meilisearch count every match
/// (`totalHits`, up to `maxTotalHits`), so it is used whenever the offset falls on a page
/// boundary; otherwise `offset`/`limit` is the only way to ask, and the total is Meilisearch's
/// `estimatedTotalHits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Page {
    /// `page` (from 1) of `hits_per_page`.
    Numbered { page: usize, hits_per_page: usize },
    /// `limit` hits after `offset`.
    Offset { offset: usize, limit: usize },
}

impl Page {
    /// The page for `limit` hits after `offset`.
    pub(super) fn of(limit: usize, offset: usize) -> Page {
        if limit > 0 && offset.is_multiple_of(limit) {
            Page::Numbered {
                page: offset / limit + 1,
                hits_per_page: limit,
            }
        } else {
            Page::Offset { offset, limit }
        }
    }
}

/// The fields a hit is read from.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Hit {
    id: Uuid,
    entity_type: EntityType,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    sources: Vec<String>,
    date: i64,
    #[serde(default)]
    date_rfc3339: Option<String>,
}

/// The snippet of a hit: Meilisearch's cropped, highlighted text, HTML-escaped with only the
/// highlights turned into `<mark>…</mark>`; the start of the text when nothing in it matched.
pub(super) fn snippet(formatted: Option<&Value>, text: &str) -> String {
    match formatted.and_then(Value::as_str) {
        Some(cropped) if cropped.contains(HIGHLIGHT_PRE) => escape_html(cropped)
            .replace(HIGHLIGHT_PRE, HIGHLIGHT_START)
            .replace(HIGHLIGHT_POST, HIGHLIGHT_END),
        _ => escape_html(&leading_excerpt(text, EXCERPT_CHARS)),
    }
}

/// A Meilisearch hit as a [`SearchHit`]; an error names what is missing.
pub(super) fn hit(result: SearchResult<Hit>) -> Result<SearchHit, String> {
    let Hit {
        id,
        entity_type,
        title,
        text,
        sources,
        date,
        date_rfc3339,
    } = result.result;
    let date = date_rfc3339
        .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| DateTime::from_timestamp(date, 0))
        .ok_or_else(|| format!("hit {id} has no valid date"))?;
    let snippet = snippet(
        result.formatted_result.as_ref().and_then(|f| f.get("text")),
        &text,
    );
    Ok(SearchHit {
        entity_type,
        id,
        title,
        snippet,
        score: result.ranking_score.unwrap_or(0.0) as f32,
        date,
        sources,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_quoted_and_pages_chosen() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(
            Page::of(20, 40),
            Page::Numbered {
                page: 3,
                hits_per_page: 20
            }
        );
        assert_eq!(
            Page::of(20, 5),
            Page::Offset {
                offset: 5,
                limit: 20
            }
        );
    }

    #[test]
    fn snippets_escape_everything_but_the_marks() {
        let formatted = json!("…a <b> \u{1}engine\u{2} & \u{1}loom\u{2}");
        assert_eq!(
            snippet(Some(&formatted), "unused"),
            "…a &lt;b&gt; <mark>engine</mark> &amp; <mark>loom</mark>"
        );
        assert_eq!(
            snippet(Some(&json!("no match")), "<i>x</i>"),
            "&lt;i&gt;x&lt;/i&gt;"
        );
    }
}
