//! WebDAV request bodies and the multistatus answers to them (RFC 4918, RFC 6578, RFC 6352,
//! RFC 4791).

use url::Url;

use crate::xml::{self, Element, XmlError, CALDAV, CARDDAV, DAV};

/// A property to ask for: its namespace and local name.
pub(crate) type PropName = (&'static str, &'static str);

/// `DAV:getetag`.
pub(crate) const GETETAG: PropName = (DAV, "getetag");
/// `DAV:resourcetype`.
pub(crate) const RESOURCETYPE: PropName = (DAV, "resourcetype");
/// `DAV:displayname`.
pub(crate) const DISPLAYNAME: PropName = (DAV, "displayname");
/// `DAV:current-user-principal` (RFC 5397).
pub(crate) const CURRENT_USER_PRINCIPAL: PropName = (DAV, "current-user-principal");
/// `CARDDAV:addressbook-home-set`.
pub(crate) const ADDRESSBOOK_HOME_SET: PropName = (CARDDAV, "addressbook-home-set");
/// `CALDAV:calendar-home-set`.
pub(crate) const CALENDAR_HOME_SET: PropName = (CALDAV, "calendar-home-set");
/// `CALDAV:supported-calendar-component-set`.
pub(crate) const SUPPORTED_COMPONENTS: PropName = (CALDAV, "supported-calendar-component-set");

/// Which kind of collection: the report names and the data property differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CollectionKind {
    /// A CardDAV address book of vCards.
    Addressbook,
    /// A CalDAV calendar of iCalendar objects.
    Calendar,
}

impl CollectionKind {
    /// The property that holds a member's content.
    pub(crate) fn data_prop(self) -> PropName {
        match self {
            CollectionKind::Addressbook => (CARDDAV, "address-data"),
            CollectionKind::Calendar => (CALDAV, "calendar-data"),
        }
    }

    /// The multiget report's root element.
    fn multiget(self) -> PropName {
        match self {
            CollectionKind::Addressbook => (CARDDAV, "addressbook-multiget"),
            CollectionKind::Calendar => (CALDAV, "calendar-multiget"),
        }
    }
}

/// The prefix a request body uses for a namespace.
fn prefix(namespace: &str) -> &'static str {
    match namespace {
        CARDDAV => "cr",
        CALDAV => "c",
        _ => "d",
    }
}

const NAMESPACES: &str = r#"xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cr="urn:ietf:params:xml:ns:carddav""#;

fn prop_list(props: &[PropName]) -> String {
    let mut out = String::from("<d:prop>");
    for (namespace, name) in props {
        out.push_str(&format!("<{}:{name}/>", prefix(namespace)));
    }
    out.push_str("</d:prop>");
    out
}

/// A `PROPFIND` body asking for `props`.
pub(crate) fn propfind_body(props: &[PropName]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:propfind {NAMESPACES}>{}</d:propfind>"#,
        prop_list(props)
    )
}

/// A `sync-collection` REPORT body (RFC 6578) from `token` (empty for an initial sync),
/// asking for each member's etag only: contents are fetched in batches by multiget.
pub(crate) fn sync_collection_body(token: Option<&str>) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:sync-collection {NAMESPACES}><d:sync-token>{}</d:sync-token><d:sync-level>1</d:sync-level>{}</d:sync-collection>"#,
        xml::escape(token.unwrap_or_default()),
        prop_list(&[GETETAG])
    )
}

/// An `addressbook-multiget` or `calendar-multiget` REPORT body for `hrefs`, as the server
/// wrote them.
pub(crate) fn multiget_body<'a>(
    kind: CollectionKind,
    hrefs: impl IntoIterator<Item = &'a str>,
) -> String {
    let (namespace, name) = kind.multiget();
    let root = format!("{}:{name}", prefix(namespace));
    let mut body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><{root} {NAMESPACES}>{}"#,
        prop_list(&[GETETAG, kind.data_prop()])
    );
    for href in hrefs {
        body.push_str(&format!("<d:href>{}</d:href>", xml::escape(href)));
    }
    body.push_str(&format!("</{root}>"));
    body
}

/// A `207 Multi-Status` answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Multistatus {
    /// The URL the answer came from (after redirects): hrefs resolve against it.
    pub base: Url,
    /// The new sync token, in an answer to `sync-collection`.
    pub sync_token: Option<String>,
    /// One per resource.
    pub responses: Vec<DavResponse>,
}

/// What a multistatus says about one resource (or several, with one status).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DavResponse {
    /// The resource's hrefs as the server wrote them; one, except in a status-only answer.
    pub hrefs: Vec<String>,
    /// The status of the resource itself (`404` for a member removed), if given.
    pub status: Option<u16>,
    /// The properties found (those under a 2xx `propstat`).
    pub props: Vec<Element>,
}

impl DavResponse {
    /// The property `{namespace}name`, if found.
    pub fn prop(&self, (namespace, name): PropName) -> Option<&Element> {
        self.props.iter().find(|p| p.is(namespace, name))
    }

    /// The trimmed text of property `name`, if found and not empty.
    pub fn prop_text(&self, name: PropName) -> Option<String> {
        self.prop(name)
            .map(|p| p.text.trim().to_owned())
            .filter(|t| !t.is_empty())
    }

    /// The first href.
    pub fn href(&self) -> Option<&str> {
        self.hrefs.first().map(String::as_str)
    }

    /// Whether the resource itself is reported missing (`404 Not Found`).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// The child element names of `DAV:resourcetype`, such as `{DAV:}collection`.
    pub fn resource_types(&self) -> Vec<(String, String)> {
        self.prop(RESOURCETYPE)
            .map(|t| {
                t.children
                    .iter()
                    .map(|c| (c.namespace.clone(), c.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `DAV:resourcetype` holds `{namespace}name`.
    pub fn has_type(&self, namespace: &str, name: &str) -> bool {
        self.resource_types()
            .iter()
            .any(|(ns, n)| ns == namespace && n == name)
    }
}

/// Reads a multistatus answer that came from `base`.
pub(crate) fn parse_multistatus(base: Url, body: &str) -> Result<Multistatus, XmlError> {
    let root = xml::parse(body)?;
    let sync_token = root
        .child(DAV, "sync-token")
        .map(|t| t.text.trim().to_owned())
        .filter(|t| !t.is_empty());
    let responses = root
        .children_named(DAV, "response")
        .map(|response| DavResponse {
            hrefs: response.hrefs(),
            status: response
                .child(DAV, "status")
                .and_then(|s| status_code(&s.text)),
            props: response
                .children_named(DAV, "propstat")
                .filter(|propstat| {
                    propstat
                        .child(DAV, "status")
                        .and_then(|s| status_code(&s.text))
                        .is_none_or(|code| (200..300).contains(&code))
                })
                .filter_map(|propstat| propstat.child(DAV, "prop"))
                .flat_map(|prop| prop.children.iter().cloned())
                .collect(),
        })
        .collect();
    Ok(Multistatus {
        base,
        sync_token,
        responses,
    })
}

/// The code of a status line such as `HTTP/1.1 404 Not Found`.
fn status_code(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1/ada/contacts/").unwrap()
    }

    #[test]
    fn a_sync_answer_gives_the_token_changes_and_removals() {
        let answer = parse_multistatus(
            base(),
            r#"<?xml version='1.0' encoding='utf-8'?>
            <multistatus xmlns="DAV:"><sync-token>http://radicale.org/ns/sync/abc</sync-token>
            <response><href>/ada/contacts/a.vcf</href><propstat><prop><getetag>"e1"</getetag></prop>
              <status>HTTP/1.1 200 OK</status></propstat>
              <propstat><prop><displayname/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
            <response><href>/ada/contacts/b.vcf</href><status>HTTP/1.1 404 Not Found</status></response>
            </multistatus>"#,
        )
        .unwrap();
        assert_eq!(
            answer.sync_token.as_deref(),
            Some("http://radicale.org/ns/sync/abc")
        );
        let [changed, removed] = &answer.responses[..] else {
            panic!("{answer:?}")
        };
        assert_eq!(changed.href(), Some("/ada/contacts/a.vcf"));
        assert_eq!(changed.prop_text(GETETAG).as_deref(), Some("\"e1\""));
        assert!(
            changed.prop(DISPLAYNAME).is_none(),
            "a 404 propstat is not a property"
        );
        assert!(!changed.is_not_found());
        assert!(removed.is_not_found());
    }

    #[test]
    fn request_bodies_escape_what_they_carry() {
        let body = sync_collection_body(Some("https://x/sync?a=1&b=2"));
        assert!(body.contains("<d:sync-token>https://x/sync?a=1&amp;b=2</d:sync-token>"));
        let body = multiget_body(CollectionKind::Calendar, ["/c/a&b.ics"]);
        assert!(body.starts_with(r#"<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget "#));
        assert!(body.contains("<c:calendar-data/>"));
        assert!(body.contains("<d:href>/c/a&amp;b.ics</d:href>"));
        let root = xml::parse(&body).unwrap();
        assert!(root.is(CALDAV, "calendar-multiget"));
    }
}
