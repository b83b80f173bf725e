//! The encoder: from a handler's [`Response`] to bytes on the wire.
//!
//! Owns validating a response head, the framing decision ([`decide_framing`], the only
//! place), the `Date`, `Server`, framing and `Connection` headers, the server's own error
//! responses, and the chunk framing of a streamed body. Never writes to a socket and never
//! decides keep-alive by itself: it is told whether the server offers it
//! ([`ResponseContext::keep_alive`]) and may only lower that (the handler said `close`, or
//! the body is delimited by the close).

use std::fs::File;

use crate::http1::date;
use crate::http1::grammar::{has_token, is_field_value, is_token};
use crate::http1::request::Version;
use crate::http1::response::{Body, Chunks, Response};
use crate::http1::status::reason_phrase;

/// Why a handler's response head cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidHead(pub(crate) String);

/// What the server knows about the request a response answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResponseContext<'a> {
    pub(crate) head_request: bool,
    pub(crate) version: Version,
    /// The server is willing to keep the connection open after this response.
    pub(crate) keep_alive: bool,
    pub(crate) server_header: &'a str,
}

/// How a response's body is delimited on the wire: decided here, and only here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body, no length header (1xx, 204, 304).
    NoBody,
    /// `Content-Length: n`; on HEAD only the header is sent.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1, unknown length).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0, unknown length).
    UntilClose,
    /// HEAD of a body of unknown length: no length header, no body.
    HeadUnknown,
}

/// Decides the framing of a response body.
pub(crate) fn decide_framing(status: u16, head_request: bool, version: Version, len: Option<u64>) -> Framing {
    if status < 200 || status == 204 || status == 304 {
        return Framing::NoBody;
    }
    match (len, head_request, version) {
        (Some(n), _, _) => Framing::Length(n),
        (None, true, _) => Framing::HeadUnknown,
        (None, false, Version::Http11) => Framing::Chunked,
        (None, false, Version::Http10) => Framing::UntilClose,
    }
}

/// Bodies up to this size are copied behind the head; larger ones are sent as they are.
const COPY_BODY_MAX: usize = 16 * 1024;

/// A response serialised for the I/O loop, plus what the worker still has to stream.
pub(crate) struct Encoded {
    /// Head, followed by the body when it was small and in memory.
    pub(crate) bytes: Vec<u8>,
    /// The rest of the body, after `bytes`.
    pub(crate) payload: Payload,
    /// Close the connection after this response.
    pub(crate) close: bool,
    /// The status sent.
    pub(crate) status: u16,
    /// Body bytes in `bytes` after the head (what a HEAD response would have had: none).
    pub(crate) body_len: Option<u64>,
}

/// The part of a body that does not follow the head in [`Encoded::bytes`].
pub(crate) enum Payload {
    /// None: the head (with any small body) is everything.
    None,
    /// A large in-memory body, sent after the head without being copied into it.
    Bytes(Vec<u8>),
    /// The next `len` bytes of an open file.
    File(File, u64),
    /// A stream for the worker to drive.
    Stream(StreamPlan),
}

/// How the worker sends a streamed body.
pub(crate) struct StreamPlan {
    pub(crate) chunks: Chunks,
    /// Exact number of bytes to send (`Content-Length` framing), or `None` for chunked or
    /// close-delimited.
    pub(crate) exact_len: Option<u64>,
    pub(crate) chunked: bool,
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Validates `response` and serialises it into `out` (cleared first), deciding framing.
pub(crate) fn encode(response: Response, ctx: &ResponseContext<'_>, mut out: Vec<u8>) -> Result<Encoded, InvalidHead> {
    out.clear();
    let Response { status, reason, headers, body } = response;
    if !(200..=599).contains(&status) {
        return Err(InvalidHead(format!("status {status} is not a final status (200-599)")));
    }
    let reason = match &reason {
        Some(r) if !is_field_value(r.as_bytes()) => {
            return Err(InvalidHead("reason phrase contains a control character".into()))
        }
        Some(r) => r.as_str(),
        None => reason_phrase(status),
    };
    let mut close = !ctx.keep_alive;
    let mut declared_len = None;
    let mut has_date = false;
    let mut has_server = false;
    for (name, value) in headers.raw() {
        if !is_token(name) {
            let name = String::from_utf8_lossy(name);
            return Err(InvalidHead(format!("header name {name:?} is not a token")));
        }
        if !is_field_value(value) {
            let name = String::from_utf8_lossy(name);
            return Err(InvalidHead(format!("header {name} has a control character in its value")));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            match (parse_length(value), declared_len) {
                (Some(n), None) => declared_len = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(InvalidHead("invalid or conflicting Content-Length".into())),
            }
        } else if name.eq_ignore_ascii_case(b"connection") && has_token(value, "close") {
            close = true;
        }
        has_date |= name.eq_ignore_ascii_case(b"date");
        has_server |= name.eq_ignore_ascii_case(b"server");
    }

    // The length the body will have: known from the body itself, or declared by the handler
    // for a stream. A HEAD answered with no body (Werkzeug answers HEAD of a streamed
    // response with an empty iterable) says nothing about what GET would send, so only the
    // handler's own Content-Length may be sent, else none (RFC 9110 sections 8.6, 9.3.2).
    let len = match &body {
        Body::Stream { len: None, .. } => declared_len,
        Body::Empty if ctx.head_request => declared_len,
        Body::Bytes(bytes) if ctx.head_request && bytes.is_empty() => declared_len,
        other => other.known_len(),
    };
    let framing = decide_framing(status, ctx.head_request, ctx.version, len);
    if framing == Framing::UntilClose {
        close = true;
    }

    // The status has three digits (checked above).
    let digits = [b'0' + (status / 100) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8];
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.raw() {
        let skip = [&b"content-length"[..], b"transfer-encoding", b"connection", b"keep-alive"]
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop));
        if !skip {
            put_header(&mut out, name, value);
        }
    }
    finish_head(&mut out, ctx, framing, close, has_date, has_server);

    let send_body = !ctx.head_request && framing != Framing::NoBody;
    let mut encoded = Encoded { bytes: out, payload: Payload::None, close, status, body_len: Some(0) };
    if !send_body {
        return Ok(encoded);
    }
    match body {
        Body::Empty => {}
        Body::Bytes(bytes) => {
            encoded.body_len = Some(bytes.len() as u64);
            // A small body joins the head (one write); a large one follows it as it is.
            if bytes.len() <= COPY_BODY_MAX {
                encoded.bytes.extend_from_slice(&bytes);
            } else {
                encoded.payload = Payload::Bytes(bytes);
            }
        }
        Body::File { file, len } => encoded.payload = Payload::File(file, len),
        Body::Stream { chunks, .. } => {
            let exact_len = match framing {
                Framing::Length(n) => Some(n),
                _ => None,
            };
            encoded.payload = Payload::Stream(StreamPlan { chunks, exact_len, chunked: framing == Framing::Chunked });
        }
    }
    Ok(encoded)
}

/// Appends `n` in decimal, without allocating.
fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Date`, `Server`, the framing and `Connection` headers and the blank line.
fn finish_head(
    out: &mut Vec<u8>,
    ctx: &ResponseContext<'_>,
    framing: Framing,
    close: bool,
    has_date: bool,
    has_server: bool,
) {
    if !has_date {
        out.extend_from_slice(b"Date: ");
        date::write_now(out);
        out.extend_from_slice(b"\r\n");
    }
    if !has_server && !ctx.server_header.is_empty() {
        put_header(out, b"Server", ctx.server_header.as_bytes());
    }
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            put_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::NoBody | Framing::UntilClose | Framing::HeadUnknown => {}
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if ctx.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Serialises a response the server generates itself (errors, 503): a short text body,
/// `Connection: close`, and `Retry-After` when given.
pub(crate) fn encode_error(status: u16, server_header: &str, retry_after_secs: Option<u64>) -> Vec<u8> {
    let reason = reason_phrase(status);
    let body = format!("{status} {reason}\n");
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    if let Some(secs) = retry_after_secs {
        put_header(&mut out, b"Retry-After", secs.to_string().as_bytes());
    }
    let ctx = ResponseContext { head_request: false, version: Version::Http11, keep_alive: false, server_header };
    finish_head(&mut out, &ctx, Framing::Length(body.len() as u64), true, false, false);
    out.extend_from_slice(body.as_bytes());
    out
}

/// Body bytes of the server's own error response for `status` (what [`encode_error`] sends).
pub(crate) fn error_body_len(status: u16) -> u64 {
    format!("{status} {}\n", reason_phrase(status)).len() as u64
}

/// Frames one piece of a chunked body: size in hex, CRLF, the data, CRLF.
pub(crate) fn frame_chunk(data: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(data.len() + 20);
    framed.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    framed
}

/// The last chunk of a chunked body, with no trailers.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(head: bool, version: Version, keep_alive: bool) -> ResponseContext<'static> {
        ResponseContext { head_request: head, version, keep_alive, server_header: "maitred" }
    }

    fn text_of(encoded: &Encoded) -> String {
        String::from_utf8_lossy(&encoded.bytes).into_owned()
    }

    #[test]
    fn framing_table() {
        use Framing::*;
        use Version::*;
        let cases = [
            (200, false, Http11, Some(5), Length(5)),
            (200, true, Http11, Some(5), Length(5)),
            (200, false, Http11, None, Chunked),
            (200, false, Http10, None, UntilClose),
            (200, true, Http11, None, HeadUnknown),
            (204, false, Http11, Some(0), NoBody),
            (304, false, Http11, Some(10), NoBody),
        ];
        for (status, head, version, len, want) in cases {
            assert_eq!(decide_framing(status, head, version, len), want, "{status} {head} {version:?} {len:?}");
        }
    }

    #[test]
    fn head_response_keeps_length_but_drops_body() {
        let r = Response::text(200, "hello");
        let e = encode(r, &ctx(true, Version::Http11, true), Vec::new()).unwrap();
        let t = text_of(&e);
        assert!(t.contains("Content-Length: 5\r\n"), "{t}");
        assert!(t.ends_with("\r\n\r\n"), "{t}");
    }

    #[test]
    fn handler_framing_headers_are_replaced() {
        let r = Response::new(200)
            .with_header("Transfer-Encoding", "chunked")
            .with_header("Content-Length", "99")
            .with_body("abc");
        let t = text_of(&encode(r, &ctx(false, Version::Http11, true), Vec::new()).unwrap());
        assert!(t.contains("Content-Length: 3\r\n") && !t.contains("99") && !t.contains("chunked"), "{t}");
    }

    #[test]
    fn invalid_heads_are_refused() {
        let bad = [
            Response::new(200).with_header("X-A", "a\r\nSet-Cookie: x=1"),
            Response::new(200).with_header("X A", "a"),
            Response::new(200).with_header("X-A", "a\0b"),
            Response::new(99),
            Response::new(1000),
            Response::new(101),
            Response::new(200).with_reason("OK\r\nX: y"),
        ];
        for r in bad {
            assert!(encode(r, &ctx(false, Version::Http11, true), Vec::new()).is_err());
        }
    }

    #[test]
    fn decimals_are_written_whole() {
        for n in [0, 7, 10, 200, 65_535, 1_048_576, u64::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn http10_keep_alive_is_announced() {
        let t = text_of(&encode(Response::text(200, "x"), &ctx(false, Version::Http10, true), Vec::new()).unwrap());
        assert!(t.contains("Connection: keep-alive\r\n"), "{t}");
        let t = text_of(&encode(Response::text(200, "x"), &ctx(false, Version::Http11, false), Vec::new()).unwrap());
        assert!(t.contains("Connection: close\r\n"), "{t}");
    }
}
