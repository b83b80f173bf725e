//! A complete request, as a handler receives it: head parsed, body fully received.
//! Owns [`Request`] and [`RequestBody`]. Never reads from a socket: the engine builds a request
//! only when it is complete.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::net::SocketAddr;

use crate::http1::parse::Head;

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header field as received: the name as sent (case kept) and the raw value bytes, with
/// surrounding whitespace removed. Values never contain CR, LF or NUL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name, as sent by the client.
    pub name: String,
    /// Field value bytes (may hold obs-text bytes 0x80–0xFF).
    pub value: Vec<u8>,
}

impl Header {
    /// The value as text, if it is valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// A request body: held in memory, or spooled to an anonymous temporary file once it grew past
/// `body_spool_threshold`. Read it with [`Read`] or take it whole with
/// [`RequestBody::into_bytes`].
#[derive(Debug)]
pub struct RequestBody {
    inner: BodyStore,
    len: u64,
}

#[derive(Debug)]
enum BodyStore {
    Memory(Cursor<Vec<u8>>),
    File(File),
}

impl RequestBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::from_bytes(Vec::new())
    }

    /// A body held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let len = bytes.len() as u64;
        RequestBody { inner: BodyStore::Memory(Cursor::new(bytes)), len }
    }

    /// A body spooled to `file`, which holds `len` bytes; it is read from the start.
    pub(crate) fn from_spooled(mut file: File, len: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(0))?;
        Ok(RequestBody { inner: BodyStore::File(file), len })
    }

    /// Total length of the body in bytes (not what is left to read).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the body was spooled to a temporary file.
    pub fn is_spooled(&self) -> bool {
        matches!(self.inner, BodyStore::File(_))
    }

    /// The whole body (what is left unread) as bytes, reading a spooled body into memory.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self.inner {
            BodyStore::Memory(cursor) => {
                let position = cursor.position() as usize;
                let mut bytes = cursor.into_inner();
                bytes.drain(..position.min(bytes.len()));
                Ok(bytes)
            }
            BodyStore::File(mut file) => {
                let mut bytes = Vec::with_capacity(self.len as usize);
                file.read_to_end(&mut bytes)?;
                Ok(bytes)
            }
        }
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            BodyStore::Memory(cursor) => cursor.read(buf),
            BodyStore::File(file) => file.read(buf),
        }
    }
}

/// A complete HTTP request: the head, and the body already received in full.
#[derive(Debug)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    /// Byte range of the path within `target` (after any scheme and authority).
    pub(crate) path: std::ops::Range<usize>,
    pub(crate) authority: Option<std::ops::Range<usize>>,
    pub(crate) version: Version,
    pub(crate) headers: Vec<Header>,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) body: RequestBody,
    /// The client as resolved through trusted proxies (the peer otherwise).
    pub(crate) client: SocketAddr,
    pub(crate) scheme: &'static str,
    pub(crate) forwarded_host: Option<String>,
    pub(crate) tls: Option<std::sync::Arc<crate::tls::TlsInfo>>,
}

/// Where a request came from: the socket's two ends, and the client behind any trusted proxy.
pub(crate) struct Origin {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) client: SocketAddr,
    pub(crate) scheme: &'static str,
    pub(crate) forwarded_host: Option<String>,
    /// The TLS session, for a connection to an `https://` listener.
    pub(crate) tls: Option<std::sync::Arc<crate::tls::TlsInfo>>,
}

impl Request {
    /// The request of a parsed `head` and its complete `body`.
    pub(crate) fn new(head: Head, body: RequestBody, origin: Origin) -> Request {
        let Origin { peer, local, client, scheme, forwarded_host, tls } = origin;
        Request {
            method: head.method,
            target: head.target,
            path: head.path,
            authority: head.authority,
            version: head.version,
            headers: head.headers,
            peer,
            local,
            body,
            client,
            scheme,
            forwarded_host,
            tls,
        }
    }

    /// The method, e.g. `GET` (case as sent; methods are case-sensitive).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target exactly as sent: `/path?query`, `http://host/path`, or `*`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path part of the target, without the query (`*` for `OPTIONS *`); still
    /// percent-encoded. For an absolute-form target the scheme and authority are removed, and
    /// an empty path reads as `/`.
    pub fn path(&self) -> &str {
        let path = &self.target[self.path.clone()];
        if path.is_empty() {
            "/"
        } else {
            path
        }
    }

    /// The query string after `?`, if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        let rest = &self.target[self.path.end..];
        rest.strip_prefix('?')
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The host the client asked for: as forwarded by a trusted proxy, else the authority of
    /// an absolute-form target, else the `Host` header (validated; absent only on HTTP/1.0).
    pub fn host(&self) -> Option<&str> {
        if let Some(host) = &self.forwarded_host {
            return Some(host);
        }
        match &self.authority {
            Some(range) => Some(&self.target[range.clone()]),
            None => self.header("host"),
        }
    }

    /// The client's address: from a trusted proxy's forwarding headers or PROXY protocol
    /// header when there is one, else the socket peer.
    pub fn client_addr(&self) -> SocketAddr {
        self.client
    }

    /// `"https"` when the request came over an `https://` listener or a trusted proxy said
    /// the client used it, else `"http"`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The TLS session the request came over (an `https://` listener), `None` over plain
    /// HTTP. A trusted proxy's TLS is not this: see [`Request::scheme`].
    pub fn tls(&self) -> Option<&crate::tls::TlsInfo> {
        self.tls.as_deref()
    }

    /// The verified client certificate's subject as an RFC 4514 string (for example
    /// `CN=alice,O=Example`), when `tls_client_ca` is set and the client sent a certificate.
    pub fn tls_client_subject(&self) -> Option<&str> {
        self.tls().and_then(crate::tls::TlsInfo::client_subject)
    }

    /// All header fields, in the order received, duplicates kept.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive), if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(Header::value_str)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_slice())
    }

    /// The address on the other end of the socket (a proxy, when there is one; `0.0.0.0:0`
    /// on a Unix socket). See [`Request::client_addr`] for the client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The server address the connection was accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The body, to read from.
    pub fn body(&mut self) -> &mut RequestBody {
        &mut self.body
    }

    /// Takes the body out, leaving an empty one.
    pub fn take_body(&mut self) -> RequestBody {
        std::mem::replace(&mut self.body, RequestBody::empty())
    }
}
