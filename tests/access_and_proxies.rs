//! The access log (Common, Combined, JSON on standard output) and the handling of forwarding
//! headers and the PROXY protocol, through the real binary and in process.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::child::maitred_bin;
use common::*;
use maitred::{Request, Response};

/// Runs the binary with `args` over a directory holding `a.txt`, sends `requests` (each on
/// its own connection, response read), stops it, and returns its standard output lines.
fn access_lines(args: &[&str], requests: &[Vec<u8>]) -> Vec<String> {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("a.txt"), "hello\n").unwrap();
    let mut child = Command::new(maitred_bin())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .arg(site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = Some(rest.trim().to_string());
            break;
        }
    }
    let addr: std::net::SocketAddr = addr.expect("address").parse().unwrap();
    for request in requests {
        let mut c = Client::connect(addr);
        c.send(request);
        let _ = c.try_response(request.starts_with(b"HEAD"));
    }
    common::child::signal_pid(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("the access log is UTF-8").lines().map(str::to_string).collect()
}

#[test]
fn json_access_log_parses_line_by_line_even_with_hostile_path_and_user_agent() {
    let hostile = b"GET /a\"b\\c%00?x=\"1\" HTTP/1.1\r\nHost: x\r\nUser-Agent: quote\" back\\slash\ttab \xe9\xff end\r\nReferer: http://r/\"\r\nConnection: close\r\n\r\n".to_vec();
    let plain = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
    let head = b"HEAD /a.txt HTTP/1.0\r\n\r\n".to_vec();
    let lines = access_lines(&["--access-log", "json"], &[hostile, plain, head]);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let records: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let first = &records[0];
    assert_eq!(first["target"], "/a\"b\\c%00?x=\"1\"");
    assert_eq!(first["user_agent"], "quote\" back\\slash\ttab \u{e9}\u{ff} end");
    assert_eq!(first["referer"], "http://r/\"");
    assert_eq!(first["status"], 400, "the static app refuses a decoded NUL");
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(records[1]["status"], 200);
    assert_eq!(records[1]["bytes"], 6);
    assert_eq!(records[1]["user_agent"], serde_json::Value::Null);
    assert_eq!(records[2]["method"], "HEAD");
    assert_eq!(records[2]["version"], "HTTP/1.0");
    for r in &records {
        assert!(r["duration_us"].as_u64().is_some(), "{r}");
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn common_and_combined_lines_have_the_apache_shape_plus_microseconds() {
    let request = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\nReferer: http://ref/\r\n\r\n".to_vec();
    let common = access_lines(&["--access-log", "common"], std::slice::from_ref(&request));
    let line = &common[0];
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("] \"GET /a.txt HTTP/1.1\" 200 6 "), "{line}");
    assert!(line.rsplit(' ').next().unwrap().parse::<u64>().is_ok(), "ends with microseconds: {line}");
    let combined = access_lines(&["--access-log", "combined"], &[request]);
    assert!(combined[0].contains("\" 200 6 \"http://ref/\" \"ua\" "), "{}", combined[0]);
    let off = access_lines(&[], &[b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()]);
    assert!(off.is_empty(), "access log off by default: {off:?}");
}

#[test]
fn health_probes_stay_out_of_the_access_log() {
    let lines = access_lines(
        &["--access-log", "common", "--health-path", "/healthz"],
        &[b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()],
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("/a.txt"));
}

/// A handler that reports what it was told about the client.
fn whoami(req: Request) -> Response {
    let forwarded: Vec<String> = req
        .headers()
        .iter()
        .filter(|h| h.name.to_ascii_lowercase().starts_with("x-forwarded") || h.name.eq_ignore_ascii_case("forwarded"))
        .map(|h| format!("{}={}", h.name, String::from_utf8_lossy(&h.value)))
        .collect();
    Response::text(
        200,
        format!(
            "client={} scheme={} host={} peer={} fwd=[{}]",
            req.client_addr().ip(),
            req.scheme(),
            req.host().unwrap_or("-"),
            req.peer_addr().ip(),
            forwarded.join(";")
        ),
    )
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_removed() {
    let server = TestServer::with_config(|c| c.trusted_proxies = "10.0.0.0/8".into(), whoami);
    let mut c = server.client();
    c.send("GET / HTTP/1.1\r\nHost: real\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nForwarded: for=7.7.7.7\r\n\r\n");
    assert_eq!(c.response().body_text(), "client=127.0.0.1 scheme=http host=real peer=127.0.0.1 fwd=[]");
}

#[test]
fn forwarding_headers_from_a_trusted_proxy_set_client_scheme_and_host() {
    let server = TestServer::with_config(|c| c.trusted_proxies = "127.0.0.1".into(), whoami);
    let mut c = server.client();
    c.send("GET / HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n\r\n");
    let body = c.response().body_text();
    assert!(body.starts_with("client=203.0.113.7 scheme=https host=shop.example peer=127.0.0.1"), "{body}");
    c.send(
        "GET / HTTP/1.1\r\nHost: internal\r\nForwarded: for=\"[2001:db8::1]:4711\";proto=https;host=a.example\r\n\r\n",
    );
    let body = c.response().body_text();
    assert!(body.starts_with("client=2001:db8::1 scheme=https host=a.example"), "{body}");
    // With one trusted hop, a client's own spoofed entry further left is not believed.
    c.send("GET / HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.2\r\n\r\n");
    assert!(c.response().body_text().starts_with("client=198.51.100.2 "));
}

#[test]
fn proxy_protocol_v1_from_a_trusted_balancer_sets_the_client() {
    let server = TestServer::with_config(
        |c| {
            c.trusted_proxies = "127.0.0.1".into();
            c.proxy_protocol = true;
        },
        whoami,
    );
    let mut c = server.client();
    c.send("PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let body = c.response().body_text();
    assert!(body.starts_with("client=192.0.2.10 scheme=http host=h peer=192.0.2.10"), "{body}");
    // Later requests on the connection keep the address; no second header is expected.
    c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(c.response().body_text().starts_with("client=192.0.2.10 "));
    // A connection without the header is closed without an answer.
    let mut bad = server.client();
    bad.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(bad.closed_within(Duration::from_secs(5)));
}

#[test]
fn proxy_protocol_v2_is_read_byte_by_byte() {
    let server = TestServer::with_config(
        |c| {
            c.trusted_proxies = "127.0.0.0/8".into();
            c.proxy_protocol = true;
        },
        whoami,
    );
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&[203, 0, 113, 9, 10, 0, 0, 1]);
    header.extend_from_slice(&1234u16.to_be_bytes());
    header.extend_from_slice(&80u16.to_be_bytes());
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    for b in &header {
        stream.write_all(std::slice::from_ref(b)).unwrap();
    }
    let mut c = Client::from_stream(stream);
    c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let started = Instant::now();
    assert!(c.response().body_text().starts_with("client=203.0.113.9 "));
    assert!(started.elapsed() < Duration::from_secs(5));
}
