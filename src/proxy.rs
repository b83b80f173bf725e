//! Trusted proxies and the forwarded headers they add: who the client really is.
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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::request::Header;

/// The fields this module reads, lowercase; all of them are removed from untrusted requests.
const FORWARDED_FIELDS: [&str; 6] =
    ["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip"];

/// Longest host name accepted from `Forwarded: host=` or `X-Forwarded-Host`, in bytes.
const MAX_HOST_LEN: usize = 255;

/// One entry of a [`TrustedProxies`] list: a network with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    V4 { network: u32, prefix: u8 },
    V6 { network: u128, prefix: u8 },
}

impl Net {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or an IPv6 address with `/n`.
    fn parse(entry: &str) -> Result<Net, String> {
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (entry, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid trusted proxy {entry:?}: {addr:?} is not an IPv4 or IPv6 address"))?;
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) => match parse_decimal(digits.as_bytes(), 3) {
                Some(n) if n <= u32::from(max) => n as u8,
                _ => {
                    return Err(format!(
                        "invalid trusted proxy {entry:?}: the prefix length must be a number from 0 to {max}"
                    ))
                }
            },
        };
        Ok(match ip {
            IpAddr::V4(ip) => Net::V4 { network: u32::from(ip) & mask_v4(prefix), prefix },
            IpAddr::V6(ip) => Net::V6 { network: u128::from(ip) & mask_v6(prefix), prefix },
        })
    }

    /// Whether the address is in this network. `v4` is the address as IPv4 when it is one
    /// (directly or IPv4-mapped); `v6` is the address as IPv6 (IPv4 addresses mapped).
    fn contains(&self, v4: Option<Ipv4Addr>, v6: Ipv6Addr) -> bool {
        match *self {
            Net::V4 { network, prefix } => v4.is_some_and(|ip| u32::from(ip) & mask_v4(prefix) == network),
            Net::V6 { network, prefix } => u128::from(v6) & mask_v6(prefix) == network,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { network, prefix: 32 } => write!(f, "{}", Ipv4Addr::from(network)),
            Net::V4 { network, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(network)),
            Net::V6 { network, prefix: 128 } => write!(f, "{}", Ipv6Addr::from(network)),
            Net::V6 { network, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(network)),
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

/// The peers whose forwarded headers are believed, and how many proxy hops to walk back.
///
/// Entries are exact addresses or CIDR networks, IPv4 or IPv6. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) matches the IPv4 entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
    hops: usize,
}

impl TrustedProxies {
    /// Parses a comma-separated list such as `"127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"`.
    ///
    /// Whitespace around entries and empty entries are ignored, so `""` trusts nobody. A
    /// network may have host bits set (`10.1.2.3/8` means `10.0.0.0/8`); a prefix longer than
    /// 32 (IPv4) or 128 (IPv6) is an error. `hops` is how many proxies, nearest first, may
    /// append to the forwarded lists: 1 takes the rightmost entry, 0 ignores (and removes)
    /// forwarded headers even from trusted peers.
    ///
    /// # Errors
    ///
    /// A message naming the first entry that is not an address or a network.
    pub fn parse(list: &str, hops: usize) -> Result<TrustedProxies, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Net::parse)
            .collect::<Result<Vec<Net>, String>>()?;
        Ok(TrustedProxies { nets, hops })
    }

    /// Trusts no peer: forwarded headers are always removed.
    pub fn none() -> Self {
        TrustedProxies { nets: Vec::new(), hops: 0 }
    }

    /// Whether no peer is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// How many proxy hops the forwarded lists are walked back, at most.
    pub fn hops(&self) -> usize {
        self.hops
    }

    /// Whether `ip` is one of the trusted addresses or in one of the trusted networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v4, v6) = match ip {
            IpAddr::V4(ip) => (Some(ip), ip.to_ipv6_mapped()),
            IpAddr::V6(ip) => (ip.to_ipv4_mapped(), ip),
        };
        self.nets.iter().any(|net| net.contains(v4, v6))
    }
}

impl fmt::Display for TrustedProxies {
    /// The entries in canonical form (host bits cleared), comma-separated; without the hops.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

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
pub fn resolve(trusted: &TrustedProxies, peer: SocketAddr, headers: &mut Vec<Header>) -> ClientInfo {
    let believed = trusted.hops > 0 && trusted.contains(peer.ip());
    headers.retain(|header| match forwarded_field(&header.name) {
        None => true,
        Some(exact_spelling) => believed && exact_spelling,
    });
    let direct = ClientInfo { addr: peer, scheme: "http", host: None, forwarded_by: None };
    if !believed {
        return direct;
    }

    let mut elements = Vec::new();
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("forwarded")) {
        parse_forwarded(&header.value, &mut elements);
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
struct Hop {
    addr: Option<SocketAddr>,
    scheme: Option<&'static str>,
    host: Option<String>,
    port: Option<u16>,
}

/// Walks `nodes` (left to right as received) from the right, at most `hops` entries, and
/// returns the chosen address with its depth (0 = rightmost). `None` entries stop the walk.
fn walk(trusted: &TrustedProxies, nodes: &[Option<SocketAddr>]) -> Option<(SocketAddr, usize)> {
    let mut chosen = None;
    for (depth, node) in nodes.iter().rev().take(trusted.hops).enumerate() {
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
fn from_right<T>(list: &[T], depth: usize) -> Option<&T> {
    list.len().checked_sub(depth + 1).map(|i| &list[i])
}

// ---------------------------------------------------------------------------------------------
// Forwarded (RFC 7239)

/// The parameters of one `Forwarded` element this module reads, as raw (unquoted) bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Element {
    node: Option<Vec<u8>>,
    proto: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

fn from_forwarded(trusted: &TrustedProxies, elements: &[Option<Element>]) -> Hop {
    let nodes: Vec<Option<SocketAddr>> = elements
        .iter()
        .map(|element| element.as_ref().and_then(|e| e.node.as_deref()).and_then(parse_forwarded_node))
        .collect();
    let chosen = walk(trusted, &nodes);
    let depth = chosen.map_or(0, |(_, depth)| depth);
    let element = from_right(elements, depth).and_then(Option::as_ref);
    Hop {
        addr: chosen.map(|(addr, _)| addr),
        scheme: element.and_then(|e| e.proto.as_deref()).and_then(parse_scheme),
        host: element.and_then(|e| e.host.as_deref()).and_then(parse_host),
        port: None,
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Appends the elements of one `Forwarded` field value to `out`: `None` for a malformed one.
/// Empty list elements are skipped. A malformed element ends at the next comma outside a
/// quoted string, so later elements still parse.
fn parse_forwarded(value: &[u8], out: &mut Vec<Option<Element>>) {
    let mut pos = 0;
    loop {
        while pos < value.len() && (is_ows(value[pos]) || value[pos] == b',') {
            pos += 1;
        }
        if pos >= value.len() {
            return;
        }
        match parse_element(value, &mut pos) {
            Ok(element) => out.push(Some(element)),
            Err(()) => {
                out.push(None);
                skip_to_comma(value, &mut pos);
            }
        }
    }
}

/// Parses one element from `pos`, stopping before the `,` that ends it (or at the end).
fn parse_element(value: &[u8], pos: &mut usize) -> Result<Element, ()> {
    let mut element = Element::default();
    let mut names_seen: Vec<Vec<u8>> = Vec::new();
    loop {
        while *pos < value.len() && (is_ows(value[*pos]) || value[*pos] == b';') {
            *pos += 1;
        }
        if *pos >= value.len() || value[*pos] == b',' {
            return Ok(element);
        }
        let name_start = *pos;
        while *pos < value.len() && is_tchar(value[*pos]) {
            *pos += 1;
        }
        let name = value[name_start..*pos].to_ascii_lowercase();
        if name.is_empty() || value.get(*pos) != Some(&b'=') {
            return Err(());
        }
        *pos += 1;
        let parameter = if value.get(*pos) == Some(&b'"') {
            parse_quoted(value, pos)?
        } else {
            // A token; `[`, `]` and `:` are accepted unquoted too, as some proxies send
            // `for=192.0.2.1:80` or `for=[2001:db8::1]` without the quotes RFC 7239 asks for.
            let start = *pos;
            while *pos < value.len() && (is_tchar(value[*pos]) || matches!(value[*pos], b'[' | b']' | b':')) {
                *pos += 1;
            }
            if *pos == start {
                return Err(());
            }
            value[start..*pos].to_vec()
        };
        while *pos < value.len() && is_ows(value[*pos]) {
            *pos += 1;
        }
        if *pos < value.len() && !matches!(value[*pos], b',' | b';') {
            return Err(());
        }
        // RFC 7239, section 4: a parameter must not occur more than once per element.
        if names_seen.contains(&name) {
            return Err(());
        }
        let slot = match name.as_slice() {
            b"for" => Some(&mut element.node),
            b"proto" => Some(&mut element.proto),
            b"host" => Some(&mut element.host),
            _ => None,
        };
        if let Some(slot) = slot {
            *slot = Some(parameter);
        }
        names_seen.push(name);
    }
}

/// Parses a quoted-string starting at the `"` at `pos`, returning its unescaped content.
fn parse_quoted(value: &[u8], pos: &mut usize) -> Result<Vec<u8>, ()> {
    let mut content = Vec::new();
    *pos += 1;
    while let Some(&b) = value.get(*pos) {
        *pos += 1;
        match b {
            b'"' => return Ok(content),
            b'\\' => {
                let &escaped = value.get(*pos).ok_or(())?;
                if escaped != b'\t' && (escaped < 0x20 || escaped == 0x7f) {
                    return Err(());
                }
                content.push(escaped);
                *pos += 1;
            }
            b'\t' | 0x20..=0x7e | 0x80..=0xff => content.push(b),
            _ => return Err(()),
        }
    }
    Err(())
}

/// Moves `pos` to the next `,` outside a quoted string, or to the end.
fn skip_to_comma(value: &[u8], pos: &mut usize) {
    let mut quoted = false;
    while *pos < value.len() {
        match value[*pos] {
            b',' if !quoted => return,
            b'"' => quoted = !quoted,
            b'\\' if quoted => *pos += 1,
            _ => {}
        }
        *pos += 1;
    }
    *pos = value.len();
}

/// Parses an RFC 7239 node: `a.b.c.d` or `[v6]`, with an optional `:port` or obfuscated
/// `:_port` (which gives port 0). `unknown`, obfuscated names and anything else give `None`.
fn parse_forwarded_node(node: &[u8]) -> Option<SocketAddr> {
    let node = std::str::from_utf8(node).ok()?;
    let (ip, rest) = if let Some(bracketed) = node.strip_prefix('[') {
        let (inside, rest) = bracketed.split_once(']')?;
        (IpAddr::V6(inside.parse().ok()?), rest)
    } else {
        let (name, rest) = node.find(':').map_or((node, ""), |i| node.split_at(i));
        (IpAddr::V4(name.parse().ok()?), rest)
    };
    let port = match rest {
        "" => 0,
        _ => {
            let port = rest.strip_prefix(':')?.as_bytes();
            if let Some(obfuscated) = port.strip_prefix(b"_") {
                let valid = !obfuscated.is_empty()
                    && obfuscated.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !valid {
                    return None;
                }
                0
            } else {
                u16::try_from(parse_decimal(port, 5)?).ok()?
            }
        }
    };
    Some(SocketAddr::new(ip, port))
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port

fn from_x_forwarded(trusted: &TrustedProxies, headers: &[Header]) -> Hop {
    let mut nodes = list_of(headers, "x-forwarded-for");
    if nodes.is_empty() {
        nodes = list_of(headers, "x-real-ip");
    }
    let nodes: Vec<Option<SocketAddr>> = nodes.iter().map(|entry| parse_x_forwarded_node(entry)).collect();
    let chosen = walk(trusted, &nodes);
    let depth = chosen.map_or(0, |(_, depth)| depth);
    let pick = |field: &str| {
        let list = list_of(headers, field);
        if list.len() == 1 {
            list.into_iter().next()
        } else {
            from_right(&list, depth).cloned()
        }
    };
    Hop {
        addr: chosen.map(|(addr, _)| addr),
        scheme: pick("x-forwarded-proto").as_deref().and_then(parse_scheme),
        host: pick("x-forwarded-host").as_deref().and_then(parse_host),
        port: pick("x-forwarded-port").and_then(|port| parse_decimal(&port, 5)).and_then(|n| u16::try_from(n).ok()),
    }
}

/// The comma-separated entries of every instance of field `name`, in order, trimmed; empty
/// entries are skipped.
fn list_of(headers: &[Header], name: &str) -> Vec<Vec<u8>> {
    headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case(name))
        .flat_map(|header| header.value.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|entry| !entry.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_ows(*first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_ows(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// An `X-Forwarded-For` entry: an address, optionally bracketed (IPv6) and with a `:port`.
fn parse_x_forwarded_node(entry: &[u8]) -> Option<SocketAddr> {
    let entry = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 0));
    }
    if let Some(inside) = entry.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return inside.parse::<Ipv6Addr>().ok().map(|ip| SocketAddr::new(IpAddr::V6(ip), 0));
    }
    entry.parse::<SocketAddr>().ok()
}

// ---------------------------------------------------------------------------------------------
// Values

/// Digits only (no sign, no spaces), at most `max_digits` of them.
fn parse_decimal(digits: &[u8], max_digits: usize) -> Option<u32> {
    if digits.is_empty() || digits.len() > max_digits || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

fn parse_scheme(value: &[u8]) -> Option<&'static str> {
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
fn parse_host(value: &[u8]) -> Option<String> {
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
fn request_host(headers: &[Header]) -> Option<String> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case("host")).and_then(|h| parse_host(&h.value))
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
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> Vec<Header> {
        fields
            .iter()
            .map(|(name, value)| Header { name: (*name).to_owned(), value: value.as_bytes().to_vec() })
            .collect()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|_| SocketAddr::new(text.parse().expect(text), 0))
    }

    // ----- TrustedProxies -----

    #[test]
    fn parses_lists_and_masks_host_bits() {
        let trusted = TrustedProxies::parse(" 127.0.0.1, 10.1.2.3/8,::1 , fd00::1/8,, ", 2).unwrap();
        assert_eq!(trusted.to_string(), "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8");
        assert_eq!(trusted.hops(), 2);
        assert!(!trusted.is_empty());
        assert!(TrustedProxies::parse("", 1).unwrap().is_empty());
        assert!(TrustedProxies::parse(" , ", 1).unwrap().is_empty());
        assert!(TrustedProxies::none().is_empty());
        assert_eq!(TrustedProxies::parse("0.0.0.0/0, ::/0", 1).unwrap().to_string(), "0.0.0.0/0, ::/0");
    }

    #[test]
    fn parse_errors_name_the_bad_entry() {
        let cases = [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "10.0.0.0/8/8",
            "localhost",
            "10.0.0",
            "10.0.0.256",
            "[::1]",
            "fe80::1%eth0",
            "/8",
            "1.2.3.4 5.6.7.8",
        ];
        for entry in cases {
            let error = TrustedProxies::parse(&format!("127.0.0.1, {entry}"), 1).unwrap_err();
            assert!(error.contains(&format!("{entry:?}")), "{entry}: {error}");
        }
    }

    #[test]
    fn membership() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8, 192.168.1.0/24, ::1, fd00::/8", 1).unwrap();
        let cases: [(&str, bool); 14] = [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("192.168.1.77", true),
            ("192.168.2.1", false),
            ("::1", true),
            ("::2", false),
            ("fd12:3456::1", true),
            ("fe00::1", false),
            ("::ffff:10.9.8.7", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:11.0.0.1", false),
            ("::10.0.0.1", false),
        ];
        for (ip, expected) in cases {
            assert_eq!(trusted.contains(ip.parse().unwrap()), expected, "{ip}");
        }
        let all = TrustedProxies::parse("0.0.0.0/0", 1).unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(all.contains("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        let mapped = TrustedProxies::parse("::ffff:10.0.0.0/104", 1).unwrap();
        assert!(mapped.contains("10.1.1.1".parse().unwrap()));
        assert!(!mapped.contains("11.1.1.1".parse().unwrap()));
        assert!(!TrustedProxies::none().contains("127.0.0.1".parse().unwrap()));
    }

    // ----- resolve -----

    /// One `resolve` case: who asks, what they send, who the client turns out to be.
    struct Case {
        name: &'static str,
        trusted: &'static str,
        hops: usize,
        peer: &'static str,
        fields: &'static [(&'static str, &'static str)],
        client: &'static str,
        scheme: &'static str,
        host: Option<&'static str>,
        /// Field names left in the request afterwards, in order.
        kept: &'static [&'static str],
    }

    const PEER: &str = "10.0.0.5:4000";
    const LB: &str = "10.0.0.0/8";

    fn run(cases: &[Case]) {
        for case in cases {
            let trusted = TrustedProxies::parse(case.trusted, case.hops).unwrap();
            let peer = addr(case.peer);
            let mut fields = headers(case.fields);
            let info = resolve(&trusted, peer, &mut fields);
            assert_eq!(info.addr, addr(case.client), "{}: client", case.name);
            assert_eq!(info.scheme, case.scheme, "{}: scheme", case.name);
            assert_eq!(info.host.as_deref(), case.host, "{}: host", case.name);
            let resolved = info.addr != peer || info.scheme != "http" || info.host.is_some();
            assert_eq!(info.forwarded_by, resolved.then_some(peer), "{}: forwarded_by", case.name);
            let names: Vec<&str> = fields.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, case.kept, "{}: kept fields", case.name);
        }
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        run(&[
            Case {
                name: "nobody trusted",
                trusted: "",
                hops: 1,
                peer: "203.0.113.9:5555",
                fields: &[
                    ("Host", "example.com"),
                    ("X-Forwarded-For", "1.1.1.1"),
                    ("x-forwarded-proto", "https"),
                    ("X-FORWARDED-HOST", "evil.com"),
                    ("X-Forwarded-Port", "443"),
                    ("X-Real-Ip", "2.2.2.2"),
                    ("Forwarded", "for=3.3.3.3;proto=https"),
                    ("Accept", "*/*"),
                ],
                client: "203.0.113.9:5555",
                scheme: "http",
                host: None,
                kept: &["Host", "Accept"],
            },
            Case {
                name: "peer outside the trusted network",
                trusted: LB,
                hops: 3,
                peer: "11.0.0.1:80",
                fields: &[("forwarded", "for=1.2.3.4"), ("X-Forwarded-For", "10.0.0.1")],
                client: "11.0.0.1:80",
                scheme: "http",
                host: None,
                kept: &[],
            },
            Case {
                name: "underscore spellings are removed from untrusted peers",
                trusted: LB,
                hops: 1,
                peer: "11.0.0.1:80",
                fields: &[("X_Forwarded_For", "1.2.3.4"), ("x-forwarded_proto", "https"), ("X_Custom", "kept")],
                client: "11.0.0.1:80",
                scheme: "http",
                host: None,
                kept: &["X_Custom"],
            },
            Case {
                name: "underscore spellings are removed from trusted peers too",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X_Forwarded_For", "1.2.3.4"), ("X-Forwarded-For", "5.6.7.8")],
                client: "5.6.7.8:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "hops 0 ignores and strips even from a trusted peer",
                trusted: LB,
                hops: 0,
                peer: PEER,
                fields: &[("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"), ("Host", "a")],
                client: PEER,
                scheme: "http",
                host: None,
                kept: &["Host"],
            },
            Case {
                name: "client-supplied entry left of the proxy's is not believed",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-For", "6.6.6.6, 198.51.100.7")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "client pretends to be a trusted proxy, but hops run out",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-For", "6.6.6.6, 10.9.9.9")],
                client: "10.9.9.9:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "untrusted IPv6 peer",
                trusted: "::1",
                hops: 1,
                peer: "[2001:db8::2]:443",
                fields: &[("Forwarded", "for=\"[::1]\"")],
                client: "[2001:db8::2]:443",
                scheme: "http",
                host: None,
                kept: &[],
            },
        ]);
    }

    #[test]
    fn x_forwarded_chains_and_hops() {
        run(&[
            Case {
                name: "single proxy",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https")],
                client: "198.51.100.7:0",
                scheme: "https",
                host: None,
                kept: &["X-Forwarded-For", "X-Forwarded-Proto"],
            },
            Case {
                name: "two trusted proxies, hops 2",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, 10.1.1.1")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "untrusted rightmost entry stops the walk early",
                trusted: LB,
                hops: 3,
                peer: PEER,
                fields: &[("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "all entries trusted: the leftmost is the client",
                trusted: LB,
                hops: 5,
                peer: PEER,
                fields: &[("X-Forwarded-For", "10.3.3.3, 10.2.2.2, 10.1.1.1")],
                client: "10.3.3.3:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "hops limit the walk through trusted entries",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, 10.2.2.2, 10.1.1.1")],
                client: "10.2.2.2:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "several field instances form one list",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[
                    ("X-Forwarded-For", "6.6.6.6"),
                    ("x-forwarded-for", "198.51.100.7"),
                    ("X-FORWARDED-FOR", "10.1.1.1"),
                ],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For", "x-forwarded-for", "X-FORWARDED-FOR"],
            },
            Case {
                name: "empty list entries are skipped",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7,, 10.1.1.1 ,")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "proto aligned with the chosen hop",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, 10.1.1.1"), ("X-Forwarded-Proto", "HTTPS, http")],
                client: "198.51.100.7:0",
                scheme: "https",
                host: None,
                kept: &["X-Forwarded-For", "X-Forwarded-Proto"],
            },
            Case {
                name: "proto list shorter than the chosen depth",
                trusted: LB,
                hops: 3,
                peer: PEER,
                fields: &[
                    ("X-Forwarded-For", "198.51.100.7, 10.2.2.2, 10.1.1.1"),
                    ("X-Forwarded-Proto", "https, https"),
                ],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For", "X-Forwarded-Proto"],
            },
            Case {
                name: "a single proto applies at any depth",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, 10.1.1.1"), ("X-Forwarded-Proto", "https")],
                client: "198.51.100.7:0",
                scheme: "https",
                host: None,
                kept: &["X-Forwarded-For", "X-Forwarded-Proto"],
            },
            Case {
                name: "proto without any address list",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-Proto", "https")],
                client: PEER,
                scheme: "https",
                host: None,
                kept: &["X-Forwarded-Proto"],
            },
            Case {
                name: "host and port",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[
                    ("Host", "internal:8080"),
                    ("X-Forwarded-For", "198.51.100.7"),
                    ("X-Forwarded-Host", "www.example.com"),
                    ("X-Forwarded-Port", "8443"),
                    ("X-Forwarded-Proto", "https"),
                ],
                client: "198.51.100.7:0",
                scheme: "https",
                host: Some("www.example.com:8443"),
                kept: &["Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto"],
            },
            Case {
                name: "default port of the scheme is left out, host's own port replaced",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[
                    ("X-Forwarded-Host", "www.example.com:8080"),
                    ("X-Forwarded-Port", "443"),
                    ("X-Forwarded-Proto", "https"),
                ],
                client: PEER,
                scheme: "https",
                host: Some("www.example.com"),
                kept: &["X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto"],
            },
            Case {
                name: "port alone applies to the request's Host",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("host", "[2001:db8::1]:8080"), ("X-Forwarded-Port", "8443")],
                client: PEER,
                scheme: "http",
                host: Some("[2001:db8::1]:8443"),
                kept: &["host", "X-Forwarded-Port"],
            },
            Case {
                name: "host list aligned with the chosen hop",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[
                    ("X-Forwarded-For", "198.51.100.7, 10.1.1.1"),
                    ("X-Forwarded-Host", "public.example, lb.internal"),
                ],
                client: "198.51.100.7:0",
                scheme: "http",
                host: Some("public.example"),
                kept: &["X-Forwarded-For", "X-Forwarded-Host"],
            },
            Case {
                name: "X-Real-IP when there is no X-Forwarded-For",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Real-IP", "198.51.100.7")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Real-IP"],
            },
            Case {
                name: "X-Forwarded-For wins over X-Real-IP",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Real-IP", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Real-IP", "X-Forwarded-For"],
            },
            Case {
                name: "IPv6 entries, bracketed, with ports",
                trusted: "::1, fd00::/8",
                hops: 3,
                peer: "[::1]:9000",
                fields: &[("X-Forwarded-For", "2001:db8::7, [fd00::2]:1234, [fd00::3]")],
                client: "[2001:db8::7]:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "IPv4 with port",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7:61234")],
                client: "198.51.100.7:61234",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "IPv4-mapped peer is trusted by its IPv4 entry",
                trusted: "127.0.0.1",
                hops: 1,
                peer: "[::ffff:127.0.0.1]:5000",
                fields: &[("X-Forwarded-For", "198.51.100.7")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
        ]);
    }

    #[test]
    fn x_forwarded_malformed_values() {
        run(&[
            Case {
                name: "garbage rightmost entry keeps the peer",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, not-an-ip")],
                client: PEER,
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "garbage deeper keeps the last valid address",
                trusted: LB,
                hops: 3,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, 1.2.3, 10.1.1.1")],
                client: "10.1.1.1:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "unknown stops the walk",
                trusted: LB,
                hops: 3,
                peer: PEER,
                fields: &[("X-Forwarded-For", "198.51.100.7, unknown, 10.1.1.1")],
                client: "10.1.1.1:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
            Case {
                name: "bad values everywhere are ignored",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[
                    ("X-Forwarded-For", "999.1.1.1"),
                    ("X-Forwarded-Proto", "gopher"),
                    ("X-Forwarded-Host", "evil.com/path"),
                    ("X-Forwarded-Port", "65536"),
                ],
                client: PEER,
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"],
            },
            Case {
                name: "host with userinfo, spaces or controls is refused",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-Host", "user@evil.com")],
                client: PEER,
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-Host"],
            },
            Case {
                name: "port with a sign is refused, host kept",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-Host", "a.example"), ("X-Forwarded-Port", "+80")],
                client: PEER,
                scheme: "http",
                host: Some("a.example"),
                kept: &["X-Forwarded-Host", "X-Forwarded-Port"],
            },
            Case {
                name: "non-UTF-8 bytes",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("X-Forwarded-For", "1.2.3.4\u{e9}")],
                client: PEER,
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For"],
            },
        ]);
    }

    #[test]
    fn forwarded_header() {
        run(&[
            Case {
                name: "rfc 7239 example",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")],
                client: "192.0.2.60:0",
                scheme: "http",
                host: None,
                kept: &["Forwarded"],
            },
            Case {
                name: "quoted IPv6 with port, proto and host",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("Forwarded", "For=\"[2001:db8:cafe::17]:4711\"; Proto=HTTPS; Host=\"example.com:8443\"")],
                client: "[2001:db8:cafe::17]:4711",
                scheme: "https",
                host: Some("example.com:8443"),
                kept: &["Forwarded"],
            },
            Case {
                name: "preferred over X-Forwarded-*",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[
                    ("X-Forwarded-For", "6.6.6.6"),
                    ("X-Forwarded-Proto", "https"),
                    ("X-Forwarded-Host", "x.example"),
                    ("FORWARDED", "for=198.51.100.7"),
                ],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "FORWARDED"],
            },
            Case {
                name: "chain of elements, several instances, hops 2",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[
                    ("Forwarded", "for=6.6.6.6;proto=http"),
                    ("Forwarded", "for=198.51.100.7;proto=https;host=public.example, for=10.1.1.1;proto=http;host=lb"),
                ],
                client: "198.51.100.7:0",
                scheme: "https",
                host: Some("public.example"),
                kept: &["Forwarded", "Forwarded"],
            },
            Case {
                name: "hop limit in Forwarded",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("Forwarded", "for=198.51.100.7, for=10.1.1.1;proto=https")],
                client: "10.1.1.1:0",
                scheme: "https",
                host: None,
                kept: &["Forwarded"],
            },
            Case {
                name: "obfuscated identifier keeps the last good address",
                trusted: LB,
                hops: 3,
                peer: PEER,
                fields: &[("Forwarded", "for=198.51.100.7, for=_hidden, for=10.1.1.1")],
                client: "10.1.1.1:0",
                scheme: "http",
                host: None,
                kept: &["Forwarded"],
            },
            Case {
                name: "unknown rightmost keeps the peer but its proto applies",
                trusted: LB,
                hops: 3,
                peer: PEER,
                fields: &[("Forwarded", "for=198.51.100.7, for=unknown;proto=https")],
                client: PEER,
                scheme: "https",
                host: None,
                kept: &["Forwarded"],
            },
            Case {
                name: "element without for= stops the walk",
                trusted: LB,
                hops: 2,
                peer: PEER,
                fields: &[("Forwarded", "for=198.51.100.7, proto=https;host=h.example")],
                client: PEER,
                scheme: "https",
                host: Some("h.example"),
                kept: &["Forwarded"],
            },
            Case {
                name: "obfuscated port gives port 0",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("Forwarded", "for=\"198.51.100.7:_p0rt\"")],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["Forwarded"],
            },
            Case {
                name: "unquoted IPv6 and port, leniently",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("Forwarded", "for=[2001:db8::9]:80")],
                client: "[2001:db8::9]:80",
                scheme: "http",
                host: None,
                kept: &["Forwarded"],
            },
            Case {
                name: "quoted-pair escapes",
                trusted: LB,
                hops: 1,
                peer: PEER,
                fields: &[("Forwarded", r#"for="\1\9\8.51.100.7";ext="a\"b,c;d""#)],
                client: "198.51.100.7:0",
                scheme: "http",
                host: None,
                kept: &["Forwarded"],
            },
        ]);
    }

    #[test]
    fn forwarded_malformed() {
        let malformed: [&str; 14] = [
            "for=198.51.100.7, for=\"10.1.1.1",
            "for=198.51.100.7, for=10.1.1.1;for=10.2.2.2",
            "for=198.51.100.7, for =10.1.1.1",
            "for=198.51.100.7, for= 10.1.1.1",
            "for=198.51.100.7, for=2001:db8::1",
            "for=198.51.100.7, for=\"[2001:db8::1\"",
            "for=198.51.100.7, for=\"[2001:db8::1]:\"",
            "for=198.51.100.7, for=\"10.1.1.1:65536\"",
            "for=198.51.100.7, for=\"10.1.1.1:_\"",
            "for=198.51.100.7, for=10.1.1.1 x",
            "for=198.51.100.7, =10.1.1.1",
            "for=198.51.100.7, for",
            "for=198.51.100.7, for=\"10.1.1.1\"x",
            "for=198.51.100.7, for=\"10.1.1.1\u{7f}\"",
        ];
        let trusted = TrustedProxies::parse(LB, 3).unwrap();
        for value in malformed {
            let mut fields = headers(&[("Forwarded", value)]);
            let info = resolve(&trusted, addr(PEER), &mut fields);
            assert_eq!(info.addr, addr(PEER), "{value}");
            assert_eq!(info.forwarded_by, None, "{value}");
            assert_eq!(fields.len(), 1, "{value}");
        }
    }

    #[test]
    fn forwarded_resynchronises_after_a_malformed_element() {
        let mut elements = Vec::new();
        parse_forwarded(br#"for="a,b" x, , for=1.2.3.4;proto=https"#, &mut elements);
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0], None);
        let second = elements[1].as_ref().unwrap();
        assert_eq!(second.node.as_deref(), Some(&b"1.2.3.4"[..]));
        assert_eq!(second.proto.as_deref(), Some(&b"https"[..]));
        // A malformed element on the left does not hide a good one on the right.
        let trusted = TrustedProxies::parse(LB, 2).unwrap();
        let mut fields = headers(&[("Forwarded", "for=oops\"x,y\", for=198.51.100.7")]);
        assert_eq!(resolve(&trusted, addr(PEER), &mut fields).addr, addr("198.51.100.7:0"));
        // An unterminated quoted string swallows the rest of the field: the peer is kept.
        let mut fields = headers(&[("Forwarded", "for=\"oops;x, for=198.51.100.7")]);
        assert_eq!(resolve(&trusted, addr(PEER), &mut fields).addr, addr(PEER));
    }

    #[test]
    fn nodes() {
        let cases: [(&[u8], Option<&str>); 14] = [
            (b"192.0.2.1", Some("192.0.2.1:0")),
            (b"192.0.2.1:8080", Some("192.0.2.1:8080")),
            (b"192.0.2.1:_x", Some("192.0.2.1:0")),
            (b"[::1]", Some("[::1]:0")),
            (b"[::1]:443", Some("[::1]:443")),
            (b"unknown", None),
            (b"_secret", None),
            (b"::1", None),
            (b"[::1", None),
            (b"[::1]443", None),
            (b"192.0.2.1:", None),
            (b"192.0.2.1:123456", None),
            (b"192.0.2.01", None),
            (b"", None),
        ];
        for (node, expected) in cases {
            assert_eq!(parse_forwarded_node(node), expected.map(addr), "{:?}", String::from_utf8_lossy(node));
        }
    }

    #[test]
    fn hosts() {
        let cases: [(&str, Option<&str>); 15] = [
            ("example.com", Some("example.com")),
            (" Example.COM:8080 ", Some("Example.COM:8080")),
            ("192.0.2.1:80", Some("192.0.2.1:80")),
            ("[2001:db8::1]", Some("[2001:db8::1]")),
            ("[2001:db8::1]:443", Some("[2001:db8::1]:443")),
            ("a b", None),
            ("a\tb", None),
            ("user@host", None),
            ("host/path", None),
            ("host:", None),
            ("host:99999", None),
            ("host:1:2", None),
            ("[zz::1]", None),
            ("", None),
            ("h\u{e9}", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_host(value.as_bytes()).as_deref(), expected, "{value:?}");
        }
        assert_eq!(parse_host("a".repeat(MAX_HOST_LEN + 1).as_bytes()), None);
        assert_eq!(strip_port("example.com:80"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn never_panics_on_generated_input() {
        // A small deterministic generator (xorshift) over the bytes the parsers care about.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"for=proto;host,\"\\[]:._-0123456789abcdef ffff unknown https \t\x80\xff";
        let names =
            ["Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"];
        let trusted = TrustedProxies::parse("0.0.0.0/1, ::/1", 4).unwrap();
        for _ in 0..5_000 {
            let mut fields = Vec::new();
            for _ in 0..next() % 4 {
                let len = (next() % 40) as usize;
                let value = (0..len).map(|_| alphabet[(next() >> 8) as usize % alphabet.len()]).collect();
                fields.push(Header { name: names[next() as usize % names.len()].to_owned(), value });
            }
            let count = fields.len();
            let info = resolve(&trusted, addr(PEER), &mut fields);
            assert_eq!(fields.len(), count);
            assert!(info.scheme == "http" || info.scheme == "https");
            if let Some(host) = &info.host {
                assert!(host.bytes().all(|b| b.is_ascii_graphic() && b != b'@' && b != b'/'), "{host:?}");
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let trusted = TrustedProxies::parse("0.0.0.0/0, ::/0", usize::MAX).unwrap();
        let odd: [&[u8]; 12] = [
            b"",
            b",",
            b"\"",
            b"\\",
            b"for=\"\\",
            b";;;,,,",
            b"for=[",
            b"[]",
            b"[",
            b":",
            b"\xff\xfe",
            b"for=\"\xff\"",
        ];
        for value in odd {
            for name in ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto"] {
                let mut fields = vec![Header { name: name.to_owned(), value: value.to_vec() }];
                let info = resolve(&trusted, addr(PEER), &mut fields);
                assert_eq!(info.addr, addr(PEER));
            }
        }
    }
}
