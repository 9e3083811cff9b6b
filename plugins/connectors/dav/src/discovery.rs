//! Finding the address books and calendars to sync from the configured URL.
//!
//! The URL may be a collection (synced alone), a home set, a principal or a server root.
//! From a root: `DAV:current-user-principal` (RFC 5397), or the `/.well-known/carddav` and
//! `/.well-known/caldav` redirects (RFC 6764) when the root does not name one; from the
//! principal: `addressbook-home-set` (RFC 6352) and `calendar-home-set` (RFC 4791); in each
//! home set, the members whose resource type is an address book, or a calendar that can hold
//! events (`VEVENT` in `supported-calendar-component-set`, or no such set).

use std::collections::BTreeMap;

use tributary_plugin_sdk::PluginError;
use url::Url;

use crate::client::{DavClient, Depth};
use crate::config::config_error;
use crate::href;
use crate::webdav::{
    propfind_body, CollectionKind, DavResponse, Multistatus, ADDRESSBOOK_HOME_SET,
    CALENDAR_HOME_SET, CURRENT_USER_PRINCIPAL, DISPLAYNAME, RESOURCETYPE, SUPPORTED_COMPONENTS,
};
use crate::xml::{CALDAV, CARDDAV};

/// An address book or calendar to sync.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Collection {
    /// Its URL, ending in `/`.
    pub url: Url,
    /// Its decoded path: its key in the cursor.
    pub key: String,
    /// Address book or calendar.
    pub kind: CollectionKind,
    /// The name a user gave it, if any.
    pub display_name: Option<String>,
}

/// The collections at or under `start`, sorted by key, restricted to `selectors` (hrefs or
/// display names) when given.
pub(crate) async fn discover(
    client: &DavClient,
    start: &Url,
    selectors: Option<&[String]>,
) -> Result<Vec<Collection>, PluginError> {
    let found = find_all(client, start).await?;
    if found.is_empty() {
        return Err(config_error(
            "url",
            format!(
                "found no address book or event calendar at or under {}{}",
                start.host_str().unwrap_or_default(),
                start.path()
            ),
        ));
    }
    match selectors {
        None => Ok(found),
        Some(selectors) => select(start, found, selectors),
    }
}

async fn find_all(client: &DavClient, start: &Url) -> Result<Vec<Collection>, PluginError> {
    let props = [
        RESOURCETYPE,
        DISPLAYNAME,
        SUPPORTED_COMPONENTS,
        CURRENT_USER_PRINCIPAL,
        ADDRESSBOOK_HOME_SET,
        CALENDAR_HOME_SET,
    ];
    let answer = client
        .propfind(start, Depth::Zero, propfind_body(&props))
        .await?;
    let Some(own) = answer.responses.first() else {
        return Ok(Vec::new());
    };
    if let Some(collection) = collection(&answer.base, own) {
        return Ok(vec![collection]);
    }
    if own.has_type(CALDAV, "calendar") {
        // A task list or journal: nothing here to sync, and not a home to look around in.
        return Ok(Vec::new());
    }
    let mut homes = home_sets(&answer.base, own);
    if homes.is_empty() {
        let principal = match principal(&answer.base, own) {
            Some(principal) => Some(principal),
            None => well_known_principal(client, start).await,
        };
        if let Some(principal) = principal {
            let answer = client
                .propfind(
                    &principal,
                    Depth::Zero,
                    propfind_body(&[ADDRESSBOOK_HOME_SET, CALENDAR_HOME_SET]),
                )
                .await?;
            if let Some(own) = answer.responses.first() {
                homes = home_sets(&answer.base, own);
            }
        }
    }
    if homes.is_empty() {
        // Some servers give no home set: the URL is then taken to be one.
        homes.push(href::as_collection_url(start));
    }
    let mut found = BTreeMap::new();
    for home in homes {
        let answer = client
            .propfind(
                &home,
                Depth::One,
                propfind_body(&[RESOURCETYPE, DISPLAYNAME, SUPPORTED_COMPONENTS]),
            )
            .await?;
        for collection in collections(&answer) {
            found.entry(collection.key.clone()).or_insert(collection);
        }
    }
    Ok(found.into_values().collect())
}

/// The address books and event calendars among the resources of a depth-1 answer.
fn collections(answer: &Multistatus) -> impl Iterator<Item = Collection> + '_ {
    answer
        .responses
        .iter()
        .filter_map(|response| collection(&answer.base, response))
}

/// The resource as a collection to sync, if it is an address book or an event calendar.
fn collection(base: &Url, response: &DavResponse) -> Option<Collection> {
    let kind = if response.has_type(CARDDAV, "addressbook") {
        CollectionKind::Addressbook
    } else if response.has_type(CALDAV, "calendar") && holds_events(response) {
        CollectionKind::Calendar
    } else {
        return None;
    };
    let url = href::as_collection_url(&href::resolve(base, response.href()?)?);
    Some(Collection {
        key: href::collection_key(&url),
        url,
        kind,
        display_name: response.prop_text(DISPLAYNAME),
    })
}

/// Whether a calendar can hold events: a task list or a journal cannot.
fn holds_events(response: &DavResponse) -> bool {
    match response.prop(SUPPORTED_COMPONENTS) {
        Some(set) if !set.children.is_empty() => set
            .children_named(CALDAV, "comp")
            .any(|comp| comp.attribute("name") == Some("VEVENT")),
        // A server that does not say supports every component.
        _ => true,
    }
}

fn home_sets(base: &Url, response: &DavResponse) -> Vec<Url> {
    let mut homes: Vec<Url> = Vec::new();
    for name in [ADDRESSBOOK_HOME_SET, CALENDAR_HOME_SET] {
        for href in response.prop(name).map(|p| p.hrefs()).unwrap_or_default() {
            if let Some(url) = href::resolve(base, &href) {
                let url = href::as_collection_url(&url);
                if !homes.contains(&url) {
                    homes.push(url);
                }
            }
        }
    }
    homes
}

fn principal(base: &Url, response: &DavResponse) -> Option<Url> {
    let hrefs = response.prop(CURRENT_USER_PRINCIPAL)?.hrefs();
    href::resolve(base, hrefs.first()?)
}

/// The principal found through `/.well-known/carddav` or `/.well-known/caldav` on the
/// server of `start`; `None` when neither answers.
async fn well_known_principal(client: &DavClient, start: &Url) -> Option<Url> {
    for path in ["/.well-known/carddav", "/.well-known/caldav"] {
        let Ok(url) = start.join(path) else {
            continue;
        };
        let Ok(answer) = client
            .propfind(&url, Depth::Zero, propfind_body(&[CURRENT_USER_PRINCIPAL]))
            .await
        else {
            continue;
        };
        if let Some(found) = answer
            .responses
            .first()
            .and_then(|own| principal(&answer.base, own))
        {
            return Some(found);
        }
    }
    None
}

/// The collections `selectors` name, by href (a path or URL) or display name; a selector that
/// names none is a config error listing what there is.
fn select(
    start: &Url,
    found: Vec<Collection>,
    selectors: &[String],
) -> Result<Vec<Collection>, PluginError> {
    let matches = |selector: &str, collection: &Collection| {
        let by_name = collection
            .display_name
            .as_deref()
            .is_some_and(|name| name.eq_ignore_ascii_case(selector.trim()));
        let by_href = href::resolve(start, selector)
            .is_some_and(|url| href::collection_key(&url) == collection.key);
        by_name || by_href
    };
    if let Some(unmatched) = selectors
        .iter()
        .find(|s| !found.iter().any(|c| matches(s, c)))
    {
        let available: Vec<String> = found
            .iter()
            .map(|c| match &c.display_name {
                Some(name) => format!("{} ({name})", c.key),
                None => c.key.clone(),
            })
            .collect();
        return Err(config_error(
            "collections",
            format!(
                "`{unmatched}` names no address book or calendar; found: {}",
                available.join(", ")
            ),
        ));
    }
    Ok(found
        .into_iter()
        .filter(|c| selectors.iter().any(|s| matches(s, c)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webdav::parse_multistatus;

    const HOME: &str = r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav">
      <response><href>/ada/</href><propstat><prop><resourcetype><principal/><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
      <response><href>/ada/cal/</href><propstat><prop><resourcetype><C:calendar/><collection/></resourcetype><displayname>Work</displayname>
        <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>
      <response><href>/ada/tasks/</href><propstat><prop><resourcetype><C:calendar/><collection/></resourcetype>
        <C:supported-calendar-component-set><C:comp name="VTODO"/></C:supported-calendar-component-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>
      <response><href>/ada/contacts%20x</href><propstat><prop><resourcetype><CR:addressbook/><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
    </multistatus>"#;

    fn found() -> Vec<Collection> {
        let answer = parse_multistatus(Url::parse("http://h/ada/").unwrap(), HOME).unwrap();
        collections(&answer).collect()
    }

    #[test]
    fn a_home_set_lists_address_books_and_event_calendars_only() {
        let found = found();
        let keys: Vec<(&str, CollectionKind)> =
            found.iter().map(|c| (c.key.as_str(), c.kind)).collect();
        assert_eq!(
            keys,
            [
                ("/ada/cal/", CollectionKind::Calendar),
                ("/ada/contacts x/", CollectionKind::Addressbook)
            ]
        );
        assert_eq!(found[1].url.as_str(), "http://h/ada/contacts%20x/");
    }

    #[test]
    fn selectors_match_hrefs_and_display_names() {
        let start = Url::parse("http://h/").unwrap();
        let chosen = select(&start, found(), &["work".into()]).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].key, "/ada/cal/");
        let chosen = select(&start, found(), &["/ada/contacts%20x".into()]).unwrap();
        assert_eq!(chosen[0].key, "/ada/contacts x/");
        let chosen = select(&start, found(), &["http://h/ada/contacts%20x/".into()]).unwrap();
        assert_eq!(chosen[0].key, "/ada/contacts x/");
        match select(&start, found(), &["Home".into()]) {
            Err(PluginError::Config { field, message }) => {
                assert_eq!(field, "collections");
                assert!(message.contains("`Home`") && message.contains("/ada/cal/ (Work)"));
            }
            other => panic!("{other:?}"),
        }
    }
}
