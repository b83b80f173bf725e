//! The PROXY protocol header (versions 1 and 2) that a trusted load balancer sends before the
//! HTTP bytes, carrying the client's address.
//!
//! [`parse`] looks at the first bytes received on a connection and says whether they hold a
//! complete header (and how many bytes it took), need more bytes, or are not a valid header.
//! Only enable it for listeners that a PROXY-speaking load balancer alone can reach: the
//! header is believed as sent.
//!
//! Version 1 is one text line, at most 107 bytes including its CRLF:
//!
//! ```text
//! PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n
//! PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n
//! PROXY UNKNOWN\r\n
//! ```
//!
//! It is parsed strictly: single spaces, addresses of the named family written as
//! `std::net` parses them (no leading zeros in IPv4, no zone in IPv6), ports from 0 to 65535
//! without leading zeros, and CRLF. After `UNKNOWN`, the rest of the line is ignored.
//!
//! Version 2 is binary: the 12-byte signature `\r\n\r\n\0\r\nQUIT\n`, version 2 with command
//! `LOCAL` or `PROXY`, address family and transport, a 16-bit length, the addresses, and TLVs.
//! The protocol allows 16 + 65 535 bytes, but a header longer than [`V2_MAX_LEN`] (4 096)
//! bytes is refused as invalid, so a connection never has to buffer more than that; real
//! headers are far smaller. TLVs are skipped (their framing is checked for TCP over IPv4 and
//! IPv6; CRC32c is not verified). `LOCAL`, `UNSPEC`, `AF_UNIX` and datagram (UDP) headers
//! give [`ProxyHeader::Unknown`]: keep the socket's own peer address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest version 1 header, including its CRLF.
pub const V1_MAX_LEN: usize = 107;

/// Longest version 2 header accepted (16-byte fixed part, addresses and TLVs).
pub const V2_MAX_LEN: usize = 4096;

/// The start of every version 1 header.
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// The start of every version 2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Length of the fixed part of a version 2 header: signature, version and command, family
/// and transport, and the length of the rest.
const V2_FIXED_LEN: usize = 16;

/// What a PROXY protocol header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// No usable addresses (v1 `UNKNOWN`; v2 `LOCAL`, `UNSPEC`, `AF_UNIX` or UDP): keep the
    /// socket's peer address.
    Unknown,
    /// A proxied TCP connection.
    Addresses {
        /// The client's address, as the load balancer saw it.
        source: SocketAddr,
        /// The address the client connected to on the load balancer.
        destination: SocketAddr,
    },
}

/// The outcome of [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyParse {
    /// The bytes so far are the start of a valid header: read more and parse again.
    Incomplete,
    /// A complete header, taking the first `consumed` bytes; the HTTP bytes follow them.
    Done {
        /// What the header says.
        header: ProxyHeader,
        /// Length of the header in bytes.
        consumed: usize,
    },
    /// Not a valid PROXY protocol header; the connection should be closed.
    Invalid(&'static str),
}

/// Parses the PROXY protocol header at the start of `buf`, version 1 or 2.
///
/// Returns [`ProxyParse::Incomplete`] only while `buf` could still grow into a valid header
/// (so never past [`V1_MAX_LEN`] or [`V2_MAX_LEN`] bytes), and
/// [`ProxyParse::Invalid`]`("not a PROXY protocol header")` as soon as it matches neither
/// signature.
pub fn parse(buf: &[u8]) -> ProxyParse {
    if buf.is_empty() {
        return ProxyParse::Incomplete;
    }
    if starts_like(buf, V2_SIGNATURE) {
        parse_v2(buf)
    } else if starts_like(buf, V1_PREFIX) {
        parse_v1(buf)
    } else {
        ProxyParse::Invalid("not a PROXY protocol header")
    }
}

/// Whether `buf` and `signature` agree over the length of the shorter one.
fn starts_like(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

// ---------------------------------------------------------------------------------------------
// Version 1

fn parse_v1(buf: &[u8]) -> ProxyParse {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        if window.len() >= V1_MAX_LEN {
            return ProxyParse::Invalid("PROXY v1 header longer than 107 bytes");
        }
        return match parse_v1_line(window, false) {
            Ok(_) => ProxyParse::Incomplete,
            Err(reason) => ProxyParse::Invalid(reason),
        };
    };
    if window[end] == b'\n' {
        return ProxyParse::Invalid("PROXY v1 header ends with LF instead of CRLF");
    }
    let line = match parse_v1_line(&window[..end], true) {
        Ok(header) => header,
        Err(reason) => return ProxyParse::Invalid(reason),
    };
    match (window.get(end + 1), line) {
        (Some(b'\n'), Some(header)) => ProxyParse::Done { header, consumed: end + 2 },
        (Some(_), _) => ProxyParse::Invalid("PROXY v1 header has a CR without LF"),
        (None, _) if end + 2 > V1_MAX_LEN => ProxyParse::Invalid("PROXY v1 header longer than 107 bytes"),
        (None, _) => ProxyParse::Incomplete,
    }
}

/// Checks a v1 line (without its CRLF). When `complete`, returns the header; otherwise checks
/// that `line` can still be the start of a valid one and returns `None`.
fn parse_v1_line(line: &[u8], complete: bool) -> Result<Option<ProxyHeader>, &'static str> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let last = fields.len() - 1;
    // A field is whole when a space follows it or the line is complete.
    let whole = |i: usize| i < last || complete;
    for (i, field) in fields.iter().enumerate() {
        if field.is_empty() && whole(i) {
            if i == 1 && fields[0] == b"PROXY" && fields.len() == 2 {
                return Err("PROXY v1 header has no protocol");
            }
            return Err("PROXY v1 header has an empty field (extra space)");
        }
        if i == 1 && *field == b"UNKNOWN" && whole(i) {
            // The rest of the line, if any, is to be ignored.
            return Ok(complete.then_some(ProxyHeader::Unknown));
        }
        let valid = match i {
            0 => prefix_or_equal(field, b"PROXY", whole(i)),
            1 => [&b"TCP4"[..], b"TCP6", b"UNKNOWN"].iter().any(|p| prefix_or_equal(field, p, whole(i))),
            2..=5 if fields[1] == b"TCP4" => {
                if i < 4 {
                    ipv4_text(field, whole(i))
                } else {
                    port_text(field, whole(i))
                }
            }
            2..=5 => {
                if i < 4 {
                    ipv6_text(field, whole(i))
                } else {
                    port_text(field, whole(i))
                }
            }
            _ => return Err("PROXY v1 header has too many fields"),
        };
        if !valid {
            return Err(match i {
                0 => "not a PROXY protocol header",
                1 => "PROXY v1 header has an unknown protocol",
                2 => "PROXY v1 header has an invalid source address",
                3 => "PROXY v1 header has an invalid destination address",
                _ => "PROXY v1 header has an invalid port",
            });
        }
    }
    if !complete {
        return Ok(None);
    }
    if fields.len() != 6 {
        return Err("PROXY v1 header has too few fields");
    }
    let (source, destination) = if fields[1] == b"TCP4" {
        (IpAddr::V4(parse_text::<Ipv4Addr>(fields[2])?), IpAddr::V4(parse_text::<Ipv4Addr>(fields[3])?))
    } else {
        (IpAddr::V6(parse_text::<Ipv6Addr>(fields[2])?), IpAddr::V6(parse_text::<Ipv6Addr>(fields[3])?))
    };
    let source_port = parse_text::<u16>(fields[4])?;
    let destination_port = parse_text::<u16>(fields[5])?;
    Ok(Some(ProxyHeader::Addresses {
        source: SocketAddr::new(source, source_port),
        destination: SocketAddr::new(destination, destination_port),
    }))
}

/// `field == word` when the field is whole, else `field` is a prefix of `word`.
fn prefix_or_equal(field: &[u8], word: &[u8], whole: bool) -> bool {
    if whole {
        field == word
    } else {
        word.starts_with(field)
    }
}

/// Parses already-checked ASCII text with `FromStr`.
fn parse_text<T: std::str::FromStr>(field: &[u8]) -> Result<T, &'static str> {
    std::str::from_utf8(field).ok().and_then(|text| text.parse().ok()).ok_or("PROXY v1 header has an invalid field")
}

/// A decimal number from 0 to `max` with 1 to `max_digits` digits and no leading zero; or,
/// when not `whole`, the start of one (possibly empty).
fn decimal_text(field: &[u8], max: u32, max_digits: usize, whole: bool) -> bool {
    if field.is_empty() {
        return !whole;
    }
    field.len() <= max_digits
        && field.iter().all(u8::is_ascii_digit)
        && !(field.len() > 1 && field[0] == b'0')
        && field.iter().fold(0_u32, |n, &d| n * 10 + u32::from(d - b'0')) <= max
}

fn port_text(field: &[u8], whole: bool) -> bool {
    decimal_text(field, 65_535, 5, whole)
}

/// A dotted-quad IPv4 address, or when not `whole` the start of one.
fn ipv4_text(field: &[u8], whole: bool) -> bool {
    let parts: Vec<&[u8]> = field.split(|&b| b == b'.').collect();
    let last = parts.len() - 1;
    parts.len() <= 4
        && (!whole || parts.len() == 4)
        && parts.iter().enumerate().all(|(i, part)| decimal_text(part, 255, 3, whole || i < last))
}

/// An IPv6 address, or when not `whole` text that may still become one.
fn ipv6_text(field: &[u8], whole: bool) -> bool {
    // Longest form: eight groups of four, or six groups and a dotted quad (45 bytes).
    const MAX_LEN: usize = 45;
    if whole {
        return std::str::from_utf8(field).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok());
    }
    field.len() <= MAX_LEN
        && field.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        && !field.windows(3).any(|w| w == b":::")
}

// ---------------------------------------------------------------------------------------------
// Version 2

/// Command `LOCAL`: a connection the proxy made itself (health checks); no addresses.
const V2_CMD_LOCAL: u8 = 0x0;
/// Command `PROXY`: a relayed connection.
const V2_CMD_PROXY: u8 = 0x1;
const V2_AF_UNSPEC: u8 = 0x0;
const V2_AF_INET: u8 = 0x1;
const V2_AF_INET6: u8 = 0x2;
const V2_AF_UNIX: u8 = 0x3;
const V2_TRANSPORT_STREAM: u8 = 0x1;
const V2_TRANSPORT_DGRAM: u8 = 0x2;

fn parse_v2(buf: &[u8]) -> ProxyParse {
    let Some(&version_command) = buf.get(12) else {
        return ProxyParse::Incomplete;
    };
    if version_command >> 4 != 2 {
        return ProxyParse::Invalid("PROXY v2 header has an unsupported version");
    }
    let command = version_command & 0x0f;
    if command != V2_CMD_LOCAL && command != V2_CMD_PROXY {
        return ProxyParse::Invalid("PROXY v2 header has an unknown command");
    }
    let Some(&family_transport) = buf.get(13) else {
        return ProxyParse::Incomplete;
    };
    let family = family_transport >> 4;
    let transport = family_transport & 0x0f;
    if family > V2_AF_UNIX || transport > V2_TRANSPORT_DGRAM {
        return ProxyParse::Invalid("PROXY v2 header has an unknown address family or transport");
    }
    let (Some(&high), Some(&low)) = (buf.get(14), buf.get(15)) else {
        return ProxyParse::Incomplete;
    };
    let total = V2_FIXED_LEN + usize::from(u16::from_be_bytes([high, low]));
    if total > V2_MAX_LEN {
        return ProxyParse::Invalid("PROXY v2 header longer than 4096 bytes");
    }
    let Some(rest) = buf.get(V2_FIXED_LEN..total) else {
        return ProxyParse::Incomplete;
    };
    let header = if command == V2_CMD_LOCAL || transport != V2_TRANSPORT_STREAM {
        Ok(ProxyHeader::Unknown)
    } else {
        match family {
            V2_AF_INET => v2_addresses(rest, 4),
            V2_AF_INET6 => v2_addresses(rest, 16),
            V2_AF_UNSPEC | V2_AF_UNIX => Ok(ProxyHeader::Unknown),
            _ => Err("PROXY v2 header has an unknown address family or transport"),
        }
    };
    match header {
        Ok(header) => ProxyParse::Done { header, consumed: total },
        Err(reason) => ProxyParse::Invalid(reason),
    }
}

/// Reads source and destination addresses of `size` bytes each, then the two ports, from
/// `rest` (everything after the fixed part), and checks the TLVs that follow.
fn v2_addresses(rest: &[u8], size: usize) -> Result<ProxyHeader, &'static str> {
    let block = 2 * size + 4;
    let (addresses, tlvs) = match (rest.get(..block), rest.get(block..)) {
        (Some(addresses), Some(tlvs)) => (addresses, tlvs),
        _ => return Err("PROXY v2 header is too short for its addresses"),
    };
    let ip = |bytes: &[u8]| -> IpAddr {
        if let Ok(octets) = <[u8; 4]>::try_from(bytes) {
            IpAddr::from(octets)
        } else if let Ok(octets) = <[u8; 16]>::try_from(bytes) {
            IpAddr::from(octets)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED) // unreachable: `size` is 4 or 16
        }
    };
    let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
    let source = SocketAddr::new(ip(&addresses[..size]), port(2 * size));
    let destination = SocketAddr::new(ip(&addresses[size..2 * size]), port(2 * size + 2));
    check_tlvs(tlvs)?;
    Ok(ProxyHeader::Addresses { source, destination })
}

/// Checks that `tlvs` is a whole sequence of type (1 byte), length (2 bytes), value.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), &'static str> {
    while let [_kind, high, low, values @ ..] = tlvs {
        let len = usize::from(u16::from_be_bytes([*high, *low]));
        tlvs = values.get(len..).ok_or("PROXY v2 header has a truncated TLV")?;
    }
    if tlvs.is_empty() {
        Ok(())
    } else {
        Err("PROXY v2 header has a truncated TLV")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(source: &str, destination: &str) -> ProxyHeader {
        ProxyHeader::Addresses { source: source.parse().unwrap(), destination: destination.parse().unwrap() }
    }

    /// Every proper prefix of `header` is `Incomplete`; the whole of it, alone or followed by
    /// HTTP bytes, is `Done` with `expected` and the header's length.
    fn check_complete(header: &[u8], expected: ProxyHeader) {
        for len in 0..header.len() {
            assert_eq!(parse(&header[..len]), ProxyParse::Incomplete, "{:?} at {len}", String::from_utf8_lossy(header));
        }
        let done = ProxyParse::Done { header: expected, consumed: header.len() };
        assert_eq!(parse(header), done);
        let mut with_request = header.to_vec();
        with_request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(parse(&with_request), done);
    }

    fn v2(command: u8, family_transport: u8, payload: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.push(0x20 | command);
        header.push(family_transport);
        header.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        header.extend_from_slice(payload);
        header
    }

    fn v4_payload() -> Vec<u8> {
        let mut payload = vec![192, 0, 2, 1, 198, 51, 100, 1];
        payload.extend_from_slice(&56_324_u16.to_be_bytes());
        payload.extend_from_slice(&443_u16.to_be_bytes());
        payload
    }

    fn v6_payload() -> Vec<u8> {
        let mut payload = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        payload.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        payload.extend_from_slice(&[0xdc, 0x04, 0x01, 0xbb]);
        payload
    }

    #[test]
    fn v1_valid() {
        let long_unknown = format!("PROXY UNKNOWN {0} {0} 65535 65535\r\n", ["ffff"; 8].join(":"));
        assert_eq!(long_unknown.len(), V1_MAX_LEN);
        let long_tcp6 = format!("PROXY TCP6 {0} {0} 65535 65535\r\n", ["ffff"; 8].join(":"));
        let mapped = "PROXY TCP6 ::ffff:192.0.2.1 ::1 0 80\r\n";
        let cases: [(&str, ProxyHeader); 9] = [
            ("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n", addresses("192.0.2.1:56324", "198.51.100.1:443")),
            ("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", addresses("0.0.0.0:0", "255.255.255.255:65535")),
            ("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n", addresses("[2001:db8::1]:56324", "[2001:db8::2]:443")),
            (mapped, addresses("[::ffff:192.0.2.1]:0", "[::1]:80")),
            (
                &long_tcp6,
                addresses(
                    &format!("[{0}]:65535", ["ffff"; 8].join(":")),
                    &format!("[{0}]:65535", ["ffff"; 8].join(":")),
                ),
            ),
            ("PROXY UNKNOWN\r\n", ProxyHeader::Unknown),
            ("PROXY UNKNOWN 192.0.2.1 198.51.100.1 56324 443\r\n", ProxyHeader::Unknown),
            ("PROXY UNKNOWN  anything  at all \r\n", ProxyHeader::Unknown),
            (&long_unknown, ProxyHeader::Unknown),
        ];
        for (header, expected) in cases {
            check_complete(header.as_bytes(), expected);
        }
    }

    #[test]
    fn v1_invalid() {
        let too_long = format!("PROXY UNKNOWN {0} {0} 65535 655355\r\n", ["ffff"; 8].join(":"));
        let cases: [&str; 30] = [
            "PROXY  TCP4 192.0.2.1 198.51.100.1 56324 443\r\n",
            "PROXY TCP4  192.0.2.1 198.51.100.1 56324 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 \r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324  443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 7\r\n",
            "PROXY TCP4 192.0.2.256 198.51.100.1 56324 443\r\n",
            "PROXY TCP4 192.0.2 198.51.100.1 56324 443\r\n",
            "PROXY TCP4 192.0.2.01 198.51.100.1 56324 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1.5 56324 443\r\n",
            "PROXY TCP4 2001:db8::1 198.51.100.1 56324 443\r\n",
            "PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n",
            "PROXY TCP6 2001:db8:::1 2001:db8::2 56324 443\r\n",
            "PROXY TCP6 fe80::1%1 2001:db8::2 56324 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324 099999\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 056324 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 +5 443\r\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\n",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\rX",
            "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\r\n",
            "PROXY TCP4\t192.0.2.1 198.51.100.1 56324 443\r\n",
            "PROXY UDP4 192.0.2.1 198.51.100.1 56324 443\r\n",
            "PROXY tcp4 192.0.2.1 198.51.100.1 56324 443\r\n",
            "PROXY UNKNOWNX\r\n",
            "PROXY \r\n",
            "PROXY\r\n",
            "proxy TCP4 192.0.2.1 198.51.100.1 56324 443\r\n",
            "GET / HTTP/1.1\r\n",
            &too_long,
        ];
        for header in cases {
            let result = parse(header.as_bytes());
            assert!(matches!(result, ProxyParse::Invalid(_)), "{header:?}: {result:?}");
        }
        // No line end within 107 bytes.
        let mut unterminated = b"PROXY UNKNOWN ".to_vec();
        unterminated.resize(V1_MAX_LEN, b'x');
        assert_eq!(parse(&unterminated[..V1_MAX_LEN - 1]), ProxyParse::Incomplete);
        assert_eq!(parse(&unterminated), ProxyParse::Invalid("PROXY v1 header longer than 107 bytes"));
        unterminated[V1_MAX_LEN - 1] = b'\r';
        assert_eq!(parse(&unterminated), ProxyParse::Invalid("PROXY v1 header longer than 107 bytes"));
    }

    #[test]
    fn v1_invalid_early() {
        // Refused as soon as the bytes cannot start a valid header, without waiting for CRLF.
        let cases: [&str; 12] = [
            "PROXY  ",
            "PROXY TCP5",
            "PROXY TCP4  ",
            "PROXY TCP4 1.2.3.4  ",
            "PROXY TCP4 256",
            "PROXY TCP4 01",
            "PROXY TCP4 1..",
            "PROXY TCP4 1.2.3.4.",
            "PROXY TCP4 1.2.3.4 5.6.7.8 99999",
            "PROXY TCP6 2001:db8:::",
            "PROXY TCP6 12345g",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
        ];
        for prefix in cases {
            let result = parse(prefix.as_bytes());
            assert!(matches!(result, ProxyParse::Invalid(_)), "{prefix:?}: {result:?}");
        }
        for prefix in ["P", "PROX", "PROXY", "PROXY U", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "PROXY TCP6 ::ffff:1.2."] {
            assert_eq!(parse(prefix.as_bytes()), ProxyParse::Incomplete, "{prefix:?}");
        }
    }

    #[test]
    fn v2_valid() {
        let mut with_tlvs = v4_payload();
        with_tlvs.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']); // ALPN "h2"
        with_tlvs.extend_from_slice(&[0x04, 0x00, 0x00]); // NOOP, empty
        with_tlvs.extend_from_slice(&[0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0]); // SSL
        let mut unix = vec![0_u8; 216];
        unix[..5].copy_from_slice(b"/sock");
        let cases: [(Vec<u8>, ProxyHeader); 10] = [
            (v2(V2_CMD_PROXY, 0x11, &v4_payload()), addresses("192.0.2.1:56324", "198.51.100.1:443")),
            (v2(V2_CMD_PROXY, 0x21, &v6_payload()), addresses("[2001:db8::1]:56324", "[2001:db8::2]:443")),
            (v2(V2_CMD_PROXY, 0x11, &with_tlvs), addresses("192.0.2.1:56324", "198.51.100.1:443")),
            (v2(V2_CMD_LOCAL, 0x00, &[]), ProxyHeader::Unknown),
            (v2(V2_CMD_LOCAL, 0x11, &v4_payload()), ProxyHeader::Unknown),
            (v2(V2_CMD_LOCAL, 0x00, &[0xff; 7]), ProxyHeader::Unknown),
            (v2(V2_CMD_PROXY, 0x00, &[]), ProxyHeader::Unknown),
            (v2(V2_CMD_PROXY, 0x12, &v4_payload()), ProxyHeader::Unknown),
            (v2(V2_CMD_PROXY, 0x31, &unix), ProxyHeader::Unknown),
            (v2(V2_CMD_PROXY, 0x10, &v4_payload()), ProxyHeader::Unknown),
        ];
        for (header, expected) in cases {
            check_complete(&header, expected);
        }
        let largest = v2(V2_CMD_LOCAL, 0x00, &[0; V2_MAX_LEN - V2_FIXED_LEN]);
        check_complete(&largest, ProxyHeader::Unknown);
    }

    #[test]
    fn v2_invalid() {
        let mut wrong_version = v2(V2_CMD_PROXY, 0x11, &v4_payload());
        wrong_version[12] = 0x11;
        let mut short_addresses = v4_payload();
        short_addresses.truncate(11);
        let mut truncated_tlv = v6_payload();
        truncated_tlv.extend_from_slice(&[0x01, 0x00, 0x05, b'h']);
        let mut tlv_without_length = v4_payload();
        tlv_without_length.extend_from_slice(&[0x04, 0x00]);
        let cases: [(Vec<u8>, &str); 9] = [
            (wrong_version.clone(), "PROXY v2 header has an unsupported version"),
            (wrong_version[..13].to_vec(), "PROXY v2 header has an unsupported version"),
            (v2(0x2, 0x11, &v4_payload()), "PROXY v2 header has an unknown command"),
            (v2(V2_CMD_PROXY, 0x41, &v4_payload()), "PROXY v2 header has an unknown address family or transport"),
            (v2(V2_CMD_PROXY, 0x13, &v4_payload()), "PROXY v2 header has an unknown address family or transport"),
            (v2(V2_CMD_PROXY, 0x11, &short_addresses), "PROXY v2 header is too short for its addresses"),
            (v2(V2_CMD_PROXY, 0x21, &v4_payload()), "PROXY v2 header is too short for its addresses"),
            (v2(V2_CMD_PROXY, 0x21, &truncated_tlv), "PROXY v2 header has a truncated TLV"),
            (v2(V2_CMD_PROXY, 0x11, &tlv_without_length), "PROXY v2 header has a truncated TLV"),
        ];
        for (header, reason) in cases {
            assert_eq!(parse(&header), ProxyParse::Invalid(reason), "{header:?}");
        }
        // Too long: refused from the length field, before the rest arrives.
        let mut too_long = v2(V2_CMD_LOCAL, 0x00, &[]);
        too_long[14..16].copy_from_slice(&u16::try_from(V2_MAX_LEN - V2_FIXED_LEN + 1).unwrap().to_be_bytes());
        assert_eq!(parse(&too_long), ProxyParse::Invalid("PROXY v2 header longer than 4096 bytes"));
        too_long[14..16].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(parse(&too_long), ProxyParse::Invalid("PROXY v2 header longer than 4096 bytes"));
    }

    #[test]
    fn v2_truncated_is_incomplete() {
        let header = v2(V2_CMD_PROXY, 0x21, &v6_payload());
        for len in [1, 11, 12, 13, 15, 16, 17, header.len() - 1] {
            assert_eq!(parse(&header[..len]), ProxyParse::Incomplete, "{len}");
        }
        // A length field promising more than is there yet.
        let mut promised = v2(V2_CMD_PROXY, 0x11, &v4_payload());
        promised[15] += 10;
        assert_eq!(parse(&promised), ProxyParse::Incomplete);
    }

    #[test]
    fn neither_signature() {
        for buf in [&b"GET / HTTP/1.1\r\n"[..], b"\r\n\r\n\x01", b"\r\nGET", b"\x16\x03\x01", b"PROXx", b"\0"] {
            assert_eq!(parse(buf), ProxyParse::Invalid("not a PROXY protocol header"), "{buf:?}");
        }
        assert_eq!(parse(b""), ProxyParse::Incomplete);
        assert_eq!(parse(b"\r\n"), ProxyParse::Incomplete);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A small deterministic generator (xorshift), biased towards bytes the parser cares about.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"PROXY TCP46UNKOWN0123456789abcdef.:\r\n\0QUIT\x20\x21\x11";
        for _ in 0..20_000 {
            let len = (next() % 120) as usize;
            let mut buf: Vec<u8> = if next() % 2 == 0 { V1_PREFIX.to_vec() } else { V2_SIGNATURE.to_vec() };
            for _ in 0..len {
                let r = next();
                buf.push(if r % 4 == 0 { r as u8 } else { alphabet[(r >> 8) as usize % alphabet.len()] });
            }
            if let ProxyParse::Done { consumed, .. } = parse(&buf) {
                assert!(consumed <= buf.len() && consumed <= V2_MAX_LEN);
            }
        }
    }
}
