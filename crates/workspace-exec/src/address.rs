//! Which IP addresses the fetcher may connect to: the SSRF address policy, kept apart from the
//! HTTP code so every rule is in one place and tested on its own.
//!
//! Refused by default: unspecified, "this network", loopback, RFC 1918 private, CGNAT
//! (100.64.0.0/10), link-local (which holds the cloud metadata address 169.254.169.254),
//! IETF-reserved, documentation, benchmarking, multicast, broadcast and reserved IPv4 ranges;
//! for IPv6 the same plus unique-local (fc00::/7, holding AWS's fd00:ec2::254), link-local,
//! site-local, discard-only, Teredo, and every form that embeds an IPv4 address
//! (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`), which are judged by the IPv4 address inside.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A CIDR range such as `127.0.0.0/8` or `fd00::/8`, used for the explicit allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    network: IpAddr,
    prefix_len: u8,
}

/// A range that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP range `{0}`: expected an address and a prefix length, e.g. 127.0.0.1/32")]
pub struct IpRangeError(String);

impl IpRange {
    /// A range from a network address and a prefix length (at most 32 for IPv4, 128 for IPv6).
    pub fn new(network: IpAddr, prefix_len: u8) -> Result<Self, IpRangeError> {
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(IpRangeError(format!("{network}/{prefix_len}")));
        }
        Ok(Self { network, prefix_len })
    }

    /// The range holding exactly one address.
    pub fn single(ip: IpAddr) -> Self {
        let ip = canonical(ip);
        Self { network: ip, prefix_len: if ip.is_ipv4() { 32 } else { 128 } }
    }

    /// Whether `ip` (taken in its canonical form: IPv4-mapped IPv6 counts as IPv4) is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix_len),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix_len),
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpRangeError(s.chars().take(64).collect());
        match s.split_once('/') {
            Some((ip, len)) => {
                let ip: IpAddr = ip.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().map_err(|_| bad())?;
                Self::new(ip, len).map_err(|_| bad())
            }
            None => s.parse().map(Self::single).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix_len: u8) -> bool {
    let full = usize::from(prefix_len / 8);
    let rest = prefix_len % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// IPv4-mapped IPv6 becomes the IPv4 address it carries; everything else stays.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        (0, _, _) => "unspecified / this network (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local / cloud metadata (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation range",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved / broadcast (240.0.0.0/4)",
        _ => return None,
    };
    Some(reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let octets = ip.octets();
    let embedded_v4 = |at: usize| Ipv4Addr::new(octets[at], octets[at + 1], octets[at + 2], octets[at + 3]);
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4).map(|_| "IPv4-mapped form of a non-public IPv4 address");
    }
    if seg[..6] == [0; 6] {
        return match ip {
            Ipv6Addr::UNSPECIFIED => Some("unspecified (::)"),
            Ipv6Addr::LOCALHOST => Some("loopback (::1)"),
            _ => Some("IPv4-compatible IPv6 (deprecated ::/96)"),
        };
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(embedded_v4(12)).map(|_| "NAT64 form of a non-public IPv4 address");
    }
    if seg[0] == 0x2002 {
        return v4_reason(embedded_v4(2)).map(|_| "6to4 form of a non-public IPv4 address");
    }
    let reason = match seg[0] {
        0xfc00..=0xfdff => "unique local (fc00::/7)",
        0xfe80..=0xfebf => "link-local (fe80::/10)",
        0xfec0..=0xfeff => "site-local (fec0::/10)",
        0xff00..=0xffff => "multicast (ff00::/8)",
        0x2001 if seg[1] == 0 => "Teredo (2001::/32)",
        0x2001 if seg[1] == 0xdb8 => "documentation (2001:db8::/32)",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        _ => return None,
    };
    Some(reason)
}

/// The explicit allow-list plus the public-address rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AddressPolicy {
    pub(crate) allowed: Vec<IpRange>,
}

impl AddressPolicy {
    /// `Err(reason)` when the fetcher must not connect to `ip`.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        match non_public_reason(ip) {
            None => Ok(()),
            Some(_) if self.allowed.iter().any(|range| range.contains(ip)) => Ok(()),
            Some(reason) => Err(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_every_non_public_range() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:100.64.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
        ];
        for addr in refused {
            assert!(non_public_reason(ip(addr)).is_some(), "{addr} must be refused");
        }
    }

    #[test]
    fn accepts_public_unicast() {
        for addr in ["1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.15.0.1", "172.32.0.1", "93.184.216.34"]
        {
            assert_eq!(non_public_reason(ip(addr)), None, "{addr}");
        }
        for addr in ["2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(non_public_reason(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn allow_list_is_explicit_and_covers_mapped_forms() {
        let default = AddressPolicy::default();
        assert!(default.check(ip("127.0.0.1")).is_err());
        let policy = AddressPolicy { allowed: vec!["127.0.0.0/8".parse().unwrap()] };
        assert!(policy.check(ip("127.0.0.1")).is_ok());
        assert!(policy.check(ip("::ffff:127.0.0.2")).is_ok());
        assert!(policy.check(ip("10.0.0.1")).is_err());
        assert!(policy.check(ip("::1")).is_err());
    }

    #[test]
    fn ranges_parse_and_match_by_prefix() {
        let r: IpRange = "10.1.0.0/16".parse().unwrap();
        assert!(r.contains(ip("10.1.255.1")));
        assert!(!r.contains(ip("10.2.0.1")));
        let odd: IpRange = "100.64.0.0/10".parse().unwrap();
        assert!(odd.contains(ip("100.127.0.1")));
        assert!(!odd.contains(ip("100.128.0.1")));
        let single: IpRange = "::1".parse().unwrap();
        assert!(single.contains(ip("::1")) && !single.contains(ip("::2")));
        assert_eq!(single.to_string(), "::1/128");
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!("nonsense".parse::<IpRange>().is_err());
    }
}
