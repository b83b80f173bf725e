//! Echoes every request: `METHOD TARGET`, a blank line, then the raw request body, with
//! `X-Body-Length` giving the body's length. Takes the same settings flags as `maitred`:
//!
//! ```text
//! cargo run --release --example echo -- --listen 127.0.0.1:8080
//! ```

use std::io::Read;
use std::process::ExitCode;

use maitred::{Request, Response};

fn echo(mut request: Request) -> Response {
    let mut body = format!("{} {}\n\n", request.method(), request.target()).into_bytes();
    let before = body.len();
    if let Err(e) = request.body().read_to_end(&mut body) {
        return Response::text(500, format!("could not read the body: {e}\n"));
    }
    let received = body.len() - before;
    Response::new(200)
        .with_header("Content-Type", "text/plain")
        .with_header("X-Body-Length", received.to_string())
        .with_body(body)
}

fn main() -> ExitCode {
    maitred::launch("echo: answers every request with its method, target and body", echo)
}
