//! Text: whitespace, names and HTML bodies.

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

#[cfg(test)]
mod tests {
    use super::*;

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
