//! Benchmark peer: the smallest reasonable hyper 1.x HTTP/1.1 hello-world.
//!
//! Usage: hyper-hello [--listen ADDR]   (default 127.0.0.1:0)
//! Prints `listening on http://ADDR` once on stdout after binding.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, World!";

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn parse_args() -> SocketAddr {
    let mut listen = String::from("127.0.0.1:0");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(v) => listen = v,
                None => usage("--listen needs a value"),
            },
            s if s.starts_with("--listen=") => listen = s["--listen=".len()..].to_string(),
            "-h" | "--help" => {
                println!("usage: hyper-hello [--listen ADDR]");
                std::process::exit(0);
            }
            other => usage(&format!("unknown argument: {other}")),
        }
    }
    listen
        .parse()
        .unwrap_or_else(|e| usage(&format!("bad --listen {listen:?}: {e}")))
}

fn usage(msg: &str) -> ! {
    eprintln!("hyper-hello: {msg}\nusage: hyper-hello [--listen ADDR]");
    std::process::exit(2);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let addr = parse_args();
    let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| {
        eprintln!("hyper-hello: bind {addr}: {e}");
        std::process::exit(1);
    });
    let local = listener.local_addr().expect("local_addr");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}").expect("stdout");
        out.flush().expect("flush stdout");
    }

    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // e.g. EMFILE: back off briefly instead of spinning.
                eprintln!("hyper-hello: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(hello));
            // Client resets/EOFs are normal under load; ignore them.
            let _ = conn.await;
        });
    }
}
