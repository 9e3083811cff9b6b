//! Markdown to what search needs: a title and the words, without the markup.

use pulldown_cmark::{Event, HeadingLevel, MetadataBlockKind, Options, Parser, Tag, TagEnd};

/// What a Markdown file says, for search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkdownText {
    /// The front matter's `title`, else the text of the first level-1 heading; `None` when
    /// neither has one.
    pub title: Option<String>,
    /// The words of the document: text, code and alt text kept; markup, link targets, raw
    /// HTML and the front matter dropped. Blocks end with a line break.
    pub text: String,
}

/// Reads `source` as CommonMark with tables, footnotes, strikethrough, task lists, heading
/// attributes and front matter (YAML between `---` lines, or TOML between `+++` lines).
pub(crate) fn extract(source: &str) -> MarkdownText {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS;

    let mut text = TextWriter::default();
    let mut front_matter: Option<(MetadataBlockKind, String)> = None;
    let mut in_front_matter = false;
    let mut heading: Option<String> = None;
    // The first level-1 heading, while its text is being read.
    let mut reading_heading = false;
    let mut in_html_block = false;

    for event in Parser::new_ext(source, options) {
        match event {
            Event::Start(Tag::MetadataBlock(kind)) => {
                in_front_matter = true;
                front_matter.get_or_insert((kind, String::new()));
            }
            Event::End(TagEnd::MetadataBlock(_)) => in_front_matter = false,
            Event::Text(t) if in_front_matter => {
                if let Some((_, block)) = front_matter.as_mut() {
                    block.push_str(&t);
                }
            }
            Event::Start(Tag::HtmlBlock) => in_html_block = true,
            Event::End(TagEnd::HtmlBlock) => in_html_block = false,
            Event::Start(Tag::Heading { level, .. }) => {
                text.line_break();
                if level == HeadingLevel::H1 && heading.is_none() {
                    reading_heading = true;
                    heading = Some(String::new());
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                reading_heading = false;
                text.line_break();
            }
            Event::Text(t) | Event::Code(t) if !in_html_block => {
                if reading_heading {
                    if let Some(h) = heading.as_mut() {
                        h.push_str(&t);
                    }
                }
                text.push(&t);
            }
            Event::SoftBreak => {
                if reading_heading {
                    if let Some(h) = heading.as_mut() {
                        h.push(' ');
                    }
                }
                text.space();
            }
            Event::HardBreak | Event::Rule => text.line_break(),
            Event::End(TagEnd::TableCell) => text.space(),
            Event::Start(tag) if is_block(&tag) => text.line_break(),
            Event::End(tag) if is_block_end(&tag) => text.line_break(),
            // Inline markup, raw HTML, footnote references, task list markers: no words.
            _ => {}
        }
    }

    let title = front_matter
        .and_then(|(kind, block)| front_matter_title(kind, &block))
        .or_else(|| heading.map(|h| collapse_whitespace(&h)))
        .filter(|t| !t.is_empty());
    MarkdownText {
        title,
        text: text.finish(),
    }
}

fn is_block(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::Paragraph
            | Tag::BlockQuote(_)
            | Tag::CodeBlock(_)
            | Tag::List(_)
            | Tag::Item
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::Table(_)
            | Tag::TableHead
            | Tag::TableRow
    )
}

fn is_block_end(tag: &TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Paragraph
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::List(_)
            | TagEnd::Item
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::Table
            | TagEnd::TableHead
            | TagEnd::TableRow
    )
}

/// The text of a document as it is written out: words joined by single spaces within a
/// block, one line break between blocks.
#[derive(Default)]
struct TextWriter {
    out: String,
}

impl TextWriter {
    fn push(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn space(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with(char::is_whitespace) {
            self.out.push(' ');
        }
    }

    fn line_break(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn finish(self) -> String {
        self.out.trim().to_owned()
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `title` of a front matter block: a top-level `title: …` line of YAML or `title = …`
/// line of TOML, quoted or (YAML) plain. A multi-line value is not read.
fn front_matter_title(kind: MetadataBlockKind, block: &str) -> Option<String> {
    let separator = match kind {
        MetadataBlockKind::YamlStyle => ':',
        MetadataBlockKind::PlusesStyle => '=',
    };
    let value = block.lines().find_map(|line| {
        let (key, value) = line.split_once(separator)?;
        (key.trim_end() == "title" && !key.starts_with(char::is_whitespace)).then_some(value)
    })?;
    let title = unquote(value.trim(), kind)?;
    let title = collapse_whitespace(&title);
    (!title.is_empty()).then_some(title)
}

/// A scalar value without its quotes; `None` for what is not a one-line string (a YAML block
/// scalar `|` or `>`, an unquoted TOML value).
fn unquote(value: &str, kind: MetadataBlockKind) -> Option<String> {
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return Some(match kind {
            MetadataBlockKind::YamlStyle => inner.replace("''", "'"),
            MetadataBlockKind::PlusesStyle => inner.to_owned(),
        });
    }
    match kind {
        MetadataBlockKind::YamlStyle if !value.starts_with(['|', '>', '[', '{']) => {
            // A plain scalar ends where a comment starts.
            let plain = value.split(" #").next().unwrap_or(value);
            Some(plain.trim().to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(source: &str) -> Option<String> {
        extract(source).title
    }

    #[test]
    fn the_first_level_one_heading_is_the_title() {
        let source = "Intro line\n\n## Not this\n\n# The *real* `title`\n\n# Second\n";
        assert_eq!(title(source).as_deref(), Some("The real title"));
    }

    #[test]
    fn a_setext_heading_counts_and_heading_attributes_do_not() {
        assert_eq!(
            title("Plain Title\n===\n\ntext").as_deref(),
            Some("Plain Title")
        );
        assert_eq!(
            title("# Tagged {#anchor .class}\n").as_deref(),
            Some("Tagged")
        );
    }

    #[test]
    fn a_front_matter_title_wins_over_the_heading() {
        let yaml = "---\ndate: 2024-01-01\ntitle: \"Quoted: yes\"\n---\n\n# Heading\n";
        assert_eq!(title(yaml).as_deref(), Some("Quoted: yes"));
        let plain = "---\ntitle: It's plain # a comment\ntags: [a]\n---\n# Heading\n";
        assert_eq!(title(plain).as_deref(), Some("It's plain"));
        let toml = "+++\ntitle = 'From TOML'\n+++\n# Heading\n";
        assert_eq!(title(toml).as_deref(), Some("From TOML"));
    }

    #[test]
    fn a_front_matter_without_a_usable_title_falls_back_to_the_heading() {
        let nested = "---\nmeta:\n  title: nested\ntitle: |\n  block\n---\n# Heading\n";
        assert_eq!(title(nested).as_deref(), Some("Heading"));
        let empty = "---\ntitle: \"\"\n---\n# Heading\n";
        assert_eq!(title(empty).as_deref(), Some("Heading"));
    }

    #[test]
    fn without_a_heading_or_front_matter_there_is_no_title() {
        assert_eq!(title("just text\n\n## level two\n"), None);
        assert_eq!(title("#hashtag is not a heading\n"), None);
        assert_eq!(title("#   \n"), None);
    }

    #[test]
    fn the_text_keeps_the_words_and_drops_the_markup() {
        let source = "---\ntitle: Meta\nsecret: front\n---\n\
            # Title\n\nSome **bold** and [a link](https://example.com) and ![alt text](x.png).\n\n\
            - item `one`\n- item two\n\n<div class=\"x\">raw html</div>\n\n\
            | a | b |\n|---|---|\n| c | d |\n\n```rust\nfn main() {}\n```\n";
        let text = extract(source).text;
        assert_eq!(
            text,
            "Title\nSome bold and a link and alt text.\nitem one\nitem two\na b\nc d\nfn main() {}"
        );
    }
}
