//! Tests of [`super::resolve`]: who the client is, per peer, list and hop count.
//! Never part of the build outside `cargo test`.

use super::*;

mod forwarded;

/// Header fields with exactly these names and values (not trimmed, not checked).
fn headers(fields: &[(&str, &str)]) -> HeaderFields {
    let pairs: Vec<(&str, &[u8])> = fields.iter().map(|(name, value)| (*name, value.as_bytes())).collect();
    HeaderFields::from_pairs(&pairs)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|_| SocketAddr::new(text.parse().expect(text), 0))
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
        let names: Vec<&str> = fields.iter().map(|h| h.name()).collect();
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
            fields: &[("X-Forwarded-For", "198.51.100.7, 10.2.2.2, 10.1.1.1"), ("X-Forwarded-Proto", "https, https")],
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
