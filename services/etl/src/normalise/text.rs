//! Text: whitespace, names, HTML bodies and NUL characters.

use serde_json::Value;

/// What a NUL character (U+0000) becomes. PostgreSQL refuses NUL in `text` and in `jsonb`
/// strings, so an item holding one could never be stored; the replacement character keeps a
/// mark where it was, and keeps two ids that differ only there apart.
pub const NUL_REPLACEMENT: &str = "\u{FFFD}";

/// Trims and collapses runs of whitespace into one space: `"  Ada \n Lovelace "` becomes
/// `"Ada Lovelace"`.
pub fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`collapse_whitespace`], with an empty result as `None`.
pub fn tidy_optional(s: Option<String>) -> Option<String> {
    s.map(|s| collapse_whitespace(&s)).filter(|s| !s.is_empty())
}

/// The readable text of an HTML body, for search: tags dropped, entities decoded, block
/// elements on their own lines, links' targets left out.
pub fn html_to_text(html: &str) -> String {
    // Wide enough that html2text never wraps a line itself.
    const NO_WRAP: usize = 100_000;
    let decorator = html2text::render::TrivialDecorator::new();
    let text = html2text::config::with_decorator(decorator)
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), NO_WRAP)
        .unwrap_or_else(|_| strip_tags(html));
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// A last resort when HTML cannot be rendered: everything outside `<…>`.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    collapse_whitespace(&out)
}

/// Whether a media type is HTML.
pub fn is_html_media_type(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// Replaces every NUL in `s` with [`NUL_REPLACEMENT`] and says how many there were. A string
/// without NUL (nearly all) is only scanned, never copied.
pub fn replace_nul(s: &mut String) -> usize {
    let Some(first) = memchr::memchr(0, s.as_bytes()) else {
        return 0;
    };
    let count = memchr::memchr_iter(0, &s.as_bytes()[first..]).count();
    *s = s.replace('\0', NUL_REPLACEMENT);
    count
}

/// [`replace_nul`] in every string of a JSON value, object keys included, however deeply
/// nested; says how many NUL there were. Of two keys that become the same, the later is kept.
pub fn replace_nul_in_json(value: &mut Value) -> usize {
    match value {
        Value::String(s) => replace_nul(s),
        Value::Array(elements) => elements.iter_mut().map(replace_nul_in_json).sum(),
        Value::Object(map) => {
            let mut count: usize = map.values_mut().map(replace_nul_in_json).sum();
            if map
                .keys()
                .any(|k| memchr::memchr(0, k.as_bytes()).is_some())
            {
                for (mut key, element) in std::mem::take(map) {
                    count += replace_nul(&mut key);
                    map.insert(key, element);
                }
            }
            count
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_in_a_string_is_replaced_and_counted() {
        let mut s = String::from("a\0b\0\0c");
        assert_eq!(replace_nul(&mut s), 3);
        assert_eq!(s, "a\u{FFFD}b\u{FFFD}\u{FFFD}c");
        let mut clean = String::from("no nul here");
        assert_eq!(replace_nul(&mut clean), 0);
        assert_eq!(clean, "no nul here");
    }

    #[test]
    fn nul_in_nested_json_strings_and_keys_is_replaced() {
        let mut value = json!({
            "text": "x\0y",
            "list": ["\0", 1, null, {"deep\0key": "v\0"}],
            "n": 3,
        });
        assert_eq!(replace_nul_in_json(&mut value), 4);
        assert_eq!(
            value,
            json!({
                "text": "x\u{FFFD}y",
                "list": ["\u{FFFD}", 1, null, {"deep\u{FFFD}key": "v\u{FFFD}"}],
                "n": 3,
            })
        );
        let mut clean = json!({"a": ["b", {"c": "d"}]});
        assert_eq!(replace_nul_in_json(&mut clean), 0);
        assert_eq!(clean, json!({"a": ["b", {"c": "d"}]}));
    }

    #[test]
    fn html_with_a_nul_reference_becomes_text_without_nul() {
        let text = html_to_text("<p>a&#0;b</p>");
        assert!(!text.contains('\0'), "{text:?}");
    }

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        assert_eq!(collapse_whitespace("  Ada \n\t Lovelace  "), "Ada Lovelace");
        assert_eq!(tidy_optional(Some("   ".into())), None);
        assert_eq!(tidy_optional(Some(" CTO ".into())), Some("CTO".into()));
    }

    #[test]
    fn html_becomes_text_without_tags_or_entities() {
        let text = html_to_text(
            "<html><body><p>Hello <b>Ada</b> &amp; team,</p><p>see <a href=\"https://x.test\">the plan</a>.</p><script>var x;</script></body></html>",
        );
        assert!(text.contains("Hello Ada & team,"), "{text}");
        assert!(text.contains("see the plan."), "{text}");
        assert!(!text.contains('<'), "{text}");
        assert!(!text.contains("https://x.test"), "{text}");
        let lines: Vec<_> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "{text}");
    }

    #[test]
    fn html_media_types_are_recognised_with_parameters() {
        assert!(is_html_media_type("text/html; charset=utf-8"));
        assert!(is_html_media_type("application/xhtml+xml"));
        assert!(!is_html_media_type("text/plain"));
    }
}
