//! A complete request, as a handler receives it: head parsed, body fully received.
//! Owns [`Request`] and [`RequestBody`]. Never reads from a socket: the engine builds a request
//! only when it is complete.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::net::SocketAddr;

use crate::http1::fields::Headers;
use crate::http1::parse::{BodyFraming, Head};
use crate::http1::response::Body;

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
    /// The spool file, and how many of its bytes have been read.
    File(File, u64),
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
        Ok(RequestBody { inner: BodyStore::File(file, 0), len })
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
        matches!(self.inner, BodyStore::File(..))
    }

    /// The whole body (what is left unread) as bytes, reading a spooled body into memory.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self.inner {
            BodyStore::Memory(cursor) => Ok(unread(cursor)),
            BodyStore::File(mut file, read) => {
                let mut bytes = Vec::with_capacity(self.len.saturating_sub(read) as usize);
                file.read_to_end(&mut bytes)?;
                Ok(bytes)
            }
        }
    }
}

/// The bytes of an in-memory body not read yet.
fn unread(cursor: Cursor<Vec<u8>>) -> Vec<u8> {
    let position = cursor.position() as usize;
    let mut bytes = cursor.into_inner();
    bytes.drain(..position.min(bytes.len()));
    bytes
}

/// What is left unread of a request body, as a response body, without reading it into memory:
/// a spooled body is sent from its temporary file by the I/O loop, in pieces (the way to echo
/// or forward a large upload).
impl From<RequestBody> for Body {
    fn from(body: RequestBody) -> Body {
        match body.inner {
            BodyStore::Memory(cursor) => Body::Bytes(unread(cursor)),
            BodyStore::File(file, read) => Body::File { file, len: body.len.saturating_sub(read) },
        }
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            BodyStore::Memory(cursor) => cursor.read(buf),
            BodyStore::File(file, read) => {
                let n = file.read(buf)?;
                *read += n as u64;
                Ok(n)
            }
        }
    }
}

/// A complete HTTP request: the head, and the body already received in full.
#[derive(Debug)]
pub struct Request {
    /// The parsed head: method, target, version and header fields, in one copy of its bytes.
    /// Its framing, keep-alive and `Expect` flags are the engine's, not the handler's.
    pub(crate) head: Head,
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
        Request { head, peer, local, body, client, scheme, forwarded_host, tls }
    }

    /// The head this request was made of, for a request that goes on to a worker after all (the
    /// loop's fast path declined it); `body`, `keep_alive` and `expect_continue` are what the
    /// head said. The body is dropped.
    pub(crate) fn into_head(self, body: BodyFraming, keep_alive: bool, expect_continue: bool) -> Head {
        let mut head = self.head;
        (head.body, head.keep_alive, head.expect_continue) = (body, keep_alive, expect_continue);
        head
    }

    /// The method, e.g. `GET` (case as sent; methods are case-sensitive).
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request target exactly as sent: `/path?query`, `http://host/path`, or `*`.
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The path part of the target, without the query (`*` for `OPTIONS *`); still
    /// percent-encoded. For an absolute-form target the scheme and authority are removed, and
    /// an empty path reads as `/`.
    pub fn path(&self) -> &str {
        let path = &self.target()[self.head.path.clone()];
        if path.is_empty() {
            "/"
        } else {
            path
        }
    }

    /// The query string after `?`, if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        let rest = &self.target()[self.head.path.end..];
        rest.strip_prefix('?')
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The host the client asked for: as forwarded by a trusted proxy, else the authority of
    /// an absolute-form target, else the `Host` header (validated; absent only on HTTP/1.0).
    pub fn host(&self) -> Option<&str> {
        if let Some(host) = &self.forwarded_host {
            return Some(host);
        }
        match &self.head.authority {
            Some(range) => Some(&self.target()[range.clone()]),
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

    /// All header fields, in the order received, duplicates kept: views into the request
    /// ([`Header::name`](crate::Header::name), [`Header::value`](crate::Header::value)).
    pub fn headers(&self) -> Headers<'_> {
        self.head.headers()
    }

    /// The value of the first header `name` (case-insensitive), if present and valid UTF-8
    /// (`None` when the first one is not, even if a later one is).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.first(name).and_then(|h| h.value_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.head.headers.values(name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::parse::{parse_head, HeadScanner, Limits};

    /// The request of head `text` with an empty body, from a client on loopback.
    fn request(text: &[u8]) -> Request {
        let span = HeadScanner::new().scan(text, &Limits::default()).unwrap().expect("complete head");
        let head = parse_head(text, &span, &Limits::default()).unwrap();
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let origin = Origin { peer: addr, local: addr, client: addr, scheme: "http", forwarded_host: None, tls: None };
        Request::new(head, RequestBody::empty(), origin)
    }

    #[test]
    fn header_lookups_ignore_case_and_keep_order() {
        let req = request(
            b"GET /p?q=1 HTTP/1.1\r\nhost: Example.com\r\nAccept: a\r\nX-Bin: \xff\r\nACCEPT:  b \r\nx-bin: ok\r\n\r\n",
        );
        assert_eq!(req.header("HOST"), Some("Example.com"));
        assert_eq!(req.host(), Some("Example.com"));
        assert_eq!(req.header("accept"), Some("a"), "the first of several");
        assert_eq!(req.header_values("Accept").collect::<Vec<_>>(), [b"a".as_slice(), b"b"]);
        assert_eq!(req.header("missing"), None);
        assert_eq!(req.header_values("missing").count(), 0);
        let names: Vec<&str> = req.headers().map(|h| h.name()).collect();
        assert_eq!(names, ["host", "Accept", "X-Bin", "ACCEPT", "x-bin"]);
        assert_eq!((req.method(), req.target(), req.path(), req.query()), ("GET", "/p?q=1", "/p", Some("q=1")));
    }

    #[test]
    fn header_is_none_when_the_first_value_is_not_utf8() {
        let req = request(b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: M\xfcller\r\nX-Name: Mueller\r\n\r\n");
        assert_eq!(req.header("x-name"), None);
        assert_eq!(req.header_values("x-name").next(), Some(&b"M\xfcller"[..]));
        let field = req.headers().nth(1).unwrap();
        assert_eq!((field.name(), field.value(), field.value_str()), ("X-Name", &b"M\xfcller"[..], None));
    }

    #[test]
    fn into_head_gives_back_the_same_head_with_the_engines_flags() {
        let req = request(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX: y\r\n\r\n");
        let before = format!("{:?}", req.head);
        let head = req.into_head(BodyFraming::Length(2), true, false);
        assert_eq!(format!("{head:?}"), before);
        assert_eq!((head.method(), head.target()), ("POST", "/a"));
        assert_eq!(head.headers().map(|h| h.name()).collect::<Vec<_>>(), ["Host", "Content-Length", "X"]);
    }

    #[test]
    fn an_absolute_target_names_the_host() {
        let req = request(b"GET http://Origin.example:8080 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(req.host(), Some("Origin.example:8080"));
        assert_eq!(req.path(), "/");
        assert_eq!(req.header("host"), Some("other"));
    }
}
