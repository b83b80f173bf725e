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

/// Requests the server answers itself (a bad head, a request line too long, a body too
/// large while de-chunking, a head too slow) are logged, marked `"answered_by":"server"`; a
/// handler's line has no such key.
#[test]
fn requests_the_server_refuses_are_in_the_json_access_log_marked() {
    let long_line = format!("GET /{} HTTP/1.1", "a".repeat(9000)).into_bytes();
    let requests = [
        b"GET /bad HTTP/1.1\r\nHost: x\r\nBad Name: y\r\nConnection: close\r\n\r\n".to_vec(),
        long_line,
        b"POST /up HTTP/1.1\r\nHost: x\r\nUser-Agent: ua-413\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n".to_vec(),
        b"GET /slow HTTP/1.1\r\nHost: x\r\n".to_vec(),
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ];
    let lines = access_lines(&["--access-log", "json", "--max-body-size", "16", "--header-timeout", "1s"], &requests);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let records: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let fields = |r: &serde_json::Value| {
        (r["status"].as_u64().unwrap(), r["method"].clone(), r["target"].clone(), r["answered_by"].clone())
    };
    let server = serde_json::Value::from("server");
    assert_eq!(fields(&records[0]), (400, "GET".into(), "/bad".into(), server.clone()));
    assert_eq!(records[0]["version"], "HTTP/1.1");
    assert_eq!(records[0]["bytes"], "400 Bad Request\n".len());
    assert_eq!(records[0]["client"], "127.0.0.1");
    assert_eq!(fields(&records[1]), (414, serde_json::Value::Null, serde_json::Value::Null, server.clone()));
    assert_eq!(records[1]["version"], serde_json::Value::Null);
    assert_eq!(fields(&records[2]), (413, "POST".into(), "/up".into(), server.clone()));
    assert_eq!(records[2]["user_agent"], "ua-413");
    assert_eq!(fields(&records[3]), (408, "GET".into(), "/slow".into(), server));
    // From the head's first byte to the 408 (the 1 s runs from accept): most of a second.
    assert!(records[3]["duration_us"].as_u64().unwrap() >= 500_000, "{}", lines[3]);
    assert_eq!(records[4]["status"], 200);
    assert!(records[4].get("answered_by").is_none(), "{}", lines[4]);
}

#[test]
fn common_lines_of_refused_requests_say_maitred_in_the_ident_field() {
    let lines = access_lines(
        &["--access-log", "common", "--max-body-size", "16"],
        &[
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_vec(),
            b"\x01\x02 garbage\r\n\r\n".to_vec(),
            b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        ],
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("127.0.0.1 maitred - ["), "{}", lines[0]);
    assert!(lines[0].contains("] \"POST /up HTTP/1.1\" 413 "), "{}", lines[0]);
    assert!(lines[1].starts_with("127.0.0.1 maitred - ["), "{}", lines[1]);
    assert!(lines[1].contains("] \"-\" 400 16 "), "{}", lines[1]);
    assert!(lines[2].starts_with("127.0.0.1 - - ["), "{}", lines[2]);
}

/// Standard output nobody reads (a full pipe) must not hold up requests: lines past the
/// queue are dropped, counted in the metrics and reported in the error log.
#[test]
fn a_blocked_standard_output_drops_access_lines_but_never_stalls_requests() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("a.txt"), "hello\n").unwrap();
    let mut child = Command::new(maitred_bin())
        .args(["--listen", "127.0.0.1:0", "--access-log", "common", "--metrics-path", "/metrics"])
        .args(["--max-requests-per-connection", "1000000"])
        .arg(site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // never read: the pipe fills after about 64 KiB
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let addr: std::net::SocketAddr = loop {
        let line = log_rx.recv_timeout(Duration::from_secs(30)).expect("the server did not start");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().parse().unwrap();
        }
    };
    // More requests than the pipe and the queue (8192 lines) hold together, pipelined in
    // batches on one connection; each batch must be answered promptly.
    let started = Instant::now();
    let mut c = Client::connect(addr);
    let batch = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    for _ in 0..120 {
        c.send(&batch);
        for _ in 0..100 {
            assert_eq!(c.response().status, 200);
        }
        assert!(started.elapsed() < Duration::from_secs(120), "requests stalled behind the access log");
    }
    c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let metrics = c.response().body_text();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("maitred_access_log_dropped_lines_total "))
        .expect("the dropped-lines counter")
        .parse()
        .unwrap();
    assert!(dropped > 0, "{metrics}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reported = false;
    while let Ok(line) = log_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("access log lines dropped") {
            reported = true;
            break;
        }
    }
    assert!(reported, "no drop report in the error log");
    let _ = child.kill();
    let _ = child.wait();
}

/// A handler that reports what it was told about the client.
fn whoami(req: Request) -> Response {
    let forwarded: Vec<String> = req
        .headers()
        .filter(|h| {
            h.name().to_ascii_lowercase().starts_with("x-forwarded") || h.name().eq_ignore_ascii_case("forwarded")
        })
        .map(|h| format!("{}={}", h.name(), String::from_utf8_lossy(h.value())))
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
