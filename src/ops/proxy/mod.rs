//! Trusted proxies and the forwarded headers they add: who the client really is.
//! Owns [`resolve`]. Never does I/O, and never trusts a header from a peer outside
//! [`TrustedProxies`].
//!
//! Behind a reverse proxy the socket peer is the proxy, and the client's address, the scheme
//! it used and the host it asked for arrive in headers the proxy adds. Anyone can send those
//! headers, so they are believed only from peers listed in [`TrustedProxies`], and only as
//! far as the configured number of hops.
//!
//! [`resolve`] reads, in order of preference:
//!
//! 1. `Forwarded` (RFC 7239): `for=`, `proto=` and `host=` of each element. When any
//!    `Forwarded` field is present it is the only source; the `X-Forwarded-*` fields are then
//!    not read (mixing two lists written by different proxies would misalign the hops).
//! 2. Otherwise `X-Forwarded-For` (or, when it is absent, `X-Real-IP`), `X-Forwarded-Proto`,
//!    `X-Forwarded-Host` and `X-Forwarded-Port`.
//!
//! From a peer that is not trusted (or when `hops` is 0) every one of those fields is removed
//! from the request, so an application that reads them itself cannot be fooled either. Names
//! spelled with underscores (`X_Forwarded_For`) are removed from every request: gateways such
//! as CGI and WSGI turn `-` and `_` into the same variable name, so they could shadow the real
//! field, and no proxy sends them.
//!
//! **Deployment note.** A trusted proxy must set or strip every field it is trusted for. In
//! particular `Forwarded` wins over `X-Forwarded-For`, so a proxy that only appends
//! `X-Forwarded-For` must also remove a `Forwarded` field sent by its client.

use std::net::{Ipv6Addr, SocketAddr};

use crate::http1::fields::HeaderFields;
use crate::http1::grammar::{parse_decimal, trim_ows};

mod forwarded;
mod trusted;
mod x_forwarded;

use forwarded::{from_forwarded, parse_forwarded};
pub(crate) use trusted::TrustedProxies;
use x_forwarded::from_x_forwarded;

/// The fields this module reads, lowercase; all of them are removed from untrusted requests.
const FORWARDED_FIELDS: [&str; 6] =
    ["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip"];

/// Longest host name accepted from `Forwarded: host=` or `X-Forwarded-Host`, in bytes.
const MAX_HOST_LEN: usize = 255;

/// Who the client is, after believing what the trusted proxies say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the socket peer, or the address a trusted proxy forwarded. Port
    /// 0 when the forwarded entry carried no port (or an obfuscated one).
    pub addr: SocketAddr,
    /// `"http"` or `"https"`: the scheme the client used. `"http"` unless a trusted proxy said
    /// `https`.
    pub scheme: &'static str,
    /// The host (with `:port` when not the scheme's default) the client asked for, from
    /// `Forwarded: host=`, `X-Forwarded-Host` and `X-Forwarded-Port`; `None` when no trusted
    /// proxy sent one, in which case the request's own `Host` applies.
    pub host: Option<String>,
    /// The socket peer, when any of the values above came from its forwarded headers.
    pub forwarded_by: Option<SocketAddr>,
}

/// Works out the client of a request from socket `peer` and its `headers`.
///
/// If `peer` is not trusted, or `hops` is 0, every `Forwarded`, `X-Forwarded-For`,
/// `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-Port` and `X-Real-IP` field (any
/// case) is removed from `headers` and the peer is the client, over `http`. From a trusted
/// peer the fields are kept and read:
///
/// - The address list (all instances of the field, concatenated in order) is walked from the
///   right, nearest proxy first, at most `hops` entries. Each valid address becomes the
///   candidate; the walk stops at the first untrusted one, which is the client. An entry that
///   is malformed, `unknown` or obfuscated (`_hidden`) stops the walk, and the last valid
///   address (ultimately the peer) is the client.
/// - The scheme and host are taken from the same hop as the chosen address (the rightmost
///   when no address was chosen): the same `Forwarded` element, or the entry at the same
///   position from the right of the `X-Forwarded-*` lists. An `X-Forwarded-*` field with a
///   single entry applies whatever the position. Only `http` and `https` (any case) are
///   accepted as schemes; a host must be a name, an IPv4 address or a bracketed IPv6 address,
///   with an optional port. `X-Forwarded-Port` replaces the port of the forwarded host, or of
///   the request's `Host` when no host was forwarded.
///
/// Anything that does not validate is ignored, never an error.
pub fn resolve(trusted: &TrustedProxies, peer: SocketAddr, headers: &mut HeaderFields) -> ClientInfo {
    let believed = trusted.hops() > 0 && trusted.contains(peer.ip());
    headers.retain(|header| match forwarded_field(header.name()) {
        None => true,
        Some(exact_spelling) => believed && exact_spelling,
    });
    let direct = ClientInfo { addr: peer, scheme: "http", host: None, forwarded_by: None };
    if !believed {
        return direct;
    }

    let mut elements = Vec::new();
    for value in headers.values("forwarded") {
        parse_forwarded(value, &mut elements);
    }
    let hop = if elements.is_empty() { from_x_forwarded(trusted, headers) } else { from_forwarded(trusted, &elements) };

    let mut client = direct;
    let mut used = false;
    if let Some(addr) = hop.addr {
        client.addr = addr;
        used = true;
    }
    if let Some(scheme) = hop.scheme {
        client.scheme = scheme;
        used = true;
    }
    let host = match (hop.host, hop.port) {
        (host, None) => host,
        (host, Some(port)) => {
            let base = host.or_else(|| request_host(headers));
            base.map(|base| with_port(strip_port(&base), port, client.scheme))
        }
    };
    if host.is_some() {
        client.host = host;
        used = true;
    }
    if used {
        client.forwarded_by = Some(peer);
    }
    client
}

/// For a forwarded field name: `Some(true)` when spelled with hyphens, `Some(false)` when it is
/// the same name spelled with one or more underscores, `None` for other fields.
fn forwarded_field(name: &str) -> Option<bool> {
    let matches = |field: &str| {
        field.len() == name.len()
            && field.bytes().zip(name.bytes()).all(|(f, n)| {
                let n = if n == b'_' { b'-' } else { n.to_ascii_lowercase() };
                f == n
            })
    };
    FORWARDED_FIELDS.iter().any(|field| matches(field)).then(|| !name.contains('_'))
}

/// What one hop of the forwarded lists says, each part already validated.
#[derive(Debug, Default)]
pub(super) struct Hop {
    pub(super) addr: Option<SocketAddr>,
    pub(super) scheme: Option<&'static str>,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
}

/// Walks `nodes` (left to right as received) from the right, at most `hops` entries, and
/// returns the chosen address with its depth (0 = rightmost). `None` entries stop the walk.
pub(super) fn walk(trusted: &TrustedProxies, nodes: &[Option<SocketAddr>]) -> Option<(SocketAddr, usize)> {
    let mut chosen = None;
    for (depth, node) in nodes.iter().rev().take(trusted.hops()).enumerate() {
        match node {
            Some(addr) => {
                chosen = Some((*addr, depth));
                if !trusted.contains(addr.ip()) {
                    break;
                }
            }
            None => break,
        }
    }
    chosen
}

/// The element `depth` places from the right of `list`.
pub(super) fn from_right<T>(list: &[T], depth: usize) -> Option<&T> {
    list.len().checked_sub(depth + 1).map(|i| &list[i])
}

// ---------------------------------------------------------------------------------------------
// Values

pub(super) fn parse_scheme(value: &[u8]) -> Option<&'static str> {
    let value = trim_ows(value);
    if value.eq_ignore_ascii_case(b"https") {
        Some("https")
    } else if value.eq_ignore_ascii_case(b"http") {
        Some("http")
    } else {
        None
    }
}

/// A host as `Host` carries it: a name of letters, digits and `-._~`, an IPv4 address, or a
/// bracketed IPv6 address; then an optional `:port`. Everything else (spaces, controls, `@`,
/// `/`, percent signs, non-ASCII) is refused.
pub(super) fn parse_host(value: &[u8]) -> Option<String> {
    let value = trim_ows(value);
    if value.is_empty() || value.len() > MAX_HOST_LEN {
        return None;
    }
    let host = std::str::from_utf8(value).ok()?;
    let (name, rest) = if host.starts_with('[') {
        let end = host.find(']')?;
        host[1..end].parse::<Ipv6Addr>().ok()?;
        host.split_at(end + 1)
    } else {
        host.find(':').map_or((host, ""), |i| host.split_at(i))
    };
    let name_ok = name.starts_with('[')
        || (!name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')));
    let port_ok = match rest {
        "" => true,
        _ => rest.strip_prefix(':').and_then(|port| parse_decimal(port.as_bytes(), 5)).is_some_and(|n| n <= 65_535),
    };
    (name_ok && port_ok).then(|| host.to_owned())
}

/// The request's own `Host`, if it is valid.
fn request_host(headers: &HeaderFields) -> Option<String> {
    headers.first("host").and_then(|h| parse_host(h.value()))
}

/// `host` without its `:port` (brackets of an IPv6 literal kept).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    }
}

/// `name` with `:port`, unless `port` is the default of `scheme`.
fn with_port(name: &str, port: u16, scheme: &str) -> String {
    match (scheme, port) {
        ("http", 80) | ("https", 443) => name.to_owned(),
        _ => format!("{name}:{port}"),
    }
}

#[cfg(test)]
mod tests;
