//! Benchmark peer: the smallest reasonable hyper 1.x + tokio-rustls HTTPS server for
//! `bench/tls/run.sh`.
//!
//! Routes: `GET /` -> 200 `Hello, World!` (text/plain); anything else -> 404.
//!
//! TLS: rustls with the ring provider and rustls' default `ServerConfig` (TLS 1.2 and 1.3, its
//! default cipher suites, the default in-memory session cache and TLS 1.3 tickets), ALPN
//! `http/1.1`. The handshake runs in the connection's own tokio task.
//!
//! Usage: hyper-rustls-hello --cert FILE --key FILE [--listen ADDR]   (default 127.0.0.1:0)
//! Prints `listening on https://ADDR` once on stdout after binding.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

const BODY: &[u8] = b"Hello, World!";
const USAGE: &str = "usage: hyper-rustls-hello --cert FILE --key FILE [--listen ADDR]";

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => (StatusCode::OK, Bytes::from_static(BODY)),
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found")),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

struct Args {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
}

fn parse_args() -> Args {
    let mut listen = "127.0.0.1:0".to_string();
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match a.as_str() {
            "--listen" => listen = value("--listen"),
            "--cert" => cert = Some(PathBuf::from(value("--cert"))),
            "--key" => key = Some(PathBuf::from(value("--key"))),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => usage(&format!("unknown argument: {other}")),
        }
    }
    Args {
        listen: listen.parse().unwrap_or_else(|e| usage(&format!("bad --listen {listen:?}: {e}"))),
        cert: cert.unwrap_or_else(|| usage("--cert is required")),
        key: key.unwrap_or_else(|| usage("--key is required")),
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("hyper-rustls-hello: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn fail(msg: String) -> ! {
    eprintln!("hyper-rustls-hello: {msg}");
    std::process::exit(1);
}

fn tls_config(cert: &PathBuf, key: &PathBuf) -> ServerConfig {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(format!("certificate {}: {e}", cert.display())));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(format!("private key {}: {e}", key.display())));
    // ring, as in maitred; rustls 0.23.48 deprecates it only for having no post-quantum key
    // exchange (neither side of this benchmark offers one).
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail(format!("protocol versions: {e}")))
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap_or_else(|e| fail(format!("certificate and key: {e}")));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = parse_args();
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&args.cert, &args.key)));
    let listener = TcpListener::bind(args.listen).await.unwrap_or_else(|e| fail(format!("bind {}: {e}", args.listen)));
    let local = listener.local_addr().expect("local_addr");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on https://{local}").expect("stdout");
        out.flush().expect("flush stdout");
    }

    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // e.g. EMFILE: back off briefly instead of spinning.
                eprintln!("hyper-rustls-hello: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // Failed handshakes and client resets/EOFs are normal under load; ignore them.
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(tls), service_fn(route));
            let _ = conn.await;
        });
    }
}
