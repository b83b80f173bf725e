//! Benchmark peer: the naive form of maitred's design built from off-the-shelf parts.
//!
//! tiny_http accepts and parses; ONE dispatcher thread calls `server.recv()` and pushes
//! each request into a bounded crossbeam channel (capacity 4 x threads); N worker
//! threads pop requests and answer `Hello, World!`.
//!
//! Usage: tiny-pool [--listen ADDR] [--threads N]   (defaults 127.0.0.1:0, 4)
//! Prints `listening on http://ADDR` once on stdout after binding.

use std::io::Write;
use std::thread;

use crossbeam_channel::bounded;
use tiny_http::{Header, Response, Server};

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
                    let resp = Response::from_string(BODY).with_header(ct.clone());
                    // The client may have gone away; that is not our problem.
                    let _ = req.respond(resp);
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
