//! What a plugin instance may do, decided at the plugin boundary.
//!
//! A [`Grants`] holds the permissions a plugin instance was granted and answers every call the
//! plugin makes: an HTTP request to a host, a publish or subscribe on NATS, a read or write of
//! an entity type. A refusal is a [`PermissionDenied`] naming the permission that would have
//! allowed the call, so the message tells the operator exactly what to grant.
//!
//! ```
//! use tributary_proto::grants::Grants;
//! use tributary_proto::EntityType;
//!
//! let grants = Grants::new(
//!     ["network:outbound:*.example.com", "event:publish:data.*", "data:read:persons"]
//!         .map(|p| p.parse().unwrap()),
//! );
//! assert!(grants.check_outbound_host("api.example.com").is_ok());
//! assert!(grants.check_outbound_host("example.com").is_err());
//! assert!(grants.check_publish("data.PersonCreated").is_ok());
//! let denied = grants.check_write(EntityType::Person).unwrap_err();
//! assert_eq!(denied.needed.to_string(), "data:write:persons");
//! ```
//!
//! Every check fails closed: a malformed host or subject, or a grant that could not have come
//! from a manifest (the fields of [`Permission`] are public), allows nothing.

use crate::manifest::{
    config_host_property, outbound_target, valid_host_pattern, valid_subject_pattern, Capability,
    Direction, Permission, STANDARD_PORTS,
};
use crate::model::EntityType;

/// The permissions granted to one plugin instance; decides every call at the plugin boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// As granted, in manifest order; checks scan them all, as a plugin has a handful.
    permissions: Vec<Permission>,
}

/// A call refused because its permission is not granted; names the permission that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission `{needed}` is not granted{}", asked_suffix(.asked))]
pub struct PermissionDenied {
    /// The permission the call needs, such as `network:outbound:api.example.com`.
    pub needed: Permission,
    /// What was refused, when it says more than the permission: the request's method and
    /// origin (`GET https://other.example`; not its path or query, which may hold a key).
    pub asked: Option<String>,
}

impl PermissionDenied {
    /// The same refusal, saying what was asked.
    pub fn asking(mut self, asked: impl Into<String>) -> Self {
        self.asked = Some(asked.into());
        self
    }
}

fn asked_suffix(asked: &Option<String>) -> String {
    asked
        .as_ref()
        .map_or_else(String::new, |asked| format!(" (asked: {asked})"))
}

impl Grants {
    /// Grants exactly `permissions`.
    pub fn new(permissions: impl IntoIterator<Item = Permission>) -> Self {
        Grants {
            permissions: permissions.into_iter().collect(),
        }
    }

    /// Grants `permissions` to an instance configured with `config`: each
    /// `network:outbound:${property}` becomes the host of the URL in that config property
    /// (`https://dav.example.com/user/` grants `dav.example.com`), with its port when the URL
    /// names one other than 80 and 443 (`http://127.0.0.1:5232/` grants `127.0.0.1:5232`).
    /// A property that is missing, not a string or not a URL with a host grants nothing.
    pub fn for_instance(
        permissions: impl IntoIterator<Item = Permission>,
        config: &serde_json::Value,
    ) -> Self {
        let resolve = |p: Permission| match config_host_property(&p.resource) {
            Some(property) => {
                let target = config
                    .get(property)
                    .and_then(serde_json::Value::as_str)
                    .and_then(target_of_url)?;
                Some(permission(p.capability, p.direction, target))
            }
            None => Some(p),
        };
        Grants::new(permissions.into_iter().filter_map(resolve))
    }

    /// The granted permissions, in the order given.
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// Allows an outbound call to `host` on a standard port (80 or 443; a bare host name or
    /// IPv4 address: the caller strips scheme, port and brackets). Case and one trailing dot
    /// are ignored; `*.example.com` allows `a.example.com` and `a.b.example.com` but not
    /// `example.com`; an IP address is allowed only by a grant of that exact address.
    pub fn check_outbound_host(&self, host: &str) -> Result<(), PermissionDenied> {
        self.check_outbound(host, STANDARD_PORTS[1])
    }

    /// Allows an outbound call to `host` on `port`, as [`Grants::check_outbound_host`] does
    /// for the host. Ports 80 and 443 need a grant of the host alone; any other port needs a
    /// grant that names it (`network:outbound:api.example.com:8443`), and the refusal names
    /// that permission.
    pub fn check_outbound(&self, host: &str, port: u16) -> Result<(), PermissionDenied> {
        let host = normalize_host(host);
        // Checked here, not left to `covers`: normalizing again there would let the second
        // dot of `a.example.com..` go. And a pattern is not a host: `*.example.com` must not
        // pass for one because a grant of `*.example.com` covers it.
        let concrete = valid_host_pattern(&host) && !host.contains('*');
        let resource = if STANDARD_PORTS.contains(&port) {
            host
        } else {
            format!("{host}:{port}")
        };
        self.allow_if(
            concrete,
            permission(Capability::Network, Direction::Outbound, resource),
        )
    }

    /// Whether a `network:outbound` grant names `host` itself, not by a `*.domain` pattern
    /// (whatever port it names): what a private address needs besides the operator's
    /// allowance, so that no wildcard grant reaches inside the network.
    pub fn names_host_exactly(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.permissions.iter().any(|grant| {
            (grant.capability, grant.direction) == (Capability::Network, Direction::Outbound)
                && outbound_target(&grant.resource).is_some_and(|(granted, _)| {
                    !granted.starts_with("*.") && normalize_host(granted) == host
                })
        })
    }

    /// Allows receiving inbound traffic (a webhook route).
    pub fn check_inbound(&self) -> Result<(), PermissionDenied> {
        self.allow_if(
            true,
            permission(Capability::Network, Direction::Inbound, String::new()),
        )
    }

    /// Allows publishing on `subject`, which must be concrete: a subject with a wildcard, an
    /// empty token or whitespace is refused whatever is granted.
    pub fn check_publish(&self, subject: &str) -> Result<(), PermissionDenied> {
        // `covers` refuses a malformed subject; a pattern is well-formed but names no subject.
        let concrete = subject.split('.').all(|t| t != "*" && t != ">");
        self.allow_if(
            concrete,
            permission(Capability::Event, Direction::Publish, subject.to_owned()),
        )
    }

    /// Allows subscribing to `subject_or_pattern`: only when every subject it matches is
    /// matched by one grant (`data.>` allows `data.*` and `data.x.>`; `data.*` does not allow
    /// `data.>`).
    pub fn check_subscribe(&self, subject_or_pattern: &str) -> Result<(), PermissionDenied> {
        self.allow_if(
            true,
            permission(
                Capability::Event,
                Direction::Subscribe,
                subject_or_pattern.to_owned(),
            ),
        )
    }

    /// Allows reading entities of type `entity`.
    pub fn check_read(&self, entity: EntityType) -> Result<(), PermissionDenied> {
        self.allow_if(
            true,
            permission(
                Capability::Data,
                Direction::Read,
                entity.plural().to_owned(),
            ),
        )
    }

    /// Allows writing entities of type `entity`.
    pub fn check_write(&self, entity: EntityType) -> Result<(), PermissionDenied> {
        self.allow_if(
            true,
            permission(
                Capability::Data,
                Direction::Write,
                entity.plural().to_owned(),
            ),
        )
    }

    /// Whether `permission` is implied by what is granted (a grant of `*.example.com` covers
    /// `a.example.com` and `*.a.example.com`; `data.>` covers `data.*`).
    pub fn covers(&self, permission: &Permission) -> bool {
        self.permissions
            .iter()
            .any(|grant| implies(grant, permission))
    }

    /// The permissions of `wanted` that these grants do not cover, in order (what an upgrade
    /// newly asks for).
    pub fn not_covered<'a>(&self, wanted: &'a [Permission]) -> Vec<&'a Permission> {
        wanted.iter().filter(|p| !self.covers(p)).collect()
    }

    /// Allows the call when its input is what the call takes (`concrete`: a host, not a host
    /// pattern) and `needed` is covered.
    fn allow_if(&self, concrete: bool, needed: Permission) -> Result<(), PermissionDenied> {
        if concrete && self.covers(&needed) {
            Ok(())
        } else {
            Err(PermissionDenied {
                needed,
                asked: None,
            })
        }
    }
}

fn permission(capability: Capability, direction: Direction, resource: String) -> Permission {
    Permission {
        capability,
        direction,
        resource,
    }
}

/// The host of `url` with its port when that is not a standard one
/// (`https://user@Dav.Example.com:8443/x` → `dav.example.com:8443`, `https://a.org/` →
/// `a.org`), without brackets for IPv6; `None` when it has none.
fn target_of_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let host = parsed.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = normalize_host(host);
    Some(match parsed.port_or_known_default() {
        Some(port) if !STANDARD_PORTS.contains(&port) => format!("{host}:{port}"),
        _ => host,
    })
}

/// Host names are compared lower-case and without the trailing dot of a fully qualified name.
fn normalize_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Whether `grant` alone implies `wanted`.
fn implies(grant: &Permission, wanted: &Permission) -> bool {
    if (grant.capability, grant.direction) != (wanted.capability, wanted.direction) {
        return false;
    }
    match (wanted.capability, wanted.direction) {
        // `${property}` stands for a host only the instance's config knows: it covers only
        // itself (an upgrade asking for it again asks for nothing new) and never a host.
        (Capability::Network, Direction::Outbound)
            if config_host_property(&grant.resource).is_some() =>
        {
            grant.resource == wanted.resource
        }
        (Capability::Network, Direction::Outbound) => {
            match (
                outbound_target(&grant.resource),
                outbound_target(&wanted.resource),
            ) {
                (Some((grant_host, grant_port)), Some((wanted_host, wanted_port))) => {
                    grant_port == wanted_port
                        && host_pattern_covers(
                            &normalize_host(grant_host),
                            &normalize_host(wanted_host),
                        )
                }
                _ => false,
            }
        }
        (Capability::Network, Direction::Inbound) => true,
        (Capability::Event, Direction::Publish | Direction::Subscribe) => {
            subject_pattern_covers(&grant.resource, &wanted.resource)
        }
        (Capability::Data, Direction::Read | Direction::Write) => {
            entities_cover(&grant.resource, &wanted.resource)
        }
        // A capability with another's direction (`network:publish`) names nothing.
        _ => false,
    }
}

/// Whether every host `wanted` (a host or `*.domain`) stands for is matched by `grant`; both
/// normalized.
fn host_pattern_covers(grant: &str, wanted: &str) -> bool {
    if !valid_host_pattern(grant) || !valid_host_pattern(wanted) {
        return false;
    }
    match (grant.strip_prefix("*."), wanted.strip_prefix("*.")) {
        // An exact grant covers only itself, never a pattern.
        (None, _) => grant == wanted,
        (Some(domain), Some(wanted_domain)) => {
            wanted_domain == domain || is_subdomain(wanted_domain, domain)
        }
        // `1.2.3.4` is an address, not a subdomain of `2.3.4`: a host whose last label is
        // numeric is an IPv4 literal (or no domain name at all) and needs an exact grant.
        (Some(domain), None) => !ends_numeric(wanted) && is_subdomain(wanted, domain),
    }
}

/// Whether `host` is `<labels>.<domain>`; both are valid host names.
fn is_subdomain(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|labels| labels.len() > 1 && labels.ends_with('.'))
}

/// Whether the last label of `host` is all digits, as in an IPv4 address.
fn ends_numeric(host: &str) -> bool {
    host.rsplit('.')
        .next()
        .is_some_and(|label| label.chars().all(|c| c.is_ascii_digit()))
}

/// Whether every subject `wanted` (a subject or pattern) matches is matched by `grant`.
fn subject_pattern_covers(grant: &str, wanted: &str) -> bool {
    if !valid_subject_pattern(grant) || !valid_subject_pattern(wanted) {
        return false;
    }
    tokens_cover(grant, wanted)
}

/// Token-by-token pattern coverage of two valid patterns, so `>` can only be last.
fn tokens_cover(grant: &str, wanted: &str) -> bool {
    let mut wanted = wanted.split('.');
    for g in grant.split('.') {
        let Some(w) = wanted.next() else {
            return false;
        };
        match g {
            // `>` matches one or more tokens, whatever they are, `>` included.
            ">" => return true,
            // `*` matches one token, so it covers a literal or `*` but not the many of `>`.
            "*" if w != ">" => {}
            literal if literal == w => {}
            _ => return false,
        }
    }
    wanted.next().is_none()
}

/// Whether a data grant of `grant` (an entity type or `*`) covers `wanted`.
fn entities_cover(grant: &str, wanted: &str) -> bool {
    // Entity names go through `EntityType`'s parser, which the manifest parser uses too, so
    // `persons` and `person` mean the same thing on both sides.
    match (grant, wanted) {
        ("*", "*") => true,
        (_, "*") => false,
        ("*", wanted) => wanted.parse::<EntityType>().is_ok(),
        (grant, wanted) => wanted
            .parse::<EntityType>()
            .is_ok_and(|wanted| grant.parse::<EntityType>() == Ok(wanted)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(granted: &[&str]) -> Grants {
        Grants::new(granted.iter().map(|p| p.parse::<Permission>().unwrap()))
    }

    /// Runs `check` on each input against `granted` and compares with the expected outcome:
    /// `Ok(())`, or `Err(needed)` with the permission the refusal must name.
    fn check_rows(
        granted: &[&str],
        rows: &[(&str, Result<(), &str>)],
        check: impl Fn(&Grants, &str) -> Result<(), PermissionDenied>,
    ) {
        let grants = grants(granted);
        for (input, expected) in rows {
            let outcome = check(&grants, input);
            let outcome = outcome.map_err(|d| d.needed.to_string());
            let expected = expected.map_err(str::to_owned);
            assert_eq!(
                outcome, expected,
                "input {input:?} against grants {granted:?}"
            );
        }
    }

    const HOSTS: &[&str] = &[
        "network:outbound:*.example.com",
        "network:outbound:api.other.org",
        "network:outbound:10.0.0.1",
        "network:outbound:*.0.0.1",
        "event:publish:data.*",
    ];

    #[test]
    fn a_refusal_names_the_permission_and_what_was_asked() {
        let denied = grants(&[])
            .check_outbound_host("api.example.com")
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "permission `network:outbound:api.example.com` is not granted"
        );
        assert_eq!(
            denied.asking("GET https://api.example.com").to_string(),
            "permission `network:outbound:api.example.com` is not granted (asked: GET https://api.example.com)"
        );
    }

    #[test]
    fn outbound_hosts_follow_the_host_patterns() {
        check_rows(
            HOSTS,
            &[
                ("a.example.com", Ok(())),
                ("a.b.example.com", Ok(())),
                ("A.Example.COM", Ok(())),
                ("a.example.com.", Ok(())),
                ("api.other.org", Ok(())),
                ("API.Other.Org.", Ok(())),
                ("10.0.0.1", Ok(())),
                // `*.example.com` is the subdomains, not the domain itself.
                ("example.com", Err("network:outbound:example.com")),
                ("Example.com.", Err("network:outbound:example.com")),
                ("badexample.com", Err("network:outbound:badexample.com")),
                ("a.badexample.com", Err("network:outbound:a.badexample.com")),
                (
                    "example.com.evil.net",
                    Err("network:outbound:example.com.evil.net"),
                ),
                // An exact grant is that host only.
                ("x.api.other.org", Err("network:outbound:x.api.other.org")),
                ("other.org", Err("network:outbound:other.org")),
                ("api.other.org.uk", Err("network:outbound:api.other.org.uk")),
                // Addresses match exactly, never as subdomains of a `*.` grant.
                ("10.0.0.2", Err("network:outbound:10.0.0.2")),
                ("127.0.0.1", Err("network:outbound:127.0.0.1")),
                ("010.0.0.1", Err("network:outbound:010.0.0.1")),
            ],
            Grants::check_outbound_host,
        );
    }

    #[test]
    fn malformed_hosts_are_refused_whatever_is_granted() {
        check_rows(
            HOSTS,
            &[
                ("", Err("network:outbound:")),
                (".", Err("network:outbound:")),
                ("a..example.com", Err("network:outbound:a..example.com")),
                ("a.example.com..", Err("network:outbound:a.example.com.")),
                (".a.example.com", Err("network:outbound:.a.example.com")),
                // Scheme, port and brackets are the caller's to strip.
                (
                    "a.example.com:443",
                    Err("network:outbound:a.example.com:443"),
                ),
                (
                    "https://a.example.com",
                    Err("network:outbound:https://a.example.com"),
                ),
                ("[::1]", Err("network:outbound:[::1]")),
                // A path or user part must not pass as a suffix match.
                (
                    "evil.net/.example.com",
                    Err("network:outbound:evil.net/.example.com"),
                ),
                (
                    "evil.net@a.example.com",
                    Err("network:outbound:evil.net@a.example.com"),
                ),
                (" a.example.com", Err("network:outbound: a.example.com")),
                ("a.example.com\n", Err("network:outbound:a.example.com\n")),
                // A pattern is not a host, even one that is granted word for word.
                ("*.example.com", Err("network:outbound:*.example.com")),
                ("*", Err("network:outbound:*")),
                ("ä.example.com", Err("network:outbound:ä.example.com")),
            ],
            Grants::check_outbound_host,
        );
    }

    #[test]
    fn a_pattern_covers_nothing_when_either_side_is_malformed() {
        // The callers validate first; the matcher holds on its own all the same.
        assert!(host_pattern_covers("*.example.com", "a.example.com"));
        assert!(!host_pattern_covers(
            "*.example.com",
            "evil net.example.com"
        ));
        assert!(!host_pattern_covers(
            "*.example.com",
            "evil.net/.example.com"
        ));
        assert!(!host_pattern_covers("*.exa mple.com", "a.exa mple.com"));
    }

    #[test]
    fn checking_a_host_never_panics() {
        // Every one of these is malformed, so each must be refused (and none may panic).
        let grants = grants(&["network:outbound:*.example.com"]);
        for host in [
            "",
            ".",
            "..",
            "*.",
            "*",
            "é",
            "é.",
            ".é",
            "\u{0}",
            "\u{10FFFF}.example.com",
            "a.",
            "[",
            "]",
            ":",
            "::1",
            "1.2.3.4.5.",
            "a.example.com/",
        ] {
            assert!(
                grants.check_outbound_host(host).is_err(),
                "{host:?} was allowed"
            );
        }
    }

    #[test]
    fn a_port_other_than_80_and_443_needs_a_grant_naming_it() {
        let grants = grants(&[
            "network:outbound:api.example.com",
            "network:outbound:api.example.com:8443",
            "network:outbound:*.example.org:9000",
            "network:outbound:127.0.0.1:5432",
        ]);
        let rows: &[(&str, u16, Result<(), &str>)] = &[
            ("api.example.com", 443, Ok(())),
            ("api.example.com", 80, Ok(())),
            ("api.example.com", 8443, Ok(())),
            ("API.example.com.", 8443, Ok(())),
            (
                "api.example.com",
                8080,
                Err("network:outbound:api.example.com:8080"),
            ),
            ("a.example.org", 9000, Ok(())),
            ("a.example.org", 443, Err("network:outbound:a.example.org")),
            (
                "example.org",
                9000,
                Err("network:outbound:example.org:9000"),
            ),
            ("127.0.0.1", 5432, Ok(())),
            ("127.0.0.1", 80, Err("network:outbound:127.0.0.1")),
            ("127.0.0.1", 22, Err("network:outbound:127.0.0.1:22")),
            (
                "a.example.org:9000",
                9000,
                Err("network:outbound:a.example.org:9000:9000"),
            ),
        ];
        for (host, port, expected) in rows {
            let outcome = grants
                .check_outbound(host, *port)
                .map_err(|d| d.needed.to_string());
            assert_eq!(outcome, expected.map_err(str::to_owned), "{host}:{port}");
        }
    }

    #[test]
    fn an_outbound_grant_with_a_port_parses_in_one_spelling_only() {
        for valid in [
            "network:outbound:api.example.com:8443",
            "network:outbound:*.example.com:1",
            "network:outbound:10.0.0.1:65535",
        ] {
            let parsed: Permission = valid.parse().unwrap();
            assert_eq!(parsed.to_string(), valid);
        }
        for invalid in [
            // The standard ports need no port: a grant of the host alone allows them.
            "network:outbound:api.example.com:443",
            "network:outbound:api.example.com:80",
            "network:outbound:api.example.com:0",
            "network:outbound:api.example.com:65536",
            "network:outbound:api.example.com:08443",
            "network:outbound:api.example.com:+8443",
            "network:outbound:api.example.com:",
            "network:outbound::8443",
            "network:outbound:api.example.com:8443:1",
            "network:outbound:[::1]:8443",
            "network:outbound:${url}:8443",
        ] {
            assert!(invalid.parse::<Permission>().is_err(), "{invalid} parsed");
        }
    }

    #[test]
    fn a_host_is_named_exactly_only_by_a_grant_without_a_wildcard() {
        let grants = grants(&[
            "network:outbound:*.example.com",
            "network:outbound:db.internal",
            "network:outbound:10.0.0.1:8080",
            "event:publish:localhost",
        ]);
        assert!(grants.names_host_exactly("db.internal"));
        assert!(grants.names_host_exactly("DB.internal."));
        assert!(grants.names_host_exactly("10.0.0.1"));
        assert!(!grants.names_host_exactly("a.example.com"));
        assert!(!grants.names_host_exactly("internal"));
        assert!(!grants.names_host_exactly("localhost"));
    }

    const SUBJECTS: &[&str] = &[
        "event:publish:data.*",
        "event:publish:audit.>",
        "event:publish:plugins.com.example.status",
        "event:subscribe:communication.>",
        "event:subscribe:data.*",
        "event:subscribe:system.*.health",
    ];

    #[test]
    fn publishing_needs_a_grant_matching_the_subject() {
        check_rows(
            SUBJECTS,
            &[
                ("data.PersonCreated", Ok(())),
                ("audit.login", Ok(())),
                ("audit.login.failed.twice", Ok(())),
                ("plugins.com.example.status", Ok(())),
                // `*` is exactly one token.
                (
                    "data.PersonCreated.extra",
                    Err("event:publish:data.PersonCreated.extra"),
                ),
                ("data", Err("event:publish:data")),
                // `>` is one or more tokens.
                ("audit", Err("event:publish:audit")),
                // Literal tokens match exactly, case included.
                (
                    "Data.PersonCreated",
                    Err("event:publish:Data.PersonCreated"),
                ),
                (
                    "plugins.com.example.status2",
                    Err("event:publish:plugins.com.example.status2"),
                ),
                (
                    "plugins.com.example",
                    Err("event:publish:plugins.com.example"),
                ),
                ("auditor.x", Err("event:publish:auditor.x")),
                // A subscribe grant never allows publishing.
                (
                    "communication.email",
                    Err("event:publish:communication.email"),
                ),
            ],
            Grants::check_publish,
        );
    }

    #[test]
    fn publishing_to_a_wildcard_or_malformed_subject_is_refused() {
        check_rows(
            SUBJECTS,
            &[
                ("data.*", Err("event:publish:data.*")),
                ("audit.>", Err("event:publish:audit.>")),
                ("audit.*", Err("event:publish:audit.*")),
                ("data.>", Err("event:publish:data.>")),
                (">", Err("event:publish:>")),
                ("data.a*b", Err("event:publish:data.a*b")),
                ("audit.x>", Err("event:publish:audit.x>")),
                ("data..x", Err("event:publish:data..x")),
                ("data.", Err("event:publish:data.")),
                (".data", Err("event:publish:.data")),
                ("", Err("event:publish:")),
                (
                    "data.Person Created",
                    Err("event:publish:data.Person Created"),
                ),
                ("audit.x\ty", Err("event:publish:audit.x\ty")),
            ],
            Grants::check_publish,
        );
    }

    #[test]
    fn subscribing_needs_a_grant_covering_every_subject_of_the_pattern() {
        check_rows(
            SUBJECTS,
            &[
                ("communication.email", Ok(())),
                ("communication.email.received", Ok(())),
                ("communication.*", Ok(())),
                ("communication.>", Ok(())),
                ("communication.*.received", Ok(())),
                ("communication.*.>", Ok(())),
                ("data.PersonCreated", Ok(())),
                ("data.*", Ok(())),
                ("system.etl.health", Ok(())),
                ("system.*.health", Ok(())),
                // `>` needs at least one token after the prefix.
                ("communication", Err("event:subscribe:communication")),
                // `*` covers one token, not the many of `>`, and not two.
                ("data.>", Err("event:subscribe:data.>")),
                ("data.*.x", Err("event:subscribe:data.*.x")),
                ("system.>", Err("event:subscribe:system.>")),
                ("system.etl.>", Err("event:subscribe:system.etl.>")),
                (
                    "system.etl.status",
                    Err("event:subscribe:system.etl.status"),
                ),
                // A wildcard where the grant has a literal is wider than the grant.
                ("*.PersonCreated", Err("event:subscribe:*.PersonCreated")),
                (">", Err("event:subscribe:>")),
                ("*", Err("event:subscribe:*")),
                ("*.>", Err("event:subscribe:*.>")),
                // A publish grant never allows subscribing.
                ("audit.login", Err("event:subscribe:audit.login")),
            ],
            Grants::check_subscribe,
        );
    }

    #[test]
    fn subscribing_to_a_malformed_pattern_is_refused() {
        check_rows(
            SUBJECTS,
            &[
                // `>` only as the last token.
                (
                    "communication.>.x",
                    Err("event:subscribe:communication.>.x"),
                ),
                ("communication.a>", Err("event:subscribe:communication.a>")),
                ("data.*x", Err("event:subscribe:data.*x")),
                ("data..x", Err("event:subscribe:data..x")),
                ("communication.", Err("event:subscribe:communication.")),
                ("", Err("event:subscribe:")),
                ("communication. x", Err("event:subscribe:communication. x")),
            ],
            Grants::check_subscribe,
        );
    }

    #[test]
    fn a_full_wildcard_grant_covers_every_subject_and_pattern() {
        check_rows(
            &["event:subscribe:>"],
            &[
                ("a", Ok(())),
                ("a.b.c", Ok(())),
                ("*", Ok(())),
                (">", Ok(())),
                ("a.*.>", Ok(())),
                ("a..b", Err("event:subscribe:a..b")),
            ],
            Grants::check_subscribe,
        );
        check_rows(
            &["event:subscribe:*"],
            &[
                ("a", Ok(())),
                ("*", Ok(())),
                (">", Err("event:subscribe:>")),
                ("a.b", Err("event:subscribe:a.b")),
            ],
            Grants::check_subscribe,
        );
    }

    fn entity(name: &str) -> EntityType {
        name.parse().unwrap()
    }

    #[test]
    fn data_access_needs_the_entity_or_a_star() {
        let granted = &[
            "data:read:*",
            "data:write:persons",
            "data:write:calendar_events",
        ];
        let all: Vec<(&str, Result<(), &str>)> = EntityType::ALL
            .iter()
            .map(|e| (e.plural(), Ok(())))
            .collect();
        check_rows(granted, &all, |g, e| g.check_read(entity(e)));
        check_rows(
            granted,
            &[
                ("persons", Ok(())),
                ("calendar_events", Ok(())),
                ("messages", Err("data:write:messages")),
                ("documents", Err("data:write:documents")),
                ("organizations", Err("data:write:organizations")),
                ("conversations", Err("data:write:conversations")),
            ],
            |g, e| g.check_write(entity(e)),
        );
        check_rows(
            &["data:write:*"],
            &[
                ("persons", Err("data:read:persons")),
                ("calendar_events", Err("data:read:calendar_events")),
            ],
            |g, e| g.check_read(entity(e)),
        );
        // The manifest parser takes singular names too; such a grant means the same thing.
        check_rows(
            &["data:read:person"],
            &[("persons", Ok(())), ("messages", Err("data:read:messages"))],
            |g, e| g.check_read(entity(e)),
        );
    }

    #[test]
    fn inbound_traffic_needs_the_inbound_grant() {
        for (granted, expected) in [
            (&["network:inbound"][..], Ok(())),
            (
                &["network:outbound:*.example.com", "network:inbound"][..],
                Ok(()),
            ),
            (
                &["network:outbound:*.example.com"][..],
                Err("network:inbound"),
            ),
            (&[][..], Err("network:inbound")),
        ] {
            let outcome = grants(granted).check_inbound();
            let outcome = outcome.map_err(|d| d.needed.to_string());
            assert_eq!(
                outcome,
                expected.map_err(str::to_owned),
                "grants {granted:?}"
            );
        }
    }

    #[test]
    fn a_grant_allows_only_its_own_capability_and_direction() {
        type Call = Box<dyn Fn(&Grants) -> Result<(), PermissionDenied>>;
        let cases: Vec<(&str, Call)> = vec![
            (
                "event:subscribe:>",
                Box::new(|g| g.check_publish("data.PersonCreated")),
            ),
            (
                "event:publish:>",
                Box::new(|g| g.check_subscribe("data.PersonCreated")),
            ),
            (
                "data:read:*",
                Box::new(|g| g.check_write(EntityType::Person)),
            ),
            (
                "data:write:*",
                Box::new(|g| g.check_read(EntityType::Person)),
            ),
            (
                "network:inbound",
                Box::new(|g| g.check_outbound_host("a.example.com")),
            ),
            (
                "network:outbound:a.example.com",
                Box::new(Grants::check_inbound),
            ),
            ("data:read:*", Box::new(|g| g.check_subscribe("persons"))),
        ];
        for (granted, call) in cases {
            let grants = grants(&[granted]);
            assert!(
                call(&grants).is_err(),
                "`{granted}` allowed a call of another kind"
            );
        }
        // A capability paired with another's direction cannot come from a manifest, and
        // names nothing.
        let odd = Grants::new([
            permission(Capability::Network, Direction::Publish, ">".into()),
            permission(Capability::Event, Direction::Read, "*".into()),
            permission(
                Capability::Data,
                Direction::Outbound,
                "*.example.com".into(),
            ),
        ]);
        assert!(odd.check_publish("data.PersonCreated").is_err());
        assert!(odd.check_read(EntityType::Person).is_err());
        assert!(odd.check_outbound_host("a.example.com").is_err());
        assert!(!odd.covers(&odd.permissions()[0]));
    }

    #[test]
    fn a_refusal_names_the_permission_to_grant() {
        let denied = Grants::default()
            .check_read(EntityType::CalendarEvent)
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "permission `data:read:calendar_events` is not granted"
        );
    }

    const GRANTED: &[&str] = &[
        "network:outbound:*.example.com",
        "network:outbound:api.other.org",
        "event:publish:data.>",
        "event:subscribe:communication.*",
        "data:read:*",
        "data:write:persons",
        "network:inbound",
    ];

    #[test]
    fn covers_compares_patterns_with_patterns() {
        let grants = grants(GRANTED);
        for (wanted, expected) in [
            ("network:outbound:*.example.com", true),
            ("network:outbound:a.example.com", true),
            ("network:outbound:*.a.example.com", true),
            ("network:outbound:A.Example.com", true),
            ("network:outbound:example.com", false),
            ("network:outbound:*.com", false),
            ("network:outbound:api.other.org", true),
            ("network:outbound:*.other.org", false),
            ("network:outbound:*.api.other.org", false),
            ("event:publish:data.>", true),
            ("event:publish:data.*", true),
            ("event:publish:data.x.y", true),
            ("event:publish:data", false),
            ("event:publish:>", false),
            ("event:subscribe:communication.email", true),
            ("event:subscribe:communication.*", true),
            ("event:subscribe:communication.>", false),
            ("event:subscribe:data.*", false),
            ("data:read:*", true),
            ("data:read:persons", true),
            ("data:write:persons", true),
            ("data:write:*", false),
            ("data:write:messages", false),
            ("network:inbound", true),
        ] {
            let permission: Permission = wanted.parse().unwrap();
            assert_eq!(
                grants.covers(&permission),
                expected,
                "`{wanted}` against {GRANTED:?}"
            );
        }
    }

    #[test]
    fn not_covered_lists_what_an_upgrade_newly_asks_for() {
        let grants = grants(GRANTED);
        for (wanted, expected) in [
            // The same permissions again: nothing new.
            (GRANTED.to_vec(), vec![]),
            // Narrowing is covered.
            (
                vec![
                    "network:outbound:api.example.com",
                    "event:publish:data.PersonCreated",
                    "data:read:persons",
                ],
                vec![],
            ),
            // A new host is not, even next to covered ones; order is kept.
            (
                vec![
                    "network:outbound:api.new.com",
                    "network:outbound:a.example.com",
                    "data:write:messages",
                ],
                vec!["network:outbound:api.new.com", "data:write:messages"],
            ),
            // Widening a host pattern or a subject pattern is new.
            (
                vec!["network:outbound:*.com", "event:subscribe:communication.>"],
                vec!["network:outbound:*.com", "event:subscribe:communication.>"],
            ),
            // The same resource in the other direction is new.
            (
                vec!["event:subscribe:data.>", "data:write:*"],
                vec!["event:subscribe:data.>", "data:write:*"],
            ),
            (vec![], vec![]),
        ] {
            let wanted: Vec<Permission> = wanted.iter().map(|p| p.parse().unwrap()).collect();
            let new: Vec<String> = grants
                .not_covered(&wanted)
                .iter()
                .map(|p| p.to_string())
                .collect();
            assert_eq!(new, expected, "wanted {wanted:?}");
        }
        let nothing = Grants::default();
        let wanted: Vec<Permission> = GRANTED.iter().map(|p| p.parse().unwrap()).collect();
        assert_eq!(nothing.not_covered(&wanted).len(), GRANTED.len());
    }
}

#[cfg(test)]
mod config_host_tests {
    use serde_json::json;

    use super::*;

    fn for_instance(granted: &[&str], config: serde_json::Value) -> Grants {
        Grants::for_instance(granted.iter().map(|p| p.parse().unwrap()), &config)
    }

    #[test]
    fn a_config_host_grant_becomes_the_host_and_port_of_the_configured_url() {
        // Host, port, and whether a request there is allowed.
        type Targets = &'static [(&'static str, u16, bool)];
        let cases: &[(serde_json::Value, Targets)] = &[
            (
                json!({"url": "https://user@Dav.Example.com:8443/dav/"}),
                &[
                    ("dav.example.com", 8443, true),
                    // The port the URL names, not the standard ones.
                    ("dav.example.com", 443, false),
                    ("dav.example.com", 8444, false),
                    ("example.com", 8443, false),
                    ("other.org", 8443, false),
                ],
            ),
            (
                json!({"url": "https://dav.example.com/dav/"}),
                &[
                    ("dav.example.com", 443, true),
                    ("dav.example.com", 80, true),
                    ("dav.example.com", 8443, false),
                ],
            ),
            (
                json!({"url": "http://dav.example.com:443/"}),
                &[("dav.example.com", 443, true)],
            ),
            (
                json!({"url": "http://127.0.0.1:5232/"}),
                &[
                    ("127.0.0.1", 5232, true),
                    ("127.0.0.1", 80, false),
                    ("127.0.0.2", 5232, false),
                ],
            ),
            (
                json!({"url": "http://[::1]:5232/"}),
                &[("::1", 5232, false), ("127.0.0.1", 5232, false)],
            ),
            // Missing, not a string, not a URL: nothing is granted.
            (json!({}), &[("dav.example.com", 443, false)]),
            (json!({"url": 5}), &[("5", 443, false)]),
            (
                json!({"url": "dav.example.com"}),
                &[("dav.example.com", 443, false)],
            ),
        ];
        for (config, targets) in cases {
            let grants = for_instance(
                &["network:outbound:${url}", "data:write:persons"],
                config.clone(),
            );
            for (host, port, allowed) in *targets {
                assert_eq!(
                    grants.check_outbound(host, *port).is_ok(),
                    *allowed,
                    "{config} {host}:{port}"
                );
            }
            assert!(grants.check_write(EntityType::Person).is_ok(), "{config}");
        }
    }

    #[test]
    fn an_unresolved_config_host_grant_allows_no_host_and_covers_only_itself() {
        let grants = grants_of(&["network:outbound:${url}"]);
        let denied = grants.check_outbound_host("dav.example.com").unwrap_err();
        assert_eq!(
            denied.needed.to_string(),
            "network:outbound:dav.example.com"
        );
        let same: Permission = "network:outbound:${url}".parse().unwrap();
        let other: Permission = "network:outbound:${server}".parse().unwrap();
        let host: Permission = "network:outbound:dav.example.com".parse().unwrap();
        assert!(grants.covers(&same));
        assert!(!grants.covers(&other));
        assert!(!grants.covers(&host));
        assert!(!grants_of(&["network:outbound:dav.example.com"]).covers(&same));
    }

    fn grants_of(granted: &[&str]) -> Grants {
        Grants::new(granted.iter().map(|p| p.parse().unwrap()))
    }
}
