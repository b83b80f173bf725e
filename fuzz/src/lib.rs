//! Invariant checks for maitred's request-head scanner and parser and its chunked-body
//! decoder.
//!
//! The libFuzzer targets in `fuzz_targets/` and the stable driver in `src/bin/replay.rs` both
//! call [`check_head`] and [`check_chunked`], so a finding from one reproduces with the other.
//! A check reports a broken invariant by panicking (`assert!`); it never panics otherwise.
//!
//! # Input layout
//!
//! The first [`PREFIX_LEN`] bytes of an input are parameters, not wire bytes: they choose the
//! [`Limits`] (often very small, so every limit is reached) and how the wire bytes are cut into
//! pieces for incremental feeding. The rest of the input is what the client sent. An input
//! shorter than the prefix is padded with zero bytes: default limits, one byte at a time.
//!
//! Head inputs:
//!
//! | byte | meaning |
//! |------|---------|
//! | 0 | bits 0–4: use the small value from byte 1–5 (else the default) for `max_request_line`, `max_header_line`, `max_headers_size`, `max_headers`, `max_body_size`; bits 5–7: split mode |
//! | 1 | small `max_request_line`: 0–255 |
//! | 2 | small `max_header_line`: 0–255 |
//! | 3 | small `max_headers_size`: 1–1021 (1 + 4×byte) |
//! | 4 | small `max_headers`: 0–47 (crosses the parser's 32-slot stack array) |
//! | 5 | small `max_body_size`: see [`body_limit`] |
//! | 6–7 | split seed |
//!
//! Chunked inputs:
//!
//! | byte | meaning |
//! |------|---------|
//! | 0 | bits 0–3: use the small value from byte 1–4 (else the default) for `max_header_line` (the chunk-line and trailer-line limit), `max_headers_size` (trailer bytes), `max_headers` (trailer count), `max_body_size`; bits 4–6: split mode |
//! | 1 | small `max_header_line`: 0–63 |
//! | 2 | small `max_headers_size`: 0–255 |
//! | 3 | small `max_headers`: 0–7 |
//! | 4 | small `max_body_size`: see [`body_limit`] |
//! | 5 | the test sink refuses data once it would hold more than this many bytes (255: never) |
//! | 6–7 | split seed |
//!
//! Split modes (see [`Pieces`]): 0 one byte at a time; 1 pieces of 1–3 bytes; 2 of 1–16;
//! 3 of 0–4 (empty deliveries included); 4 of 1–128; 5 mostly single bytes with some runs;
//! 6 halving the rest each time; 7 two pieces cut at a seed-chosen point.

use std::fmt::Write as _;

use maitred::fuzzing::{parse_head, BodyFraming, BodyReader, Head, HeadScanner, HeadSpan, Limits, Rejection};
use maitred::Version;

/// Parameter bytes at the start of every input (see the module documentation).
pub const PREFIX_LEN: usize = 8;

/// Generous limits, still within what `Config` accepts, for re-parsing a canonical head.
const ROOMY_LINE: usize = 1 << 20;
const ROOMY_HEAD: usize = 16 << 20;

/// The statuses the head scanner may answer with.
const SCAN_STATUSES: &[u16] = &[400, 414, 431];
/// The statuses `parse_head` may answer with.
const PARSE_STATUSES: &[u16] = &[400, 413, 417, 431, 501, 505];
/// The statuses the chunked decoder may answer with (on its own; the sink adds its own).
const CHUNKED_STATUSES: &[u16] = &[400, 413, 431];

/// Splits an input into its parameter bytes (zero-padded) and its wire bytes.
pub fn split_prefix(input: &[u8]) -> ([u8; PREFIX_LEN], &[u8]) {
    let mut p = [0u8; PREFIX_LEN];
    let n = input.len().min(PREFIX_LEN);
    p[..n].copy_from_slice(&input[..n]);
    (p, &input[n..])
}

/// A `max_body_size` from one byte: 0–127 as is, then powers of two up to 2^63, then the
/// 64 values just below `u64::MAX` (where sums overflow).
pub fn body_limit(v: u8) -> u64 {
    match v {
        0..=127 => u64::from(v),
        128..=191 => 1u64 << (v - 128),
        _ => u64::MAX - u64::from(255 - v),
    }
}

/// The limits a head input asks for.
pub fn head_limits(p: &[u8; PREFIX_LEN]) -> Limits {
    let d = Limits::default();
    let pick = |bit: u8| p[0] & (1 << bit) != 0;
    Limits {
        max_request_line: if pick(0) { usize::from(p[1]) } else { d.max_request_line },
        max_header_line: if pick(1) { usize::from(p[2]) } else { d.max_header_line },
        max_headers_size: if pick(2) { 1 + usize::from(p[3]) * 4 } else { d.max_headers_size },
        max_headers: if pick(3) { usize::from(p[4] % 48) } else { d.max_headers },
        max_body_size: if pick(4) { body_limit(p[5]) } else { d.max_body_size },
    }
}

/// The limits a chunked input asks for.
pub fn chunked_limits(p: &[u8; PREFIX_LEN]) -> Limits {
    let d = Limits::default();
    let pick = |bit: u8| p[0] & (1 << bit) != 0;
    Limits {
        max_header_line: if pick(0) { usize::from(p[1] & 0x3f) } else { d.max_header_line },
        max_headers_size: if pick(1) { usize::from(p[2]) } else { d.max_headers_size },
        max_headers: if pick(2) { usize::from(p[3] % 8) } else { d.max_headers },
        max_body_size: if pick(3) { body_limit(p[4]) } else { d.max_body_size },
        ..d
    }
}

/// Cuts the wire bytes into pieces, deterministically from the parameter bytes.
pub struct Pieces {
    mode: u8,
    seed: u16,
    state: u64,
    calls: usize,
}

impl Pieces {
    /// Pieces for split `mode` (0–7) and `seed`.
    pub fn new(mode: u8, seed: u16) -> Self {
        let state = (u64::from(seed) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Pieces { mode: mode & 7, seed, state, calls: 0 }
    }

    fn rand(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// The length of the next piece when `left` bytes remain; at most `left`, and 0 only in
    /// the modes that deliver empty pieces on purpose.
    pub fn next(&mut self, left: usize) -> usize {
        self.calls += 1;
        let n = match self.mode {
            0 => 1,
            1 => 1 + (self.rand() % 3) as usize,
            2 => 1 + (self.rand() % 16) as usize,
            3 => (self.rand() % 5) as usize,
            4 => 1 + (self.rand() % 128) as usize,
            5 => {
                if self.rand().is_multiple_of(4) {
                    1 + (self.rand() % 32) as usize
                } else {
                    1
                }
            }
            6 => left.div_ceil(2).max(1),
            _ => {
                if self.calls == 1 {
                    usize::from(self.seed) % (left + 1)
                } else {
                    left
                }
            }
        };
        n.min(left)
    }
}

fn seed_of(p: &[u8; PREFIX_LEN]) -> u16 {
    u16::from_le_bytes([p[6], p[7]])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Printable form of wire bytes for assertion messages.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Request heads
// ---------------------------------------------------------------------------------------------

/// Checks the head scanner and `parse_head` on one fuzz input.
///
/// 1. Scanning the wire bytes whole and growing them piece by piece give the same result
///    (the same span, or the same rejection).
/// 2. The result agrees with a direct reading of the grammar: skip leading CRLFs, the head
///    ends at the first CRLFCRLF; "incomplete" means there is no CRLFCRLF yet. The scanner
///    refuses exactly when a rule is broken before that point (see [`head_violations`]), with
///    the status of a rule that is broken.
/// 3. A span lies in the buffer, its bytes have CRLF line endings only, no control
///    characters, no obs-fold, and fit every limit.
/// 4. When `parse_head` accepts the head, the framing is unambiguous (see
///    [`check_parsed`]), and re-parsing a canonical rendering of it gives the same head.
pub fn check_head(input: &[u8]) {
    head_outcome(input);
}

/// [`check_head`], returning a signature of the path the input took (which rejection, which
/// framing, which limits were small). The stable driver keeps inputs with new signatures as a
/// crude substitute for coverage feedback.
pub fn head_outcome(input: &[u8]) -> u64 {
    let (p, data) = split_prefix(input);
    let limits = head_limits(&p);

    let mut scanner = HeadScanner::new();
    let whole = scanner.scan(data, &limits);
    let pieces = scan_in_pieces(data, &limits, Pieces::new(p[0] >> 5, seed_of(&p)));
    assert_eq!(whole, pieces, "whole vs. piecewise scan differ on {:?} with {limits:?}", escape(data));

    let (skip, reference_end) = reference_head(data);
    // The scanner refuses exactly the inputs with a violation before the end of the head (or
    // of the bytes so far), and answers with the status of one of the violations found.
    let found = head_violations(&data[..reference_end.unwrap_or(data.len())], &limits);
    let mut sig = Signature::new(p[0] & 0x1f);
    match &whole {
        Err(e) => {
            assert!(SCAN_STATUSES.contains(&e.status()), "scanner answered {e:?}");
            let expected = match e.status() {
                400 => found.syntax,
                414 => found.request_line,
                _ => found.header,
            };
            assert!(
                expected,
                "scanner answered {e:?} but the violations are {found:?} in {:?} with {limits:?}",
                escape(data)
            );
            sig.add(&format!("scan {e:?}"));
        }
        Ok(_) => {
            assert!(!found.any(), "scanner accepted {:?} despite {found:?} with {limits:?}", escape(data));
        }
    }
    match &whole {
        Err(_) => {}
        Ok(None) => {
            assert_eq!(
                reference_end,
                None,
                "scanner wants more bytes but a complete head is there: {:?}",
                escape(data)
            );
            assert_eq!(scanner.started(), skip < data.len(), "started() wrong on {:?}", escape(data));
            sig.add(if scanner.started() { "partial" } else { "idle" });
        }
        Ok(Some(span)) => {
            assert_eq!(
                Some(span.head.clone()),
                reference_end.map(|end| skip..end),
                "span differs from the first CRLFCRLF in {:?}",
                escape(data)
            );
            check_span(data, span, &limits);
            sig.add(&format!("span {} {}", span.head.start, span.header_lines.min(40)));
            sig.add(&check_parse(data, span, &limits));
        }
    }
    sig.finish()
}

/// An FNV-1a hash of the parts of an outcome.
struct Signature(u64);

impl Signature {
    fn new(flags: u8) -> Self {
        let mut s = Signature(0xcbf2_9ce4_8422_2325);
        s.add_bytes(&[flags]);
        s
    }

    fn add_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn add(&mut self, part: &str) {
        self.add_bytes(part.as_bytes());
    }

    fn finish(self) -> u64 {
        self.0
    }
}

/// Scans `data` as if it arrived in pieces: the same buffer, grown at the end, each call.
fn scan_in_pieces(data: &[u8], limits: &Limits, mut pieces: Pieces) -> Result<Option<HeadSpan>, Rejection> {
    let mut scanner = HeadScanner::new();
    let mut end = 0;
    loop {
        end += pieces.next(data.len() - end);
        match scanner.scan(&data[..end], limits) {
            Ok(None) if end < data.len() => {}
            other => return other,
        }
    }
}

/// Which rules the bytes of a head (or of a head so far) break; see [`head_violations`].
#[derive(Debug, Default)]
struct Violations {
    /// Bare CR or LF, a control byte, obs-fold, more than 8 empty lines first (400).
    syntax: bool,
    /// The request line is over `max_request_line` (414).
    request_line: bool,
    /// A header line over `max_header_line`, more than `max_headers` lines, or more than
    /// `max_headers_size` bytes (431).
    header: bool,
}

impl Violations {
    fn any(&self) -> bool {
        self.syntax || self.request_line || self.header
    }
}

/// The rules `region` breaks: the bytes up to the end of the head if it is complete, else all
/// the bytes received so far. A line still arriving is over its limit as soon as its content
/// is (a CR at its end may be the start of its CRLF, so is neither content nor bare yet).
fn head_violations(region: &[u8], limits: &Limits) -> Violations {
    let mut v = Violations::default();
    for (i, &b) in region.iter().enumerate() {
        match b {
            b'\r' => v.syntax |= i + 1 < region.len() && region[i + 1] != b'\n',
            b'\n' => v.syntax |= i == 0 || region[i - 1] != b'\r',
            b'\t' => {}
            0..=0x1f | 0x7f => v.syntax = true,
            _ => {}
        }
    }
    let mut skip = 0;
    while region[skip..].starts_with(b"\r\n") {
        skip += 2;
    }
    v.syntax |= skip > 2 * 8;
    // Each empty line before the request line is counted against `max_headers_size` until its
    // LF has been seen (harmless: `Config` keeps that limit at 64 or more).
    v.header |= skip > 0 && limits.max_headers_size < 2;
    let rest = &region[skip..];
    v.header |= rest.len() > limits.max_headers_size;
    let (mut start, mut index, mut headers) = (0, 0, 0);
    loop {
        let Some(k) = rest[start..].iter().position(|&b| b == b'\n') else {
            let partial = &rest[start..];
            let partial = partial.strip_suffix(b"\r").unwrap_or(partial).len();
            if index == 0 {
                v.request_line |= partial > limits.max_request_line;
            } else {
                v.header |= partial > limits.max_header_line;
            }
            break;
        };
        let line = &rest[start..start + k];
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if index == 0 {
            v.request_line |= content.len() > limits.max_request_line;
        } else if content.is_empty() {
            break;
        } else {
            v.header |= content.len() > limits.max_header_line;
            v.syntax |= matches!(content[0], b' ' | b'\t');
            headers += 1;
            v.header |= headers > limits.max_headers;
        }
        index += 1;
        start += k + 1;
    }
    v
}

/// Where the grammar puts the head: `(start, end)`, the bytes of leading empty lines and the
/// end of the first CRLFCRLF after them, if any.
fn reference_head(data: &[u8]) -> (usize, Option<usize>) {
    let mut skip = 0;
    while data[skip..].starts_with(b"\r\n") {
        skip += 2;
    }
    (skip, find(&data[skip..], b"\r\n\r\n").map(|k| skip + k + 4))
}

/// Invariants of a span the scanner accepted.
fn check_span(data: &[u8], span: &HeadSpan, limits: &Limits) {
    let range = span.head.clone();
    assert!(range.start <= range.end && range.end <= data.len(), "span {range:?} outside {} bytes", data.len());
    assert!(range.start <= 16, "{} bytes of empty lines before the request line accepted", range.start);
    assert!(data[..range.start].chunks(2).all(|c| c == b"\r\n"), "skipped bytes are not empty lines");
    let head = &data[range];
    let what = || escape(head);
    assert!(head.ends_with(b"\r\n\r\n"), "head does not end with CRLFCRLF: {:?}", what());
    assert!(
        head.len() <= limits.max_headers_size,
        "head of {} bytes over max_headers_size {}",
        head.len(),
        limits.max_headers_size
    );
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR at {i} in {:?}", what()),
            b'\n' => assert!(i > 0 && head[i - 1] == b'\r', "bare LF at {i} in {:?}", what()),
            b'\t' => {}
            0..=0x1f | 0x7f => panic!("control byte {b:#04x} at {i} in accepted head {:?}", what()),
            _ => {}
        }
    }
    // Lines without their CRLF; the last two elements are the empty line and the empty tail.
    let body_of_head = &head[..head.len() - 2];
    let lines: Vec<&[u8]> = split_crlf(body_of_head);
    let (request_line, header_lines) = lines.split_first().expect("a head has a request line");
    let header_lines = &header_lines[..header_lines.len() - 1];
    assert!(!request_line.is_empty(), "empty request line in {:?}", what());
    assert!(
        request_line.len() <= limits.max_request_line,
        "request line of {} bytes over max_request_line {}",
        request_line.len(),
        limits.max_request_line
    );
    assert_eq!(header_lines.len(), span.header_lines, "header_lines miscounted in {:?}", what());
    assert!(
        span.header_lines <= limits.max_headers,
        "{} header lines over max_headers {}",
        span.header_lines,
        limits.max_headers
    );
    for line in header_lines {
        assert!(!line.is_empty(), "empty header line inside the head");
        assert!(
            line.len() <= limits.max_header_line,
            "header line of {} bytes over max_header_line {}",
            line.len(),
            limits.max_header_line
        );
        assert!(!matches!(line[0], b' ' | b'\t'), "obs-fold accepted in {:?}", what());
    }
}

/// `head` split at every CRLF (the pieces exclude it).
fn split_crlf(head: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = head;
    while let Some(k) = find(rest, b"\r\n") {
        out.push(&rest[..k]);
        rest = &rest[k + 2..];
    }
    out.push(rest);
    out
}

/// Runs `parse_head` on a scanned span and checks what it returns; returns a summary of the
/// outcome for the signature.
fn check_parse(data: &[u8], span: &HeadSpan, limits: &Limits) -> String {
    let parsed = parse_head(data, span, limits);
    // parse_head must read only the span: the bytes after the head (the body, or the next
    // request) cannot change the outcome.
    let alone = parse_head(&data[..span.head.end], span, limits);
    assert_eq!(format!("{parsed:?}"), format!("{alone:?}"), "bytes after the head changed parse_head's answer");
    let head = match parsed {
        Err(e) => {
            assert!(PARSE_STATUSES.contains(&e.status()), "parse_head answered {e:?}");
            return format!("parse {e:?}");
        }
        Ok(head) => head,
    };
    check_parsed(&head, &data[span.head.clone()], span, limits);

    // Rendering the parsed head canonically and parsing it again gives the same head: the
    // parser's view of the request does not depend on incidental spelling (OWS, empty lines).
    let canonical = render(&head);
    let roomy = Limits {
        max_request_line: ROOMY_LINE,
        max_header_line: ROOMY_LINE,
        max_headers_size: ROOMY_HEAD,
        max_headers: limits.max_headers,
        max_body_size: limits.max_body_size,
    };
    let again = HeadScanner::new()
        .scan(&canonical, &roomy)
        .unwrap_or_else(|e| panic!("canonical head {:?} refused by the scanner: {e:?}", escape(&canonical)))
        .unwrap_or_else(|| panic!("canonical head {:?} incomplete", escape(&canonical)));
    let reparsed = parse_head(&canonical, &again, &roomy)
        .unwrap_or_else(|e| panic!("canonical head {:?} refused by parse_head: {e:?}", escape(&canonical)));
    assert_eq!(
        format!("{head:?}"),
        format!("{reparsed:?}"),
        "re-parsing the canonical head {:?} gave a different head",
        escape(&canonical)
    );
    format!(
        "ok {:?} {:?} {} {} {}",
        head.version,
        head.body,
        head.keep_alive,
        head.expect_continue,
        head.authority.is_some()
    )
}

/// `method SP target SP version CRLF (name ": " value CRLF)* CRLF`.
fn render(head: &Head) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(head.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in head.headers() {
        out.extend_from_slice(h.name().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Invariants of a head `parse_head` accepted (`bytes` is the span's bytes).
pub fn check_parsed(head: &Head, bytes: &[u8], span: &HeadSpan, limits: &Limits) {
    let what = || escape(bytes);

    // Request line.
    assert!(!head.method().is_empty(), "empty method from {:?}", what());
    assert!(is_token(head.method().as_bytes()), "method {:?} is not a token", head.method());
    assert_ne!(head.method(), "CONNECT", "CONNECT accepted");
    assert!(!head.target().is_empty(), "empty target from {:?}", what());
    assert!(
        !head.target().bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#'),
        "target {:?} holds whitespace, a control byte or a fragment",
        head.target()
    );
    let request_line = &bytes[..find(bytes, b"\r\n").expect("request line ends")];
    // HTTP/1.2 to HTTP/1.9 are processed as HTTP/1.1 (RFC 9110, 2.5), so only the minor digit
    // of the line may differ from the parsed version.
    let expected = format!("{} {} {}", head.method(), head.target(), head.version.as_str());
    let minor_ok = |sent: u8| match head.version {
        Version::Http10 => sent == b'0',
        _ => (b'1'..=b'9').contains(&sent),
    };
    assert!(
        request_line.len() == expected.len()
            && request_line[..expected.len() - 1] == expected.as_bytes()[..expected.len() - 1]
            && minor_ok(request_line[expected.len() - 1]),
        "request line {:?} is not method SP target SP version (parsed as {:?})",
        what(),
        head.version
    );
    let t = head.target().len();
    assert!(head.path.start <= head.path.end && head.path.end <= t, "path {:?} outside target", head.path);
    assert!(head.target().get(head.path.clone()).is_some(), "path range not on char boundaries");
    match &head.authority {
        Some(a) => {
            assert!(a.start <= a.end && a.end <= head.path.start, "authority {a:?} not before path {:?}", head.path);
            assert!(!a.is_empty(), "empty authority accepted");
            let scheme = head.target()[..a.start].to_ascii_lowercase();
            assert!(scheme == "http://" || scheme == "https://", "absolute-form scheme {scheme:?}");
        }
        None => assert!(
            head.target().starts_with('/') && head.path.start == 0 || head.target() == "*" && head.method() == "OPTIONS",
            "origin-form target {:?} (method {}) accepted",
            head.target(),
            head.method()
        ),
    }

    // Header fields.
    assert_eq!(head.headers().len(), span.header_lines, "header count differs from the scanner's line count");
    let named = |name: &'static str| head.headers().filter(move |h| h.name().eq_ignore_ascii_case(name));
    for h in head.headers() {
        assert!(is_token(h.name().as_bytes()), "header name {:?} is not a token", h.name());
        assert!(
            !h.value().iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)),
            "header {} value {:?} holds CR, LF or NUL",
            h.name(),
            escape(h.value())
        );
        assert!(
            !h.value().iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f),
            "header {} value {:?} holds a control byte",
            h.name(),
            escape(h.value())
        );
        assert!(
            !h.value().first().is_some_and(|b| matches!(b, b' ' | b'\t'))
                && !h.value().last().is_some_and(|b| matches!(b, b' ' | b'\t')),
            "header {} value {:?} keeps surrounding whitespace",
            h.name(),
            escape(h.value())
        );
    }
    let hosts = named("host").count();
    if head.version == Version::Http11 {
        assert_eq!(hosts, 1, "HTTP/1.1 request accepted with {hosts} Host fields: {:?}", what());
    } else {
        assert!(hosts <= 1, "request accepted with {hosts} Host fields: {:?}", what());
    }

    // Framing: exactly one way to find the end of the body.
    let lengths: Vec<&[u8]> = named("content-length").map(|h| h.value()).collect();
    let codings: Vec<&[u8]> = named("transfer-encoding").map(|h| h.value()).collect();
    let all_lengths_are = |n: u64| {
        lengths.iter().all(|v| {
            !v.is_empty()
                && v.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok()) == Some(n)
        })
    };
    match head.body {
        BodyFraming::Chunked => {
            assert!(head.version == Version::Http11, "chunked framing on HTTP/1.0: {:?}", what());
            assert!(lengths.is_empty(), "chunked framing with Content-Length: {:?}", what());
            assert_eq!(codings.len(), 1, "chunked framing from {} Transfer-Encoding fields", codings.len());
            assert!(codings[0].eq_ignore_ascii_case(b"chunked"), "chunked framing from {:?}", escape(codings[0]));
        }
        BodyFraming::Length(n) => {
            assert!(n > 0, "Length(0) framing");
            assert!(n <= limits.max_body_size, "Length({n}) over max_body_size {}", limits.max_body_size);
            assert!(codings.is_empty(), "Content-Length framing with Transfer-Encoding: {:?}", what());
            assert!(!lengths.is_empty() && all_lengths_are(n), "Length({n}) from Content-Length fields {lengths:?}");
        }
        BodyFraming::None => {
            assert!(codings.is_empty(), "no body despite Transfer-Encoding: {:?}", what());
            assert!(all_lengths_are(0), "no body despite Content-Length: {:?}", what());
        }
    }

    // Connection management.
    let close = named("connection")
        .any(|h| h.value().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close")));
    if close {
        assert!(!head.keep_alive, "keep-alive despite Connection: close");
    }
    if head.version == Version::Http10 && head.keep_alive {
        assert!(
            named("connection")
                .any(|h| h.value().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"keep-alive"))),
            "HTTP/1.0 keep-alive without asking for it"
        );
    }
    if head.expect_continue {
        assert!(head.version == Version::Http11, "100-continue on HTTP/1.0");
        assert!(head.body != BodyFraming::None, "100-continue without a body");
        assert!(named("expect").any(|h| h.value().eq_ignore_ascii_case(b"100-continue")), "100-continue not asked for");
    }
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies
// ---------------------------------------------------------------------------------------------

/// What decoding one input produced.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    /// Bytes of input consumed, or the rejection.
    result: Result<usize, Rejection>,
    /// Body bytes passed to the sink.
    out: Vec<u8>,
    /// Whether the decoder says the body is complete.
    complete: bool,
}

/// Checks the chunked decoder on one fuzz input.
///
/// 1. Decoding the wire bytes in one call and in pieces agree: the same body bytes, the same
///    number of bytes consumed, the same completion, the same rejection.
/// 2. Consumed ≤ input; stopping short of the input only once complete; once complete,
///    further bytes are not consumed and produce no body bytes.
/// 3. The body never exceeds `max_body_size`; a complete body is exactly the sum of its chunk
///    sizes and equals what a direct, non-incremental reading of the grammar decodes from the
///    consumed bytes.
/// 4. An error from the sink is passed on, after exactly the bytes the sink took.
pub fn check_chunked(input: &[u8]) {
    chunked_outcome(input);
}

/// [`check_chunked`], returning a signature of the path the input took (see
/// [`head_outcome`]).
pub fn chunked_outcome(input: &[u8]) -> u64 {
    let (p, data) = split_prefix(input);
    let limits = chunked_limits(&p);
    let what = || escape(data);

    let mut reader = BodyReader::chunked(&limits);
    let mut out = Vec::new();
    let result = reader.received(data, &mut |d| {
        out.extend_from_slice(d);
        Ok(())
    });
    let whole = Decoded { result, out, complete: reader.is_complete() };
    let pieces = decode_in_pieces(data, &limits, Pieces::new(p[0] >> 4, seed_of(&p)));
    assert_eq!(whole, pieces, "whole vs. piecewise decoding differ on {:?} with {limits:?}", what());

    assert!(
        whole.out.len() as u64 <= limits.max_body_size,
        "decoded {} bytes over max_body_size {}",
        whole.out.len(),
        limits.max_body_size
    );
    let mut sig = Signature::new(p[0] & 0x0f);
    sig.add(&format!("{:?} {}", whole.result.err(), whole.complete));
    sig.add(&format!("out 2^{}", usize::BITS - whole.out.len().leading_zeros()));
    let declared = match &reader {
        BodyReader::Chunked(decoder) => decoder.decoded_len(),
        BodyReader::Length { .. } => unreachable!("a chunked reader"),
    };
    match whole.result {
        Err(e) => {
            assert!(CHUNKED_STATUSES.contains(&e.status()), "decoder answered {e:?}");
            assert!(!whole.complete, "complete and in error");
        }
        Ok(n) => {
            assert!(n <= data.len(), "consumed {n} of {} bytes", data.len());
            assert!(n == data.len() || whole.complete, "stopped at {n} of {} bytes while incomplete", data.len());
            assert!(declared <= limits.max_body_size, "declared {declared} bytes over max_body_size");
            assert!(whole.out.len() as u64 <= declared, "{} bytes decoded, {declared} declared", whole.out.len());
            if whole.complete {
                assert_eq!(whole.out.len() as u64, declared, "complete body shorter than its chunk sizes");
                let reference = reference_chunked(&data[..n]);
                assert_eq!(
                    reference.as_ref().map(|r| (r.consumed, r.body.as_slice())),
                    Some((n, whole.out.as_slice())),
                    "decoder and grammar disagree on the body {:?}",
                    escape(&data[..n])
                );
                for more in [&data[n..], b"0\r\n\r\n".as_slice(), b"5\r\nhello\r\n".as_slice()] {
                    let got = reader.received(more, &mut |d| panic!("{} body bytes after completion", d.len()));
                    assert_eq!(got, Ok(0), "consumed bytes after completion");
                    assert!(reader.is_complete(), "no longer complete after more bytes");
                }
            }
        }
    }

    // Conversely, a body the grammar accepts within the limits is decoded, to the same bytes.
    if let Some(r) = reference_chunked(data).filter(|r| r.within(&limits)) {
        assert_eq!(
            (&whole.result, whole.complete, whole.out.as_slice()),
            (&Ok(r.consumed), true, r.body.as_slice()),
            "decoder refuses or misreads a valid body {:?} ({r:?}) with {limits:?}",
            what()
        );
    }

    // A sink that refuses data once it would hold more than `cap` bytes.
    if p[5] != 255 {
        let cap = usize::from(p[5]);
        const FULL: Rejection = Rejection::Internal("fuzz sink full");
        let mut reader = BodyReader::chunked(&limits);
        let mut took = Vec::new();
        let result = reader.received(data, &mut |d| {
            if took.len() + d.len() > cap {
                return Err(FULL);
            }
            took.extend_from_slice(d);
            Ok(())
        });
        if whole.out.len() > cap {
            sig.add("sink full");
            assert_eq!(result, Err(FULL), "sink error not passed on for {:?}", what());
            assert!(took.len() <= cap && whole.out.starts_with(&took), "sink got other bytes before failing");
        } else {
            assert_eq!(result, whole.result, "a sink that never refused changed the result");
            assert_eq!(took, whole.out);
        }
    }
    sig.finish()
}

/// Decodes `data` delivered in pieces, as a connection would see it arrive.
fn decode_in_pieces(data: &[u8], limits: &Limits, mut pieces: Pieces) -> Decoded {
    let mut reader = BodyReader::chunked(limits);
    let mut out = Vec::new();
    let mut pos = 0;
    let result = loop {
        let n = pieces.next(data.len() - pos);
        let piece = &data[pos..pos + n];
        match reader.received(piece, &mut |d| {
            out.extend_from_slice(d);
            Ok(())
        }) {
            Err(e) => break Err(e),
            Ok(c) => {
                assert!(c <= n, "consumed {c} of a {n}-byte piece");
                assert!(c == n || reader.is_complete(), "consumed {c} of a {n}-byte piece while incomplete");
                pos += c;
                if reader.is_complete() || pos == data.len() {
                    break Ok(pos);
                }
            }
        }
    };
    if reader.is_complete() {
        // The rest of the input, in pieces too, is never consumed.
        let mut rest = pos;
        while rest < data.len() {
            let n = pieces.next(data.len() - rest).max(1);
            let got =
                reader.received(&data[rest..rest + n], &mut |d| panic!("{} body bytes after completion", d.len()));
            assert_eq!(got, Ok(0), "consumed bytes after completion");
            rest += n;
        }
    }
    Decoded { result, out, complete: reader.is_complete() }
}

/// A complete chunked body found by [`reference_chunked`], with the sizes the limits apply to.
#[derive(Debug)]
struct Reference {
    /// Bytes from the start of the input to the end of the body.
    consumed: usize,
    /// The decoded body.
    body: Vec<u8>,
    /// Longest chunk-size line, counting its CR.
    size_line: usize,
    /// Longest trailer line, counting its CR.
    trailer_line: usize,
    /// Trailer lines and their bytes (each counting its CR).
    trailers: usize,
    trailer_bytes: usize,
}

impl Reference {
    fn within(&self, limits: &Limits) -> bool {
        self.size_line <= limits.max_header_line
            && self.trailer_line <= limits.max_header_line
            && self.trailers <= limits.max_headers
            && self.trailer_bytes <= limits.max_headers_size
            && self.body.len() as u64 <= limits.max_body_size
    }
}

/// A direct, non-incremental reading of RFC 9112 section 7.1: the chunked body at the start of
/// `data` (chunks, last chunk, trailer section, CRLF), or `None` if `data` does not start with
/// a complete one. Chunk sizes are 1–16 hex digits; extensions and trailer values may hold no
/// control byte but HTAB; trailer names are tokens. Limits are not applied, only measured.
fn reference_chunked(data: &[u8]) -> Option<Reference> {
    let clean = |s: &[u8]| s.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    let mut r =
        Reference { consumed: 0, body: Vec::new(), size_line: 0, trailer_line: 0, trailers: 0, trailer_bytes: 0 };
    let mut i = 0;
    loop {
        let end = i + find(&data[i..], b"\r\n")?;
        let line = &data[i..end];
        r.size_line = r.size_line.max(line.len() + 1);
        let (size, ext) = match line.iter().position(|&b| b == b';') {
            Some(k) => (&line[..k], Some(&line[k + 1..])),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        if ext.is_some_and(|e| !clean(e)) {
            return None;
        }
        let size = u64::from_str_radix(std::str::from_utf8(size).ok()?, 16).ok()?;
        i = end + 2;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).ok()?;
        if data.len() - i < size.checked_add(2)? {
            return None;
        }
        r.body.extend_from_slice(&data[i..i + size]);
        i += size;
        if &data[i..i + 2] != b"\r\n" {
            return None;
        }
        i += 2;
    }
    loop {
        let end = i + find(&data[i..], b"\r\n")?;
        let line = &data[i..end];
        i = end + 2;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        if !is_token(&line[..colon]) || !clean(&line[colon + 1..]) {
            return None;
        }
        r.trailers += 1;
        r.trailer_bytes += line.len() + 1;
        r.trailer_line = r.trailer_line.max(line.len() + 1);
    }
    r.consumed = i;
    Some(r)
}

/// The body of `msg` if it is exactly one complete chunked body.
#[cfg(test)]
fn reference_decode(msg: &[u8]) -> Option<Vec<u8>> {
    reference_chunked(msg).filter(|r| r.consumed == msg.len()).map(|r| r.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_input_in_every_mode() {
        for mode in 0..8 {
            for seed in [0u16, 1, 77, 65535] {
                for len in [0usize, 1, 2, 7, 100] {
                    let mut pieces = Pieces::new(mode, seed);
                    let (mut at, mut calls) = (0, 0);
                    while at < len {
                        let n = pieces.next(len - at);
                        assert!(n <= len - at);
                        at += n;
                        calls += 1;
                        assert!(calls < 10_000, "mode {mode} does not progress");
                    }
                }
            }
        }
    }

    #[test]
    fn reference_head_reading() {
        assert_eq!(reference_head(b"GET / HTTP/1.1\r\n\r\nrest"), (0, Some(18)));
        assert_eq!(reference_head(b"\r\n\r\nGET /\r\n\r\n"), (4, Some(13)));
        assert_eq!(reference_head(b"GET / HTTP/1.1\r\nHost: a\r\n"), (0, None));
    }

    #[test]
    fn reference_chunked_reading() {
        assert_eq!(reference_decode(b"5\r\nhello\r\n0\r\n\r\n").as_deref(), Some(&b"hello"[..]));
        assert_eq!(reference_decode(b"3;x=\"y\"\r\nabc\r\n0;z\r\nT: v\r\n\r\n").as_deref(), Some(&b"abc"[..]));
        assert_eq!(reference_decode(b"2\r\n\r\n\r\n0\r\n\r\n").as_deref(), Some(&b"\r\n"[..]));
        for bad in [
            &b"5\r\nhello\r\n0\r\n"[..],
            b"5\r\nhello\r\n0\r\n\r\nX",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"\r\n0\r\n\r\n",
            b"0\r\n: v\r\n\r\n",
            b"0\r\nA B: v\r\n\r\n",
            b"g\r\n0\r\n\r\n",
        ] {
            assert_eq!(reference_decode(bad), None, "{}", escape(bad));
        }
    }

    #[test]
    fn seeds_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        for (dir, check) in [("head_parser", check_head as fn(&[u8])), ("chunked_decoder", check_chunked)] {
            let mut n = 0;
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                check(&std::fs::read(entry.unwrap().path()).unwrap());
                n += 1;
            }
            assert!(n >= 12, "{dir} has {n} seeds");
        }
    }
}
