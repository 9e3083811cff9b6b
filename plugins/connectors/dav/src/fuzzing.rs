//! The parsers of what a DAV server sends, for the fuzz targets in `fuzz/` (feature
//! `fuzzing`; docs/fuzzing.md): each runs as a sync would on the text given, and returns
//! nothing, as a fuzz target only looks for a panic, a hang or a runaway allocation.

use chrono::{DateTime, Utc};
use url::Url;

use crate::map::{self, Resource};
use crate::webdav::{self, CollectionKind, CURRENT_USER_PRINCIPAL, DISPLAYNAME, GETETAG};
use crate::{href, ical, vcard};

/// When the fuzzed sync runs: fixed, so that an input replays the same way.
fn sync_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_749_470_400, 0).unwrap_or_default()
}

/// Maps a vCard into a person and its item, as a sync maps an address book's member.
pub fn map_vcard(text: &str) {
    if let Ok(mapped) = vcard::map_vcard(text) {
        let _ = mapped.is_since(sync_time());
        item(CollectionKind::Addressbook, text, mapped);
    }
}

/// Maps an iCalendar object into a calendar event and its item, as a sync maps a
/// calendar's member.
pub fn map_icalendar(text: &str) {
    if let Ok(mapped) = ical::map_icalendar(text) {
        let _ = mapped.is_since(sync_time());
        item(CollectionKind::Calendar, text, mapped);
    }
}

fn item(kind: CollectionKind, text: &str, mapped: map::Mapped) {
    let resource = Resource {
        key: "/ada/contacts/1.vcf",
        href: "/ada/contacts/1.vcf",
        etag: Some("\"1\""),
        text,
    };
    let _ = map::upsert("fuzz", kind, resource, mapped, sync_time());
}

/// Reads a multistatus answer from `http://dav.example.com/ada/`, then what discovery and a
/// sync read from it: hrefs resolved against the base, statuses, etags, names, types, the
/// data of either kind of collection.
pub fn read_multistatus(body: &str) {
    let Ok(base) = Url::parse("http://dav.example.com/ada/") else {
        return;
    };
    let Ok(answer) = webdav::parse_multistatus(base, body) else {
        return;
    };
    for response in &answer.responses {
        for h in &response.hrefs {
            if let Some(url) = href::resolve(&answer.base, h) {
                let key = href::path_key(&url);
                let collection = href::collection_key(&href::as_collection_url(&url));
                let name = href::member_name(&collection, &key);
                let _ = href::member_key(&collection, &name);
            }
        }
        let _ = response.is_not_found();
        let _ = response.prop_text(GETETAG);
        let _ = response.prop_text(DISPLAYNAME);
        let _ = response.prop(CURRENT_USER_PRINCIPAL).map(|p| p.hrefs());
        let _ = response.resource_types();
        for kind in [CollectionKind::Addressbook, CollectionKind::Calendar] {
            let _ = response.prop(kind.data_prop()).map(|p| p.text.len());
        }
    }
}
