//! Shared test harness: an in-process server on 127.0.0.1:0 that stops on drop, a raw-bytes
//! client that parses responses strictly, and small named fixture handlers.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use maitred::{Config, Handler, Request, Response, Server, ServerHandle};

/// Client socket timeout: generous, so a hang fails a test instead of stalling it forever.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration tests start from: loopback, port 0, 4 workers.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.threads = 4;
    config
}

/// A server running in this process; shut down and waited for on drop.
pub struct TestServer {
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

impl TestServer {
    pub fn start(handler: impl Handler) -> Self {
        Self::with_config(|_| {}, handler)
    }

    pub fn with_config(adjust: impl FnOnce(&mut Config), handler: impl Handler) -> Self {
        let mut config = test_config();
        adjust(&mut config);
        let server = Server::bind(config, handler).expect("bind test server");
        let addr = server.local_addrs()[0].tcp().expect("a TCP address");
        let handle = server.start().expect("start test server");
        TestServer { handle: Some(handle), addr }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    /// Starts the drain and waits for the server to stop; returns `ServerHandle::wait`'s answer.
    pub fn stop(mut self) -> bool {
        let handle = self.handle.take().unwrap();
        handle.shutdown();
        handle.wait()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            handle.wait();
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as received.
    pub head: String,
    /// How the body was delimited: "length", "chunked", "close" or "none".
    pub framing: &'static str,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A client connection that speaks raw bytes and reads responses one at a time.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps a connected stream (after bytes were already sent on it by hand).
    pub fn from_stream(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: Vec::new(), eof: false }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        self.stream.write_all(bytes.as_ref()).expect("send");
        self
    }

    /// Sends, ignoring errors (the server may already have closed).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn fill(&mut self) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.eof = true;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads one response to a request that was not HEAD.
    pub fn response(&mut self) -> RawResponse {
        self.try_response(false).expect("read response")
    }

    /// Reads one response to a HEAD request (no body whatever the headers say).
    pub fn head_response(&mut self) -> RawResponse {
        self.try_response(true).expect("read response")
    }

    /// Reads one response; an error if the connection ends or stalls first.
    pub fn try_response(&mut self, head_request: bool) -> io::Result<RawResponse> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection ended before a response head; got {:?}", String::from_utf8_lossy(&self.buf)),
                ));
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("response head is UTF-8");
        self.buf.drain(..head_end);
        let mut lines = head.trim_end_matches("\r\n").split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "status line {status_line:?}");
        let status: u16 = status_line[9..12].parse().expect("status code");
        let reason = status_line.get(13..).unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("header line {l:?}"));
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let mut response = RawResponse { status, reason, headers, body: Vec::new(), head, framing: "none" };
        let no_body = head_request || status < 200 || status == 204 || status == 304;
        if no_body {
            return Ok(response);
        }
        if let Some(te) = response.header("transfer-encoding") {
            assert_eq!(te, "chunked", "unexpected transfer-encoding");
            assert!(response.header("content-length").is_none(), "both framings in a response");
            response.framing = "chunked";
            response.body = self.read_chunked()?;
        } else if let Some(cl) = response.header("content-length") {
            let n: usize = cl.parse().expect("content-length");
            response.framing = "length";
            while self.buf.len() < n {
                if self.fill()? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body shorter than Content-Length"));
                }
            }
            response.body = self.buf.drain(..n).collect();
        } else {
            response.framing = "close";
            while self.fill()? > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                if self.fill()? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body cut"));
                }
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&self.buf[..line_end]).unwrap(), 16).expect("chunk size");
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                if self.fill()? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunk cut"));
                }
            }
            if size == 0 {
                assert_eq!(&self.buf[..2], b"\r\n", "trailers in a response");
                self.buf.drain(..2);
                return Ok(body);
            }
            body.extend_from_slice(&self.buf[..size]);
            assert_eq!(&self.buf[size..size + 2], b"\r\n");
            self.buf.drain(..size + 2);
        }
    }

    /// True if the server closes the connection (EOF or reset) within `within`, with no
    /// further bytes; false if it stays open or sends more.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        self.stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let result = loop {
            if !self.buf.is_empty() {
                break false;
            }
            match self.fill() {
                Ok(0) => break true,
                Ok(_) => break false,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        break false;
                    }
                }
                Err(_) => break true,
            }
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        result
    }

    /// Everything until the server closes (or `IO_TIMEOUT`).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while let Ok(n) = self.fill() {
            if n == 0 {
                break;
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Bytes received but not yet parsed.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends `bytes` on a new connection and reads every response until the server closes.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<RawResponse> {
    let mut client = Client::connect(addr);
    client.send(bytes);
    client.shutdown_write();
    let mut responses = Vec::new();
    while let Ok(r) = client.try_response(false) {
        let close = r.closes();
        responses.push(r);
        if close {
            break;
        }
    }
    responses
}

/// Echo fixture: `METHOD TARGET\n\n` then the request body; `X-Body-Length` and
/// `X-Spooled` tell how the body arrived.
pub fn echo(mut request: Request) -> Response {
    let mut body = format!("{} {}\n\n", request.method(), request.target()).into_bytes();
    let before = body.len();
    let spooled = request.body().is_spooled();
    request.body().read_to_end(&mut body).unwrap();
    let n = body.len() - before;
    Response::new(200)
        .with_header("Content-Type", "text/plain")
        .with_header("X-Body-Length", n.to_string())
        .with_header("X-Spooled", if spooled { "yes" } else { "no" })
        .with_body(body)
}

/// Hello fixture.
pub fn hello(_request: Request) -> Response {
    Response::new(200).with_header("Content-Type", "text/plain").with_body("Hello, World!")
}

/// Threads of this process right now (Linux).
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap()
}

/// What a watched connection did.
#[derive(Debug, PartialEq)]
pub enum CloseWatch {
    /// EOF or reset.
    Closed,
    /// Bytes arrived instead.
    Data(Vec<u8>),
    /// Still open when the watch ended.
    Open,
}

/// Watches `stream` for at most `within`: whether the server closes it, sends, or neither.
pub fn watch_close(stream: &TcpStream, within: Duration) -> CloseWatch {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut s = stream;
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let outcome = loop {
        match s.read(&mut buf) {
            Ok(0) => break CloseWatch::Closed,
            Ok(n) => break CloseWatch::Data(buf[..n].to_vec()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if start.elapsed() >= within {
                    break CloseWatch::Open;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break CloseWatch::Closed,
        }
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    outcome
}

/// A gate the test controls: handlers `enter_and_wait` until the test opens it (bounded, so a
/// failed test never hangs a worker forever).
#[derive(Default)]
pub struct Latch {
    state: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl Latch {
    /// Counts this caller in and waits (at most 20 s) for `open`.
    pub fn enter_and_wait(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        self.changed.notify_all();
        let _ = self.changed.wait_timeout_while(s, Duration::from_secs(20), |s| !s.1).unwrap();
    }

    /// Whether `n` callers have entered within `within`.
    pub fn wait_entered(&self, n: usize, within: Duration) -> bool {
        let s = self.state.lock().unwrap();
        let (s, _) = self.changed.wait_timeout_while(s, within, |s| s.0 < n).unwrap();
        s.0 >= n
    }

    /// Lets every waiting and later caller through.
    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

pub mod child;
