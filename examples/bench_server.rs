//! The maitred side of `bench/run.sh`: the same three routes as the benchmark peers in
//! `bench/peers/`. Takes the same settings flags as `maitred`:
//!
//! ```text
//! cargo run --release --example bench_server -- --listen 127.0.0.1:0 --threads 4
//! ```
//!
//! * `GET /`       → 200 `Hello, World!` (`text/plain`)
//! * `POST /echo`  → 200 with the request body echoed back (`application/octet-stream`): the
//!   complete body is returned as it is with `with_body(take_body())`, from memory or, once it
//!   was spooled, from its temporary file
//! * `GET /sleep`  → sleeps 50 ms on the worker, then 200 `slept`
//! * anything else → 404

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use maitred::{Request, Response};

enum Route {
    Hello,
    Echo,
    Sleep,
    NotFound,
}

fn route(request: &Request) -> Route {
    match (request.method(), request.path()) {
        ("GET", "/") => Route::Hello,
        ("POST", "/echo") => Route::Echo,
        ("GET", "/sleep") => Route::Sleep,
        _ => Route::NotFound,
    }
}

fn handle(mut request: Request) -> Response {
    match route(&request) {
        Route::Hello => Response::new(200).with_header("Content-Type", "text/plain").with_body("Hello, World!"),
        // The body is complete before the handler runs; it goes back as it is: from memory, or
        // from its spool file (sent by the I/O loop in pieces, never read into memory whole).
        Route::Echo => {
            Response::new(200).with_header("Content-Type", "application/octet-stream").with_body(request.take_body())
        }
        Route::Sleep => {
            thread::sleep(Duration::from_millis(50));
            Response::new(200).with_header("Content-Type", "text/plain").with_body("slept")
        }
        Route::NotFound => Response::text(404, "404 Not Found\n"),
    }
}

fn main() -> ExitCode {
    maitred::launch("bench_server: GET / (hello), POST /echo, GET /sleep (50 ms), for bench/run.sh", handle)
}
