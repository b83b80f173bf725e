//! Request-smuggling vectors from published advisories, replayed over a real socket.
//!
//! Each hostile request is followed, in the same `send()`, by a hidden second request
//! (`GET /smuggled`). A handler records every target it serves. The server must answer the
//! hostile request with its own error (`Connection: close`), close the connection, and never
//! serve `/smuggled` (nor anything else).
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use maitred::{Request, Response};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// A server whose handler records the target of every request it serves.
fn recording_server() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let server = TestServer::start(move |req: Request| {
        record.lock().unwrap().push(req.target().to_string());
        Response::text(200, format!("served {}\n", req.target()))
    });
    (server, seen)
}

/// One vector: a name that cites the advisory, the hostile request, and the status the server
/// must answer it with.
struct Vector {
    name: &'static str,
    hostile: Vec<u8>,
    status: u16,
}

fn v(name: &'static str, hostile: impl AsRef<[u8]>, status: u16) -> Vector {
    Vector { name, hostile: hostile.as_ref().to_vec(), status }
}

/// A POST with `Transfer-Encoding: chunked` and the given (hostile) chunked body.
fn chunked(body: &str) -> String {
    format!("POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
}

/// A POST with the given extra header lines (each ending in CRLF) and body.
fn post(headers: &str, body: &str) -> String {
    format!("POST /hostile HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}")
}

/// Sends the vector followed by the hidden request; returns a description of what went wrong.
fn replay(server: &TestServer, seen: &Mutex<Vec<String>>, vector: &Vector) -> Result<(), String> {
    let name = vector.name;
    seen.lock().unwrap().clear();
    let mut c = server.client();
    let mut bytes = vector.hostile.clone();
    bytes.extend_from_slice(SMUGGLED.as_bytes());
    c.send(&bytes);
    let r = c.try_response(false).map_err(|e| format!("{name}: no response: {e}"))?;
    if r.status != vector.status {
        return Err(format!(
            "{name}: status {} instead of {}; sent {:?}; head {:?}",
            r.status,
            vector.status,
            String::from_utf8_lossy(&bytes),
            r.head
        ));
    }
    if !r.closes() {
        return Err(format!("{name}: no Connection: close; head {:?}", r.head));
    }
    // A response to the hidden request would show up here, before the close.
    if !c.closed_within(CLOSE_WITHIN) {
        return Err(format!(
            "{name}: connection not closed after the error, or more bytes sent: {:?}",
            String::from_utf8_lossy(c.leftover())
        ));
    }
    let served = seen.lock().unwrap().clone();
    if served.iter().any(|t| t == "/smuggled") {
        return Err(format!("{name}: /smuggled was served (served: {served:?})"));
    }
    if !served.is_empty() {
        return Err(format!("{name}: handler called for a rejected request (served: {served:?})"));
    }
    Ok(())
}

/// Replays every vector; reports all failures together.
fn replay_all(vectors: &[Vector]) {
    let (server, seen) = recording_server();
    let failures: Vec<String> = vectors.iter().filter_map(|vector| replay(&server, &seen, vector).err()).collect();
    assert!(failures.is_empty(), "{} of {} vector(s) failed:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}

#[test]
fn the_recorder_sees_a_legitimately_pipelined_request() {
    // Control experiment: without a hostile first request, the hidden one IS served, so the
    // vectors below would notice a server that fell for them.
    let (server, seen) = recording_server();
    let mut c = server.client();
    c.send(format!("{}{SMUGGLED}", post("Content-Length: 5\r\n", "hello")));
    assert_eq!(c.response().status, 200);
    assert_eq!(c.response().status, 200);
    assert_eq!(*seen.lock().unwrap(), ["/hostile", "/smuggled"]);
}

#[test]
fn waitress_advisory_vectors_are_refused_and_nothing_is_smuggled() {
    let vectors = [
        // CVE-2022-24761 (GHSA-4f7p-27jc-3c36): int(x, 16) accepted `0x`, signs, whitespace and
        // underscores in chunk sizes; chunk extensions were not validated.
        v("waitress CVE-2022-24761: chunk size with 0x prefix", chunked("0x5\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk size 0x0 as last chunk", chunked("0x0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk size with leading +", chunked("+5\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk size with leading -", chunked("-0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk size with underscore", chunked("0_5\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk size with leading space", chunked(" 5\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk size with trailing space", chunked("5 \r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk extension with bare CR", chunked("5;a\rb\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk extension with bare LF", chunked("5;a\nb\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: chunk extension with NUL", chunked("5;a\0\r\nhello\r\n0\r\n\r\n"), 400),
        v("waitress CVE-2022-24761: Content-Length with leading +", post("Content-Length: +5\r\n", "hello"), 400),
        v("waitress CVE-2022-24761: Content-Length with underscore", post("Content-Length: 0_5\r\n", "hello"), 400),
        // CVE-2019-16785: LF accepted as a line terminator.
        v("waitress CVE-2019-16785: LF-only head", "POST /hostile HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello", 400),
        v(
            "waitress CVE-2019-16785: LF after the Transfer-Encoding header",
            "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\nContent-Length: 5\r\n\r\nhello",
            400,
        ),
        v("waitress CVE-2019-16785: LF-only chunk lines", chunked("5\nhello\n0\n\n"), 400),
        // CVE-2019-16786: `Transfer-Encoding` with codings besides chunked.
        v(
            "waitress CVE-2019-16786: gzip, chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            501,
        ),
        v(
            "waitress CVE-2019-16786: identity, chunked",
            post("Transfer-Encoding: identity, chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            501,
        ),
        v(
            "waitress CVE-2019-16786: unknown coding with Content-Length",
            post("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        // CVE-2019-16789: whitespace (incl. vertical tab and folding) in headers.
        v(
            "waitress CVE-2019-16789: space before colon in Transfer-Encoding",
            post("Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        v(
            "waitress CVE-2019-16789: vertical tab before chunked",
            post("Transfer-Encoding: \x0bchunked\r\n", "0\r\n\r\n"),
            400,
        ),
        v(
            "waitress CVE-2019-16789: form feed after chunked",
            post("Transfer-Encoding: chunked\x0c\r\n", "0\r\n\r\n"),
            400,
        ),
        v(
            "waitress CVE-2019-16789: Transfer-Encoding value folded onto the next line",
            post("Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        // CVE-2019-16792: two Content-Length headers.
        v(
            "waitress CVE-2019-16792: differing Content-Length headers",
            post("Content-Length: 0\r\nContent-Length: 35\r\n", ""),
            400,
        ),
    ];
    replay_all(&vectors);
}

#[test]
fn gunicorn_advisory_vectors_are_refused_and_nothing_is_smuggled() {
    let vectors = [
        // CVE-2024-1135: Transfer-Encoding validation (duplicates, chunked not alone) and
        // Transfer-Encoding alongside Content-Length.
        v(
            "gunicorn CVE-2024-1135: chunked, gzip",
            post("Transfer-Encoding: chunked, gzip\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            501,
        ),
        v(
            "gunicorn CVE-2024-1135: chunked twice in one list",
            post("Transfer-Encoding: chunked, chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            501,
        ),
        v(
            "gunicorn CVE-2024-1135: duplicate Transfer-Encoding headers (chunked, gzip)",
            post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        v(
            "gunicorn CVE-2024-1135: duplicate Transfer-Encoding headers (identity, chunked)",
            post("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
            400,
        ),
        v(
            "gunicorn CVE-2024-1135: Content-Length then Transfer-Encoding (CL.TE)",
            post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX"),
            400,
        ),
        v(
            "gunicorn CVE-2024-1135: Transfer-Encoding then Content-Length (TE.CL)",
            post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        // CVE-2024-6827: an invalid Transfer-Encoding fell back to Content-Length; TE on 1.0.
        v(
            "gunicorn CVE-2024-6827: invalid Transfer-Encoding value with Content-Length",
            post("Transfer-Encoding: chunked;x=1\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        v(
            "gunicorn CVE-2024-6827: quoted chunked",
            post("Transfer-Encoding: \"chunked\"\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        v(
            "gunicorn CVE-2024-6827: unknown coding without Content-Length",
            post("Transfer-Encoding: xchunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            501,
        ),
        v(
            "gunicorn CVE-2024-6827: Transfer-Encoding on HTTP/1.0",
            "POST /hostile HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        v(
            "gunicorn CVE-2024-6827: Transfer-Encoding and Content-Length on HTTP/1.0",
            "POST /hostile HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            400,
        ),
        v(
            "gunicorn CVE-2024-6827: Transfer-Encoding on HTTP/1.0 keep-alive",
            "POST /hostile HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
    ];
    replay_all(&vectors);
}

#[test]
fn go_net_http_advisory_vectors_are_refused_and_nothing_is_smuggled() {
    let long_extension = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(9000));
    let vectors = [
        // CVE-2022-1705 (go.dev/issue/53188): CRs around the Transfer-Encoding value were
        // stripped, so `Transfer-Encoding: \rchunked` meant chunked.
        v("go CVE-2022-1705: CR before chunked", post("Transfer-Encoding: \rchunked\r\n", "1\r\na\r\n0\r\n\r\n"), 400),
        v("go CVE-2022-1705: CR after chunked", post("Transfer-Encoding: chunked\r\r\n", "1\r\na\r\n0\r\n\r\n"), 400),
        v(
            "go CVE-2022-1705: chunked not last",
            post("Transfer-Encoding: chunked, identity\r\n", "1\r\na\r\n0\r\n\r\n"),
            501,
        ),
        v("go CVE-2022-1705: empty list element", post("Transfer-Encoding: , chunked\r\n", "1\r\na\r\n0\r\n\r\n"), 400),
        // CVE-2023-39326: excessive chunk extension data.
        v("go CVE-2023-39326: chunk extension longer than max_header_line", chunked(&long_extension), 400),
        // CVE-2025-22871 (go.dev/issue/71988): bare LF accepted in chunk-size lines.
        v("go CVE-2025-22871: bare LF after chunk size", chunked("5\nhello\r\n0\r\n\r\n"), 400),
        v("go CVE-2025-22871: bare LF after chunk extension", chunked("5;ext\nhello\r\n0\r\n\r\n"), 400),
        v("go CVE-2025-22871: LF-terminated last chunk", chunked("5\r\nhello\r\n0\n\r\n"), 400),
        v("go CVE-2025-22871: LF-terminated end of trailers", chunked("5\r\nhello\r\n0\r\n\n"), 400),
        v("go CVE-2025-22871: LF after chunk data", chunked("5\r\nhello\n0\r\n\r\n"), 400),
        v("go CVE-2025-22871: extension with bare CR hiding a size line", chunked("2;\r0\r\n\r\nhi\r\n0\r\n\r\n"), 400),
    ];
    replay_all(&vectors);
}

#[test]
fn other_framing_vectors_are_refused_and_nothing_is_smuggled() {
    let vectors = [
        v("chunk size overflow: 17 hex digits", chunked("10000000000000000\r\nhello\r\n0\r\n\r\n"), 400),
        v("chunk size overflow: 17 digits with leading zeros", chunked("00000000000000005\r\nhello\r\n0\r\n\r\n"), 400),
        v("chunk data longer than its size", chunked("3\r\nhello\r\n0\r\n\r\n"), 400),
        v("chunk data shorter than its size", chunked("7\r\nhello\r\n0\r\n\r\n"), 400),
        v("trailer obs-fold", chunked("5\r\nhello\r\n0\r\nT: a\r\n folded\r\n\r\n"), 400),
        v("trailer with bare LF", chunked("5\r\nhello\r\n0\r\nT: a\nGET /x HTTP/1.1\r\n\r\n"), 400),
        v("NUL in a header value", post("X-A: a\0b\r\nContent-Length: 5\r\n", "hello"), 400),
        v("bare CR inside the Content-Length value", post("Content-Length: 5\r0\r\n", "hello"), 400),
        v("space before colon in Content-Length", post("Content-Length : 5\r\n", "hello"), 400),
        v("obs-fold continuing Content-Length", post("Content-Length: 5\r\n 0\r\n", "hello"), 400),
        v("Content-Length list", post("Content-Length: 5, 5\r\n", "hello"), 400),
        v("Content-Length over max_body_size", post("Content-Length: 99999999999\r\n", "hello"), 413),
        v("unknown expectation", post("Content-Length: 5\r\nExpect: 200-ok\r\n", "hello"), 417),
        v("HTTP/2.0 request line", "POST /hostile HTTP/2.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 505),
        v("h2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        v("CONNECT tunnel", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501),
        v("missing Host", "POST /hostile HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
        v("two Host headers", "GET /hostile HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ];
    replay_all(&vectors);
}

#[test]
fn trailers_cannot_change_the_framing_of_the_next_request() {
    // Trailers are dropped: a Content-Length or Transfer-Encoding trailer must not make the
    // server treat the next request as body. Both requests are legitimate and both are served.
    let (server, seen) = recording_server();
    let mut c = server.client();
    c.send(format!(
        "{}{SMUGGLED}",
        chunked("5\r\nhello\r\n0\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n")
    ));
    assert_eq!(c.response().status, 200);
    assert_eq!(c.response().status, 200);
    assert_eq!(*seen.lock().unwrap(), ["/hostile", "/smuggled"]);
    assert!(!c.closed_within(Duration::from_millis(50)) && c.leftover().is_empty());
}

#[test]
fn error_after_a_served_request_never_serves_what_follows() {
    // A valid request, then a hostile one, then the hidden one, all in one send: the first is
    // served, the second refused, the third never reaches the handler.
    let (server, seen) = recording_server();
    let mut c = server.client();
    c.send(format!(
        "GET /first HTTP/1.1\r\nHost: x\r\n\r\n{}{SMUGGLED}",
        post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")
    ));
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "served /first\n"));
    let r = c.response();
    assert_eq!(r.status, 400);
    assert!(r.closes(), "{:?}", r.head);
    assert!(c.closed_within(CLOSE_WITHIN));
    assert_eq!(*seen.lock().unwrap(), ["/first"]);
}
