//! HTTPS listeners with real clients: curl, Python's `ssl`, `openssl s_client`, and a rustls
//! client in the test for raw bytes. Certificates are made at test time with the `openssl`
//! command in a temporary directory (no private key is committed).
mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Body, Config, ListenAddr, Request, Response, Server, ServerHandle};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Generous bound on anything a client waits for.
const WAIT: Duration = Duration::from_secs(20);

// ----- certificates -----

/// A throwaway PKI: a CA, a server certificate for `localhost` and 127.0.0.1, client
/// certificates, and a second CA nobody trusts.
struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().unwrap() };
        pki.ca("ca", "/CN=maitred test CA");
        pki.ca("other-ca", "/CN=someone else's CA");
        pki.issue("server", "/CN=localhost", "ca", Some("subjectAltName=DNS:localhost,IP:127.0.0.1"));
        pki.issue("alice", "/C=DE/O=Example, Inc./CN=alice", "ca", Some("extendedKeyUsage=clientAuth"));
        pki.issue("mallory", "/CN=mallory", "other-ca", Some("extendedKeyUsage=clientAuth"));
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn ca(&self, name: &str, subject: &str) {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(
            self.dir.path(),
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key]
                .into_iter()
                .chain(["-out", &cert, "-days", "3", "-subj", subject])
                .collect::<Vec<_>>(),
        );
    }

    /// A key `name.key` and a certificate `name.pem` signed by `ca`.
    fn issue(&self, name: &str, subject: &str, ca: &str, ext: Option<&str>) {
        let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        let d = self.dir.path();
        openssl(
            d,
            &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key, "-out", &csr]
                .into_iter()
                .chain(["-subj", subject])
                .collect::<Vec<_>>(),
        );
        let ext_file = format!("{name}.ext");
        std::fs::write(d.join(&ext_file), ext.unwrap_or("basicConstraints=CA:FALSE")).unwrap();
        let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(
            d,
            &["x509", "-req", "-in", &csr, "-CA", &ca_cert, "-CAkey", &ca_key, "-CAcreateserial", "-out", &cert]
                .into_iter()
                .chain(["-days", "3", "-extfile", &ext_file])
                .collect::<Vec<_>>(),
        );
    }

    /// `name.pem`: a certificate for `localhost` signed by the CA that expired in 2020.
    fn issue_expired(&self, name: &str) {
        let d = self.dir.path();
        let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        openssl(
            d,
            &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key, "-out", &csr]
                .into_iter()
                .chain(["-subj", "/CN=localhost"])
                .collect::<Vec<_>>(),
        );
        std::fs::create_dir_all(d.join("ca-db")).unwrap();
        std::fs::write(d.join("ca-db/index.txt"), "").unwrap();
        std::fs::write(d.join("ca-db/serial"), "1000\n").unwrap();
        let config = "[ca]\ndefault_ca = test\n[test]\ndatabase = ca-db/index.txt\nnew_certs_dir = ca-db\n\
                      serial = ca-db/serial\ndefault_md = sha256\npolicy = any\nx509_extensions = ext\n\
                      [any]\ncommonName = supplied\n[ext]\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n";
        std::fs::write(d.join("ca.cnf"), config).unwrap();
        openssl(
            d,
            &["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", &csr, "-out", &cert]
                .into_iter()
                .chain(["-notext", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"])
                .collect::<Vec<_>>(),
        );
    }

    fn certs(&self, name: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(self.path(&format!("{name}.pem"))).unwrap().map(Result::unwrap).collect()
    }

    fn key(&self, name: &str) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap()
    }

    /// A rustls client trusting the test CA, presenting `client`'s certificate if given.
    fn client(&self, client: Option<&str>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certs("ca").remove(0)).unwrap();
        #[allow(deprecated)] // the server's provider (see src/tls/load.rs)
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match client {
            Some(name) => builder.with_client_auth_cert(self.certs(name), self.key(name)).unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

// ----- the server under test -----

/// Answers with what it knows of the connection: `scheme tls-protocol subject`; `/big` is a
/// 3 MiB body, `/stream` a streamed one.
fn describe(req: Request) -> Response {
    match req.path() {
        "/big" => Response::new(200).with_body(big_body()),
        "/stream" => {
            Response::new(200).with_body(Body::stream((0..64u8).map(|i| Ok(vec![b'a' + (i % 26); 32 * 1024]))))
        }
        _ => {
            let tls = req.tls().map_or("-", |t| t.protocol());
            let subject = req.tls_client_subject().unwrap_or("-");
            Response::text(200, format!("{} {tls} {subject}", req.scheme()))
        }
    }
}

fn big_body() -> Vec<u8> {
    (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

struct TlsServer {
    handle: Option<ServerHandle>,
    https: SocketAddr,
    plain: SocketAddr,
}

impl TlsServer {
    /// An https:// listener and a plain one, with the test PKI's server certificate.
    fn start(pki: &Pki, adjust: impl FnOnce(&mut Config)) -> TlsServer {
        let mut config = test_config();
        config.listen = vec!["https://127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()];
        config.tls_cert = Some(pki.path("server.pem"));
        config.tls_key = Some(pki.path("server.key"));
        adjust(&mut config);
        let server = Server::bind(config, describe).expect("bind");
        let addrs = server.local_addrs().to_vec();
        assert!(matches!(addrs[0], ListenAddr::Tls(_)), "{addrs:?}");
        assert!(addrs[0].url().starts_with("https://"));
        let handle = server.start().expect("start");
        TlsServer { handle: Some(handle), https: addrs[0].tcp().unwrap(), plain: addrs[1].tcp().unwrap() }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            handle.wait();
        }
    }
}

// ----- a raw-bytes TLS client -----

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes the handshake (a refused client certificate may only show on the
/// first read in TLS 1.3).
fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(WAIT))?;
    tcp.set_write_timeout(Some(WAIT))?;
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap().to_owned())
        .map_err(io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Sends `raw` and reads until the server closes (with `close_notify`: a read error otherwise).
fn exchange(addr: SocketAddr, config: Arc<rustls::ClientConfig>, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = connect(addr, config)?;
    s.write_all(raw)?;
    s.flush()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn get(addr: SocketAddr, config: Arc<rustls::ClientConfig>, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let out = exchange(addr, config, raw.as_bytes())?;
    Ok(split_response(&out))
}

/// Status and body of one `Connection: close` response (de-chunked if it is chunked).
fn split_response(out: &[u8]) -> (u16, Vec<u8>) {
    let text = String::from_utf8_lossy(out);
    assert!(text.starts_with("HTTP/1.1 "), "not a response: {:?}", &text[..text.len().min(200)]);
    let status = text[9..12].parse().unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = text[..end].to_ascii_lowercase();
    let mut body = out[end..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = plain;
    }
    (status, body)
}

// ----- tests -----

#[test]
fn curl_gets_a_page_over_https_beside_a_plain_listener() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |_| {});
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert", &pki.p("ca.pem")])
        .arg(format!("https://localhost:{}/", server.https.port()))
        .arg(format!("https://127.0.0.1:{}/again", server.https.port()))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("https TLSv1.3 -"), "{text}");
    assert_eq!(text.matches("https TLSv1.3 -").count(), 2, "{text}");

    // The plain listener of the same process speaks plain HTTP.
    let mut c = Client::connect(server.plain);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_text(), "http - -");

    // Plain HTTP sent to the TLS listener is not served.
    let mut c = Client::connect(server.https);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.try_response(false).is_err(), "plain HTTP answered on the TLS listener");
}

#[test]
fn large_file_and_streamed_bodies_arrive_whole_over_tls() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |c| c.max_buffered_output = 64 * 1024);
    let (status, body) = get(server.https, pki.client(None), "/big").unwrap();
    assert_eq!(status, 200);
    assert!(body == big_body(), "the 3 MiB body differs ({} bytes)", body.len());
    let (status, body) = get(server.https, pki.client(None), "/stream").unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.len(), 64 * 32 * 1024);
    assert!(body.chunks(32 * 1024).enumerate().all(|(i, c)| c.iter().all(|&b| b == b'a' + (i % 26) as u8)));
}

#[test]
fn python_ssl_client_gets_http11_by_alpn_and_resumes_its_session() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |_| {});
    let script = r#"
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["h2", "http/1.1"])
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
session = None
for attempt in range(2):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.selected_alpn_protocol() == "http/1.1", s.selected_alpn_protocol()
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 "), data
            assert data.endswith(b"https TLSv1.2 -"), data
            print("reused" if s.session_reused else "new", s.version())
            session = s.session
"#;
    let out = Command::new("python3")
        .args(["-c", script, &server.https.port().to_string(), &pki.p("ca.pem")])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "new TLSv1.2\nreused TLSv1.2\n");
}

/// `openssl s_client` forced to one protocol version: `Ok(protocol line)` or `Err(output)`.
fn s_client(addr: SocketAddr, pki: &Pki, options: &[&str]) -> Result<String, String> {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-CAfile", &pki.p("ca.pem")])
        .args(options)
        // The client's own security level would refuse TLS 1.0 and 1.1 before the server could.
        .args(["-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost", "-verify_return_error"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"; "New, (NONE), Cipher is (NONE)" if refused.
    let protocol = text.lines().find_map(|l| l.strip_prefix("New, ")).and_then(|l| l.split(',').next());
    match protocol {
        Some(p) if out.status.success() && p.starts_with("TLS") => Ok(p.to_string()),
        _ => Err(text),
    }
}

#[test]
fn openssl_s_client_tls10_and_tls11_refused_tls12_and_tls13_accepted() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |_| {});
    assert_eq!(s_client(server.https, &pki, &["-tls1_2"]).unwrap(), "TLSv1.2");
    assert_eq!(s_client(server.https, &pki, &["-tls1_3"]).unwrap(), "TLSv1.3");
    for old in ["-tls1", "-tls1_1"] {
        let out = s_client(server.https, &pki, &[old]).unwrap_err();
        // Refused by the server (its alert), not by the client's own settings.
        assert!(out.contains("alert handshake failure") || out.contains("alert protocol version"), "{old}: {out}");
    }
    // ALPN: only http/1.1 is spoken; a client that offers only h2 is refused, not misled.
    let out = s_client(server.https, &pki, &["-alpn", "h2"]).unwrap_err();
    assert!(out.contains("alert no application protocol"), "{out}");
    assert_eq!(s_client(server.https, &pki, &["-alpn", "h2,http/1.1"]).unwrap(), "TLSv1.3");
}

#[test]
fn expired_or_wrong_host_certificate_is_the_clients_problem() {
    let pki = Pki::new();
    pki.issue_expired("expired");
    pki.issue("otherhost", "/CN=otherhost", "ca", Some("subjectAltName=DNS:otherhost"));
    for name in ["expired", "otherhost"] {
        let server = TlsServer::start(&pki, |c| {
            c.tls_cert = Some(pki.path(&format!("{name}.pem")));
            c.tls_key = Some(pki.path(&format!("{name}.key")));
        });
        let url = format!("https://localhost:{}/", server.https.port());
        let curl = |insecure: bool| {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "--max-time", "20", "--cacert", &pki.p("ca.pem"), &url]);
            if insecure {
                cmd.arg("--insecure");
            }
            cmd.output().unwrap()
        };
        let refused = curl(false);
        assert_eq!(refused.status.code(), Some(60), "{name}: {}", String::from_utf8_lossy(&refused.stderr));
        let served = curl(true);
        assert_eq!(String::from_utf8_lossy(&served.stdout), "https TLSv1.3 -", "{name}");
    }
}

fn maitred(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_maitred")).args(args).output().expect("run maitred")
}

#[test]
fn a_wrong_missing_or_garbled_key_is_a_startup_error_exit_2_one_line() {
    let pki = Pki::new();
    std::fs::write(pki.path("garbage.key"), "not a key\n").unwrap();
    let cases = [
        ("alice.key", "does not match the certificate"),
        ("missing.key", "cannot read the key file (tls_key)"),
        ("garbage.key", "holds no usable private key"),
    ];
    for check in [false, true] {
        for (key, needle) in cases {
            let (cert, key) = (pki.p("server.pem"), pki.p(key));
            let mut args = vec!["--listen", "https://127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key];
            if check {
                args.push("--check-config");
            }
            let out = maitred(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
            assert!(stderr.contains(needle) && stderr.lines().count() == 1, "{key}: {stderr:?}");
        }
    }
    // Gunicorn's names work, and a good pair passes the check.
    let (cert, key) = (pki.p("server.pem"), pki.p("server.key"));
    let out = maitred(&["--listen", "https://127.0.0.1:0", "--certfile", &cert, "--keyfile", &key, "--check-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A certificate without an https:// listener, and the reverse, are refused by name.
    let out = maitred(&["--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key, "--check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no address is https://"));
    let out = maitred(&["--listen", "https://127.0.0.1:0", "--check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs tls_cert and tls_key"));
}

#[test]
fn mutual_tls_good_missing_and_wrong_client_certificates() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |c| c.tls_client_ca = Some(pki.path("ca.pem")));
    let (status, body) = get(server.https, pki.client(Some("alice")), "/").unwrap();
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&body), "https TLSv1.3 CN=alice,O=Example\\, Inc.,C=DE");
    assert!(get(server.https, pki.client(None), "/").is_err(), "served without a client certificate");
    assert!(get(server.https, pki.client(Some("mallory")), "/").is_err(), "served an unknown CA's client");
    drop(server);

    let server = TlsServer::start(&pki, |c| {
        c.tls_client_ca = Some(pki.path("ca.pem"));
        c.tls_client_auth = "optional".into();
    });
    let (_, body) = get(server.https, pki.client(None), "/").unwrap();
    assert_eq!(String::from_utf8_lossy(&body), "https TLSv1.3 -");
    let (_, body) = get(server.https, pki.client(Some("alice")), "/").unwrap();
    assert_eq!(String::from_utf8_lossy(&body), "https TLSv1.3 CN=alice,O=Example\\, Inc.,C=DE");
    assert!(get(server.https, pki.client(Some("mallory")), "/").is_err(), "optional still refuses a bad one");
}

/// Waits until the server closes `s` (end-of-file or reset); false if it stays open past `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
        if start.elapsed() > within {
            return false;
        }
    }
}

#[test]
fn a_stalled_handshake_is_cut_at_header_timeout_without_stalling_others() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |c| c.header_timeout = Duration::from_secs(1));
    // One client says nothing; another sends half a ClientHello record header and stops.
    let mut silent = TcpStream::connect(server.https).unwrap();
    let mut partial = TcpStream::connect(server.https).unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    // Meanwhile others are served.
    for _ in 0..3 {
        assert_eq!(get(server.https, pki.client(None), "/").unwrap().0, 200);
    }
    let start = Instant::now();
    assert!(closed_within(&mut silent, WAIT), "silent handshake not cut");
    assert!(closed_within(&mut partial, WAIT), "partial handshake not cut");
    assert!(start.elapsed() < WAIT);
}

#[test]
fn strictness_holds_over_tls() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, |c| {
        c.max_headers_size = 4096;
        c.max_header_line = 4096;
        c.max_request_line = 4096;
    });
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "both framings",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "400",
        ),
        ("bad length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\nab", "400"),
        ("no host", b"GET / HTTP/1.1\r\n\r\n", "400"),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", "400"),
    ];
    for (case, raw, status) in cases {
        let out = exchange(server.https, pki.client(None), raw).unwrap_or_else(|e| panic!("{case}: {e}"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{case}: {text}");
        assert!(text.to_ascii_lowercase().contains("connection: close"), "{case}: {text}");
    }
    // A head over the limit gets 431, as over plain HTTP.
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(5000));
    let out = exchange(server.https, pki.client(None), big.as_bytes()).unwrap();
    assert!(out.starts_with(b"HTTP/1.1 431 "), "{}", String::from_utf8_lossy(&out));
    // Pipelined requests are answered in order, on one connection.
    let out = exchange(
        server.https,
        pki.client(None),
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out).matches("HTTP/1.1 200 OK").count(), 3);
    // A head that stops arriving gets 408 at header_timeout.
    drop(server);
    let server = TlsServer::start(&pki, |c| c.header_timeout = Duration::from_secs(1));
    let out = exchange(server.https, pki.client(None), b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(out.starts_with(b"HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&out));
}

/// The certificate a new connection is served.
fn served_certificate(addr: SocketAddr, pki: &Pki) -> Vec<u8> {
    let s = connect(addr, pki.client(None)).unwrap();
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn certificate_reload_when_files_change_under_load_with_zero_failed_requests() {
    let pki = Pki::new();
    // Served from copies the test replaces, as certbot does.
    std::fs::copy(pki.path("server.pem"), pki.path("live.pem")).unwrap();
    std::fs::copy(pki.path("server.key"), pki.path("live.key")).unwrap();
    pki.issue("renewed", "/CN=localhost", "ca", Some("subjectAltName=DNS:localhost,IP:127.0.0.1"));
    let server = TlsServer::start(&pki, |c| {
        c.tls_cert = Some(pki.path("live.pem"));
        c.tls_key = Some(pki.path("live.key"));
        c.tls_reload_interval = Duration::from_millis(100);
    });
    let first = served_certificate(server.https, &pki);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed, addr, config) =
                (stop.clone(), ok.clone(), failed.clone(), server.https, pki.client(None));
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match get(addr, config.clone(), "/") {
                        Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("failed: {other:?}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    // Renew: a new certificate and key, written with a rename each (atomic, as certbot's links).
    let replace = |from: &str, to: &str| {
        std::fs::copy(pki.path(from), pki.path(&format!("{to}.tmp"))).unwrap();
        std::fs::rename(pki.path(&format!("{to}.tmp")), pki.path(to)).unwrap();
    };
    replace("renewed.pem", "live.pem");
    replace("renewed.key", "live.key");
    let renewed = pki.certs("renewed")[0].to_vec();
    let deadline = Instant::now() + WAIT;
    while served_certificate(server.https, &pki) != renewed {
        assert!(Instant::now() < deadline, "the renewed certificate was never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(first, renewed);

    // A broken renewal keeps the certificate in force.
    std::fs::write(pki.path("live.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n").unwrap();
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        assert_eq!(served_certificate(server.https, &pki), renewed);
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the reload");
    assert!(ok.load(Ordering::Relaxed) > 0);
}

/// Starts the `maitred` binary with `listen` and `tls` flags serving `root`; returns it, its
/// `https://` address and its log up to the line announcing it (the rest is discarded).
#[cfg(unix)]
fn start_binary(listen: &[&str], tls: &[&str], root: &Path) -> (std::process::Child, SocketAddr, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maitred"))
        .args(listen)
        .args(tls)
        .arg(root)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "server exited:\n{log}");
        log.push_str(&line);
        if let Some(at) = line.find("listening on https://") {
            break line[at + "listening on https://".len()..].trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr, log)
}

/// Sends SIGTERM to `child` and waits (bounded) for its exit status.
#[cfg(unix)]
fn stop_binary(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[cfg(unix)]
fn sighup_reloads_the_certificate_of_the_binary() {
    let pki = Pki::new();
    std::fs::copy(pki.path("server.pem"), pki.path("live.pem")).unwrap();
    std::fs::copy(pki.path("server.key"), pki.path("live.key")).unwrap();
    pki.issue("renewed", "/CN=localhost", "ca", Some("subjectAltName=DNS:localhost,IP:127.0.0.1"));
    let root = tempfile::tempdir().unwrap();
    let (mut child, addr, _) = start_binary(
        &["--listen", "https://127.0.0.1:0", "--tls-reload-interval", "0"],
        &["--tls-cert", &pki.p("live.pem"), "--tls-key", &pki.p("live.key")],
        root.path(),
    );
    let first = served_certificate(addr, &pki);
    std::fs::copy(pki.path("renewed.pem"), pki.path("live.pem")).unwrap();
    std::fs::copy(pki.path("renewed.key"), pki.path("live.key")).unwrap();
    // No polling (interval 0): only the signal reloads.
    assert_eq!(served_certificate(addr, &pki), first);
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let renewed = pki.certs("renewed")[0].to_vec();
    let deadline = Instant::now() + WAIT;
    while served_certificate(addr, &pki) != renewed {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the certificate");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still serving after the signal (it reloads, it does not drain).
    assert_eq!(get(addr, pki.client(None), "/").unwrap().0, 200);
    stop_binary(&mut child);
}

/// With worker processes the supervisor accepts and hands each TLS connection to a worker as
/// it is (the handshake happens in the worker), and announces the listener as `https://`
/// (it said `http://` before: the bound address alone does not know it speaks TLS).
#[test]
#[cfg(unix)]
fn worker_processes_serve_an_https_listener_announced_as_https() {
    let pki = Pki::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "hello\n").unwrap();
    let (mut child, addr, before) = start_binary(
        &["--listen", "https://127.0.0.1:0", "--workers", "2", "--threads", "2"],
        &["--tls-cert", &pki.p("server.pem"), "--tls-key", &pki.p("server.key")],
        root.path(),
    );
    assert!(!before.contains("listening on http://"), "an https listener announced as http:\n{before}");
    // Handed out in turn: eight connections reach both workers, each completes its handshake.
    for _ in 0..8 {
        let (status, body) = get(addr, pki.client(None), "/a.txt").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"hello\n"[..]));
    }
    let status = stop_binary(&mut child);
    assert!(status.success(), "{status:?}");
}

/// The WSGI environ over TLS: `wsgi.url_scheme`, `HTTPS` and mod_ssl's `SSL_*` keys.
#[cfg(feature = "python")]
mod wsgi {
    use super::*;
    use maitred::python::WsgiHandler;
    use pyo3::prelude::*;

    const APP: &str = r#"
def app(environ, start_response):
    keys = ["wsgi.url_scheme", "HTTPS", "SSL_PROTOCOL", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN", "SERVER_PORT"]
    body = "|".join(str(environ.get(k, "-")) for k in keys).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

    fn serve(pki: &Pki) -> (ServerHandle, SocketAddr, SocketAddr) {
        Python::initialize();
        let app = Python::attach(|py| {
            let code = std::ffi::CString::new(APP).unwrap();
            PyModule::from_code(py, &code, c"tls_fixture.py", c"tls_fixture").unwrap().getattr("app").unwrap().unbind()
        });
        let mut config = test_config();
        config.listen = vec!["https://127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()];
        config.tls_cert = Some(pki.path("server.pem"));
        config.tls_key = Some(pki.path("server.key"));
        config.tls_client_ca = Some(pki.path("ca.pem"));
        config.tls_client_auth = "optional".into();
        let handler = WsgiHandler::new(app, &config);
        let server = Server::bind(config, handler).unwrap();
        let (https, plain) = (server.local_addrs()[0].tcp().unwrap(), server.local_addrs()[1].tcp().unwrap());
        (server.start().unwrap(), https, plain)
    }

    #[test]
    fn wsgi_environ_says_https_and_gives_the_client_subject() {
        let pki = Pki::new();
        let (handle, https, plain) = serve(&pki);
        let (_, body) = get(https, pki.client(Some("alice")), "/").unwrap();
        assert_eq!(String::from_utf8_lossy(&body), "https|on|TLSv1.3|SUCCESS|CN=alice,O=Example\\, Inc.,C=DE|443");
        let (_, body) = get(https, pki.client(None), "/").unwrap();
        assert_eq!(String::from_utf8_lossy(&body), "https|on|TLSv1.3|NONE|-|443");
        let mut c = Client::connect(plain);
        c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(c.response().body_text(), "http|-|-|-|-|80");
        handle.shutdown();
        handle.wait();
    }
}
