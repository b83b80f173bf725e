//! The `Forwarded` field (RFC 7239): elements, parameters, quoted strings and nodes.
//!
//! Owns parsing one `Forwarded` value into elements and picking the hop [`super::walk`]
//! chooses. Never removes or trusts anything by itself: [`super::resolve`] decides who is
//! believed.

use std::net::{IpAddr, SocketAddr};

use super::{from_right, parse_host, parse_scheme, walk, Hop, TrustedProxies};
use crate::http1::grammar::{is_ows, is_tchar, parse_decimal};

/// The parameters of one `Forwarded` element this module reads, as raw (unquoted) bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Element {
    pub(super) node: Option<Vec<u8>>,
    pub(super) proto: Option<Vec<u8>>,
    pub(super) host: Option<Vec<u8>>,
}

pub(super) fn from_forwarded(trusted: &TrustedProxies, elements: &[Option<Element>]) -> Hop {
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

/// Appends the elements of one `Forwarded` field value to `out`: `None` for a malformed one.
/// Empty list elements are skipped. A malformed element ends at the next comma outside a
/// quoted string, so later elements still parse.
pub(super) fn parse_forwarded(value: &[u8], out: &mut Vec<Option<Element>>) {
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
pub(super) fn parse_element(value: &[u8], pos: &mut usize) -> Result<Element, ()> {
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
pub(super) fn parse_quoted(value: &[u8], pos: &mut usize) -> Result<Vec<u8>, ()> {
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
pub(super) fn skip_to_comma(value: &[u8], pos: &mut usize) {
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
pub(super) fn parse_forwarded_node(node: &[u8]) -> Option<SocketAddr> {
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
