//! Benchmark tool: opens new TLS connections to a server and makes one request on each.
//!
//! Each connection: TCP connect, a TLS handshake (full by default: the client keeps no session,
//! so the server does the whole key exchange and signature every time; `--resume` keeps one
//! shared session cache so the server may resume), `GET PATH` with `Connection: close`, the whole
//! response read (status 200 and exactly `Content-Length` body bytes), then the socket is closed.
//! The handshake kind (full or resumed) is read from rustls for every connection and counted.
//!
//! Two ways to drive it, each bounded by `--duration`:
//! * `--rate R`: open loop, connection k starts at `k / R` seconds, spread over `--threads`
//!   threads (a thread that falls behind starts its next connection at once, never skips one);
//!   the achieved rate is printed, so a generator that could not keep up is visible;
//! * `--concurrency C`: closed loop, C threads each starting the next connection as soon as the
//!   last one is done: new connections per second as fast as the server (and this client) go.
//!
//! The client does not verify the certificate or the handshake signature (a load generator: the
//! server still does all of its work), so its own CPU cost stays below the server's.
//!
//! Output, one line on stdout at the end (latencies are per connection, connect to last byte):
//! `handshake-load ok=N failed=F full=X resumed=Y elapsed_s=T rate=R p50_us=A p99_us=B max_us=C`
//! and, with `--progress`, nothing else; errors of the first few failures go to stderr.
//! Exit status 0 if at least one connection succeeded and none failed, 1 otherwise, 2 on bad
//! arguments.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme, StreamOwned};

const USAGE: &str = "usage: handshake-load --connect ADDR (--rate R | --concurrency C) --duration SECS \
[--threads T] [--server-name NAME] [--path PATH] [--resume] [--timeout SECS]";
/// Responses larger than this are a failure, not something to read forever.
const MAX_RESPONSE: usize = 64 * 1024;
/// At most this many failures are described on stderr.
const MAX_REPORTED: u64 = 5;

enum Mode {
    Rate(f64),
    Concurrency(usize),
}

struct Args {
    addr: SocketAddr,
    mode: Mode,
    duration: Duration,
    threads: usize,
    server_name: String,
    path: String,
    resume: bool,
    timeout: Duration,
}

fn usage(msg: &str) -> ! {
    eprintln!("handshake-load: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut rate, mut conc, mut duration) = (None, None, None, None);
    let (mut threads, mut name, mut path, mut resume, mut timeout) =
        (4usize, "localhost".to_string(), "/".to_string(), false, 5.0f64);
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        let v = v.unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        v.parse().unwrap_or_else(|_| usage(&format!("bad {flag} value {v:?}")))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--connect" => addr = Some(num::<SocketAddr>("--connect", args.next())),
            "--rate" => rate = Some(num::<f64>("--rate", args.next())),
            "--concurrency" => conc = Some(num::<usize>("--concurrency", args.next())),
            "--duration" => duration = Some(num::<f64>("--duration", args.next())),
            "--threads" => threads = num("--threads", args.next()),
            "--server-name" => name = args.next().unwrap_or_else(|| usage("--server-name needs a value")),
            "--path" => path = args.next().unwrap_or_else(|| usage("--path needs a value")),
            "--resume" => resume = true,
            "--timeout" => timeout = num("--timeout", args.next()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => usage(&format!("unknown argument: {other}")),
        }
    }
    let mode = match (rate, conc) {
        (Some(r), None) if r > 0.0 && r.is_finite() => Mode::Rate(r),
        (None, Some(c)) if c > 0 => Mode::Concurrency(c),
        _ => usage("give exactly one of --rate R (> 0) and --concurrency C (> 0)"),
    };
    let duration = duration.unwrap_or_else(|| usage("--duration is required"));
    if !(duration > 0.0 && duration <= 3600.0) {
        usage("--duration must be in (0, 3600] seconds");
    }
    if threads == 0 || threads > 1024 {
        usage("--threads must be in 1..=1024");
    }
    if !(timeout > 0.0 && timeout <= 600.0) {
        usage("--timeout must be in (0, 600] seconds");
    }
    if ServerName::try_from(name.clone()).is_err() {
        usage(&format!("bad --server-name {name:?}"));
    }
    Args {
        addr: addr.unwrap_or_else(|| usage("--connect is required")),
        mode,
        duration: Duration::from_secs_f64(duration),
        threads,
        server_name: name,
        path,
        resume,
        timeout: Duration::from_secs_f64(timeout),
    }
}

/// Accepts any certificate and any handshake signature: the client of a load test.
#[derive(Debug)]
struct NoVerify(Vec<SignatureScheme>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

fn client_config(resume: bool) -> Arc<ClientConfig> {
    // ring, like the servers; rustls 0.23.48 deprecates it only for having no post-quantum key
    // exchange (X25519 is what every server here negotiates).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider.signature_verification_algorithms.supported_schemes();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(schemes)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if resume { Resumption::in_memory_sessions(256) } else { Resumption::disabled() };
    Arc::new(config)
}

/// What one connection did.
struct Outcome {
    micros: u64,
    resumed: bool,
}

fn one_connection(a: &Args, config: &Arc<ClientConfig>, request: &[u8]) -> Result<Outcome, String> {
    let t0 = Instant::now();
    let tcp = TcpStream::connect_timeout(&a.addr, a.timeout).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(a.timeout)).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(a.timeout)).map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(a.server_name.clone()).expect("checked in parse_args");
    let conn = ClientConnection::new(config.clone(), name).map_err(|e| format!("tls: {e}"))?;
    let mut tls = StreamOwned::new(conn, tcp);
    // write_all drives the handshake first, then sends the request.
    tls.write_all(request).map_err(|e| format!("handshake or write: {e}"))?;
    tls.flush().map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let want = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8".to_string())?;
            if !head.starts_with("HTTP/1.1 200 ") {
                return Err(format!("status line {:?}", head.lines().next().unwrap_or("")));
            }
            let len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .ok_or("response without a Content-Length")?;
            break end + 4 + len;
        }
        let n = tls.read(&mut chunk).map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed after {} bytes, before the end of the head", buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err("response head too large".into());
        }
    };
    if want > MAX_RESPONSE {
        return Err("response too large".into());
    }
    while buf.len() < want {
        let n = tls.read(&mut chunk).map_err(|e| format!("read body: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed after {} of {want} bytes", buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let resumed = matches!(tls.conn.handshake_kind(), Some(HandshakeKind::Resumed));
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(Outcome { micros: t0.elapsed().as_micros() as u64, resumed })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Totals {
    ok: AtomicU64,
    failed: AtomicU64,
    resumed: AtomicU64,
}

fn main() {
    let a = Arc::new(parse_args());
    let config = client_config(a.resume);
    let request = Arc::new(
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", a.path, a.server_name).into_bytes(),
    );
    let totals = Arc::new(Totals::default());
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let threads = match a.mode {
        Mode::Rate(_) => a.threads,
        Mode::Concurrency(c) => c,
    };
    let start = Instant::now();
    let deadline = start + a.duration;
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let (a, config, request, totals, latencies) =
                (a.clone(), config.clone(), request.clone(), totals.clone(), latencies.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let mut i: u64 = 0;
                loop {
                    if let Mode::Rate(r) = a.mode {
                        // Connection number k + i * threads starts at that number / R.
                        let at = start + Duration::from_secs_f64((k as u64 + i * threads as u64) as f64 / r);
                        if at >= deadline {
                            break;
                        }
                        let now = Instant::now();
                        if at > now {
                            std::thread::sleep(at - now);
                        }
                    } else if Instant::now() >= deadline {
                        break;
                    }
                    i += 1;
                    match one_connection(&a, &config, &request) {
                        Ok(o) => {
                            totals.ok.fetch_add(1, Ordering::Relaxed);
                            if o.resumed {
                                totals.resumed.fetch_add(1, Ordering::Relaxed);
                            }
                            mine.push(o.micros);
                        }
                        Err(e) => {
                            if totals.failed.fetch_add(1, Ordering::Relaxed) < MAX_REPORTED {
                                eprintln!("handshake-load: connection failed: {e}");
                            }
                        }
                    }
                    // A connection never outlives the run by more than its own timeouts.
                    if Instant::now() >= deadline + a.timeout {
                        break;
                    }
                }
                latencies.lock().expect("no thread panics holding it").extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a load thread panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *latencies.lock().expect("threads joined"));
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    let ok = totals.ok.load(Ordering::Relaxed);
    let failed = totals.failed.load(Ordering::Relaxed);
    let resumed = totals.resumed.load(Ordering::Relaxed);
    println!(
        "handshake-load ok={ok} failed={failed} full={} resumed={resumed} elapsed_s={elapsed:.3} rate={:.1} p50_us={} p99_us={} max_us={}",
        ok - resumed,
        ok as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0),
    );
    std::process::exit(if ok > 0 && failed == 0 { 0 } else { 1 });
}
