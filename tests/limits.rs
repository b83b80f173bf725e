//! Every limit and deadline of the server, pinned over raw sockets: request line (414), header
//! line, head size and header count (431), body size (413), spooling, the head, body,
//! keep-alive and write deadlines (408 / close), requests per connection, the dispatch queue
//! (503), streaming back-pressure and the connection cap.
//!
//! Each test configures short limits and timeouts so the suite stays fast. A deadline is
//! asserted from both sides where that is meaningful: not before the deadline (minus a small
//! margin), and within the deadline plus a generous margin (the machine is small and noisy).
mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use maitred::{Body, Config, Request, Response};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Early-side margin for a deadline: timers never fire early, but clocks are read at slightly
/// different moments on each side.
const EARLY: Duration = Duration::from_millis(60);
/// Late-side margin for a deadline on a noisy two-core machine.
const LATE: Duration = Duration::from_millis(1500);

/// Settings every test here starts from: a short drain and linger so teardown is quick.
fn base(c: &mut Config) {
    c.graceful_timeout = ms(1500);
    c.linger_timeout = ms(300);
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// A request line of exactly `len` bytes (without its CRLF).
fn request_line_of(len: usize) -> String {
    let fixed = "GET / HTTP/1.1".len();
    assert!(len >= fixed);
    format!("GET /{} HTTP/1.1", "a".repeat(len - fixed))
}

/// A header line of exactly `len` bytes (without its CRLF).
fn header_line_of(len: usize) -> String {
    let prefix = "X-Fill: ";
    assert!(len > prefix.len());
    format!("{prefix}{}", "v".repeat(len - prefix.len()))
}

/// A complete GET head of exactly `total` bytes (request line through the final blank line),
/// built from filler header lines of at most `max_line` bytes each.
fn head_of_size(total: usize, max_line: usize) -> String {
    let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    let mut remaining = total.checked_sub(head.len() + 2).expect("head too small");
    let mut i = 0;
    while remaining > 0 {
        let mut line = remaining.min(max_line + 2);
        if remaining - line > 0 && remaining - line < 12 {
            line -= 12;
        }
        let prefix = format!("X-{i:03}: ");
        assert!(line >= prefix.len() + 3, "cannot fill {remaining} bytes");
        head.push_str(&prefix);
        head.push_str(&"v".repeat(line - prefix.len() - 2));
        head.push_str("\r\n");
        remaining -= line;
        i += 1;
    }
    head.push_str("\r\n");
    assert_eq!(head.len(), total);
    head
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Reads one response, waiting at most `within`.
fn response_within(c: &mut Client, within: Duration) -> io::Result<RawResponse> {
    c.stream.set_read_timeout(Some(within)).unwrap();
    let r = c.try_response(false);
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    r
}

/// Asserts a response the server generated itself: status, `Connection: close`, a
/// `Content-Length` body naming the status.
fn assert_server_error(r: &RawResponse, status: u16) {
    assert_eq!(r.status, status, "{}", r.head);
    assert!(r.closes(), "error response without Connection: close: {}", r.head);
    assert_eq!(r.framing, "length", "{}", r.head);
    assert!(r.body_text().starts_with(&status.to_string()), "{:?}", r.body_text());
}

/// Sends `bytes` from a background thread, `piece` bytes every `every`, until done, stopped,
/// or a write fails. `sent` counts what went out.
struct Dribbler {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

fn dribble(stream: &TcpStream, bytes: Vec<u8>, piece: usize, every: Duration) -> Dribbler {
    let mut out = stream.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
    let handle = thread::spawn(move || {
        for part in bytes.chunks(piece) {
            if stop2.load(Ordering::SeqCst) || out.write_all(part).is_err() {
                return;
            }
            sent2.fetch_add(part.len(), Ordering::SeqCst);
            thread::sleep(every);
        }
    });
    Dribbler { stop, sent, handle: Some(handle) }
}

impl Dribbler {
    fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Dribbler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A client socket with a small, fixed receive buffer (no autotuning), so kernel buffering
/// stays small and predictable.
fn connect_small_rcvbuf(addr: SocketAddr, size: usize) -> (TcpStream, usize) {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(size).unwrap();
    socket.connect(&SockAddr::from(addr)).unwrap();
    let actual = socket.recv_buffer_size().unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    (stream, actual)
}

/// The largest send buffer the kernel may give the server's socket (Linux; 4 MiB otherwise).
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|t| t.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

/// Reads from `stream` until a response head has arrived; returns all bytes read.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&got, b"\r\n\r\n").is_none() {
        let n = stream.read(&mut buf).expect("read head");
        assert!(n > 0, "closed before the head: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Counts what a streamed body produced and whether its iterator was dropped.
#[derive(Default)]
struct StreamStats {
    produced: AtomicU64,
    dropped: AtomicBool,
}

/// A streamed body: `chunks` chunks of `chunk` bytes; counts itself into `stats`.
struct Producer {
    chunk: Vec<u8>,
    left: usize,
    stats: Arc<StreamStats>,
}

impl Iterator for Producer {
    type Item = io::Result<Vec<u8>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.stats.produced.fetch_add(self.chunk.len() as u64, Ordering::SeqCst);
        Some(Ok(self.chunk.clone()))
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stats.dropped.store(true, Ordering::SeqCst);
    }
}

fn stream_response(stats: &Arc<StreamStats>, chunk: usize, chunks: usize) -> Response {
    let producer = Producer { chunk: vec![b's'; chunk], left: chunks, stats: Arc::clone(stats) };
    Response::new(200).with_header("Content-Type", "application/octet-stream").with_body(Body::stream(producer))
}

fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(ms(10));
    }
}

// ---------------------------------------------------------------------------------------------
// 414: max_request_line
// ---------------------------------------------------------------------------------------------

fn line_limits(c: &mut Config) {
    base(c);
    c.max_request_line = 256;
    c.max_header_line = 128;
    c.max_headers_size = 1024;
    c.header_timeout = Duration::from_secs(5);
}

#[test]
fn request_line_at_max_request_line_is_served() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    let line = request_line_of(256);
    c.send(format!("{line}\r\nHost: x\r\n\r\n"));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body_text().starts_with(&line[..line.len() - " HTTP/1.1".len()]));
    assert!(!r.closes());
}

#[test]
fn request_line_over_max_request_line_gets_414() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    c.send(format!("{}\r\nHost: x\r\n\r\n", request_line_of(257)));
    assert_server_error(&c.response(), 414);
    assert!(c.closed_within(Duration::from_secs(2)), "connection not closed after 414");
}

#[test]
fn request_line_dribbled_without_crlf_gets_414_before_it_ends() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    // 1000 bytes of request line, no CRLF, 16 bytes every 30 ms (about 2 s in all): the 414
    // must come once the line is over 256 bytes, long before the line (or the head timeout).
    let line = request_line_of(1000).into_bytes();
    let started = Instant::now();
    let d = dribble(&c.stream, line, 16, ms(30));
    let r = c.response();
    let sent = d.sent();
    assert_server_error(&r, 414);
    assert!(sent < 1000, "414 only after the whole line was sent ({sent} bytes)");
    assert!(started.elapsed() < Duration::from_secs(4), "414 took {:?}", started.elapsed());
    assert!(c.closed_within(Duration::from_secs(2)));
}

#[test]
fn request_line_one_byte_over_without_crlf_gets_414_at_once() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    // 257 bytes and no CR: the line is already longer than 256, whatever comes next.
    c.send(request_line_of(257));
    match response_within(&mut c, Duration::from_secs(2)) {
        Ok(r) => assert_server_error(&r, 414),
        Err(e) => panic!("no 414 for a 257-byte request line (limit 256) without its CRLF: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 431: max_header_line, max_headers_size, max_headers
// ---------------------------------------------------------------------------------------------

#[test]
fn header_line_at_max_header_line_is_served() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n", header_line_of(128)));
    assert_eq!(c.response().status, 200);
}

#[test]
fn header_line_over_max_header_line_gets_431() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n", header_line_of(129)));
    assert_server_error(&c.response(), 431);
    assert!(c.closed_within(Duration::from_secs(2)));
}

#[test]
fn header_line_one_byte_over_without_crlf_gets_431_at_once() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{}", header_line_of(129)));
    match response_within(&mut c, Duration::from_secs(2)) {
        Ok(r) => assert_server_error(&r, 431),
        Err(e) => panic!("no 431 for a 129-byte header line (limit 128) without its CRLF: {e}"),
    }
}

#[test]
fn header_line_dribbled_without_crlf_gets_431_before_it_ends() {
    let server = TestServer::with_config(line_limits, echo);
    let mut c = server.client();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");
    let d = dribble(&c.stream, header_line_of(600).into_bytes(), 8, ms(25));
    let r = c.response();
    let sent = d.sent();
    assert_server_error(&r, 431);
    assert!(sent < 600, "431 only after the whole header line was sent");
}

fn size_limits(c: &mut Config) {
    line_limits(c);
    c.max_headers = 100;
}

#[test]
fn head_at_max_headers_size_is_served() {
    let server = TestServer::with_config(size_limits, echo);
    let mut c = server.client();
    c.send(head_of_size(1024, 128));
    assert_eq!(c.response().status, 200);
    // Also with the head arriving in two pieces.
    let head = head_of_size(1024, 128);
    let (a, b) = head.split_at(700);
    c.send(a);
    thread::sleep(ms(50));
    c.send(b);
    assert_eq!(c.response().status, 200);
}

#[test]
fn head_one_byte_over_max_headers_size_gets_431() {
    let server = TestServer::with_config(size_limits, echo);
    let mut c = server.client();
    c.send(head_of_size(1025, 128));
    let r = c.response();
    assert_eq!(r.status, 431, "a 1025-byte head was accepted with max_headers_size = 1024: {}", r.head);
}

#[test]
fn head_over_max_headers_size_gets_431() {
    let server = TestServer::with_config(size_limits, echo);
    let mut c = server.client();
    c.send(head_of_size(1100, 128));
    assert_server_error(&c.response(), 431);
    assert!(c.closed_within(Duration::from_secs(2)));
    // Without the end of the head: refused as soon as it is over, not at the blank line.
    let mut c = server.client();
    let head = head_of_size(1400, 128);
    c.send(&head[..1200]);
    match response_within(&mut c, Duration::from_secs(2)) {
        Ok(r) => assert_server_error(&r, 431),
        Err(e) => panic!("no 431 while an oversized head is still arriving: {e}"),
    }
}

fn count_limits(c: &mut Config) {
    base(c);
    c.max_headers = 10;
}

#[test]
fn max_headers_fields_are_served() {
    let server = TestServer::with_config(count_limits, echo);
    let mut c = server.client();
    // Host plus 9 more: exactly 10 fields.
    let fields: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
    c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n"));
    assert_eq!(c.response().status, 200);
}

#[test]
fn one_field_over_max_headers_gets_431() {
    let server = TestServer::with_config(count_limits, echo);
    let mut c = server.client();
    let fields: String = (0..10).map(|i| format!("X-{i}: v\r\n")).collect();
    c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n"));
    assert_server_error(&c.response(), 431);
    assert!(c.closed_within(Duration::from_secs(2)));
}

// ---------------------------------------------------------------------------------------------
// 413: max_body_size
// ---------------------------------------------------------------------------------------------

fn body_limits(c: &mut Config) {
    base(c);
    c.max_body_size = 1000;
    c.body_timeout = Duration::from_secs(5);
}

#[test]
fn content_length_over_max_body_size_gets_413_before_the_body() {
    let server = TestServer::with_config(body_limits, echo);
    let mut c = server.client();
    // Only the head: the 413 must not wait for a body that never comes.
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n");
    match response_within(&mut c, Duration::from_secs(2)) {
        Ok(r) => assert_server_error(&r, 413),
        Err(e) => panic!("no 413 before the body was sent: {e}"),
    }
    assert!(c.closed_within(Duration::from_secs(2)));
    // A huge length, past u64, is refused the same way.
    let mut c = server.client();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    assert_server_error(&response_within(&mut c, Duration::from_secs(2)).unwrap(), 413);
}

#[test]
fn content_length_at_max_body_size_is_served() {
    let server = TestServer::with_config(body_limits, echo);
    let mut c = server.client();
    let body = pattern(1000);
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n").send(&body);
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-body-length"), Some("1000"));
    assert_eq!(&r.body[r.body.len() - 1000..], &body[..]);
}

#[test]
fn expect_continue_over_max_body_size_gets_413_and_no_100() {
    let server = TestServer::with_config(body_limits, echo);
    let mut c = server.client();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    let r = response_within(&mut c, Duration::from_secs(2)).expect("a response without the body");
    assert_server_error(&r, 413);
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn chunked_body_growing_past_max_body_size_gets_413() {
    let server = TestServer::with_config(body_limits, echo);
    let mut c = server.client();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..10 {
        c.send(chunk(&[b'c'; 100]));
        thread::sleep(ms(5));
    }
    // 1000 so far: at the limit. The next chunk's size line takes it over.
    c.send("1\r\n");
    match response_within(&mut c, Duration::from_secs(2)) {
        Ok(r) => assert_server_error(&r, 413),
        Err(e) => panic!("no 413 once the chunked body passed max_body_size: {e}"),
    }
    assert!(c.closed_within(Duration::from_secs(2)));
}

#[test]
fn chunked_body_at_max_body_size_is_served() {
    let server = TestServer::with_config(body_limits, echo);
    let mut c = server.client();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let body = pattern(1000);
    for piece in body.chunks(300) {
        c.send(chunk(piece));
    }
    c.send("0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("x-body-length"), Some("1000"));
    assert_eq!(&r.body[r.body.len() - 1000..], &body[..]);
}

// ---------------------------------------------------------------------------------------------
// body_spool_threshold
// ---------------------------------------------------------------------------------------------

fn spool_limits(c: &mut Config) {
    base(c);
    c.body_spool_threshold = 1024;
}

fn post(body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn body_over_spool_threshold_is_spooled_and_arrives_intact() {
    let server = TestServer::with_config(spool_limits, echo);
    let mut c = server.client();
    let body = pattern(200 * 1024);
    c.send(post(&body));
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-spooled"), Some("yes"));
    assert_eq!(r.header("x-body-length"), Some("204800"));
    assert_eq!(&r.body[..10], b"POST /up\n\n");
    assert!(r.body[10..] == body[..], "spooled body differs from what was sent");
}

/// Reads the first 10 body bytes, then hands the rest back as the response body as it is
/// (`From<RequestBody> for Body`): from memory, or from the spool file.
fn echo_rest(mut request: Request) -> Response {
    let mut first = [0u8; 10];
    if request.body().read_exact(&mut first).is_err() {
        return Response::text(500, "short body\n");
    }
    let spooled = if request.body().is_spooled() { "yes" } else { "no" };
    Response::new(200).with_header("X-Spooled", spooled).with_body(request.take_body())
}

#[test]
fn request_body_returned_as_the_response_is_sent_from_memory_or_its_spool_file() {
    for (threshold, spooled) in [(1024, "yes"), (1024 * 1024, "no")] {
        let server = TestServer::with_config(
            |c| {
                base(c);
                c.body_spool_threshold = threshold;
            },
            echo_rest,
        );
        let mut c = server.client();
        let body = pattern(300 * 1024 + 5);
        // The head alone first, then the body in pieces, with the next request right behind it.
        c.send(format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()));
        for piece in body.chunks(70_000) {
            c.send(piece);
        }
        c.send("GET /next HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n0123456789ab");
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-spooled"), Some(spooled));
        assert_eq!(r.header("content-length"), Some((body.len() - 10).to_string().as_str()));
        assert!(r.body == body[10..], "body sent back (spooled: {spooled}) differs from what was sent");
        let next = c.response();
        assert_eq!((next.status, next.body.as_slice()), (200, &b"ab"[..]), "the pipelined request behind the body");
    }
}

#[test]
fn chunked_body_over_spool_threshold_is_spooled_and_arrives_intact() {
    let server = TestServer::with_config(spool_limits, echo);
    let mut c = server.client();
    let body = pattern(200 * 1024 + 17);
    c.send("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for piece in body.chunks(7000) {
        c.send(chunk(piece));
    }
    c.send("0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-spooled"), Some("yes"));
    assert!(r.body[10..] == body[..], "spooled chunked body differs from what was sent");
}

#[test]
fn body_at_spool_threshold_stays_in_memory_and_one_more_byte_spools() {
    let server = TestServer::with_config(spool_limits, echo);
    let mut c = server.client();
    for (len, spooled) in [(512, "no"), (1024, "no"), (1025, "yes")] {
        let body = pattern(len);
        c.send(post(&body));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-spooled"), Some(spooled), "body of {len} bytes (threshold 1024)");
        assert!(r.body[10..] == body[..]);
    }
}

/// Bodies being received share a memory budget of 64 × `body_spool_threshold`: with it spent,
/// a body under the threshold is spooled from its first byte instead of adding to memory, and
/// a finished body gives its share back. Without it, `connection_limit` × the threshold could
/// sit in memory (10 GiB at the defaults).
#[test]
fn bodies_past_the_shared_memory_budget_are_spooled_and_finished_ones_give_it_back() {
    let server = TestServer::with_config(spool_limits, echo);
    // 64 bodies of 1 KiB announced and begun (each saw its 100 Continue): the budget is spent.
    let mut waiting: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1024\r\n\r\n")
                .unwrap();
            let mut interim = [0u8; 25];
            s.read_exact(&mut interim).unwrap();
            assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
            s
        })
        .collect();
    let body = pattern(1024);
    let mut extra = server.client();
    extra.send(post(&body));
    let r = extra.response();
    assert_eq!((r.status, r.header("x-spooled")), (200, Some("yes")), "over the budget: spooled");
    assert!(r.body[10..] == body[..]);
    // One of the 64 finishes in memory; its share comes back (the other 63 stay open).
    let mut first = Client::from_stream(waiting.remove(0));
    first.send(&body);
    let r = first.response();
    assert_eq!((r.status, r.header("x-spooled")), (200, Some("no")), "within the budget: in memory");
    let mut next = server.client();
    next.send(post(&body));
    let r = next.response();
    assert_eq!((r.status, r.header("x-spooled")), (200, Some("no")), "the finished body's share came back");
    let mut again = server.client();
    again.send(post(&body));
    let r = again.response();
    assert_eq!((r.status, r.header("x-spooled")), (200, Some("no")), "finished bodies hold no share");
    assert_eq!(waiting.len(), 63);
}

// ---------------------------------------------------------------------------------------------
// 408 for the head: header_timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn head_dribbled_byte_by_byte_gets_408_at_header_timeout() {
    let timeout = ms(500);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.header_timeout = timeout;
        },
        echo,
    );
    let started = Instant::now();
    let mut c = server.client();
    // One byte every 100 ms, never a complete head (60 bytes would take 6 s).
    let head = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: {}", "a".repeat(40));
    let d = dribble(&c.stream, head.into_bytes(), 1, ms(100));
    let r = c.response();
    let elapsed = started.elapsed();
    drop(d);
    assert_server_error(&r, 408);
    assert!(elapsed >= timeout - EARLY, "408 after {elapsed:?}, before header_timeout {timeout:?}");
    assert!(elapsed <= timeout + LATE, "dribbling extended the head deadline: 408 after {elapsed:?}");
    assert!(c.closed_within(Duration::from_secs(2)), "connection not closed after 408");
}

#[test]
fn head_completed_within_header_timeout_is_served() {
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.header_timeout = ms(2000);
        },
        echo,
    );
    let mut c = server.client();
    // 27 bytes, one every 20 ms: done in about 0.6 s of the 2 s allowed.
    let d = dribble(&c.stream, get("/slow").into_bytes(), 1, ms(20));
    let r = c.response();
    drop(d);
    assert_eq!(r.status, 200);
    assert!(!r.closes());
}

#[test]
fn silent_new_connection_is_closed_without_a_response_after_header_timeout() {
    let timeout = ms(500);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.header_timeout = timeout;
        },
        echo,
    );
    let started = Instant::now();
    let c = server.client();
    match watch_close(&c.stream, timeout + LATE + LATE) {
        CloseWatch::Closed => {}
        CloseWatch::Data(d) => panic!("a silent connection got bytes: {:?}", String::from_utf8_lossy(&d)),
        CloseWatch::Open => panic!("a silent connection was kept open past header_timeout"),
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout - EARLY, "closed after {elapsed:?}, before header_timeout");
    assert!(elapsed <= timeout + LATE, "closed after {elapsed:?}");
}

#[test]
fn kept_alive_head_deadline_runs_from_its_first_byte() {
    let timeout = ms(600);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.header_timeout = timeout;
            c.keepalive_timeout = Duration::from_secs(5);
        },
        echo,
    );
    let mut c = server.client();
    c.send(get("/1"));
    assert_eq!(c.response().status, 200);
    // Idle for longer than header_timeout: only keepalive_timeout applies while idle.
    thread::sleep(ms(800));
    let first_byte = Instant::now();
    c.send("GET /2 HTTP/1.1\r\n");
    let r = c.response();
    let elapsed = first_byte.elapsed();
    assert_server_error(&r, 408);
    assert!(elapsed >= timeout - EARLY, "408 {elapsed:?} after the first byte of the head");
    assert!(elapsed <= timeout + LATE, "408 {elapsed:?} after the first byte of the head");
}

// ---------------------------------------------------------------------------------------------
// 408 for the body: body_timeout and min_transfer_rate
// ---------------------------------------------------------------------------------------------

#[test]
fn stalled_body_gets_408_after_body_timeout() {
    let timeout = ms(500);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.body_timeout = timeout;
            c.min_transfer_rate = 0;
        },
        echo,
    );
    let mut c = server.client();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    let stalled = Instant::now();
    let r = c.response();
    let elapsed = stalled.elapsed();
    assert_server_error(&r, 408);
    assert!(elapsed >= timeout - EARLY, "408 after {elapsed:?}, before body_timeout");
    assert!(elapsed <= timeout + LATE, "408 after {elapsed:?}");
    assert!(c.closed_within(Duration::from_secs(2)));
}

fn rate_limits(c: &mut Config) {
    base(c);
    c.body_timeout = ms(600);
    c.min_transfer_rate = 1000;
}

#[test]
fn body_dribbled_below_min_transfer_rate_gets_408() {
    let server = TestServer::with_config(rate_limits, echo);
    let mut c = server.client();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n");
    let started = Instant::now();
    // 1 byte per 100 ms = 10 B/s: always making progress (so never "stalled" for 600 ms), but
    // far under 1000 B/s. The whole body would take 20 s.
    let d = dribble(&c.stream, vec![b'b'; 200], 1, ms(100));
    let r = c.response();
    let elapsed = started.elapsed();
    let sent = d.sent();
    drop(d);
    assert_server_error(&r, 408);
    // Cut at body_timeout plus the allowance for what arrived (a few bytes: milliseconds).
    let allowance = Duration::from_secs_f64(sent as f64 / 1000.0);
    assert!(elapsed >= ms(600) - EARLY, "cut after {elapsed:?}, before body_timeout");
    assert!(elapsed <= ms(600) + allowance + LATE, "slow body cut only after {elapsed:?} ({sent} bytes)");
}

#[test]
fn steady_body_longer_than_body_timeout_is_served() {
    let server = TestServer::with_config(rate_limits, echo);
    let mut c = server.client();
    let body = pattern(40 * 1024);
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40960\r\n\r\n");
    // 1 KiB every 25 ms (about 40 KiB/s) for about 1 s: longer than body_timeout, well above
    // the minimum rate.
    let started = Instant::now();
    let d = dribble(&c.stream, body.clone(), 1024, ms(25));
    let r = c.response();
    drop(d);
    assert!(started.elapsed() > ms(600), "the body went faster than planned; the test proves nothing");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body[8..] == body[..]);
}

// ---------------------------------------------------------------------------------------------
// keepalive_timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn idle_keep_alive_connection_closes_at_keepalive_timeout() {
    let timeout = ms(500);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.keepalive_timeout = timeout;
            c.header_timeout = Duration::from_secs(5);
        },
        hello,
    );
    let mut c = server.client();
    let sent = Instant::now();
    c.send(get("/"));
    let r = c.response();
    let received = Instant::now();
    assert_eq!(r.status, 200);
    assert!(!r.closes());
    match watch_close(&c.stream, timeout + LATE + LATE) {
        CloseWatch::Closed => {}
        other => panic!("idle keep-alive connection not closed silently: {other:?}"),
    }
    assert!(sent.elapsed() >= timeout - EARLY, "closed {:?} after the request", sent.elapsed());
    assert!(received.elapsed() <= timeout + LATE, "closed {:?} after the response", received.elapsed());
}

// ---------------------------------------------------------------------------------------------
// write_timeout and the minimum rate for responses
// ---------------------------------------------------------------------------------------------

const BIG: usize = 32 << 20;

fn big_or_hello(stats: Arc<StreamStats>) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |req: Request| match req.path() {
        "/big" => Response::new(200).with_body(vec![b'z'; BIG]),
        "/stream" => stream_response(&stats, 16 * 1024, 64 * 1024),
        _ => hello(req),
    }
}

#[test]
fn unread_response_is_cut_after_write_timeout_while_others_are_served() {
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.write_timeout = ms(300);
        },
        big_or_hello(Arc::default()),
    );
    let (mut slow, _) = connect_small_rcvbuf(server.addr, 64 * 1024);
    slow.write_all(get("/big").as_bytes()).unwrap();
    // While the slow client reads nothing, others are served promptly.
    for _ in 0..5 {
        let mut c = server.client();
        let t = Instant::now();
        c.send(get("/"));
        let r = response_within(&mut c, Duration::from_secs(3)).expect("server unresponsive during a slow reader");
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "hello took {:?}", t.elapsed());
        thread::sleep(ms(200));
    }
    thread::sleep(ms(1000));
    // Now read: the server must have given up long ago, so less than the whole body arrives.
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        assert!(Instant::now() < deadline, "slow reader's connection still open after 10 s of reading");
    }
    assert!(total < BIG, "the whole {BIG}-byte response arrived; write_timeout did not cut it ({total} bytes)");
}

#[test]
fn unread_stream_is_cut_and_its_iterator_dropped_after_write_timeout() {
    let stats = Arc::new(StreamStats::default());
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.write_timeout = ms(300);
            c.max_buffered_output = 64 * 1024;
        },
        big_or_hello(Arc::clone(&stats)),
    );
    let (mut slow, _) = connect_small_rcvbuf(server.addr, 64 * 1024);
    let sent = Instant::now();
    slow.write_all(get("/stream").as_bytes()).unwrap();
    assert!(
        wait_until(ms(300) + Duration::from_secs(4), || stats.dropped.load(Ordering::SeqCst)),
        "stream to a client that never reads was not dropped ({} bytes produced)",
        stats.produced.load(Ordering::SeqCst)
    );
    let elapsed = sent.elapsed();
    assert!(elapsed >= ms(300) - EARLY, "stream dropped after {elapsed:?}, before write_timeout");
    assert!(stats.produced.load(Ordering::SeqCst) < 64 << 20);
    // The connection is closed: reading ends with EOF or reset before the body's end.
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(n) = slow.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
        assert!(total < 64 << 20);
    }
}

/// Settings where only `min_transfer_rate` can cut a reader that reads about 2 MiB/s: the
/// server sees write progress every time about a third of its send buffer (at most a few MiB
/// on loopback) has drained, so well within `write_timeout`; the rate asked is 16 MiB/s.
fn response_rate_limits(c: &mut Config) {
    base(c);
    c.write_timeout = Duration::from_secs(2);
    c.min_transfer_rate = 16 << 20;
    c.max_buffered_output = 64 * 1024;
}

/// Reads about 64 KiB every 30 ms (about 2 MiB/s) until EOF or error or `limit`; returns
/// whether the connection ended, and the bytes read.
fn paced_read(stream: &mut TcpStream, limit: Duration) -> (bool, usize) {
    let started = Instant::now();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if started.elapsed() > limit {
            return (false, total);
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return (true, total),
            Ok(n) => total += n,
        }
        thread::sleep(ms(30));
    }
}

#[test]
fn steady_slow_reader_is_cut_by_min_transfer_rate() {
    let server = TestServer::with_config(response_rate_limits, big_or_hello(Arc::default()));
    // Control: a reader at full speed gets everything under the same settings.
    let mut fast = server.client();
    fast.send(get("/big"));
    assert_eq!(fast.response().body.len(), BIG);

    let (mut slow, _) = connect_small_rcvbuf(server.addr, 64 * 1024);
    let sent = Instant::now();
    slow.write_all(get("/big").as_bytes()).unwrap();
    read_head(&mut slow);
    // One byte the server does not read while it writes: when it closes the connection the
    // client gets a reset at once, instead of first draining the server's send buffer.
    slow.write_all(b"X").unwrap();
    let (closed, total) = paced_read(&mut slow, Duration::from_secs(9));
    let elapsed = sent.elapsed();
    println!("slow reader cut after {elapsed:?}, {total} bytes read");
    // The whole body at 2 MiB/s would take 16 s; the cut is due after about 2.6 s.
    assert!(closed, "a reader at about 2 MiB/s was not cut (min_transfer_rate 16 MiB/s); read {total} in {elapsed:?}");
    assert!(total < BIG, "the whole body arrived");
    assert!(elapsed >= Duration::from_secs(2) - EARLY, "cut after {elapsed:?}, before write_timeout");
}

#[test]
fn steady_slow_reader_of_a_stream_is_cut_by_min_transfer_rate() {
    let stats = Arc::new(StreamStats::default());
    let server = TestServer::with_config(response_rate_limits, big_or_hello(Arc::clone(&stats)));
    let (mut slow, _) = connect_small_rcvbuf(server.addr, 64 * 1024);
    let sent = Instant::now();
    slow.write_all(get("/stream").as_bytes()).unwrap();
    read_head(&mut slow);
    // Read at about 2 MiB/s until the server drops the stream (or 9 s).
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while !stats.dropped.load(Ordering::SeqCst) && sent.elapsed() < Duration::from_secs(9) {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        thread::sleep(ms(30));
    }
    let elapsed = sent.elapsed();
    assert!(
        stats.dropped.load(Ordering::SeqCst),
        "a streamed response read at about 2 MiB/s was not cut in {elapsed:?} (min_transfer_rate 16 MiB/s); \
         read {total}, produced {}",
        stats.produced.load(Ordering::SeqCst)
    );
    assert!(elapsed >= Duration::from_secs(2) - EARLY, "cut after {elapsed:?}, before write_timeout");
}

// ---------------------------------------------------------------------------------------------
// max_requests_per_connection
// ---------------------------------------------------------------------------------------------

fn counting_echo(calls: Arc<AtomicUsize>) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |req: Request| {
        calls.fetch_add(1, Ordering::SeqCst);
        echo(req)
    }
}

#[test]
fn third_request_gets_connection_close_at_max_requests_per_connection() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.max_requests_per_connection = 3;
        },
        counting_echo(Arc::clone(&calls)),
    );
    let mut c = server.client();
    for i in 1..=3 {
        c.send(get(&format!("/{i}")));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body_text(), format!("GET /{i}\n\n"));
        assert_eq!(r.closes(), i == 3, "request {i}: {}", r.head);
    }
    assert!(c.closed_within(Duration::from_secs(2)), "connection open after its third response");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn pipelined_fourth_request_is_not_served_past_max_requests_per_connection() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.max_requests_per_connection = 3;
        },
        counting_echo(Arc::clone(&calls)),
    );
    let mut c = server.client();
    c.send(format!("{}{}{}{}", get("/1"), get("/2"), get("/3"), get("/4")));
    for i in 1..=3 {
        let r = c.response();
        assert_eq!(r.body_text(), format!("GET /{i}\n\n"));
        assert_eq!(r.closes(), i == 3, "request {i}: {}", r.head);
    }
    let rest = c.read_to_close();
    assert!(rest.is_empty(), "bytes after the last allowed response: {:?}", String::from_utf8_lossy(&rest));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the fourth request reached the handler");
}

// ---------------------------------------------------------------------------------------------
// 503: max_queued_requests
// ---------------------------------------------------------------------------------------------

fn blocking(latch: Arc<Latch>) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |req: Request| {
        if req.path() == "/block" {
            latch.enter_and_wait();
        }
        echo(req)
    }
}

#[test]
fn full_queue_gets_503_with_retry_after_and_service_resumes() {
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.threads = 1;
            c.max_queued_requests = Some(1);
            c.retry_after = Duration::from_secs(3);
        },
        blocking(Arc::clone(&latch)),
    );
    // A occupies the only worker.
    let mut a = server.client();
    a.send(get("/block"));
    assert!(latch.wait_entered(1, Duration::from_secs(5)), "the worker never started request A");
    // B and C: one of them fills the queue (and waits), the other must get 503 at once.
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    for name in ["B", "C"] {
        let mut c = server.client();
        c.send(get(&format!("/{name}")));
        let tx = tx.clone();
        readers.push(thread::spawn(move || {
            let r = c.try_response(false);
            let closed = r.as_ref().is_ok_and(|r| r.status == 503) && c.closed_within(Duration::from_secs(2));
            let _ = tx.send((name, r, closed));
        }));
    }
    let (first, r, closed) = rx.recv_timeout(Duration::from_secs(5)).expect("neither B nor C was answered");
    let r = r.expect("response");
    assert_server_error(&r, 503);
    assert_eq!(r.header("retry-after"), Some("3"), "{}", r.head);
    assert!(closed, "connection {first} not closed after 503");
    // The other one is queued: no answer while the worker is held.
    assert!(rx.recv_timeout(ms(300)).is_err(), "the queued request was answered while the worker was busy");
    latch.open();
    let ra = a.response();
    assert_eq!(ra.status, 200);
    let (second, r2, _) = rx.recv_timeout(Duration::from_secs(5)).expect("queued request never answered");
    assert_ne!(first, second);
    let r2 = r2.expect("queued response");
    assert_eq!(r2.status, 200);
    assert_eq!(r2.body_text(), format!("GET /{second}\n\n"));
    for h in readers {
        h.join().unwrap();
    }
    // Service resumes for new clients.
    let mut d = server.client();
    d.send(get("/after"));
    assert_eq!(d.response().status, 200);
}

// ---------------------------------------------------------------------------------------------
// Streaming back-pressure: max_buffered_output
// ---------------------------------------------------------------------------------------------

#[test]
fn streaming_producer_is_held_at_max_buffered_output() {
    const CHUNK: usize = 16 * 1024;
    const CHUNKS: usize = 4096; // 64 MiB in all
    const HIGH_WATER: usize = 64 * 1024;
    let stats = Arc::new(StreamStats::default());
    let stats2 = Arc::clone(&stats);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.max_buffered_output = HIGH_WATER;
            c.write_timeout = Duration::from_secs(10);
            c.min_transfer_rate = 0;
        },
        move |_req: Request| stream_response(&stats2, CHUNK, CHUNKS),
    );
    let (mut s, rcvbuf) = connect_small_rcvbuf(server.addr, 64 * 1024);
    s.write_all(get("/").as_bytes()).unwrap();
    let mut read = read_head(&mut s).len() as u64;
    // What may legitimately sit between the producer and the client: the gate's high-water mark
    // plus the chunk the producer holds, the server's send buffer, the client's receive buffer.
    let bound = (HIGH_WATER + CHUNK + 64 + max_send_buffer() + rcvbuf) as u64;
    assert!(bound < (CHUNK * CHUNKS) as u64 / 4, "buffers too large for a meaningful test");

    // The client reads nothing for a while: the producer must stop.
    thread::sleep(ms(400));
    let p1 = stats.produced.load(Ordering::SeqCst);
    thread::sleep(ms(500));
    let p2 = stats.produced.load(Ordering::SeqCst);
    assert!(p2 <= read + bound, "producer ran ahead of a client that reads nothing: {p2} produced, {read} read");
    assert!(p2 - p1 <= CHUNK as u64, "producer kept going while the client read nothing: {p1} -> {p2}");

    // The client reads slowly: the producer follows, never further ahead than the bound.
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..30 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        read += n as u64;
        thread::sleep(ms(10));
        let produced = stats.produced.load(Ordering::SeqCst);
        assert!(produced <= read + bound, "{produced} produced, {read} read, bound {bound}");
    }
    assert!(stats.produced.load(Ordering::SeqCst) < (CHUNK * CHUNKS) as u64 / 2);
    assert!(!stats.dropped.load(Ordering::SeqCst));
}

#[test]
fn stream_iterator_is_dropped_when_the_client_disconnects() {
    let stats = Arc::new(StreamStats::default());
    let stats2 = Arc::clone(&stats);
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.threads = 1;
            c.max_buffered_output = 64 * 1024;
            c.write_timeout = Duration::from_secs(30);
            c.min_transfer_rate = 0;
        },
        move |req: Request| match req.path() {
            "/stream" => stream_response(&stats2, 16 * 1024, 64 * 1024),
            _ => hello(req),
        },
    );
    let (mut s, _) = connect_small_rcvbuf(server.addr, 64 * 1024);
    s.write_all(get("/stream").as_bytes()).unwrap();
    read_head(&mut s);
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..4 {
        assert!(s.read(&mut buf).unwrap() > 0);
    }
    assert!(!stats.dropped.load(Ordering::SeqCst));
    let gone = Instant::now();
    drop(s);
    assert!(
        wait_until(Duration::from_secs(3), || stats.dropped.load(Ordering::SeqCst)),
        "stream iterator still alive 3 s after its client disconnected"
    );
    assert!(gone.elapsed() < Duration::from_secs(3));
    // The only worker is free again.
    let mut c = server.client();
    c.send(get("/"));
    assert_eq!(response_within(&mut c, Duration::from_secs(3)).expect("worker not freed").status, 200);
}

// ---------------------------------------------------------------------------------------------
// connection_limit
// ---------------------------------------------------------------------------------------------

fn cap(c: &mut Config) {
    base(c);
    c.connection_limit = 8;
    c.keepalive_timeout = Duration::from_secs(30);
    c.header_timeout = Duration::from_secs(10);
}

fn served_idle_clients(server: &TestServer, n: usize) -> Vec<Client> {
    (0..n)
        .map(|i| {
            let mut c = server.client();
            c.send(get(&format!("/{i}")));
            let r = response_within(&mut c, Duration::from_secs(3)).unwrap_or_else(|e| panic!("client {i}: {e}"));
            assert_eq!(r.status, 200);
            assert!(!r.closes());
            c
        })
        .collect()
}

#[test]
fn connection_cap_evicts_the_longest_idle_connection_for_a_new_client() {
    let server = TestServer::with_config(cap, hello);
    let mut clients = served_idle_clients(&server, 8);
    let mut ninth = server.client();
    ninth.send(get("/ninth"));
    let r = response_within(&mut ninth, Duration::from_secs(3)).expect("9th client not served at the cap");
    assert_eq!(r.status, 200);
    assert!(clients[0].closed_within(Duration::from_secs(2)), "the longest-idle connection was not evicted");
    // The most recently used one is untouched and still serves.
    let last = clients.last_mut().unwrap();
    last.send(get("/again"));
    assert_eq!(response_within(last, Duration::from_secs(3)).expect("newest idle connection was closed").status, 200);
}

#[test]
fn connection_cap_evicts_nobody_while_no_client_waits() {
    let server = TestServer::with_config(cap, hello);
    let mut clients = served_idle_clients(&server, 8);
    // Exactly at the cap, nobody waiting: all 8 connections may stay open.
    thread::sleep(ms(300));
    for (i, c) in clients.iter_mut().enumerate() {
        match watch_close(&c.stream, ms(30)) {
            CloseWatch::Open => {}
            other => panic!("connection {i} of 8 (limit 8) was closed with no client waiting: {other:?}"),
        }
    }
}

/// Replaces `connection_cap_holds_a_new_client_while_all_are_mid_request`, which pinned the
/// behaviour issue 11 removes (half-sent heads could hold the cap until their deadline).
#[test]
fn connection_cap_gives_the_oldest_partial_head_s_place_to_a_new_client() {
    let server = TestServer::with_config(cap, hello);
    // Eight clients, each with half a head sent, one after another.
    let mut busy: Vec<Client> = (0..8)
        .map(|_| {
            let mut c = server.client();
            c.send("GET /busy HTTP/1.1\r\n");
            thread::sleep(ms(30));
            c
        })
        .collect();
    thread::sleep(ms(200));
    for (i, c) in busy.iter().enumerate() {
        match watch_close(&c.stream, ms(30)) {
            CloseWatch::Open => {}
            other => panic!("client {i}, mid-request, was closed when the cap (8) was reached: {other:?}"),
        }
    }
    let mut ninth = server.client();
    ninth.send(get("/ninth"));
    let r = response_within(&mut ninth, ms(700)).expect("9th client not served at a cap full of partial heads");
    assert_eq!(r.status, 200);
    // The oldest partial head gave way; the others keep their place and finish.
    assert!(busy[0].closed_within(Duration::from_secs(2)), "the oldest partial head was not the one cut");
    for (i, c) in busy.iter_mut().enumerate().skip(1) {
        let r = c
            .try_send("Host: x\r\n\r\n")
            .and_then(|()| response_within(c, Duration::from_secs(3)))
            .unwrap_or_else(|e| panic!("client {i}, mid-request at the cap, was dropped: {e}"));
        assert_eq!(r.status, 200);
    }
}
