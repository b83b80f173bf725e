//! Tests of the `Forwarded` field, nodes and hosts, and inputs that must never panic.

use super::*;
use crate::ops::proxy::forwarded::parse_forwarded_node;

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
        assert_eq!(fields.iter().len(), 1, "{value}");
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
        let mut pairs: Vec<(&str, Vec<u8>)> = Vec::new();
        for _ in 0..next() % 4 {
            let len = (next() % 40) as usize;
            let value = (0..len).map(|_| alphabet[(next() >> 8) as usize % alphabet.len()]).collect();
            pairs.push((names[next() as usize % names.len()], value));
        }
        let pairs: Vec<(&str, &[u8])> = pairs.iter().map(|(name, value)| (*name, value.as_slice())).collect();
        let mut fields = HeaderFields::from_pairs(&pairs);
        let info = resolve(&trusted, addr(PEER), &mut fields);
        assert_eq!(fields.iter().len(), pairs.len());
        assert!(info.scheme == "http" || info.scheme == "https");
        if let Some(host) = &info.host {
            assert!(host.bytes().all(|b| b.is_ascii_graphic() && b != b'@' && b != b'/'), "{host:?}");
        }
    }
}

#[test]
fn never_panics_on_odd_input() {
    let trusted = TrustedProxies::parse("0.0.0.0/0, ::/0", usize::MAX).unwrap();
    let odd: [&[u8]; 12] =
        [b"", b",", b"\"", b"\\", b"for=\"\\", b";;;,,,", b"for=[", b"[]", b"[", b":", b"\xff\xfe", b"for=\"\xff\""];
    for value in odd {
        for name in ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto"] {
            let mut fields = HeaderFields::from_pairs(&[(name, value)]);
            let info = resolve(&trusted, addr(PEER), &mut fields);
            assert_eq!(info.addr, addr(PEER));
        }
    }
}
