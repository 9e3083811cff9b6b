//! A search request and its answer, shared by `GET /search`, `search.query` and every backend:
//! the contract's ([`tributary_proto::requests::search`]), re-exported here, and the text
//! helpers the backends build snippets with.

pub use tributary_proto::requests::search::{
    InvalidParameter, SearchHit, SearchQuery, SearchResults, DEFAULT_LIMIT, HIGHLIGHT_END,
    HIGHLIGHT_START, MAX_LIMIT, MAX_QUERY_CHARS, MAX_RESULT_WINDOW,
};

/// Escapes text for HTML, so a snippet can be shown as HTML with only its `<mark>` tags live.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first `max_chars` characters of `text`, cut at a word boundary, with `…` when cut.
pub fn leading_excerpt(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let head = &text[..cut];
            let head = head
                .rsplit_once(char::is_whitespace)
                .map_or(head, |(h, _)| h);
            format!("{}…", head.trim_end())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use tributary_proto::model::EntityType;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parameters_are_read_and_days_cover_whole_days() {
        let query = SearchQuery::from_params(&params(&[
            ("q", "engine"),
            ("type", "message, calendar_events"),
            ("source", "mail"),
            ("from", "2026-03-01"),
            ("to", "2026-03-02"),
            ("limit", "5"),
            ("offset", "10"),
        ]))
        .unwrap();
        assert_eq!(
            query.types,
            vec![EntityType::Message, EntityType::CalendarEvent]
        );
        assert_eq!(
            query.from.unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            query.to.unwrap().to_rfc3339(),
            "2026-03-02T23:59:59.999999+00:00"
        );
        assert_eq!((query.limit, query.offset), (5, 10));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (pairs, parameter) in [
            (vec![("limit", "-1")], "limit"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "100000")], "limit"),
            (vec![("offset", "x")], "offset"),
            (vec![("offset", "100000000000000000")], "offset"),
            (vec![("offset", "9990"), ("limit", "11")], "offset"),
            (vec![("type", "people")], "type"),
            (vec![("from", "yesterday")], "from"),
            (vec![("to", "2026-13-01")], "to"),
            (vec![("from", "2026-03-02"), ("to", "2026-03-01")], "from"),
        ] {
            let err = SearchQuery::from_params(&params(&pairs)).unwrap_err();
            assert_eq!(err.parameter, parameter, "{pairs:?}: {err}");
        }
        let err = SearchQuery::from_params(&params(&[("kind", "person")])).unwrap_err();
        assert!(err.to_string().contains("`kind`"), "{err}");
    }

    #[test]
    fn a_page_may_reach_the_result_window_and_no_further() {
        let deepest = params(&[("offset", "9990"), ("limit", "10")]);
        assert!(SearchQuery::from_params(&deepest).is_ok());
        let err =
            SearchQuery::from_params(&params(&[("offset", &usize::MAX.to_string())])).unwrap_err();
        assert!(err.to_string().contains("page further"), "{err}");
    }

    #[test]
    fn excerpts_end_at_a_word() {
        assert_eq!(leading_excerpt("short", 10), "short");
        assert_eq!(leading_excerpt("one two three four", 10), "one two…");
        assert_eq!(
            escape_html("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
    }
}
