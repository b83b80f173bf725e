//! The `maitred` binary. Until the static-file app lands it serves a built-in page at `/`
//! and 404 elsewhere.

use std::process::ExitCode;

use maitred::{Request, Response};

const PAGE: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>maitred</title></head>
<body>
<h1>maitred is running</h1>
<p>This is the built-in page of the maitred HTTP/1.1 server. Run <code>maitred --help</code> to see its settings.</p>
</body>
</html>
";

fn builtin(request: Request) -> Response {
    match (request.method(), request.path()) {
        ("GET" | "HEAD", "/") => Response::html(200, PAGE),
        (_, "/") => Response::text(405, "405 Method Not Allowed\n").with_header("Allow", "GET, HEAD"),
        _ => Response::text(404, "404 Not Found\n"),
    }
}

fn main() -> ExitCode {
    maitred::launch("maitred: a production HTTP/1.1 server", builtin)
}
