//! The response a handler returns, its validation, the framing decision and serialisation.
//! Owns [`Response`] and [`Body`], what a handler returns. Never serialises them: that is the
//! encoder in this module's `encode` functions, which alone decide framing.
//!
//! The handler chooses status, headers and body; the server alone decides framing
//! (`Content-Length`, `Transfer-Encoding`, `Connection`) and adds `Date` and `Server` unless
//! the handler set them.

use std::fmt;
use std::fs::File;
use std::io;

/// The chunks of a streamed body, produced on the worker thread.
pub type Chunks = Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send>;

/// A response body.
#[non_exhaustive]
pub enum Body {
    /// No body.
    Empty,
    /// Bytes in memory, sent with `Content-Length`.
    Bytes(Vec<u8>),
    /// The next `len` bytes of an open file, sent by the I/O loop in pieces, never read into
    /// memory whole.
    File {
        /// The file, positioned where sending starts.
        file: File,
        /// How many bytes to send.
        len: u64,
    },
    /// Chunks produced by an iterator on the worker thread and handed to the I/O loop in
    /// bounded pieces: the worker waits while `max_buffered_output` bytes are unsent. With a
    /// known `len` the response carries `Content-Length` (the stream is cut or the connection
    /// closed if it disagrees); otherwise it is chunked on HTTP/1.1 and close-delimited on 1.0.
    Stream {
        /// The chunks; an `Err` aborts the response and closes the connection.
        chunks: Chunks,
        /// The total length, if known in advance.
        len: Option<u64>,
    },
}

impl Body {
    /// A body that sends the whole of `file` from its current position to its end.
    pub fn file(file: File) -> io::Result<Body> {
        use std::io::Seek;
        let mut file = file;
        let len = file.metadata()?.len();
        let position = file.stream_position()?;
        Ok(Body::File { file, len: len.saturating_sub(position) })
    }

    /// A streamed body of unknown length.
    pub fn stream<I>(chunks: I) -> Body
    where
        I: Iterator<Item = io::Result<Vec<u8>>> + Send + 'static,
    {
        Body::Stream { chunks: Box::new(chunks), len: None }
    }

    /// A streamed body whose total length is known in advance.
    pub fn stream_sized<I>(chunks: I, len: u64) -> Body
    where
        I: Iterator<Item = io::Result<Vec<u8>>> + Send + 'static,
    {
        Body::Stream { chunks: Box::new(chunks), len: Some(len) }
    }

    /// The length, if known.
    pub(crate) fn known_len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Stream { len, .. } => *len,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::File { len, .. } => write!(f, "File({len} bytes)"),
            Body::Stream { len, .. } => write!(f, "Stream(len: {len:?})"),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Bytes(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Bytes(text.into_bytes())
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Self {
        Body::Bytes(text.as_bytes().to_vec())
    }
}

/// Room the first header takes in a response's field buffer: most responses set a few short
/// fields, which then cost one allocation in all.
const FIELDS_FIRST_CAPACITY: usize = 128;

/// Bytes of one length in [`ResponseFields`].
const LEN: usize = std::mem::size_of::<usize>();

/// A response's header fields, in order, in one buffer: for each field, the name's length and
/// the value's length (native `usize`s: the buffer never leaves the process), the name, then
/// the value. One allocation for any number of fields, where a `String` and a `Vec` for each
/// field and a list of them cost `1 + 2n` (and as many frees when the response is encoded).
#[derive(Clone, Default)]
pub(crate) struct ResponseFields {
    bytes: Vec<u8>,
}

impl ResponseFields {
    fn push(&mut self, name: &str, value: &[u8]) {
        if self.bytes.capacity() == 0 {
            self.bytes.reserve((2 * LEN + name.len() + value.len()).max(FIELDS_FIRST_CAPACITY));
        }
        self.bytes.extend_from_slice(&name.len().to_ne_bytes());
        self.bytes.extend_from_slice(&value.len().to_ne_bytes());
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(value);
    }

    /// The fields as bytes, in order: what the encoder checks and writes.
    pub(crate) fn raw(&self) -> RawFields<'_> {
        RawFields { rest: &self.bytes }
    }
}

/// The fields of a response as `(name, value)` byte pairs, in order.
#[derive(Clone)]
pub(crate) struct RawFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawFields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (name_len, rest) = self.rest.split_first_chunk::<LEN>()?;
        let (value_len, rest) = rest.split_first_chunk::<LEN>()?;
        let (name, rest) = rest.split_at(usize::from_ne_bytes(*name_len));
        let value_len = usize::from_ne_bytes(*value_len);
        let (value, rest) = rest.split_at(value_len);
        self.rest = rest;
        Some((name, value))
    }
}

/// The header fields a response has so far, as `(name, value)` pairs in order (duplicates
/// kept): from [`Response::headers`].
#[derive(Clone)]
pub struct ResponseHeaders<'a> {
    raw: RawFields<'a>,
}

impl<'a> Iterator for ResponseHeaders<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.raw.next()?;
        // Every name was stored from a `&str`, so this check cannot fail.
        Some((std::str::from_utf8(name).unwrap_or_default(), value))
    }
}

impl std::iter::FusedIterator for ResponseHeaders<'_> {}

impl fmt::Debug for ResponseHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone().map(|(name, value)| (name, String::from_utf8_lossy(value)))).finish()
    }
}

impl fmt::Debug for ResponseFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&ResponseHeaders { raw: self.raw() }, f)
    }
}

/// A response: status, headers in order, and a body.
#[derive(Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) reason: Option<String>,
    pub(crate) headers: ResponseFields,
    pub(crate) body: Body,
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response { status, reason: None, headers: ResponseFields::default(), body: Body::Empty }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response::new(status).with_header("Content-Type", "text/plain; charset=utf-8").with_body(text.into())
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: u16, html: impl Into<String>) -> Self {
        Response::new(status).with_header("Content-Type", "text/html; charset=utf-8").with_body(html.into())
    }

    /// Adds a header (duplicates are kept, in order). The name and value are copied: a `&str`
    /// or `&[u8]` is as good as an owned one.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        self.add_header(name, value);
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a reason phrase other than the standard one.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a header (duplicates are kept, in order). The name and value are copied: a `&str`
    /// or `&[u8]` is as good as an owned one.
    pub fn add_header(&mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) {
        self.headers.push(name.as_ref(), value.as_ref());
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.body = body.into();
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers set so far, as `(name, value)` pairs in order.
    pub fn headers(&self) -> ResponseHeaders<'_> {
        ResponseHeaders { raw: self.headers.raw() }
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_fields_read_back_in_order_with_duplicates_and_any_bytes() {
        let value: Vec<u8> = (0u8..=255).collect();
        let response = Response::new(200)
            .with_header("Set-Cookie", "a=1")
            .with_header(String::from("Set-Cookie"), b"b=2")
            .with_header("X-Empty", "")
            .with_header("X-Bytes", &value);
        let fields: Vec<(&str, &[u8])> = response.headers().collect();
        assert_eq!(
            fields,
            [("Set-Cookie", &b"a=1"[..]), ("Set-Cookie", b"b=2"), ("X-Empty", b""), ("X-Bytes", &value[..])]
        );
        assert_eq!(Response::new(204).headers().next(), None);
        let shown = format!("{:?}", response.headers());
        assert!(shown.starts_with(r#"[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Empty", "")"#), "{shown}");
    }
}
