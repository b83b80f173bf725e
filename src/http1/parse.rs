//! Request heads: the rules on top of `httparse`, and the one place framing is decided.
//! Owns the request head rules and the framing decision. Never does I/O and never reads the
//! `Config` (limits arrive as [`Limits`]).
//!
//! Parsing has two steps. [`HeadScanner`] looks at each byte once, as it arrives, and finds the
//! end of the head while enforcing the line and size limits and the line-ending rules (CRLF
//! only, no control characters, no obs-fold). Then [`parse_head`] hands the complete head to
//! `httparse` and applies the semantic rules: version, target form, `Host`, and the framing of
//! the body, which is decided once, strictly.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

use crate::http1::fields::{FieldSpan, HeaderFields, Headers, Span};
use crate::http1::grammar;
use crate::http1::request::Version;
use crate::http1::status::Rejection;

/// The limits the parser enforces, copied from [`crate::Config`] (by `Config::limits`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// See [`crate::Config::max_request_line`].
    pub max_request_line: usize,
    /// See [`crate::Config::max_header_line`].
    pub max_header_line: usize,
    /// See [`crate::Config::max_headers_size`].
    pub max_headers_size: usize,
    /// See [`crate::Config::max_headers`].
    pub max_headers: usize,
    /// See [`crate::Config::max_body_size`].
    pub max_body_size: u64,
}

/// Finds the end of a request head incrementally, one look at each byte.
#[derive(Clone, Debug, Default)]
pub struct HeadScanner {
    /// Next byte to look at.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Start of the request line (after any empty lines that precede it).
    head_start: usize,
    /// Whether the request line has ended.
    request_line_done: bool,
    /// Header lines seen so far.
    header_lines: usize,
    /// Whether the previous byte was CR.
    prev_cr: bool,
}

/// Where a complete head lies in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadSpan {
    /// Bytes before `head.start` were empty lines to skip; `head.end` is just past the blank
    /// line that ends the head.
    pub head: Range<usize>,
    /// Number of header lines in the head.
    pub header_lines: usize,
}

impl HeadScanner {
    /// A scanner at the start of a buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any byte of a request (other than leading empty lines) has been seen.
    pub fn started(&self) -> bool {
        self.pos > self.head_start
    }

    /// Scans the bytes of `buf` not yet seen. `buf` must be the same buffer, grown at the end,
    /// on every call. Returns the span of the head once it is complete.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<HeadSpan>, Rejection> {
        while self.pos < buf.len() {
            if !self.prev_cr {
                // Ordinary bytes change nothing but the position: skip a run of them at once,
                // up to where a limit would be passed (the byte there is then looked at below,
                // so the same error comes out as byte by byte).
                let line_limit = if self.request_line_done { limits.max_header_line } else { limits.max_request_line };
                let end = buf
                    .len()
                    .min(self.head_start.saturating_add(limits.max_headers_size))
                    .min(self.line_start.saturating_add(line_limit));
                if self.pos < end {
                    self.pos += plain_run(&buf[self.pos..end]);
                    if self.pos == buf.len() {
                        break;
                    }
                }
            }
            // The head's size includes the byte being looked at: the byte that completes the
            // head counts like any other.
            if self.pos + 1 - self.head_start > limits.max_headers_size {
                return Err(Rejection::HeadersTooLarge);
            }
            let b = buf[self.pos];
            if self.prev_cr && b != b'\n' {
                return Err(Rejection::BadRequest("bare CR in request head"));
            }
            match b {
                b'\n' => {
                    if !self.prev_cr {
                        return Err(Rejection::BadRequest("bare LF in request head"));
                    }
                    let line_len = self.pos - 1 - self.line_start;
                    if !self.request_line_done {
                        if line_len == 0 {
                            // An empty line before the request line is ignored (RFC 9112, 2.2).
                            self.head_start = self.pos + 1;
                            if self.head_start > 2 * 8 {
                                return Err(Rejection::BadRequest("too many empty lines before request"));
                            }
                        } else {
                            self.request_line_done = true;
                        }
                    } else if line_len == 0 {
                        self.pos += 1;
                        return Ok(Some(HeadSpan { head: self.head_start..self.pos, header_lines: self.header_lines }));
                    } else {
                        if matches!(buf[self.line_start], b' ' | b'\t') {
                            return Err(Rejection::BadRequest("obsolete line folding in request head"));
                        }
                        self.header_lines += 1;
                        if self.header_lines > limits.max_headers {
                            return Err(Rejection::HeadersTooLarge);
                        }
                    }
                    self.line_start = self.pos + 1;
                    self.prev_cr = false;
                    self.pos += 1;
                    continue;
                }
                b'\r' | b'\t' => {}
                0..=0x1f | 0x7f => return Err(Rejection::BadRequest("control character in request head")),
                _ => {}
            }
            self.prev_cr = b == b'\r';
            self.pos += 1;
            // Limits are checked on the line in progress, so an over-long line is refused as
            // soon as its content (not counting a CR that may end it) is over.
            let content_len = self.pos - self.line_start - usize::from(self.prev_cr);
            if !self.request_line_done {
                if content_len > limits.max_request_line {
                    return Err(Rejection::RequestLineTooLong);
                }
            } else if content_len > limits.max_header_line {
                return Err(Rejection::HeadersTooLarge);
            }
        }
        Ok(None)
    }
}

/// Whether `b` may appear in a request head with no effect but advancing the scan: anything but
/// a control character (the scanner itself looks at CR, LF, HTAB and the rest).
fn is_plain(b: u8) -> bool {
    b >= 0x20 && b != 0x7f
}

/// The length of the run of plain bytes (see [`is_plain`]) at the start of `bytes`; whole
/// 16-byte blocks are tested without branches, which the compiler turns into vector compares.
fn plain_run(bytes: &[u8]) -> usize {
    let mut n = 0;
    for block in bytes.chunks_exact(16) {
        if block.iter().fold(false, |special, &b| special | !is_plain(b)) {
            break;
        }
        n += 16;
    }
    n + bytes[n..].iter().position(|&b| !is_plain(b)).unwrap_or(bytes.len() - n)
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed and validated request head. Its bytes are copied once from the connection's
/// buffer; the method, the target and the header fields are ranges of that copy, so a head costs
/// two heap allocations (the bytes and the field list) whatever its number of fields.
#[derive(Clone)]
pub struct Head {
    /// The head's bytes and its header fields (read them with [`Head::headers`]).
    pub(crate) headers: HeaderFields,
    /// Method token, within the head's bytes.
    method: Span,
    /// Request target as sent, within the head's bytes.
    target: Span,
    /// Path range within the target.
    pub path: Range<usize>,
    /// Authority range within the target (absolute-form only).
    pub authority: Option<Range<usize>>,
    /// HTTP version.
    pub version: Version,
    /// Body framing.
    pub body: BodyFraming,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1.
    pub expect_continue: bool,
}

impl Head {
    /// Method token, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.headers.text(self.method)
    }

    /// Request target as sent (ASCII: the parser refuses any other byte there).
    pub fn target(&self) -> &str {
        self.headers.text(self.target)
    }

    /// Header fields in order.
    pub fn headers(&self) -> Headers<'_> {
        self.headers.iter()
    }
}

/// What the head says, not how it was spelled: two heads that differ only in optional
/// whitespace or leading empty lines print the same.
impl fmt::Debug for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Head")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("keep_alive", &self.keep_alive)
            .field("expect_continue", &self.expect_continue)
            .finish()
    }
}

/// Header slots `httparse` fills on the stack, left uninitialised until it writes them: enough
/// for every head under the default `max_headers` (100). A head with more header lines (a raised
/// limit) needs a temporary vector of slots, freed before [`parse_head`] returns.
const STACK_SLOTS: usize = 128;

/// Parses a complete head (`buf[span.head]`, as found by [`HeadScanner`]) and applies the
/// request rules. The bytes must already have passed the scanner.
///
/// The head's bytes are copied once, first, and parsed in place: what is parsed is what is
/// stored. An `HTTP/1.x` request line with x > 1 is processed as HTTP/1.1 (RFC 9110, 2.5), so
/// the copy's minor digit is rewritten to `1` before parsing.
pub fn parse_head(buf: &[u8], span: &HeadSpan, limits: &Limits) -> Result<Head, Rejection> {
    let mut bytes: Box<[u8]> = Box::from(&buf[span.head.clone()]);
    if let Some(at) = higher_minor_version(&bytes) {
        bytes[at] = b'1';
    }
    let mut fields = Vec::with_capacity(span.header_lines);
    let parts = if span.header_lines <= STACK_SLOTS {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_SLOTS];
        read_head(&bytes, &mut slots, limits, &mut fields)?
    } else {
        let mut slots: Vec<httparse::Header<'_>> = Vec::with_capacity(span.header_lines);
        read_head(&bytes, slots.spare_capacity_mut(), limits, &mut fields)?
    };
    Ok(Head {
        headers: HeaderFields::new(bytes, fields),
        method: parts.method,
        target: parts.target,
        path: parts.path,
        authority: parts.authority,
        version: parts.version,
        body: parts.body,
        keep_alive: parts.keep_alive,
        expect_continue: parts.expect_continue,
    })
}

/// Everything [`read_head`] finds but the header fields.
struct HeadParts {
    method: Span,
    target: Span,
    path: Range<usize>,
    authority: Option<Range<usize>>,
    version: Version,
    body: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
}

/// Parses `bytes`, a whole head, with `slots` for `httparse`'s header fields (at least one per
/// header line), pushes a span per field onto `fields` and applies the request rules.
fn read_head<'b>(
    bytes: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
    fields: &mut Vec<FieldSpan>,
) -> Result<HeadParts, Rejection> {
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(bytes, slots) {
        Ok(httparse::Status::Complete(n)) if n == bytes.len() => {}
        Ok(_) => return Err(Rejection::BadRequest("request head did not parse to its end")),
        Err(httparse::Error::Version) => return Err(version_error(bytes)),
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::HeadersTooLarge),
        Err(httparse::Error::HeaderName) => return Err(Rejection::BadRequest("invalid header name")),
        Err(httparse::Error::HeaderValue) => return Err(Rejection::BadRequest("invalid header value")),
        Err(httparse::Error::Token) => return Err(Rejection::BadRequest("invalid method")),
        Err(_) => return Err(Rejection::BadRequest("malformed request line or header")),
    }
    // `httparse` hands out slices of `bytes`; where they lie is kept instead.
    let span_of =
        |part: &[u8]| Span::within(bytes, part).ok_or(Rejection::BadRequest("malformed request line or header"));
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let version = if req.version == Some(0) { Version::Http10 } else { Version::Http11 };
    if method == "CONNECT" {
        return Err(Rejection::NotImplemented("CONNECT is not supported"));
    }
    let (path, authority) = classify_target(method, target)?;

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<&[u8]> = None;
    let mut host: Option<&[u8]> = None;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name;
        let value = h.value;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(value)?;
            if content_length.is_some_and(|m| m != n) {
                return Err(Rejection::BadRequest("differing Content-Length values"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if transfer_encoding.is_some() {
                return Err(Rejection::BadRequest("repeated Transfer-Encoding"));
            }
            transfer_encoding = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            host = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") && version == Version::Http11 {
            if value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(Rejection::ExpectationFailed);
            }
        }
        fields.push(FieldSpan { name: span_of(name.as_bytes())?, value: span_of(value)? });
    }

    if hosts > 1 {
        return Err(Rejection::BadRequest("repeated Host"));
    }
    match host {
        None if version == Version::Http11 => return Err(Rejection::BadRequest("missing Host")),
        Some(h) if !grammar::is_valid_authority(h) => return Err(Rejection::BadRequest("invalid Host")),
        _ => {}
    }

    let body = match (transfer_encoding, content_length) {
        (Some(_), Some(_)) => return Err(Rejection::BadRequest("both Content-Length and Transfer-Encoding")),
        (Some(_), None) if version == Version::Http10 => {
            return Err(Rejection::BadRequest("Transfer-Encoding in HTTP/1.0"))
        }
        (Some(te), None) => {
            check_transfer_coding(te)?;
            BodyFraming::Chunked
        }
        (None, Some(n)) if n > limits.max_body_size => return Err(Rejection::BodyTooLarge),
        (None, Some(0)) | (None, None) => BodyFraming::None,
        (None, Some(n)) => BodyFraming::Length(n),
    };
    let keep_alive = !close && (version == Version::Http11 || keep_alive_token);
    Ok(HeadParts {
        method: span_of(method.as_bytes())?,
        target: span_of(target.as_bytes())?,
        path,
        authority,
        version,
        body,
        keep_alive,
        expect_continue: expect_continue && body != BodyFraming::None,
    })
}

/// The request line's three parts, if it has exactly three, separated by single spaces.
fn request_line_parts(head: &[u8]) -> Option<[&[u8]; 3]> {
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    let mut parts = head[..line_end].split(|&b| b == b' ');
    let result = [parts.next()?, parts.next()?, parts.next()?];
    (parts.next().is_none() && result.iter().all(|p| !p.is_empty())).then_some(result)
}

/// Where the minor digit of an `HTTP/1.x` version with x > 1 sits in `head`, if it is one.
fn higher_minor_version(head: &[u8]) -> Option<usize> {
    let [method, target, version] = request_line_parts(head)?;
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if (b'2'..=b'9').contains(minor) => {
            Some(method.len() + 1 + target.len() + 1 + 7)
        }
        _ => None,
    }
}

/// 505 for a well-formed request line whose major version is not 1; 400 for anything else.
fn version_error(head: &[u8]) -> Rejection {
    let version = match request_line_parts(head) {
        Some([_, _, version]) => version,
        None => return Rejection::BadRequest("malformed request line"),
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
        {
            Rejection::VersionNotSupported
        }
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() && *major != b'1' => {
            Rejection::VersionNotSupported
        }
        _ => Rejection::BadRequest("malformed HTTP version"),
    }
}

/// Content-Length: plain digits, one value (a list is refused even if its items agree).
fn parse_content_length(value: &[u8]) -> Result<u64, Rejection> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::BadRequest("Content-Length is not plain digits"));
    }
    value
        .iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .ok_or(Rejection::BodyTooLarge)
}

/// Transfer-Encoding must be exactly one `chunked`. Unknown codings get 501; anything that is
/// not a list of tokens gets 400.
fn check_transfer_coding(value: &[u8]) -> Result<(), Rejection> {
    if value.eq_ignore_ascii_case(b"chunked") {
        return Ok(());
    }
    let all_tokens = value.split(|&b| b == b',').map(<[u8]>::trim_ascii).all(grammar::is_token);
    if all_tokens {
        Err(Rejection::NotImplemented("transfer coding other than a single chunked"))
    } else {
        Err(Rejection::BadRequest("malformed Transfer-Encoding"))
    }
}

/// Splits a target into its path range and, for absolute-form, its authority range.
fn classify_target(method: &str, target: &str) -> Result<(Range<usize>, Option<Range<usize>>), Rejection> {
    let bytes = target.as_bytes();
    if !target.is_ascii() {
        return Err(Rejection::BadRequest("non-ASCII byte in request target"));
    }
    if bytes.contains(&b'#') {
        return Err(Rejection::BadRequest("fragment in request target"));
    }
    let path_end = |from: usize| bytes[from..].iter().position(|&b| b == b'?').map_or(bytes.len(), |i| from + i);
    if target == "*" {
        return if method == "OPTIONS" {
            Ok((0..1, None))
        } else {
            Err(Rejection::BadRequest("asterisk-form target without OPTIONS"))
        };
    }
    if bytes.first() == Some(&b'/') {
        return Ok((0..path_end(0), None));
    }
    let scheme_len = if bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"http://") {
        7
    } else if bytes.len() > 8 && bytes[..8].eq_ignore_ascii_case(b"https://") {
        8
    } else {
        return Err(Rejection::BadRequest("invalid request target"));
    };
    let authority_end =
        bytes[scheme_len..].iter().position(|&b| b == b'/' || b == b'?').map_or(bytes.len(), |i| scheme_len + i);
    if !grammar::is_valid_authority(&bytes[scheme_len..authority_end]) {
        return Err(Rejection::BadRequest("invalid authority in request target"));
    }
    let path_start = authority_end;
    Ok((path_start..path_end(path_start), Some(scheme_len..authority_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8]) -> Result<Option<HeadSpan>, Rejection> {
        HeadScanner::new().scan(input, &Limits::default())
    }

    fn parse(input: &str) -> Result<Head, Rejection> {
        let span = scan_all(input.as_bytes())?.expect("complete head");
        parse_head(input.as_bytes(), &span, &Limits::default())
    }

    #[test]
    fn scanner_finds_head_end_byte_by_byte() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nextra";
        let mut scanner = HeadScanner::new();
        let mut found = None;
        for end in 1..=input.len() {
            if let Some(span) = scanner.scan(&input[..end], &Limits::default()).unwrap() {
                found = Some(span);
                break;
            }
        }
        assert_eq!(found.unwrap().head, 0..input.len() - 5);
    }

    #[test]
    fn scanner_rules() {
        let table: &[(&[u8], Option<u16>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", Some(400)),
        ];
        for (input, status) in table {
            let got = scan_all(input).map(|_| ()).map_err(Rejection::status).err();
            assert_eq!(got, *status, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn limits_trip_while_the_line_is_still_arriving() {
        let limits = Limits { max_request_line: 100, max_header_line: 100, ..Limits::default() };
        let long_line = [b'A'; 200];
        assert_eq!(HeadScanner::new().scan(&long_line, &limits), Err(Rejection::RequestLineTooLong));
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.extend_from_slice(&long_line);
        assert_eq!(HeadScanner::new().scan(&head, &limits), Err(Rejection::HeadersTooLarge));
    }

    /// Scans `input` whole, then fed a byte at a time: both must give the same answer.
    fn scan_whole_and_split(input: &[u8], limits: &Limits) -> Result<Option<HeadSpan>, Rejection> {
        let whole = HeadScanner::new().scan(input, limits);
        let mut scanner = HeadScanner::new();
        let mut split = Ok(None);
        for end in 1..=input.len() {
            split = scanner.scan(&input[..end], limits);
            if !matches!(split, Ok(None)) {
                break;
            }
        }
        assert_eq!(whole, split, "{:?}", String::from_utf8_lossy(input));
        whole
    }

    #[test]
    fn limits_hold_at_their_exact_boundaries_whole_or_split() {
        let limits = Limits { max_request_line: 40, max_header_line: 30, max_headers_size: 120, ..Limits::default() };
        let status = |input: &[u8]| scan_whole_and_split(input, &limits).map(|span| span.is_some());
        let request_line = |len: usize| format!("GET /{} HTTP/1.1", "a".repeat(len - 14));
        assert_eq!(request_line(40).len(), 40);
        for (len, want) in [(40, Ok(true)), (41, Err(Rejection::RequestLineTooLong))] {
            assert_eq!(status(format!("{}\r\nHost: a\r\n\r\n", request_line(len)).as_bytes()), want);
        }
        // A control character just past a full line is the error; one past an over-long line,
        // the length is.
        let bad = Rejection::BadRequest("control character in request head");
        assert_eq!(status(format!("{}\0", request_line(40)).as_bytes()), Err(bad));
        assert_eq!(status(format!("{}\0", request_line(41)).as_bytes()), Err(Rejection::RequestLineTooLong));
        let header = |len: usize| format!("X: {}", "b".repeat(len - 3));
        for (len, want) in [(30, Ok(true)), (31, Err(Rejection::HeadersTooLarge))] {
            assert_eq!(status(format!("GET / HTTP/1.1\r\n{}\r\nHost: a\r\n\r\n", header(len)).as_bytes()), want);
        }
        // The whole head: exactly 120 bytes is accepted, 121 refused.
        for (size, lines, want) in [(120, [26, 26, 26], Ok(true)), (121, [26, 26, 27], Err(Rejection::HeadersTooLarge))]
        {
            let mut head = "GET / HTTP/1.1\r\nHost: a\r\n".to_string();
            for n in lines {
                head.push_str(&format!("Y: {}\r\n", "c".repeat(n)));
            }
            head.push_str("\r\n");
            assert_eq!(head.len(), size);
            assert_eq!(status(head.as_bytes()), want);
        }
        // Ordinary bytes in long runs, with a control character at every offset of a block.
        for at in 0..40 {
            let mut input = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "e".repeat(26)).into_bytes();
            let offset = 19 + at % 26;
            input[offset] = 0x01;
            assert_eq!(status(&input), Err(Rejection::BadRequest("control character in request head")));
        }
    }

    #[test]
    fn parse_rules() {
        let table: &[(&str, Result<BodyFraming, u16>)] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(BodyFraming::None)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", Ok(BodyFraming::Length(5))),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                Ok(BodyFraming::Length(5)),
            ),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(BodyFraming::Chunked)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", Ok(BodyFraming::Chunked)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", Err(413)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(400)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(501)),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(400),
            ),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: \r\n\r\n", Err(400)),
            ("GET / HTTP/1.0\r\n\r\n", Ok(BodyFraming::None)),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(505)),
            ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", Ok(BodyFraming::None)),
            ("GET / HTTP/1\r\nHost: a\r\n\r\n", Err(400)),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            ("GET / HTTP/3\r\nHost: a\r\n\r\n", Err(505)),
            ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            ("GET / HTTP/x\r\nHost: a\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", Err(400)),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            ("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", Err(400)),
            ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Ok(BodyFraming::None)),
            ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", Err(501)),
            ("GET http://a/b?c HTTP/1.1\r\nHost: x\r\n\r\n", Ok(BodyFraming::None)),
            ("GET http://u@a/b HTTP/1.1\r\nHost: x\r\n\r\n", Err(400)),
            ("GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", Err(400)),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: bogus\r\n\r\n", Err(417)),
        ];
        for (input, want) in table {
            let got = parse(input).map(|h| h.body).map_err(Rejection::status);
            assert_eq!(&got, want, "{input:?}");
        }
    }

    #[test]
    fn absolute_form_gives_path_and_authority() {
        let head = parse("GET HTTP://Example.com:8080?q=1 HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
        assert_eq!(&head.target()[head.authority.clone().unwrap()], "Example.com:8080");
        assert_eq!(&head.target()[head.path.clone()], "");
    }

    /// The fields of `head` as owned `(name, value)` pairs, in order.
    fn fields(head: &Head) -> Vec<(String, Vec<u8>)> {
        head.headers().map(|h| (h.name().to_owned(), h.value().to_vec())).collect()
    }

    #[test]
    fn many_fields_read_back_exactly_and_in_order() {
        let mut input = b"POST /upload?x=1 HTTP/1.1\r\n".to_vec();
        let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..40 {
            // Sent spelling, value as sent (surrounding whitespace included), value as read.
            let (name, sent, read): (String, Vec<u8>, Vec<u8>) = match i % 8 {
                0 => ("X-Dup".into(), format!("{i}").into_bytes(), format!("{i}").into_bytes()),
                1 => (format!("x-MiXeD-{i}"), b"v".to_vec(), b"v".to_vec()),
                2 => (format!("X-Obs-{i}"), b"caf\xe9 \x80\xff\xa0!".to_vec(), b"caf\xe9 \x80\xff\xa0!".to_vec()),
                3 => (format!("X-Ws-{i}"), b" \t padded \t value\t ".to_vec(), b"padded \t value".to_vec()),
                4 => (format!("X-Empty-{i}"), Vec::new(), Vec::new()),
                5 => (format!("X-Blank-{i}"), b" \t ".to_vec(), Vec::new()),
                6 => ("x-dup".into(), b"a, b ,c".to_vec(), b"a, b ,c".to_vec()),
                _ => (format!("X-Tok-{i}!#$%&'*+.^_`|~"), b"\"q\" ; x=1".to_vec(), b"\"q\" ; x=1".to_vec()),
            };
            input.extend_from_slice(name.as_bytes());
            input.push(b':');
            input.extend_from_slice(&sent);
            input.extend_from_slice(b"\r\n");
            expected.push((name, read));
        }
        input.extend_from_slice(b"Host: example.com\r\nContent-Length: 3\r\n\r\n");
        expected.push(("Host".into(), b"example.com".to_vec()));
        expected.push(("Content-Length".into(), b"3".to_vec()));
        let span = scan_all(&input).unwrap().expect("complete head");
        let head = parse_head(&input, &span, &Limits::default()).unwrap();
        assert_eq!(fields(&head), expected);
        assert_eq!((head.method(), head.target(), head.body), ("POST", "/upload?x=1", BodyFraming::Length(3)));
        // The view: exact size, from either end, cloned midway.
        let mut headers = head.headers();
        assert_eq!(headers.len(), 42);
        assert_eq!(headers.next_back().map(|h| h.name()), Some("Content-Length"));
        assert_eq!(headers.nth(2).map(|h| (h.name(), h.value_str())), Some(("X-Obs-2", None)), "not UTF-8");
        let rest = headers.clone();
        assert_eq!(rest.len(), 38);
        assert!(rest.eq(headers));
    }

    #[test]
    fn a_head_with_more_fields_than_the_stack_slots_parses_the_same() {
        let count = STACK_SLOTS + 22;
        let mut input = "GET / HTTP/1.1\r\nHost: a\r\n".to_string();
        for i in 1..count {
            input.push_str(&format!("X-{i}: {i}\r\n"));
        }
        input.push_str("\r\n");
        let limits = Limits { max_headers: count, ..Limits::default() };
        let span = HeadScanner::new().scan(input.as_bytes(), &limits).unwrap().expect("complete head");
        let head = parse_head(input.as_bytes(), &span, &limits).unwrap();
        assert_eq!(head.headers().len(), count);
        assert!(head
            .headers()
            .skip(1)
            .enumerate()
            .all(|(i, h)| h.name() == format!("X-{}", i + 1) && h.value() == (i + 1).to_string().as_bytes()));
    }

    #[test]
    fn a_higher_minor_version_reads_as_http_1_1_with_its_parts_intact() {
        for minor in b'2'..=b'9' {
            let input = format!("OPTIONS /a/b?c=d HTTP/1.{}\r\nHost: h\r\nX-Y:  z \r\n\r\n", minor as char);
            let head = parse(&input).unwrap();
            assert_eq!(head.method(), "OPTIONS");
            assert_eq!(head.target(), "/a/b?c=d");
            assert_eq!(&head.target()[head.path.clone()], "/a/b");
            assert_eq!(head.version, Version::Http11);
            assert_eq!(fields(&head), [("Host".into(), b"h".to_vec()), ("X-Y".into(), b"z".to_vec())]);
            // The stored copy says what was parsed: HTTP/1.1.
            assert!(head.headers.bytes().starts_with(b"OPTIONS /a/b?c=d HTTP/1.1\r\n"));
        }
        let absolute = parse("GET http://example.com:81/p?q HTTP/1.5\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(&absolute.target()[absolute.authority.clone().unwrap()], "example.com:81");
        assert_eq!(&absolute.target()[absolute.path.clone()], "/p");
    }

    #[test]
    fn debug_shows_what_the_head_says_not_its_spelling() {
        let plain = parse("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n").unwrap();
        let spaced = parse("\r\nGET / HTTP/1.1\r\nHost:a\r\nX: \t b \r\n\r\n").unwrap();
        assert_eq!(format!("{plain:?}"), format!("{spaced:?}"));
        assert!(format!("{plain:?}").contains(r#"Header { name: "X", value: b"b" }"#), "{plain:?}");
    }

    #[test]
    fn keep_alive_rules() {
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().keep_alive);
        assert!(!parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap().keep_alive);
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().keep_alive);
    }
}
