//! Listing a collection's members: what changed since a sync token (RFC 6578), or all of
//! them with their etags.

use std::collections::{BTreeMap, BTreeSet};

use tributary_plugin_sdk::PluginError;

use crate::client::{DavClient, Depth};
use crate::discovery::Collection;
use crate::href;
use crate::webdav::{propfind_body, sync_collection_body, Multistatus, GETETAG, RESOURCETYPE};
use crate::xml::DAV;

/// A member as listed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    /// Its href as the server wrote it: what a multiget asks for.
    pub href: String,
    /// Its key (decoded path).
    pub key: String,
    /// Its etag, if the server gave one.
    pub etag: Option<String>,
}

/// What a listing found.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Listing {
    /// The token to sync from next time; `None` when the server has no `sync-collection`.
    pub token: Option<String>,
    /// Members changed (or, for a whole listing, every member), by key.
    pub changed: BTreeMap<String, Listed>,
    /// Keys of members removed since the token.
    pub removed: BTreeSet<String>,
    /// Whether `changed` is every member, so that a member known but not listed is gone.
    pub complete: bool,
}

/// Why a token-based listing could not be had.
#[derive(Debug)]
pub(crate) enum ListingError {
    /// The server no longer accepts the token (403 or 409, `DAV:valid-sync-token`).
    TokenRefused(PluginError),
    /// Anything else.
    Failed(PluginError),
}

/// The changes since `token`, following truncated answers (507 on the collection itself,
/// RFC 6578 §3.6) by asking again from the token that came with them.
pub(crate) async fn changes_since(
    client: &DavClient,
    collection: &Collection,
    token: &str,
) -> Result<Listing, ListingError> {
    sync_collection(client, collection, Some(token))
        .await
        .map_err(|e| match e {
            PluginError::Http {
                status: 403 | 409, ..
            } => ListingError::TokenRefused(e),
            other => ListingError::Failed(other),
        })
}

/// Every member with its etag, and a token to sync from next time when the server supports
/// `sync-collection` (else a `PROPFIND`, and no token).
pub(crate) async fn everything(
    client: &DavClient,
    collection: &Collection,
) -> Result<Listing, PluginError> {
    match sync_collection(client, collection, None).await {
        Ok(mut listing) => {
            listing.complete = true;
            Ok(listing)
        }
        Err(PluginError::Http {
            status: 400 | 403 | 405 | 415 | 422 | 501,
            ..
        }) => propfind_members(client, collection).await,
        Err(other) => Err(other),
    }
}

async fn sync_collection(
    client: &DavClient,
    collection: &Collection,
    token: Option<&str>,
) -> Result<Listing, PluginError> {
    let mut listing = Listing {
        token: token.map(str::to_owned),
        ..Listing::default()
    };
    loop {
        let answer = client
            .report(
                &collection.url,
                Depth::Zero,
                sync_collection_body(listing.token.as_deref()),
            )
            .await?;
        let truncated = absorb(&mut listing, &answer, collection);
        let next = answer.sync_token.clone();
        let progressed = next.is_some() && next != listing.token;
        if next.is_some() {
            listing.token = next;
        }
        if !truncated || !progressed {
            break;
        }
    }
    Ok(listing)
}

/// Adds one `sync-collection` answer to `listing`: a later answer overrides an earlier one
/// for the same member. Says whether the answer was truncated.
fn absorb(listing: &mut Listing, answer: &Multistatus, collection: &Collection) -> bool {
    let mut truncated = false;
    for response in &answer.responses {
        for raw in &response.hrefs {
            let Some(key) = member_key(answer, collection, raw) else {
                truncated |= response.status == Some(507);
                continue;
            };
            if response.is_not_found() {
                listing.changed.remove(&key);
                listing.removed.insert(key);
            } else if response.status.is_none_or(|s| (200..300).contains(&s)) {
                listing.removed.remove(&key);
                listing.changed.insert(
                    key.clone(),
                    Listed {
                        href: raw.clone(),
                        key,
                        etag: response.prop_text(GETETAG),
                    },
                );
            }
        }
    }
    truncated
}

/// Every member through `PROPFIND` depth 1, for a server without `sync-collection`.
async fn propfind_members(
    client: &DavClient,
    collection: &Collection,
) -> Result<Listing, PluginError> {
    let answer = client
        .propfind(
            &collection.url,
            Depth::One,
            propfind_body(&[GETETAG, RESOURCETYPE]),
        )
        .await?;
    let mut listing = Listing {
        complete: true,
        ..Listing::default()
    };
    for response in &answer.responses {
        if response.has_type(DAV, "collection") {
            continue;
        }
        let Some(raw) = response.href() else {
            continue;
        };
        if let Some(key) = member_key(&answer, collection, raw) {
            listing.changed.insert(
                key.clone(),
                Listed {
                    href: raw.to_owned(),
                    key,
                    etag: response.prop_text(GETETAG),
                },
            );
        }
    }
    Ok(listing)
}

/// The key of a member, or `None` for the collection itself or a collection inside it
/// (some servers list the collection among its changes).
fn member_key(answer: &Multistatus, collection: &Collection, raw: &str) -> Option<String> {
    let url = href::resolve(&answer.base, raw)?;
    let key = href::path_key(&url);
    (!key.ends_with('/') && key != collection.key.trim_end_matches('/')).then_some(key)
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::webdav::{parse_multistatus, CollectionKind};

    fn collection() -> Collection {
        let url = Url::parse("http://h/ada/cal/").unwrap();
        Collection {
            key: href::collection_key(&url),
            url,
            kind: CollectionKind::Calendar,
            display_name: None,
        }
    }

    fn answer(body: &str) -> Multistatus {
        parse_multistatus(Url::parse("http://h/ada/cal/").unwrap(), body).unwrap()
    }

    #[test]
    fn a_truncated_answer_is_followed_and_later_answers_win() {
        let mut listing = Listing::default();
        let first = answer(
            r#"<multistatus xmlns="DAV:"><sync-token>t1</sync-token>
            <response><href>/ada/cal/</href><status>HTTP/1.1 507 Insufficient Storage</status></response>
            <response><href>a.ics</href><propstat><prop><getetag>"1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
            <response><href>/ada/cal/b%20c.ics</href><propstat><prop><getetag>"2"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
            </multistatus>"#,
        );
        assert!(absorb(&mut listing, &first, &collection()));
        let second = answer(
            r#"<multistatus xmlns="DAV:"><sync-token>t2</sync-token>
            <response><href>/ada/cal/</href><propstat><prop><getetag>"c"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
            <response><href>/ada/cal/a.ics</href><status>HTTP/1.1 404 Not Found</status></response>
            <response><href>/ada/cal/d.ics</href><propstat><prop><getetag>"4"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
            </multistatus>"#,
        );
        assert!(!absorb(&mut listing, &second, &collection()));
        let changed: Vec<(&str, &str, Option<&str>)> = listing
            .changed
            .values()
            .map(|l| (l.key.as_str(), l.href.as_str(), l.etag.as_deref()))
            .collect();
        assert_eq!(
            changed,
            [
                ("/ada/cal/b c.ics", "/ada/cal/b%20c.ics", Some("\"2\"")),
                ("/ada/cal/d.ics", "/ada/cal/d.ics", Some("\"4\"")),
            ],
            "the collection itself is not a member"
        );
        assert_eq!(
            listing.removed.iter().collect::<Vec<_>>(),
            ["/ada/cal/a.ics"]
        );
    }
}
