//! `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! `X-Forwarded-Port`: the de-facto forwarded fields, read as lists from the right.
//!
//! Owns reading those lists and picking the hop [`super::walk`] chooses. Never removes or
//! trusts anything by itself: [`super::resolve`] decides who is believed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::{from_right, parse_host, parse_scheme, walk, Hop, TrustedProxies};
use crate::http1::fields::HeaderFields;
use crate::http1::grammar::{parse_decimal, trim_ows};

pub(super) fn from_x_forwarded(trusted: &TrustedProxies, headers: &HeaderFields) -> Hop {
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
pub(super) fn list_of(headers: &HeaderFields, name: &str) -> Vec<Vec<u8>> {
    headers
        .values(name)
        .flat_map(|value| value.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|entry| !entry.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// An `X-Forwarded-For` entry: an address, optionally bracketed (IPv6) and with a `:port`.
pub(super) fn parse_x_forwarded_node(entry: &[u8]) -> Option<SocketAddr> {
    let entry = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 0));
    }
    if let Some(inside) = entry.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return inside.parse::<Ipv6Addr>().ok().map(|ip| SocketAddr::new(IpAddr::V6(ip), 0));
    }
    entry.parse::<SocketAddr>().ok()
}
