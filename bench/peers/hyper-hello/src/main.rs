//! Benchmark peer: the smallest reasonable hyper 1.x HTTP/1.1 server for `bench/run.sh`.
//!
//! Routes (the same as `examples/bench_server.rs` and the tiny-pool peer):
//! * `GET /`       -> 200 `Hello, World!` (text/plain)
//! * `POST /echo`  -> 200 with the request body echoed back (collected with http-body-util)
//! * `GET /sleep`  -> waits 50 ms (`tokio::time::sleep`, so no thread is held), then `slept`
//! * anything else -> 404
//!
//! Usage: hyper-hello [--listen ADDR]   (default 127.0.0.1:0)
//! Prints `listening on http://ADDR` once on stdout after binding.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, World!";

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => reply(StatusCode::OK, "text/plain", Bytes::from_static(BODY)),
        (&Method::POST, "/echo") => match req.into_body().collect().await {
            Ok(collected) => reply(
                StatusCode::OK,
                "application/octet-stream",
                collected.to_bytes(),
            ),
            Err(e) => reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                Bytes::from(format!("could not read the body: {e}\n")),
            ),
        },
        (&Method::GET, "/sleep") => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reply(StatusCode::OK, "text/plain", Bytes::from_static(b"slept"))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"404 Not Found\n"),
        ),
    };
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
                .serve_connection(TokioIo::new(stream), service_fn(route));
            // Client resets/EOFs are normal under load; ignore them.
            let _ = conn.await;
        });
    }
}
