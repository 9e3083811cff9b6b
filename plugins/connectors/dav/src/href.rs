//! Hrefs as servers write them, and the one form this connector keys them by.
//!
//! A server may answer with a path (`/dav/ada/contacts/a%20b.vcf`), a full URL, or a path
//! relative to the request, and may percent-encode the same path differently in two answers
//! (`%40` and `@`). Every href is resolved against the URL of the answer it came in, and
//! keyed by its path with percent-encoding decoded: the same resource always has the same key.

use percent_encoding::percent_decode_str;
use url::Url;

/// `href` resolved against `base` (the URL of the answer it came in).
pub(crate) fn resolve(base: &Url, href: &str) -> Option<Url> {
    base.join(href.trim()).ok()
}

/// The decoded path of `url`: the key of a resource, and its external id.
pub(crate) fn path_key(url: &Url) -> String {
    percent_decode_str(url.path())
        .decode_utf8_lossy()
        .into_owned()
}

/// The key of a collection: its decoded path, ending in `/`.
pub(crate) fn collection_key(url: &Url) -> String {
    let mut key = path_key(url);
    if !key.ends_with('/') {
        key.push('/');
    }
    key
}

/// `url` with a path ending in `/`, as a collection's URL must for relative hrefs to resolve
/// inside it.
pub(crate) fn as_collection_url(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// The name of a member inside its collection (`a b.vcf`), which the cursor stores: the
/// member's key without the collection's key in front; the whole key if it is elsewhere.
pub(crate) fn member_name(collection_key: &str, member_key: &str) -> String {
    member_key
        .strip_prefix(collection_key)
        .filter(|name| !name.is_empty())
        .unwrap_or(member_key)
        .to_owned()
}

/// The key of a member from its name in the cursor: the inverse of [`member_name`].
pub(crate) fn member_key(collection_key: &str, member_name: &str) -> String {
    if member_name.starts_with('/') {
        member_name.to_owned()
    } else {
        format!("{collection_key}{member_name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://dav.example.com/dav/ada/contacts/").unwrap()
    }

    #[test]
    fn paths_urls_and_relative_hrefs_resolve_to_one_key() {
        let keys: Vec<String> = [
            "/dav/ada/contacts/a%20b%40c.vcf",
            "https://dav.example.com/dav/ada/contacts/a%20b@c.vcf",
            "a%20b%40c.vcf",
            " ../contacts/a%20b@c.vcf ",
        ]
        .iter()
        .map(|href| path_key(&resolve(&base(), href).unwrap()))
        .collect();
        assert!(
            keys.iter().all(|k| k == "/dav/ada/contacts/a b@c.vcf"),
            "{keys:?}"
        );
    }

    #[test]
    fn member_names_are_relative_to_their_collection() {
        let collection = collection_key(&base());
        assert_eq!(collection, "/dav/ada/contacts/");
        let name = member_name(&collection, "/dav/ada/contacts/a b.vcf");
        assert_eq!(name, "a b.vcf");
        assert_eq!(member_key(&collection, &name), "/dav/ada/contacts/a b.vcf");
        let elsewhere = member_name(&collection, "/other/x.vcf");
        assert_eq!(member_key(&collection, &elsewhere), "/other/x.vcf");
    }

    #[test]
    fn a_collection_url_ends_in_a_slash() {
        let url = Url::parse("https://dav.example.com/dav/ada/cal?x=1").unwrap();
        assert_eq!(
            as_collection_url(&url).as_str(),
            "https://dav.example.com/dav/ada/cal/"
        );
        assert_eq!(collection_key(&url), "/dav/ada/cal/");
    }
}
