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

/// A response: status, headers in order, and a body.
#[derive(Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) reason: Option<String>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Body,
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response { status, reason: None, headers: Vec::new(), body: Body::Empty }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response::new(status).with_header("Content-Type", "text/plain; charset=utf-8").with_body(text.into())
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: u16, html: impl Into<String>) -> Self {
        Response::new(status).with_header("Content-Type", "text/html; charset=utf-8").with_body(html.into())
    }

    /// Adds a header (duplicates are kept, in order).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
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

    /// Adds a header (duplicates are kept, in order).
    pub fn add_header(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.body = body.into();
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers set so far.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
}
