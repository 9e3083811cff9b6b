//! Where a plugin's requests may connect, by address: the grants name hosts, and this module
//! makes sure the address a host name leads to is one the instance may reach.
//!
//! A host name is resolved here, in the client's own resolver ([`CheckedResolver`]), and only
//! the addresses that pass are handed to the connector: the address checked is the address
//! connected to, so a name that answers a public address to one lookup and `127.0.0.1` to the
//! next (DNS rebinding) gains nothing. An address inside the deployment's network (loopback,
//! private, link-local with the cloud metadata service at 169.254.169.254, CGNAT, and the
//! other special ranges of [`non_public_kind`]) is refused unless the operator allows private
//! targets (`plugins.allow_private_network`) and a grant names that host or address itself,
//! not through a `*.domain` pattern.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tributary_proto::grants::Grants;

/// What the operator allows besides the grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EgressSettings {
    /// Whether an address inside the network may be reached, by a grant naming it exactly.
    pub allow_private_network: bool,
    /// Whether any port of a granted host may be reached (test harnesses only).
    pub any_port: bool,
}

/// A connection refused because of the address it leads to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves to {address}, {kind}: {}", refusal_reason(*.allowed_by_operator))]
pub(crate) struct RefusedAddress {
    /// The host as asked.
    pub host: String,
    /// The first address refused.
    pub address: IpAddr,
    /// What kind of address it is ("a loopback address").
    pub kind: &'static str,
    /// Whether the operator allows private targets (so the grant is what is missing).
    pub allowed_by_operator: bool,
}

fn refusal_reason(allowed_by_operator: bool) -> &'static str {
    if allowed_by_operator {
        "a plugin reaches an address inside the network only through a grant naming that host or address exactly, not a `*.domain` pattern"
    } else {
        "a plugin may not reach an address inside the network unless the operator sets `plugins.allow_private_network = true` and a grant names that host or address exactly"
    }
}

/// Checks `address`, reached through `host`: `Ok` when it is public, or private and allowed.
pub(crate) fn check_address(
    grants: &Grants,
    settings: EgressSettings,
    host: &str,
    address: IpAddr,
) -> Result<(), RefusedAddress> {
    let Some(kind) = non_public_kind(address) else {
        return Ok(());
    };
    if settings.allow_private_network && grants.names_host_exactly(host) {
        return Ok(());
    }
    Err(RefusedAddress {
        host: host.to_owned(),
        address,
        kind,
        allowed_by_operator: settings.allow_private_network,
    })
}

/// The client's resolver: resolves with the system's resolver and keeps only the addresses
/// [`check_address`] passes; a name left with none fails with the [`RefusedAddress`] of the
/// first one refused.
#[derive(Debug)]
pub(crate) struct CheckedResolver {
    pub grants: Grants,
    pub settings: EgressSettings,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let grants = self.grants.clone();
        let settings = self.settings;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is the connector's to set; 0 here.
            match resolve_checked(&grants, settings, &host, 0).await {
                Ok(kept) => Ok(Box::new(kept.into_iter()) as Addrs),
                // The refusal itself, so that the client finds it among the error's causes.
                Err(Unreachable::Refused(refused)) => Err(Box::new(refused) as _),
                Err(Unreachable::Lookup { source, .. }) => Err(Box::new(source) as _),
                Err(other) => Err(Box::new(other) as _),
            }
        })
    }
}

/// Why a host leads to no address that may be connected to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreachable {
    /// The system's resolver failed.
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        /// The host as asked.
        host: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
    /// Every address it resolved to was refused; this is the first.
    #[error(transparent)]
    Refused(RefusedAddress),
    /// It resolved to no address at all.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The host as asked.
        host: String,
    },
}

/// Resolves `host` (a name or an IP address, without brackets) on `port` with the system's
/// resolver and keeps the addresses [`check_address`] passes, in order: what a connection
/// to `host` may be made to, and the only addresses it may be made to.
pub(crate) async fn resolve_checked(
    grants: &Grants,
    settings: EgressSettings,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Unreachable> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| Unreachable::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    allowed_addresses(grants, settings, host, found)
}

/// The addresses of `found` (what `host` resolved to) that [`check_address`] passes, in
/// order; when none does, the refusal of the first, or an error when there were none at all.
fn allowed_addresses(
    grants: &Grants,
    settings: EgressSettings,
    host: &str,
    found: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, Unreachable> {
    let mut refused = None;
    let mut kept = Vec::with_capacity(found.len());
    for address in found {
        match check_address(grants, settings, host, address.ip()) {
            Ok(()) => kept.push(address),
            Err(refusal) => {
                refused.get_or_insert(refusal);
            }
        }
    }
    match refused {
        Some(refusal) if kept.is_empty() => Err(Unreachable::Refused(refusal)),
        _ if kept.is_empty() => Err(Unreachable::NoAddress {
            host: host.to_owned(),
        }),
        _ => Ok(kept),
    }
}

/// What kind of address `address` is when it is not a public unicast one (`None` when it is):
/// what a plugin must not reach inside the deployment's network or that names no single host.
/// IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by it.
pub(crate) fn non_public_kind(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = if a == 0 {
        "an unspecified (this-network) address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata service: credentials of the host itself.
        "a link-local address (the cloud metadata service among them)"
    } else if a == 100 && (b & 0xc0) == 64 {
        "a shared (CGNAT) address"
    } else if a == 192 && b == 0 && c == 0 {
        "an IETF protocol assignment"
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        "a documentation address"
    } else if a == 198 && (b & 0xfe) == 18 {
        "a benchmarking address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.is_broadcast() {
        "the broadcast address"
    } else if a >= 240 {
        "a reserved address"
    } else {
        return None;
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |high: usize| {
        let low = u32::from(segments[high]) << 16 | u32::from(segments[high + 1]);
        Ipv4Addr::from(low)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let kind = if ip.is_unspecified() {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if segments[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d), deprecated: never a route to a host of its own.
        "an IPv4-compatible address"
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the IPv4 address it carries.
        return non_public_v4(embedded_v4(6));
    } else if segments[0] == 0x2002 {
        // 6to4 (2002::/16) reaches the IPv4 address in its next 32 bits.
        return non_public_v4(embedded_v4(1));
    } else if segments[0] == 0x64 && segments[1] == 0xff9b {
        "a local-use NAT64 address"
    } else if (segments[0] & 0xfe00) == 0xfc00 {
        "a unique local (private) address"
    } else if (segments[0] & 0xffc0) == 0xfe80 {
        "a link-local address"
    } else if (segments[0] & 0xffc0) == 0xfec0 {
        "a site-local address"
    } else if (segments[0] & 0xff00) == 0xff00 {
        "a multicast address"
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        "a documentation address"
    } else if segments[..4] == [0x100, 0, 0, 0] {
        "a discard-only address"
    } else if segments[0] == 0x2001 && segments[1] == 0 {
        // Teredo tunnels to an IPv4 address the packet itself names.
        "a Teredo address"
    } else {
        return None;
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_inside_the_network_are_not_public() {
        for (address, kind) in [
            ("0.0.0.0", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.0.1", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:10.0.0.1", "private"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private"),
            ("64:ff9b:1::1", "NAT64"),
            ("100::1", "discard"),
            ("2001::1", "Teredo"),
        ] {
            let ip: IpAddr = address.parse().unwrap();
            let found = non_public_kind(ip);
            assert!(
                found.is_some_and(|k| k.contains(kind)),
                "{address}: {found:?}, expected {kind}"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(non_public_kind(ip), None, "{address}");
        }
    }

    #[test]
    fn a_private_address_needs_the_operator_and_a_grant_naming_the_host() {
        let grants = Grants::new(
            [
                "network:outbound:db.internal",
                "network:outbound:*.corp.example",
            ]
            .map(|p| p.parse().unwrap()),
        );
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let off = EgressSettings {
            allow_private_network: false,
            any_port: false,
        };
        let on = EgressSettings {
            allow_private_network: true,
            ..off
        };
        let refused = check_address(&grants, off, "db.internal", loopback).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("plugins.allow_private_network"),
            "{refused}"
        );
        assert!(check_address(&grants, on, "db.internal", loopback).is_ok());
        let wildcard = check_address(&grants, on, "a.corp.example", loopback).unwrap_err();
        assert!(wildcard.to_string().contains("exactly"), "{wildcard}");
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        assert!(check_address(&grants, off, "a.corp.example", public).is_ok());
    }

    #[test]
    fn a_name_keeps_only_the_addresses_it_may_reach() {
        let grants = Grants::new(["network:outbound:*.example.com".parse().unwrap()]);
        let settings = EgressSettings {
            allow_private_network: false,
            any_port: false,
        };
        let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 0);
        // A name answering a public and a private address (a rebinding attempt in one
        // answer): the private one is dropped, the public one kept.
        let kept = allowed_addresses(
            &grants,
            settings,
            "api.example.com",
            vec![at("10.0.0.7"), at("93.184.216.34"), at("::1")],
        )
        .unwrap();
        assert_eq!(kept, [at("93.184.216.34")]);
        // Only private addresses: refused, naming the first.
        let refused = allowed_addresses(
            &grants,
            settings,
            "api.example.com",
            vec![at("169.254.169.254"), at("127.0.0.1")],
        )
        .unwrap_err();
        assert!(refused.to_string().contains("169.254.169.254"), "{refused}");
        // No address at all: an error, not an empty list to connect to.
        let none = allowed_addresses(&grants, settings, "api.example.com", vec![]).unwrap_err();
        assert!(
            none.to_string().contains("resolves to no address"),
            "{none}"
        );
    }
}
