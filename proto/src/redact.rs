//! Keeping credentials a URL carries out of error messages and logs: the one helper every
//! crate uses where a URL, or text that may hold one (a library's error, a plugin's message,
//! a server's answer), reaches an error or a log line.
//!
//! The user name and password of `scheme://user:password@host/` become `***`, and so does
//! the value of each query parameter whose name says it is a secret (`token`, `access_token`,
//! `api_key`, `password`, `sig`, …): `https://***@dav.example.com/x?token=***&page=2`.

use std::borrow::Cow;

use url::Url;

/// What a redacted credential is replaced with.
pub const REDACTED: &str = "***";

/// Query parameter names whose values are secrets, compared without case (and without `-`
/// or `_`): an API key, a token, a password or a signature passed in the URL.
const SECRET_PARAMS: [&str; 14] = [
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "sig",
    "signature",
    "auth",
];

/// Whether the query parameter `name` holds a secret.
fn is_secret_param(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_PARAMS.contains(&folded.as_str())
}

/// `url` as it may be shown: its user name and password, and the values of secret query
/// parameters, replaced by `***`.
///
/// ```
/// use tributary_proto::redact::redact_url;
/// let url = url::Url::parse("https://ada:hunter2@dav.example.com/x?token=t&page=2").unwrap();
/// assert_eq!(redact_url(&url), "https://***@dav.example.com/x?token=***&page=2");
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let had_userinfo = !url.username().is_empty() || url.password().is_some();
    if had_userinfo {
        let _ = shown.set_password(None);
        let _ = shown.set_username(REDACTED);
    }
    if url.query_pairs().any(|(name, _)| is_secret_param(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_param(&name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `***` is percent-encoded where the URL holds it; shown as typed.
    shown.as_str().replace("%2A%2A%2A", REDACTED)
}

/// `text` with every URL in it (`scheme://…`, up to a space, a quote or a bracket) shown as
/// [`redact_url`] shows it; text without credentials in a URL is returned as it is.
///
/// ```
/// use tributary_proto::redact::redact_urls;
/// assert_eq!(
///     redact_urls("GET https://ada:hunter2@h.example/x failed: refused"),
///     "GET https://***@h.example/x failed: refused"
/// );
/// ```
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` just before `://`.
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ')'))
            .map_or(rest.len(), |i| at + i);
        let candidate = &rest[start..end];
        out.push_str(&rest[..start]);
        match Url::parse(candidate) {
            Ok(url) if start < at => {
                let shown = redact_url(&url);
                if shown != url.as_str() {
                    changed = true;
                    out.push_str(&shown);
                } else {
                    out.push_str(candidate);
                }
            }
            _ if candidate.contains('@') => {
                // Not a URL the parser takes, but it may still carry `user:password@`.
                changed = true;
                out.push_str(&redact_unparsed(candidate));
            }
            _ => out.push_str(candidate),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// `scheme://user:password@rest` that does not parse, with what is before the last `@` of
/// its authority replaced.
fn redact_unparsed(candidate: &str) -> String {
    let Some(at) = candidate.find("://") else {
        return candidate.to_owned();
    };
    let authority_start = at + 3;
    let authority_end = candidate[authority_start..]
        .find(['/', '?', '#'])
        .map_or(candidate.len(), |i| authority_start + i);
    match candidate[authority_start..authority_end].rfind('@') {
        Some(i) => format!(
            "{}{REDACTED}{}",
            &candidate[..authority_start],
            &candidate[authority_start + i..]
        ),
        None => candidate.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_secret_parameters_are_hidden_and_the_rest_kept() {
        let cases = [
            (
                "error for url (https://ada:hunter2@dav.example.com:8443/a/b?page=2): refused",
                "error for url (https://***@dav.example.com:8443/a/b?page=2): refused",
            ),
            (
                "cannot reach nats://connector:s3cret@127.0.0.1:4222, nats://b:c@h:1",
                "cannot reach nats://***@127.0.0.1:4222, nats://***@h:1",
            ),
            (
                "GET `https://api.example.com/x?api_key=hunter2&Access-Token=t2&q=a b`",
                "GET `https://api.example.com/x?api_key=***&Access-Token=***&q=a b`",
            ),
            (
                "postgres://tributary:hunter2@db/tributary?sslmode=require",
                "postgres://***@db/tributary?sslmode=require",
            ),
            ("http://ada:hunter2@[bad/x", "http://***@[bad/x"),
            ("plain words, no URL", "plain words, no URL"),
            ("https://h.example/x?page=2", "https://h.example/x?page=2"),
        ];
        for (text, shown) in cases {
            assert_eq!(redact_urls(text), shown, "{text}");
            assert!(!redact_urls(text).contains("hunter2"));
        }
        assert!(matches!(
            redact_urls("https://h.example/"),
            Cow::Borrowed(_)
        ));
    }
}
