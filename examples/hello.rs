//! `GET /` answers `Hello, World!`; anything else is 404. Takes the same settings flags as
//! `maitred`:
//!
//! ```text
//! cargo run --release --example hello -- --listen 127.0.0.1:8080
//! ```

use std::process::ExitCode;

use maitred::{Request, Response};

fn hello(request: Request) -> Response {
    if request.path() == "/" && matches!(request.method(), "GET" | "HEAD") {
        Response::new(200).with_header("Content-Type", "text/plain").with_body("Hello, World!")
    } else {
        Response::text(404, "404 Not Found\n")
    }
}

fn main() -> ExitCode {
    maitred::launch("hello: answers GET / with Hello, World!", hello)
}
