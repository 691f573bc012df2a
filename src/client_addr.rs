//! The client's address: the TCP peer, unless that peer is a trusted reverse proxy
//! (`server.trusted_proxies`), in which case the address the proxies forwarded. Pure:
//! the HTTP layer hands in the peer and the headers; throttling, the audit `ip` and the
//! session list all read the one answer (`http::extract`'s `ClientInfo`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The configured reverse proxies: addresses and CIDR ranges, IPv4 or IPv6. Empty (the
/// default) trusts no one: forwarding headers are then always ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

/// An entry of `server.trusted_proxies` that is neither an address nor a CIDR range.
#[derive(Debug, thiserror::Error)]
#[error(
    "server.trusted_proxies: {0:?} is not an IP address or CIDR range (e.g. \"10.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\")"
)]
pub struct BadProxyEntry(pub String);

impl TrustedProxies {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadProxyEntry> {
        entries.iter().map(|e| parse_entry(e.as_ref())).collect::<Result<_, _>>().map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn parse_entry(entry: &str) -> Result<IpNet, BadProxyEntry> {
    let e = entry.trim();
    if let Ok(ip) = IpAddr::from_str(e) {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    // `trunc`: "10.1.2.3/8" means the range 10.0.0.0/8, as everywhere else CIDR is written.
    IpNet::from_str(e).map(|n| n.trunc()).map_err(|_| BadProxyEntry(entry.to_owned()))
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = BadProxyEntry;
    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(&entries)
    }
}

impl From<TrustedProxies> for Vec<String> {
    fn from(t: TrustedProxies) -> Self {
        t.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.clone().into();
        f.write_str(&list.join(","))
    }
}

/// The client's address for a request from `peer`.
///
/// From an untrusted peer (or when no proxy is trusted) it is the peer. From a trusted
/// one, the `X-Forwarded-For` chain (all its headers, in order) is read from the right:
/// each entry a trusted proxy appended is skipped, and the first that is not a trusted
/// proxy is the client. Without `X-Forwarded-For`, the `for=` parameters of `Forwarded`
/// (RFC 7239) are read the same way. An entry that is not an address (`unknown`, an
/// obfuscated name, garbage) ends the walk: the last trusted hop is the answer, as
/// nothing left of it can be believed.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<String> = if let Some(xff) = joined(headers, "x-forwarded-for") {
        xff.split(',').map(str::to_owned).collect()
    } else if let Some(forwarded) = joined(headers, "forwarded") {
        forwarded_for(&forwarded)
    } else {
        return peer;
    };
    let mut last = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return last;
        };
        if !trusted.contains(ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// Every value of a header, joined with commas (several header lines form one list).
/// `None` when absent; a value that is not visible ASCII counts as garbage (`\u{0}`).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    Some(values.map(|v| v.to_str().unwrap_or("\u{0}")).collect::<Vec<_>>().join(","))
}

/// The `for=` values of a `Forwarded` header, left to right, unquoted. An element
/// without `for=` yields an empty value (which ends a walk that reaches it).
fn forwarded_for(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in split_unquoted(header, ',') {
        let value = split_unquoted(&element, ';').into_iter().find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then(|| unquote(value.trim()))
        });
        out.push(value.unwrap_or_default());
    }
    out
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let (mut out, mut escaped) = (String::new(), false);
            for c in inner.chars() {
                if !escaped && c == '\\' {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out
        }
        None => v.to_owned(),
    }
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip.to_canonical());
    }
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::from_str(inside).ok()?
    } else {
        let (host, port) = hop.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(ip.to_canonical())
}

fn is_port(p: &str) -> bool {
    p.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn entries_parse_as_addresses_or_ranges_and_garbage_is_named() {
        let t = proxies(&["10.0.0.1", "192.168.0.0/16", "fd00::/8", "::1"]);
        assert!(t.contains(ip("10.0.0.1")) && !t.contains(ip("10.0.0.2")));
        assert!(
            t.contains(ip("192.168.44.1")) && t.contains(ip("fd12::5")) && t.contains(ip("::1"))
        );
        assert!(proxies(&["10.9.8.7/8"]).contains(ip("10.200.0.1")), "the range 10.0.0.0/8");
        assert!(!t.contains(ip("172.16.0.1")) && !t.contains(ip("2001:db8::1")));
        // An IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4 address.
        assert!(t.contains(ip("::ffff:192.168.1.1")));
        for bad in ["10.0.0.300", "10.0.0.0/33", "proxy.local", "", "fd00::/129"] {
            let e = TrustedProxies::parse(&[bad]).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("server.trusted_proxies") && e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &TrustedProxies::default()),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &proxies(&["10.0.0.0/8"])),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("2001:db8::7"), &h, &proxies(&["fd00::/8"])), ip("2001:db8::7"));
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_skipping_trusted_hops() {
        let t = proxies(&["10.0.0.0/8", "fd00::/8"]);
        // The client put a spoofed entry first; the proxies appended the real ones.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
        // Several header lines are one list.
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "2001:db8::9")]);
        assert_eq!(client_ip(ip("fd00::1"), &h, &t), ip("2001:db8::9"));
        // Ports and brackets are tolerated.
        let h = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::9]:443")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("2001:db8::9"));
        // Garbage stops the walk at the last trusted hop; all-trusted gives the left-most.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.5")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("10.0.0.5"));
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.0.0.5")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("10.1.1.1"));
        // No forwarding header: the peer.
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &t), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_for_handles_quotes_brackets_and_ports() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1, For=10.0.0.9",
        )]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "proto=https;for=\"198.51.100.17:80\"")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("198.51.100.17"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("10.0.0.2"));
        // X-Forwarded-For, when present, is the one read.
        let h = headers(&[("forwarded", "for=1.1.1.1"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
    }
}
