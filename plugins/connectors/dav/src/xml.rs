//! A small namespace-aware XML tree, enough to read WebDAV multistatus answers.
//!
//! WebDAV answers are short documents of nested properties whose meaning depends on the
//! namespace, not the prefix (`D:href`, `d:href` and `href` under a default namespace are one
//! element). Reading them into a tree first keeps the readers of each report simple.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// The WebDAV namespace.
pub(crate) const DAV: &str = "DAV:";
/// The CardDAV namespace (RFC 6352).
pub(crate) const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
/// The CalDAV namespace (RFC 4791).
pub(crate) const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";

/// An XML document that could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(#[from] quick_xml::Error),
    /// Text or a name that is not valid in its encoding.
    #[error("malformed XML text: {0}")]
    Encoding(#[from] quick_xml::encoding::EncodingError),
    /// An entity other than the five XML predefines, or a bad character reference.
    #[error("unknown XML entity `&{0};`")]
    UnknownEntity(String),
    /// The document has no root element.
    #[error("the document has no root element")]
    Empty,
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested more than {MAX_DEPTH} deep")]
    TooDeep,
}

/// How deep elements may nest. A multistatus answer nests about eight deep (`multistatus`,
/// `response`, `propstat`, `prop`, a property and its values); a server that nests thousands
/// deep is refused, as the tree it makes would be dropped recursively and overflow the stack
/// (aborting the process), and quick-xml's namespace reader counts levels in a `u16`.
pub(crate) const MAX_DEPTH: usize = 64;

/// One element: its namespace and local name, attributes, text and child elements.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Element {
    /// The namespace URI, empty when unbound.
    pub namespace: String,
    /// The local name, without prefix.
    pub name: String,
    /// Attributes by local name, values unescaped.
    pub attributes: Vec<(String, String)>,
    /// The text directly inside the element, entities resolved, line ends normalised.
    pub text: String,
    /// Child elements, in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// Whether this element is `{namespace}name`.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }

    /// The first child `{namespace}name`.
    pub fn child(&self, namespace: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(namespace, name))
    }

    /// Every child `{namespace}name`.
    pub fn children_named<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(namespace, name))
    }

    /// The value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text of every `DAV:href` child.
    pub fn hrefs(&self) -> Vec<String> {
        self.children_named(DAV, "href")
            .map(|h| h.text.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect()
    }
}

/// Reads `xml` into its root element.
pub(crate) fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(xml);
    // Open elements, innermost last; the root is the first one closed with an empty stack.
    let mut open: Vec<Element> = Vec::new();
    loop {
        let (namespace, event) = reader.read_resolved_event()?;
        let namespace = match namespace {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            ResolveResult::Unbound | ResolveResult::Unknown(_) => String::new(),
        };
        match event {
            Event::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                open.push(element(namespace, &start)?);
            }
            Event::Empty(start) => {
                let done = element(namespace, &start)?;
                if let Some(root) = close(&mut open, done) {
                    return Ok(root);
                }
            }
            Event::End(_) => {
                let Some(done) = open.pop() else {
                    continue;
                };
                if let Some(root) = close(&mut open, done) {
                    return Ok(root);
                }
            }
            Event::Text(text) => {
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&text.xml10_content()?);
                }
            }
            Event::CData(data) => {
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&data.xml10_content()?);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref()? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode()?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError::UnknownEntity(name.clone().into_owned()))?
                            .to_owned()
                    }
                };
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::Eof => return Err(XmlError::Empty),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// Attaches a closed element to its parent, or returns it when it is the root.
fn close(open: &mut [Element], done: Element) -> Option<Element> {
    match open.last_mut() {
        Some(parent) => {
            parent.children.push(done);
            None
        }
        None => Some(done),
    }
}

fn element(namespace: String, start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let mut attributes = Vec::new();
    for attribute in start.attributes().flatten() {
        let name = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)?
            .into_owned();
        attributes.push((name, value));
    }
    Ok(Element {
        namespace,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for a request body.
pub(crate) fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_by_namespace_not_prefix() {
        let root = parse(
            r#"<?xml version="1.0"?>
            <x:multistatus xmlns:x="DAV:" xmlns="urn:ietf:params:xml:ns:caldav">
              <x:response><x:href>/a%20b.ics</x:href><calendar-data>A &amp; B&#10;C</calendar-data>
              <comp name="VEVENT"/></x:response>
            </x:multistatus>"#,
        )
        .unwrap();
        assert!(root.is(DAV, "multistatus"));
        let response = root.child(DAV, "response").unwrap();
        assert_eq!(response.hrefs(), ["/a%20b.ics"]);
        assert_eq!(
            response.child(CALDAV, "calendar-data").unwrap().text,
            "A & B\nC"
        );
        assert_eq!(
            response.child(CALDAV, "comp").unwrap().attribute("name"),
            Some("VEVENT")
        );
    }

    #[test]
    fn cdata_and_carriage_returns_are_kept_as_text() {
        let root = parse("<d:a xmlns:d=\"DAV:\"><![CDATA[BEGIN:VCARD\r\n<x>]]></d:a>").unwrap();
        assert_eq!(root.text, "BEGIN:VCARD\n<x>");
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>&nbsp;</a>").is_err());
    }

    #[test]
    fn a_document_nested_deeper_than_any_answer_is_refused_before_it_overflows_the_stack() {
        // Proves: a server answering elements nested a hundred thousand deep (300 kB, well
        // under the response size limit) gets an error, where the tree it made used to be
        // dropped recursively and overflow the stack, aborting the whole process.
        let depth = 100_000;
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert!(matches!(parse(&xml), Err(XmlError::TooDeep)));
        let unclosed = "<d:a xmlns:d=\"DAV:\">".repeat(depth);
        assert!(matches!(parse(&unclosed), Err(XmlError::TooDeep)));
        // As deep as a real answer is read.
        let nested = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&nested).is_ok());
    }
}
