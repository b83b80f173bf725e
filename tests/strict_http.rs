//! The strict HTTP/1.1 rules, pinned over real sockets: raw bytes in, exact status and framing
//! out. Every error the server generates must carry `Connection: close` and be followed by the
//! server closing the connection.
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use maitred::{Body, Request, Response};

/// Upper bound for the server to close after an error (it half-closes at once; this only
/// bounds a failure).
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// Checks that `r` (already read from `c`) is an error the server closes after.
fn check_error_closes(c: &mut Client, r: &RawResponse, case: &str) -> Result<(), String> {
    if !r.closes() {
        return Err(format!("case {case}: error response without Connection: close; head {:?}", r.head));
    }
    if !c.closed_within(CLOSE_WITHIN) {
        return Err(format!("case {case}: connection not closed (or more bytes sent) after the error"));
    }
    Ok(())
}

/// Asserts that `r` (already read from `c`) is an error the server closes after.
fn assert_error_closes(c: &mut Client, r: &RawResponse, case: &str) {
    if let Err(e) = check_error_closes(c, r, case) {
        panic!("{e}");
    }
}

/// Sends `raw` on a new connection and checks that the server answers `status` by itself,
/// with `Connection: close`, and then closes.
fn check_rejected(addr: SocketAddr, case: &str, raw: &[u8], status: u16) -> Result<RawResponse, String> {
    let mut c = Client::connect(addr);
    c.send(raw);
    let r = c.try_response(false).map_err(|e| format!("case {case}: no response: {e}"))?;
    if r.status != status {
        return Err(format!(
            "case {case}: status {} instead of {status}; sent {:?}; head {:?}",
            r.status,
            String::from_utf8_lossy(raw),
            r.head
        ));
    }
    check_error_closes(&mut c, &r, case)?;
    Ok(r)
}

/// [`check_rejected`], panicking on failure.
fn assert_rejected(addr: SocketAddr, case: &str, raw: &[u8], status: u16) -> RawResponse {
    check_rejected(addr, case, raw, status).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs every case of a table of rejections and reports all the failures together.
fn assert_all_rejected<N, R>(addr: SocketAddr, cases: impl IntoIterator<Item = (N, R, u16)>)
where
    N: AsRef<str>,
    R: AsRef<[u8]>,
{
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(case, raw, status)| check_rejected(addr, case.as_ref(), raw.as_ref(), status).err())
        .collect();
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// Sends `raw` on a new connection and returns the first response, asserting its status.
fn assert_served(addr: SocketAddr, case: &str, raw: &[u8], status: u16) -> RawResponse {
    let mut c = Client::connect(addr);
    c.send(raw);
    let r = c.try_response(false).unwrap_or_else(|e| panic!("case {case}: no response: {e}"));
    assert_eq!(r.status, status, "case {case}: wrong status; head {:?}; body {:?}", r.head, r.body_text());
    r
}

/// Reports what the handler saw of the target: `target|path|query|host`.
fn describe_target(req: Request) -> Response {
    let text = format!(
        "{}|{}|{}|{}",
        req.target(),
        req.path(),
        req.query().unwrap_or("<none>"),
        req.host().unwrap_or("<none>")
    );
    Response::text(200, text)
}

/// Echo of the body plus what became of the trailers: `body|x-trailer header or <none>`.
fn body_and_trailer(mut req: Request) -> Response {
    let body = req.take_body().into_bytes().unwrap();
    let mut text = String::from_utf8_lossy(&body).into_owned();
    text.push('|');
    text.push_str(req.header("x-trailer").unwrap_or("<none>"));
    Response::text(200, text)
}

fn text_chunks(parts: &'static [&'static str]) -> impl Iterator<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    parts.iter().map(|p| Ok(p.as_bytes().to_vec()))
}

/// Handler behaviours selected by path, for the response rules.
fn routes(req: Request) -> Response {
    let path = req.path().to_string();
    if let Some(code) = path.strip_prefix("/status/") {
        return Response::new(code.parse().unwrap()).with_body("status body");
    }
    match path.as_str() {
        "/hello" => Response::text(200, "Hello"),
        "/204" => Response::new(204).with_header("Content-Length", "5").with_body("oops!"),
        "/304" => Response::new(304)
            .with_header("ETag", "\"v1\"")
            .with_header("Transfer-Encoding", "chunked")
            .with_body("oops!"),
        "/stream" => Response::new(200).with_body(Body::stream(text_chunks(&["hello ", "streamed ", "world"]))),
        "/sized" => Response::new(200).with_body(Body::stream_sized(text_chunks(&["hello ", "sized"]), 11)),
        "/inject-crlf" => Response::text(200, "x").with_header("X-Note", "a\r\nX-Injected: 1"),
        "/inject-lf" => Response::text(200, "x").with_header("X-Note", "a\nX-Injected: 1"),
        "/inject-cr" => Response::text(200, "x").with_header("X-Note", "a\rX-Injected: 1"),
        "/inject-nul" => Response::text(200, "x").with_header("X-Note", "a\0X-Injected: 1"),
        "/bad-name-space" => Response::text(200, "x").with_header("X Injected", "1"),
        "/bad-name-colon" => Response::text(200, "x").with_header("X-Injected: 1\r\nX-Other", "1"),
        "/bad-name-empty" => Response::text(200, "x").with_header("", "1"),
        "/bad-reason" => Response::text(200, "x").with_reason("OK\r\nX-Injected: 1"),
        "/panic" => panic!("deliberate panic from a strict_http test handler"),
        "/framing" => Response::new(200)
            .with_header("Content-Length", "99")
            .with_header("Transfer-Encoding", "chunked")
            .with_body("abc"),
        "/framing-stream" => Response::new(200)
            .with_header("Transfer-Encoding", "gzip")
            .with_body(Body::stream(text_chunks(&["abc", "def"]))),
        "/own-server" => Response::text(200, "x").with_header("Server", "custom/1"),
        _ => Response::text(404, "not found"),
    }
}

// ---------------------------------------------------------------------------------------------
// Request line and head syntax
// ---------------------------------------------------------------------------------------------

#[test]
fn head_syntax_violations_are_400_and_close() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        // Bare CR / bare LF anywhere in the head.
        ("bare LF ends request line", b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
        ("bare LF ends a header", b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"),
        ("bare LF ends the head", b"GET / HTTP/1.1\r\nHost: x\r\n\n"),
        ("LF-only head", b"GET / HTTP/1.1\nHost: x\n\n"),
        ("bare CR inside request line", b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("bare CR after version", b"GET / HTTP/1.1\r\rHost: x\r\n\r\n"),
        ("bare CR inside header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
        ("bare CR inside header name", b"GET / HTTP/1.1\r\nHost: x\r\nX\r-A: b\r\n\r\n"),
        ("bare CR as the blank line", b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n"),
        ("bare LF before request line", b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Whitespace before the colon.
        ("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("tab before colon", b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"),
        ("space before colon on another header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n"),
        // obs-fold.
        ("obs-fold with space", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        ("obs-fold with tab", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"),
        ("whitespace before first header", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"),
        // Field names that are not tokens.
        ("name with space", b"GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n"),
        ("name with parenthesis", b"GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n"),
        ("name with quote", b"GET / HTTP/1.1\r\nHost: x\r\nX\"A: b\r\n\r\n"),
        ("name with slash", b"GET / HTTP/1.1\r\nHost: x\r\nX/A: b\r\n\r\n"),
        ("name with at sign", b"GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n"),
        ("name with brackets", b"GET / HTTP/1.1\r\nHost: x\r\n[XA]: b\r\n\r\n"),
        ("name with UTF-8", b"GET / HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9: b\r\n\r\n"),
        ("empty name", b"GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n"),
        ("line without colon", b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
        // Control characters in values (and names).
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"),
        ("SOH in value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"),
        ("ESC in value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n"),
        ("VT in value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x0bb\r\n\r\n"),
        ("FF in value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x0cb\r\n\r\n"),
        ("DEL in value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n"),
        ("NUL in name", b"GET / HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n"),
        ("NUL in target", b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Request line shape.
        ("two spaces after method", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("trailing space after version", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n"),
        ("leading space before method", b" GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("tab as delimiter", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("missing target", b"GET HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("missing version (HTTP/0.9 style)", b"GET /\r\nHost: x\r\n\r\n"),
        // Method tokens.
        ("method with parenthesis", b"G(ET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("method with quote", b"GE\"T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("method with at sign", b"GET@ / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("method with slash", b"GE/T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("method with UTF-8", b"G\xc3\x89T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Malformed versions.
        ("lowercase http", b"GET / http/1.1\r\nHost: x\r\n\r\n"),
        ("version with letters", b"GET / HTTP/x.y\r\nHost: x\r\n\r\n"),
        ("version with extra digit", b"GET / HTTP/1.10\r\nHost: x\r\n\r\n"),
        ("version with two-digit major", b"GET / HTTP/11.1\r\nHost: x\r\n\r\n"),
        ("version with trailing junk", b"GET / HTTP/1.1x\r\nHost: x\r\n\r\n"),
        ("version name only", b"GET / HTTP\r\nHost: x\r\n\r\n"),
        ("version not HTTP", b"GET / HTTPS/1.1\r\nHost: x\r\n\r\n"),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

#[test]
fn malformed_request_line_ending_in_a_supported_version_is_400_not_505() {
    // The line is malformed, but its last word is a version the server speaks (or a bare
    // major 1): "HTTP Version Not Supported" would be the wrong answer.
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        ("two spaces after target", b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("space inside target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("extra word before version", b"GET / extra HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("version without minor", b"GET / HTTP/1\r\nHost: x\r\n\r\n"),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

#[test]
fn valid_head_variants_are_served() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8], &str)] = &[
        ("plain", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET /\n\n"),
        ("tab inside a value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n", "GET /\n\n"),
        ("obs-text in a value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9 \xff\r\n\r\n", "GET /\n\n"),
        ("trailing whitespace in a value", b"GET / HTTP/1.1\r\nHost: x \t\r\nX-A: b  \r\n\r\n", "GET /\n\n"),
        ("no space after colon", b"GET / HTTP/1.1\r\nHost:x\r\n\r\n", "GET /\n\n"),
        ("every tchar in a name", b"GET / HTTP/1.1\r\nHost: x\r\nX-!#$%&'*+.^_`|~09az: 1\r\n\r\n", "GET /\n\n"),
        ("extension method", b"PURGE /a HTTP/1.1\r\nHost: x\r\n\r\n", "PURGE /a\n\n"),
        ("lowercase method is a token", b"get /a HTTP/1.1\r\nHost: x\r\n\r\n", "get /a\n\n"),
        ("one empty line before request line", b"\r\nGET /e1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /e1\n\n"),
        ("two empty lines before request line", b"\r\n\r\nGET /e2 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /e2\n\n"),
        ("HTTP/1.0", b"GET /ten HTTP/1.0\r\n\r\n", "GET /ten\n\n"),
    ];
    for (name, raw, body) in cases {
        let r = assert_served(server.addr, name, raw, 200);
        assert_eq!(r.body_text(), *body, "case {name}");
    }
}

#[test]
fn empty_lines_before_a_pipelined_request_are_tolerated_on_a_kept_alive_connection() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    // Old clients send a stray CRLF after a POST body.
    c.send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "POST /a\n\nhi"));
    c.send("\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "GET /b\n\n"));
}

#[test]
fn http2_and_http3_versions_and_the_h2_preface_are_505_and_close() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        ("HTTP/3.0", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"),
        ("HTTP/2", b"GET / HTTP/2\r\nHost: x\r\n\r\n"),
        ("h2 connection preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        (
            "h2 preface followed by a SETTINGS frame",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        ),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 505)));
}

// ---------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------

#[test]
fn host_violations_are_400_and_close() {
    let server = TestServer::start(describe_target);
    let cases: &[(&str, &[u8])] = &[
        ("missing on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n"),
        ("missing with other headers", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n"),
        ("repeated, identical", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        ("repeated, different", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("repeated, different case of name", b"GET / HTTP/1.1\r\nHost: a\r\nhOsT: a\r\n\r\n"),
        ("space inside", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        ("user info", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"),
        ("at sign alone", b"GET / HTTP/1.1\r\nHost: @\r\n\r\n"),
        ("port with letters", b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n"),
        ("port too long", b"GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n"),
        ("negative port", b"GET / HTTP/1.1\r\nHost: a:-1\r\n\r\n"),
        ("port only", b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n"),
        ("empty after space", b"GET / HTTP/1.1\r\nHost: \r\n\r\n"),
        ("empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        ("path inside", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        ("unclosed IPv6 literal", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
        ("IPv6 literal with junk after", b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"),
        ("bad percent-encoding", b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n"),
        ("comma list", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"),
        ("invalid on HTTP/1.0", b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n"),
        ("repeated on HTTP/1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

#[test]
fn valid_hosts_are_served_and_reported() {
    let server = TestServer::start(describe_target);
    let cases: &[(&str, &[u8], &str)] = &[
        ("name", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "/|/|<none>|example.com"),
        ("name with port", b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "/|/|<none>|example.com:8080"),
        ("IPv4 with port", b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", "/|/|<none>|127.0.0.1:80"),
        ("IPv6 literal", b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", "/|/|<none>|[::1]"),
        ("IPv6 literal with port", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "/|/|<none>|[::1]:8080"),
        ("empty port", b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", "/|/|<none>|a:"),
        ("HTTP/1.0 with Host", b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", "/|/|<none>|a"),
        ("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", "/|/|<none>|<none>"),
    ];
    for (name, raw, body) in cases {
        let r = assert_served(server.addr, name, raw, 200);
        assert_eq!(r.body_text(), *body, "case {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Request targets
// ---------------------------------------------------------------------------------------------

#[test]
fn origin_form_with_query_is_split_into_path_and_query() {
    let server = TestServer::start(describe_target);
    let r = assert_served(server.addr, "origin", b"GET /a/b?c=d&e HTTP/1.1\r\nHost: h\r\n\r\n", 200);
    assert_eq!(r.body_text(), "/a/b?c=d&e|/a/b|c=d&e|h");
    let r = assert_served(server.addr, "empty query", b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", 200);
    assert_eq!(r.body_text(), "/a?|/a||h");
}

#[test]
fn absolute_form_target_is_passed_as_sent_with_path_query_and_host() {
    let echo_server = TestServer::start(echo);
    let r =
        assert_served(echo_server.addr, "echo", b"GET http://example.com/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", 200);
    assert_eq!(r.body_text(), "GET http://example.com/p/q?x=1\n\n");

    let server = TestServer::start(describe_target);
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "path and query; authority wins over Host",
            b"GET http://example.com/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
            "http://example.com/p/q?x=1|/p/q|x=1|example.com",
        ),
        (
            "port, no path",
            b"GET http://example.com:8080 HTTP/1.1\r\nHost: other\r\n\r\n",
            "http://example.com:8080|/|<none>|example.com:8080",
        ),
        ("query, no path", b"GET http://h?q HTTP/1.1\r\nHost: other\r\n\r\n", "http://h?q|/|q|h"),
        ("https scheme", b"GET https://h/s HTTP/1.1\r\nHost: h\r\n\r\n", "https://h/s|/s|<none>|h"),
        (
            "IPv6 authority",
            b"GET http://[::1]:81/v6 HTTP/1.1\r\nHost: h\r\n\r\n",
            "http://[::1]:81/v6|/v6|<none>|[::1]:81",
        ),
    ];
    for (name, raw, body) in cases {
        let r = assert_served(server.addr, name, raw, 200);
        assert_eq!(r.body_text(), *body, "case {name}");
    }
}

#[test]
fn options_asterisk_reaches_the_handler() {
    let server = TestServer::start(describe_target);
    let r = assert_served(server.addr, "OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200);
    assert_eq!(r.body_text(), "*|*|<none>|h");
}

#[test]
fn bad_targets_are_rejected_and_close() {
    let server = TestServer::start(describe_target);
    let cases: &[(&str, &[u8], u16)] = &[
        ("asterisk with GET", b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("asterisk with POST", b"POST * HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 400),
        ("CONNECT authority-form", b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501),
        ("CONNECT origin-form", b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
        ("fragment", b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("fragment after query", b"GET /a?b#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("fragment in absolute-form", b"GET http://h/a#f HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("no leading slash", b"GET nopath HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("query only", b"GET ?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("unknown scheme", b"GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("scheme without authority", b"GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("user info in absolute-form", b"GET http://u@h/a HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("bad port in absolute-form", b"GET http://h:x/a HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ];
    assert_all_rejected(server.addr, cases.iter().copied());
}

// ---------------------------------------------------------------------------------------------
// Content-Length
// ---------------------------------------------------------------------------------------------

#[test]
fn content_length_that_is_not_plain_digits_is_400_and_closes() {
    let server = TestServer::start(echo);
    let values: &[&str] = &["+5", "-5", " 5 5", "5 5", "5,5", "5, 5", "0x5", "5.0", "5e0", "", "five", "\u{0665}"];
    assert_all_rejected(
        server.addr,
        values.iter().map(|value| {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\nhello");
            (format!("Content-Length: {value:?}"), raw, 400)
        }),
    );
}

#[test]
fn valid_content_lengths_frame_the_body() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8], &str)] = &[
        ("plain", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "POST /\n\nhello"),
        ("leading zeros", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello", "POST /\n\nhello"),
        ("zero", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "POST /\n\n"),
        (
            "whitespace around the value",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \t\r\n\r\nhello",
            "POST /\n\nhello",
        ),
        ("name in any case", b"POST / HTTP/1.1\r\nHost: x\r\ncOnTeNt-LeNgTh: 5\r\n\r\nhello", "POST /\n\nhello"),
        (
            "identical duplicates",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            "POST /\n\nhello",
        ),
        ("on GET", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", "GET /\n\nhi"),
    ];
    for (name, raw, body) in cases {
        let r = assert_served(server.addr, name, raw, 200);
        assert_eq!(r.body_text(), *body, "case {name}");
    }
}

#[test]
fn differing_duplicate_content_lengths_are_400_and_close() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        ("5 then 6", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        ("6 then 5", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nContent-Length: 5\r\n\r\nhello!"),
        ("0 then 5", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello"),
        ("5 then 4", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello"),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

#[test]
fn content_length_over_max_body_size_is_413_before_the_body_is_sent() {
    let server = TestServer::with_config(|c| c.max_body_size = 10, echo);
    // Exactly at the limit is fine.
    let r = assert_served(
        server.addr,
        "at limit",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        200,
    );
    assert_eq!(r.body_text(), "POST /\n\n0123456789");
    // One over: the 413 arrives although not one body byte was sent.
    assert_rejected(
        server.addr,
        "one over, no body sent",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n",
        413,
    );

    let default_server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        ("8 MiB + 1 (default limit)", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8388609\r\n\r\n"),
        ("u64::MAX", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n"),
        ("overflows u64", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
    ];
    assert_all_rejected(default_server.addr, cases.iter().map(|&(name, raw)| (name, raw, 413)));
}

#[test]
fn content_length_with_transfer_encoding_is_400_and_closes() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        (
            "CL then TE",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "TE then CL",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        ),
        (
            "CL 0 with TE",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "CL with an unknown TE",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        ),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

// ---------------------------------------------------------------------------------------------
// Transfer-Encoding
// ---------------------------------------------------------------------------------------------

#[test]
fn transfer_encoding_chunked_is_accepted_in_any_case() {
    let server = TestServer::start(echo);
    for value in ["chunked", "Chunked", "CHUNKED", "cHuNkEd", "chunked \t"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {value}\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        let r = assert_served(server.addr, &format!("TE {value:?}"), raw.as_bytes(), 200);
        assert_eq!(r.body_text(), "POST /\n\nhello", "TE {value:?}");
    }
}

/// A chunked-looking POST with `Transfer-Encoding: value`.
fn te_request(value: &str) -> String {
    format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {value}\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
}

#[test]
fn unknown_transfer_codings_are_501_and_close() {
    let server = TestServer::start(echo);
    let values = [
        "gzip",
        "identity",
        "deflate",
        "x-custom",
        "gzip, chunked",
        "chunked, gzip",
        "identity, chunked",
        "chunked, identity",
        "chunked, chunked",
        "chunked,chunked",
        "gzip,chunked",
    ];
    assert_all_rejected(server.addr, values.iter().map(|value| (format!("TE {value:?}"), te_request(value), 501)));
}

#[test]
fn malformed_transfer_encoding_values_are_400_and_close() {
    let server = TestServer::start(echo);
    let values = [
        "\"chunked\"",
        "chunked;x=1",
        "chunked; q=1",
        "chunked,",
        ",chunked",
        "chunked, ,gzip",
        "",
        "chunked x",
        "chunked/1",
    ];
    assert_all_rejected(server.addr, values.iter().map(|value| (format!("TE {value:?}"), te_request(value), 400)));
}

#[test]
fn repeated_transfer_encoding_header_is_400_and_closes() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        (
            "chunked twice",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "gzip then chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "chunked then empty",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n",
        ),
        (
            "different name case",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

#[test]
fn transfer_encoding_on_http10_is_400_and_closes() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        ("chunked", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("chunked with Host", b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("unknown coding", b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("keep-alive too", b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 400)));
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies
// ---------------------------------------------------------------------------------------------

const CHUNKED_HEAD: &str = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

#[test]
fn chunked_bodies_with_extensions_and_trailers_are_decoded_and_trailers_dropped() {
    let server = TestServer::start(body_and_trailer);
    let cases: &[(&str, &str, &str)] = &[
        ("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello|<none>"),
        ("empty body", "0\r\n\r\n", "|<none>"),
        ("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world|<none>"),
        ("uppercase hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789|<none>"),
        ("lowercase hex", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789|<none>"),
        ("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello|<none>"),
        ("sixteen hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", "hello|<none>"),
        ("extensions", "5;name=value\r\nhello\r\n6;a;b=\"q\"\r\n world\r\n0;last=1\r\n\r\n", "hello world|<none>"),
        ("extension with tab", "5;\ta=b\r\nhello\r\n0\r\n\r\n", "hello|<none>"),
        ("trailers", "5\r\nhello\r\n0\r\nX-Trailer: yes\r\nOther: 1\r\n\r\n", "hello|<none>"),
        ("trailer with tab and empty value", "5\r\nhello\r\n0\r\nX-Trailer:\tyes\r\nE:\r\n\r\n", "hello|<none>"),
        ("binary data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n|<none>"),
    ];
    for (name, body, want) in cases {
        let raw = format!("{CHUNKED_HEAD}{body}");
        let r = assert_served(server.addr, name, raw.as_bytes(), 200);
        assert_eq!(r.body_text(), *want, "case {name}");
    }
}

#[test]
fn chunked_body_sent_one_byte_per_write_is_decoded() {
    let server = TestServer::start(body_and_trailer);
    let mut c = server.client(); // TCP_NODELAY is set: each write goes out on its own.
    let raw = format!("{CHUNKED_HEAD}5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
    for b in raw.as_bytes() {
        c.send([*b]);
    }
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "hello 0123456789|<none>"));
    assert!(!r.closes(), "head {:?}", r.head);
    // The connection is still in step: a second request is answered.
    c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 200);
}

#[test]
fn malformed_chunked_bodies_are_400_and_close() {
    let server = TestServer::start(body_and_trailer);
    let long_extension = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(9000));
    let cases: Vec<(&str, String)> = vec![
        ("non-hex size", "z\r\nhello\r\n0\r\n\r\n".into()),
        ("hex then junk", "5z\r\nhello\r\n0\r\n\r\n".into()),
        ("empty size", "\r\nhello\r\n0\r\n\r\n".into()),
        ("size with leading space", " 5\r\nhello\r\n0\r\n\r\n".into()),
        ("size with trailing space", "5 \r\nhello\r\n0\r\n\r\n".into()),
        ("size with leading tab", "\t5\r\nhello\r\n0\r\n\r\n".into()),
        ("space before extension", "5 ;a=b\r\nhello\r\n0\r\n\r\n".into()),
        ("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n".into()),
        ("plus sign", "+5\r\nhello\r\n0\r\n\r\n".into()),
        ("minus sign", "-5\r\nhello\r\n0\r\n\r\n".into()),
        ("underscore", "0_5\r\nhello\r\n0\r\n\r\n".into()),
        ("17 hex digits, leading zeros", "00000000000000005\r\nhello\r\n0\r\n\r\n".into()),
        ("17 hex digits, overflow", "10000000000000000\r\nhello\r\n0\r\n\r\n".into()),
        ("missing CRLF after data", "5\r\nhelloXX0\r\n\r\n".into()),
        ("data longer than size", "5\r\nhello!\r\n0\r\n\r\n".into()),
        ("only CR after data", "5\r\nhello\r0\r\n\r\n".into()),
        ("LF-only size line", "5\nhello\r\n0\r\n\r\n".into()),
        ("LF-only after data", "5\r\nhello\n0\r\n\r\n".into()),
        ("LF-only everywhere", "5\nhello\n0\n\n".into()),
        ("LF-only last chunk", "5\r\nhello\r\n0\n\r\n".into()),
        ("LF-only final line", "5\r\nhello\r\n0\r\n\n".into()),
        ("CR CR LF", "5\r\r\nhello\r\n0\r\n\r\n".into()),
        ("bare CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n".into()),
        ("bare LF in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n".into()),
        ("NUL in extension", "5;a\0b\r\nhello\r\n0\r\n\r\n".into()),
        ("DEL in extension", "5;a\x7fb\r\nhello\r\n0\r\n\r\n".into()),
        ("extension longer than max_header_line", long_extension),
        ("trailer obs-fold", "5\r\nhello\r\n0\r\nX-Trailer: a\r\n folded\r\n\r\n".into()),
        ("trailer obs-fold with tab", "5\r\nhello\r\n0\r\nX-Trailer: a\r\n\tfolded\r\n\r\n".into()),
        ("trailer name with space", "5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n".into()),
        ("trailer whitespace before colon", "5\r\nhello\r\n0\r\nX-Trailer : x\r\n\r\n".into()),
        ("trailer without colon", "5\r\nhello\r\n0\r\nX-Trailer\r\n\r\n".into()),
        ("trailer with bare LF", "5\r\nhello\r\n0\r\nX-Trailer: a\nb\r\n\r\n".into()),
        ("trailer with bare CR", "5\r\nhello\r\n0\r\nX-Trailer: a\rb\r\n\r\n".into()),
        ("trailer with NUL", "5\r\nhello\r\n0\r\nX-Trailer: a\0b\r\n\r\n".into()),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|(name, body)| (*name, format!("{CHUNKED_HEAD}{body}"), 400)));
}

#[test]
fn chunked_body_over_max_body_size_is_413_while_dechunking() {
    let server = TestServer::with_config(|c| c.max_body_size = 16, body_and_trailer);
    // Exactly at the limit, over two chunks.
    let raw = format!("{CHUNKED_HEAD}8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n");
    let r = assert_served(server.addr, "at limit", raw.as_bytes(), 200);
    assert_eq!(r.body_text(), "0123456789abcdef|<none>");
    let cases: &[(&str, &str)] = &[
        // Refused on the size line: the data never has to arrive.
        ("one chunk over, no data sent", "11\r\n"),
        ("second chunk crosses the limit", "8\r\n01234567\r\n9\r\n"),
        ("many small chunks", "4\r\n0123\r\n4\r\n4567\r\n4\r\n89ab\r\n4\r\ncdef\r\n1\r\nX\r\n0\r\n\r\n"),
        ("sixteen f digits", "ffffffffffffffff\r\n"),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|(name, body)| (*name, format!("{CHUNKED_HEAD}{body}"), 413)));
}

// ---------------------------------------------------------------------------------------------
// Keep-alive
// ---------------------------------------------------------------------------------------------

#[test]
fn http11_keeps_the_connection_alive_by_default() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    for path in ["/one", "/two", "/three"] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body_text(), format!("GET {path}\n\n"));
        assert!(!r.closes(), "head {:?}", r.head);
    }
}

#[test]
fn connection_close_request_gets_connection_close_and_is_closed() {
    let server = TestServer::start(echo);
    for value in ["close", "Close", "keep-alive, close", "close, x-other"] {
        let mut c = server.client();
        c.send(format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: {value}\r\n\r\n"));
        let r = c.response();
        assert_eq!(r.status, 200, "Connection: {value}");
        assert!(r.closes(), "Connection: {value}: head {:?}", r.head);
        assert!(c.closed_within(CLOSE_WITHIN), "Connection: {value}: not closed");
    }
}

#[test]
fn http10_without_keep_alive_is_closed() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    c.send("GET /old HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "GET /old\n\n"));
    assert_eq!(r.framing, "length");
    assert!(r.header("connection").is_none_or(|v| v.eq_ignore_ascii_case("close")), "head {:?}", r.head);
    assert!(c.closed_within(CLOSE_WITHIN), "HTTP/1.0 connection left open");
}

#[test]
fn http10_with_keep_alive_is_announced_and_stays_usable() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    for path in ["/a", "/b"] {
        c.send(format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        let r = c.response();
        assert_eq!((r.status, r.body_text()), (200, format!("GET {path}\n\n")));
        assert_eq!(r.header("connection"), Some("keep-alive"), "head {:?}", r.head);
    }
    // The last request on the connection does not ask for keep-alive: it is closed.
    c.send("GET /c HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(c.closed_within(CLOSE_WITHIN));
}

// ---------------------------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------------------------

#[test]
fn pipelined_get_length_and_chunked_requests_are_answered_in_order() {
    // The first request is slow: answers in order cannot come from luck.
    let server = TestServer::start(|req: Request| {
        if req.path() == "/slow" {
            std::thread::sleep(Duration::from_millis(100));
        }
        echo(req)
    });
    let mut c = server.client();
    c.send(concat!(
        "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /length HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nT: 1\r\n\r\n",
        "HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /last?q HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let expected = ["GET /slow\n\n", "POST /length\n\nhello", "POST /chunked\n\nabcde"];
    for want in expected {
        let r = c.response();
        assert_eq!((r.status, r.body_text().as_str()), (200, want));
        assert!(!r.closes());
    }
    let r = c.head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("12"), "HEAD of `HEAD /head\\n\\n`; head {:?}", r.head);
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "GET /last?q\n\n"));
    assert!(c.leftover().is_empty());
}

#[test]
fn request_pipelined_after_connection_close_is_not_served() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let server = TestServer::start(move |req: Request| {
        record.lock().unwrap().push(req.target().to_string());
        echo(req)
    });
    let mut c = server.client();
    c.send(concat!(
        "GET /first HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /closing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /after-close HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "GET /first\n\n"));
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "GET /closing\n\n"));
    assert!(r.closes(), "head {:?}", r.head);
    assert!(c.closed_within(CLOSE_WITHIN), "connection not closed after Connection: close");
    assert_eq!(*seen.lock().unwrap(), ["/first", "/closing"]);
}

// ---------------------------------------------------------------------------------------------
// Expect
// ---------------------------------------------------------------------------------------------

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    c.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // The body has not been sent: the interim response must come first, exactly.
    let interim = c.response();
    assert_eq!(interim.head, "HTTP/1.1 100 Continue\r\n\r\n");
    c.send("hello");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "POST /up\n\nhello"));
    // Keep-alive survives; the next request does not get a stray 100.
    c.send("POST /again HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "POST /again\n\nok"));
}

#[test]
fn expect_100_continue_works_for_a_chunked_body_and_any_case() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    c.send("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n");
    assert_eq!(c.response().head, "HTTP/1.1 100 Continue\r\n\r\n");
    c.send("3\r\nabc\r\n0\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "POST /up\n\nabc"));
}

#[test]
fn expect_100_continue_over_max_body_size_is_413_without_100_continue() {
    let server = TestServer::with_config(|c| c.max_body_size = 4, echo);
    let r = assert_rejected(
        server.addr,
        "CL over limit with Expect",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        413,
    );
    assert!(!r.head.contains("100 Continue"));
}

#[test]
fn expect_on_http10_is_ignored() {
    let server = TestServer::start(echo);
    // An expectation the server would refuse on 1.1 is ignored on 1.0.
    let r = assert_served(
        server.addr,
        "unknown expectation on 1.0",
        b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: bogus\r\n\r\nhi",
        200,
    );
    assert_eq!(r.body_text(), "POST /\n\nhi");
    // 100-continue on 1.0: no interim response while the server waits for the body.
    let mut c = server.client();
    c.send("POST /ten HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    assert!(!c.closed_within(Duration::from_millis(300)), "server closed instead of waiting for the body");
    assert!(c.leftover().is_empty(), "HTTP/1.0 got an interim response: {:?}", String::from_utf8_lossy(c.leftover()));
    c.send("hi");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "POST /ten\n\nhi"));
}

#[test]
fn unknown_expectation_is_417_and_closes() {
    let server = TestServer::start(echo);
    let cases: &[(&str, &[u8])] = &[
        ("bogus", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: bogus\r\n\r\nhi"),
        ("200-ok", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"),
        (
            "100-continue with parameter",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue; a=b\r\n\r\nhi",
        ),
    ];
    assert_all_rejected(server.addr, cases.iter().map(|&(name, raw)| (name, raw, 417)));
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[test]
fn head_response_has_content_length_but_no_body_and_the_connection_is_reusable() {
    let server = TestServer::start(routes);
    let mut c = server.client();
    c.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(r.header("transfer-encoding").is_none());
    assert!(!r.closes());
    // Had the body been sent, it would be read as the next status line here.
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "Hello"));
}

#[test]
fn head_of_a_streamed_body_has_no_framing_and_no_body() {
    let server = TestServer::start(routes);
    let mut c = server.client();
    c.send("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.status, 200);
    assert!(r.header("transfer-encoding").is_none() && r.header("content-length").is_none(), "{:?}", r.head);
    c.send("HEAD /sized HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.header("content-length"), Some("11"));
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "Hello"));
}

#[test]
fn statuses_204_and_304_send_no_body_and_no_framing_headers() {
    let server = TestServer::start(routes);
    let mut c = server.client();
    for path in ["/204", "/304"] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let r = c.response();
        assert_eq!(r.status, path[1..].parse::<u16>().unwrap());
        assert!(r.header("content-length").is_none(), "{path}: {:?}", r.head);
        assert!(r.header("transfer-encoding").is_none(), "{path}: {:?}", r.head);
        assert!(!r.closes(), "{path}: {:?}", r.head);
    }
    // No body bytes were sent: the next response parses from its first byte.
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "Hello"));
}

#[test]
fn streamed_body_is_chunked_on_http11() {
    let server = TestServer::start(routes);
    let mut c = server.client();
    c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.framing, "chunked");
    assert_eq!(r.header_count("transfer-encoding"), 1);
    assert_eq!(r.body_text(), "hello streamed world");
    assert!(!r.closes());
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_text(), "Hello");
}

#[test]
fn streamed_body_is_close_delimited_on_http10() {
    let server = TestServer::start(routes);
    for request in ["GET /stream HTTP/1.0\r\n\r\n", "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"] {
        let mut c = server.client();
        c.send(request);
        let r = c.response();
        assert_eq!(r.status, 200, "{request:?}");
        assert_eq!(r.framing, "close", "{request:?}: {:?}", r.head);
        assert!(r.closes(), "{request:?}: {:?}", r.head);
        assert!(r.header("transfer-encoding").is_none() && r.header("content-length").is_none());
        assert_eq!(r.body_text(), "hello streamed world", "{request:?}");
    }
}

#[test]
fn stream_sized_body_uses_content_length() {
    let server = TestServer::start(routes);
    for version in ["HTTP/1.1\r\nHost: x", "HTTP/1.0\r\nConnection: keep-alive"] {
        let mut c = server.client();
        c.send(format!("GET /sized {version}\r\n\r\n"));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.framing, "length", "{version}: {:?}", r.head);
        assert_eq!(r.header("content-length"), Some("11"));
        assert_eq!(r.body_text(), "hello sized");
        assert!(!r.closes(), "{version}: {:?}", r.head);
    }
}

#[test]
fn invalid_handler_response_heads_are_500_and_never_split() {
    let server = TestServer::start(routes);
    let paths = [
        "/inject-crlf",
        "/inject-lf",
        "/inject-cr",
        "/inject-nul",
        "/bad-name-space",
        "/bad-name-colon",
        "/bad-name-empty",
        "/bad-reason",
        "/status/99",
        "/status/100",
        "/status/101",
        "/status/199",
        "/status/600",
        "/status/1000",
    ];
    for path in paths {
        let mut c = server.client();
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let r = c.try_response(false).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status, 500, "{path}: {:?}", r.head);
        assert!(!r.head.to_ascii_lowercase().contains("injected"), "{path}: split response {:?}", r.head);
        assert!(r.header("x-note").is_none(), "{path}: {:?}", r.head);
        assert_error_closes(&mut c, &r, path);
    }
}

#[test]
fn panicking_handler_is_500_and_the_server_serves_the_next_request() {
    let server = TestServer::start(routes);
    // Workers live on: more panics than workers (4), then more requests than workers.
    for _ in 0..6 {
        let mut c = server.client();
        c.send("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.response();
        assert_eq!(r.status, 500);
        assert_eq!(r.body_text(), "500 Internal Server Error\n");
    }
    for _ in 0..6 {
        let mut c = server.client();
        c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.response();
        assert_eq!((r.status, r.body_text().as_str()), (200, "Hello"));
    }
}

#[test]
fn panicking_handler_500_has_connection_close_and_closes() {
    // DESIGN.md: after any 4xx/5xx the server emits by itself it sends Connection: close and
    // closes. The 500 for a panic is the server's, like the 500 for an invalid head.
    let server = TestServer::start(routes);
    let mut c = server.client();
    c.send("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 500);
    assert_error_closes(&mut c, &r, "panic on HTTP/1.1");

    let mut c = server.client();
    c.send("GET /panic HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 500);
    assert_error_closes(&mut c, &r, "panic on HTTP/1.0 keep-alive");
}

#[test]
fn handler_framing_headers_are_replaced_by_the_servers() {
    let server = TestServer::start(routes);
    let mut c = server.client();
    c.send("GET /framing HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header_count("content-length"), 1, "{:?}", r.head);
    assert_eq!(r.header("content-length"), Some("3"));
    assert!(r.header("transfer-encoding").is_none(), "{:?}", r.head);
    assert_eq!(r.body_text(), "abc");
    c.send("GET /framing-stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header_count("transfer-encoding"), 1, "{:?}", r.head);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body_text(), "abcdef");
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_text(), "Hello");
}

#[test]
fn date_and_server_headers_are_present() {
    let server = TestServer::start(routes);
    let mut c = server.client();
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    let date = r.header("date").expect("Date header");
    assert_eq!(date.len(), 29, "{date:?}");
    assert!(date.ends_with(" GMT") && date.as_bytes()[3] == b',', "{date:?}");
    assert_eq!(r.header_count("date"), 1);
    assert_eq!(r.header("server"), Some("maitred"));
    // Server errors carry them too.
    let r = assert_rejected(server.addr, "400", b"GET / HTTP/1.1\r\n\r\n", 400);
    assert_eq!(r.header("date").map(str::len), Some(29));
    assert_eq!(r.header("server"), Some("maitred"));
    // A handler's own Server header is kept and not doubled.
    let r = assert_served(server.addr, "own server", b"GET /own-server HTTP/1.1\r\nHost: x\r\n\r\n", 200);
    assert_eq!(r.header_count("server"), 1);
    assert_eq!(r.header("server"), Some("custom/1"));
}

#[test]
fn server_header_is_configurable_and_empty_means_none() {
    let named = TestServer::with_config(|c| c.server_header = "front/2".into(), routes);
    let r = assert_served(named.addr, "named", b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200);
    assert_eq!(r.header("server"), Some("front/2"));
    let r = assert_rejected(named.addr, "named error", b"GET / HTTP/1.1\r\n\r\n", 400);
    assert_eq!(r.header("server"), Some("front/2"));

    let silent = TestServer::with_config(|c| c.server_header = String::new(), routes);
    let r = assert_served(silent.addr, "silent", b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200);
    assert_eq!(r.header_count("server"), 0, "{:?}", r.head);
    let r = assert_rejected(silent.addr, "silent error", b"GET / HTTP/1.1\r\n\r\n", 400);
    assert_eq!(r.header_count("server"), 0, "{:?}", r.head);
}

#[test]
fn pipelined_requests_before_a_half_close_are_all_answered() {
    let server = TestServer::start(echo);
    let responses = exchange(
        server.addr,
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let bodies: Vec<String> = responses.iter().map(RawResponse::body_text).collect();
    assert_eq!(bodies, ["GET /1\n\n", "GET /2\n\n", "GET /3\n\n"]);
    // `exchange` reads until the server closes: it did, once all three were answered.
    assert!(!responses[0].closes() && !responses[1].closes());
}

/// A handler that sends no body for HEAD (as Werkzeug does for streamed responses) must not
/// make the server claim `Content-Length: 0`: only the handler's own length, if it set one, is
/// what GET would send (RFC 9110 sections 8.6 and 9.3.2).
#[test]
fn head_without_a_body_sends_only_the_handlers_content_length() {
    let server = TestServer::start(|request: Request| {
        let declared = request.path() == "/declared";
        match (request.method(), declared) {
            ("HEAD", false) => Response::new(200),
            ("HEAD", true) => Response::new(200).with_header("Content-Length", "5"),
            _ => Response::new(200).with_body(Body::stream(std::iter::once(Ok(b"hello".to_vec())))),
        }
    });
    let mut c = server.client();
    c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.body_text().as_str()), (200, "hello"));
    c.send("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), None, "head {:?}", r.head);
    assert_eq!(r.header("transfer-encoding"), None, "head {:?}", r.head);
    c.send("HEAD /declared HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.header("content-length"), Some("5"), "head {:?}", r.head);
    // The connection is still in step: nothing was sent after either head.
    c.send("GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(c.response().body_text(), "hello");
}
