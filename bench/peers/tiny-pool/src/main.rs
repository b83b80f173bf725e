//! Benchmark peer: the naive form of maitred's design built from off-the-shelf parts.
//!
//! tiny_http accepts and parses; ONE dispatcher thread calls `server.recv()` and pushes
//! each request into a bounded crossbeam channel (capacity 4 x threads); N worker
//! threads pop requests and answer them.
//!
//! Routes (the same as `examples/bench_server.rs` and the hyper peer):
//! * `GET /`       -> 200 `Hello, World!` (text/plain)
//! * `POST /echo`  -> 200 with the request body echoed back (read whole on the worker)
//! * `GET /sleep`  -> `std::thread::sleep` 50 ms on the worker, then `slept`
//! * anything else -> 404
//!
//! Usage: tiny-pool [--listen ADDR] [--threads N]   (defaults 127.0.0.1:0, 4)
//! Prints `listening on http://ADDR` once on stdout after binding.

use std::io::Write;
use std::thread;
use std::time::Duration;

use crossbeam_channel::bounded;
use tiny_http::{Header, Method, Response, Server};

const BODY: &str = "Hello, World!";

struct Args {
    listen: String,
    threads: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("tiny-pool: {msg}\nusage: tiny-pool [--listen ADDR] [--threads N]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args { listen: "127.0.0.1:0".into(), threads: 4 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> String {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match key.as_str() {
            "--listen" => a.listen = value("--listen"),
            "--threads" => {
                let v = value("--threads");
                a.threads = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => usage(&format!("bad --threads {v:?}")),
                };
            }
            "-h" | "--help" => {
                println!("usage: tiny-pool [--listen ADDR] [--threads N]");
                std::process::exit(0);
            }
            other => usage(&format!("unknown argument: {other}")),
        }
    }
    a
}

fn serve(mut req: tiny_http::Request, text_plain: &Header) {
    let is_get = *req.method() == Method::Get;
    let is_post = *req.method() == Method::Post;
    // Path without the query string.
    let path = req.url().split('?').next().unwrap_or("").to_string();
    // The client may have gone away; that is not our problem, hence the ignored results.
    match (is_get, is_post, path.as_str()) {
        (true, _, "/") => {
            let _ = req.respond(Response::from_string(BODY).with_header(text_plain.clone()));
        }
        (_, true, "/echo") => {
            let mut body = Vec::with_capacity(req.body_length().unwrap_or(0));
            match req.as_reader().read_to_end(&mut body) {
                Ok(_) => {
                    let ct = Header::from_bytes(&b"Content-Type"[..], &b"application/octet-stream"[..])
                        .expect("static header is valid");
                    let _ = req.respond(Response::from_data(body).with_header(ct));
                }
                Err(e) => {
                    let _ = req.respond(
                        Response::from_string(format!("could not read the body: {e}\n"))
                            .with_status_code(400)
                            .with_header(text_plain.clone()),
                    );
                }
            }
        }
        (true, _, "/sleep") => {
            thread::sleep(Duration::from_millis(50));
            let _ = req.respond(Response::from_string("slept").with_header(text_plain.clone()));
        }
        _ => {
            let _ = req.respond(
                Response::from_string("404 Not Found\n")
                    .with_status_code(404)
                    .with_header(text_plain.clone()),
            );
        }
    }
}

fn main() {
    let args = parse_args();
    let server = Server::http(args.listen.as_str()).unwrap_or_else(|e| {
        eprintln!("tiny-pool: bind {}: {e}", args.listen);
        std::process::exit(1);
    });
    let local = match server.server_addr().to_ip() {
        Some(a) => a,
        None => {
            eprintln!("tiny-pool: not listening on an IP address");
            std::process::exit(1);
        }
    };

    let content_type = Header::from_bytes(&b"Content-Type"[..], &b"text/plain"[..])
        .expect("static header is valid");
    let (tx, rx) = bounded::<tiny_http::Request>(4 * args.threads);

    let mut workers = Vec::with_capacity(args.threads);
    for i in 0..args.threads {
        let rx = rx.clone();
        let ct = content_type.clone();
        let h = thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                for req in rx.iter() {
                    serve(req, &ct);
                }
            })
            .expect("spawn worker");
        workers.push(h);
    }
    drop(rx);

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}").expect("stdout");
        out.flush().expect("flush stdout");
    }

    // Dispatcher: this (main) thread is the single recv() loop.
    loop {
        match server.recv() {
            Ok(req) => {
                if tx.send(req).is_err() {
                    break; // all workers gone
                }
            }
            Err(e) => {
                eprintln!("tiny-pool: recv: {e}");
                break;
            }
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
}
