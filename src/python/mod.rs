//! Python WSGI applications (PEP 3333) on maitred: feature `python`.
//!
//! The same server runs the application: one acceptor, one I/O loop that owns every socket,
//! and a fixed pool of worker threads, each calling the application through
//! [`WsgiHandler`]. Workers never touch a socket, so a slow client costs a buffer, not a
//! worker, and never the GIL.
//!
//! Two ways in:
//!
//! * the extension module `maitred._maitred` ([`module`]), built by maturin for the Python
//!   package `maitred`: `run(argv, load_app)` is the `maitred MODULE:APP` command and
//!   `serve(app, settings)` the programmatic entry point; both block until SIGINT or SIGTERM
//!   has drained the server, with the GIL released, and forward the server's log records to
//!   Python's `logging` ([`install_logging`]);
//! * from Rust, [`WsgiHandler::new`] with an application object, for embedding and tests.
//!
//! ## Threads and the GIL
//!
//! Each worker thread creates its interpreter thread state once, when it starts, and keeps
//! it until it stops ([`crate::Handler::on_worker_start`]); between requests it is detached,
//! so the GIL is free while workers wait for work. A request takes the GIL for the
//! application call, and a streamed response takes it again for each chunk, releasing it
//! while the I/O loop sends. `time.sleep`, socket and database calls in the application
//! release the GIL as usual, so `threads` blocking requests really run in parallel.
//! `threading.local()` data lives as long as the worker thread.
//!
//! ## The request
//!
//! `wsgi.input` is the complete body, in memory or spooled to a file, so reads never wait for
//! the client (`wsgi.input_terminated` is true): `read(size=-1)`, `readline(size=-1)`,
//! `readlines(hint=-1)` and iteration by lines; a spooled body is read without the GIL.
//! `wsgi.errors` lines are log records at error level (target `maitred::wsgi`). Every text
//! value is ISO-8859-1 (each byte is the code point of the same number), as PEP 3333 asks;
//! nothing is decoded as UTF-8.
//!
//! | key | value |
//! |---|---|
//! | `REQUEST_METHOD` | the method as sent |
//! | `SCRIPT_NAME` | `url_prefix` (empty without one) |
//! | `PATH_INFO` | the path after the prefix, percent-decoded once (`%2F` becomes `/`) |
//! | `QUERY_STRING` | the query exactly as sent, `""` when there is none |
//! | `REQUEST_URI` | the request target exactly as sent |
//! | `CONTENT_TYPE` | the `Content-Type` header; absent without one |
//! | `CONTENT_LENGTH` | the body length when the request had `Content-Length` or a chunked body (de-chunked: the body is complete); absent otherwise |
//! | `SERVER_NAME`, `SERVER_PORT` | from the host the client asked for (`Host`, an absolute target, or a trusted proxy's forwarded host); the port defaults to 80/443 by scheme; without a host, the local address |
//! | `SERVER_PROTOCOL` | `HTTP/1.0` or `HTTP/1.1` |
//! | `SERVER_SOFTWARE` | `maitred/VERSION` |
//! | `REMOTE_ADDR`, `REMOTE_PORT` | the client, after trusted-proxy resolution |
//! | `HTTP_*` | every other header: name upper-cased, `-` as `_`; repeated fields joined with `", "` (`Cookie` with `"; "`) |
//! | `HTTP_HOST` | the host the client asked for (see `SERVER_NAME`) |
//! | `HTTPS`, `SSL_PROTOCOL`, `SSL_CIPHER` | on an `https://` listener only: `on`, `TLSv1.3` or `TLSv1.2`, the suite (e.g. `TLS13_AES_256_GCM_SHA384`) |
//! | `SSL_CLIENT_VERIFY`, `SSL_CLIENT_S_DN` | on an `https://` listener: `SUCCESS` and the verified client certificate's subject as an RFC 4514 string (`CN=alice,O=Example`, last RDN first), or `NONE` and no `SSL_CLIENT_S_DN` when the client sent no certificate |
//! | `wsgi.url_scheme` | `https` on an `https://` listener or when a trusted proxy said so, else `http` |
//! | `wsgi.*` | version `(1, 0)`, `input`, `input_terminated` (true), `errors`, `multithread` (true), `multiprocess` (false), `run_once` (false), `file_wrapper` |
//!
//! Dropped headers: names containing `_` (after the CGI mapping `X-User` and `X_User` would
//! both be `HTTP_X_USER`, a way to smuggle a header past a proxy that filters one spelling),
//! `Transfer-Encoding` (the body is already de-chunked; its length is in `CONTENT_LENGTH`),
//! `Content-Length` and `Content-Type` (in `CONTENT_LENGTH`, `CONTENT_TYPE`), and `Proxy`
//! (httpoxy: as `HTTP_PROXY` some libraries would take it for their proxy setting). A request
//! outside `url_prefix` gets 404 without calling the application. `OPTIONS *` (a question
//! about the server, with no path) is answered `200` with an empty body and no `Allow`,
//! without calling the application: `PATH_INFO` always starts with `/` (or is empty at the
//! prefix itself).
//!
//! ## The response
//!
//! `start_response(status, headers, exc_info=None)` validates when it is called, so the
//! application sees the exception at the faulty call (uncaught, it becomes a 500):
//!
//! | refused | exception |
//! |---|---|
//! | `status` not a `str`; `headers` not a `list` of `(str, str)` tuples | `TypeError` |
//! | `status` not `"NNN reason"` with a code in 200–599; a control character or a character past U+00FF in it | `ValueError` |
//! | a header name that is not an HTTP token; a value with a control character (CR, LF, NUL, ...) or a character past U+00FF; a `Content-Length` that is not digits or disagrees with another | `ValueError` |
//! | a hop-by-hop header (`Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) | `AssertionError` |
//! | a second call without `exc_info` | `AssertionError` |
//!
//! Header values go out as ISO-8859-1 bytes (`"café"` is `caf\xe9` on the wire); a reason
//! phrase outside ASCII is replaced by the standard one. With `exc_info`, new status and
//! headers replace the old ones until the head is sent, and `exc_info[1]` is raised again
//! after. The head counts as sent once the iterable has produced a non-empty chunk or
//! `write()` was given data. `write(data)` works for old applications: its data is kept in
//! memory and sent before the iterable's (the head only leaves once the application has
//! returned), so streaming applications should return an iterable.
//!
//! The iterable is consumed lazily, on the worker thread: the worker pulls until the first
//! non-empty chunk (a generator may call `start_response` on its first `next()`), then the
//! rest becomes a stream the I/O loop sends in bounded pieces, the worker taking the GIL once
//! per chunk and waiting without it while the client is slow. Shortcuts: an exact `list` or
//! `tuple` is joined into one body; iteration stops as soon as the application's
//! `Content-Length` is reached (PEP 3333), so a framework's one-chunk body needs no stream.
//!
//! * **`Content-Length`**: when the application sets it, the server enforces it: a shorter
//!   body closes the connection after the bytes that exist, a longer one is cut at the
//!   declared length and the connection closed; neither hangs the client. Without it the
//!   body is chunked (HTTP/1.1) or ends with the connection (HTTP/1.0).
//! * **`close()`** of the iterable is always called, once: at its end, on an error, when
//!   iteration stops early, and when the client disconnects (the dropped stream takes the
//!   GIL to call it).
//! * **Errors**: an exception or a non-`bytes` chunk before the head is sent is a 500 with
//!   `Connection: close`; the traceback goes to the error log (target `maitred::wsgi`) and,
//!   only with `expose_tracebacks`, to the client. After the head it aborts the response: the
//!   connection is closed, so the client sees a cut body (no last chunk, or fewer bytes than
//!   `Content-Length`).
//! * **`wsgi.file_wrapper(filelike, block_size=65536)`** iterates `filelike.read(block_size)`
//!   and its `close()` closes the file. Returned around a regular file opened by `open(path,
//!   "rb")` or `tempfile.TemporaryFile()` (exactly `io.FileIO`, or `io.BufferedReader` /
//!   `io.BufferedRandom` over one; Unix), the server sends the file itself: a duplicate of the descriptor goes to the I/O
//!   loop, which reads it in blocks from the file's current position (`tell()`) to its end
//!   or to `Content-Length`; the worker is free at once and no byte passes through Python.
//!   Other file objects (subclasses and file-likes of their own too, whose `fileno()` could
//!   name a descriptor they do not hold) are read in blocks on the worker.

mod environ;
mod errors;
mod handler;
mod input;
mod logging;
pub mod module;
mod raw;
mod response;
mod start_response;

pub use handler::WsgiHandler;
pub use logging::install_logging;
pub use module::{run, serve, wsgi_defaults};
