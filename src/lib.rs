//! # maitred
//!
//! A production HTTP/1.1 server in the style of Waitress: one acceptor thread, one I/O loop
//! that owns every socket, a bounded channel, and a fixed pool of worker threads that run the
//! application. Like a maître d', it greets every guest at the door and hands them, fully
//! seated, to a waiter.
//!
//! ```no_run
//! use maitred::{Config, Request, Response, Server};
//!
//! let server = Server::bind(Config::default(), |req: Request| {
//!     Response::text(200, format!("hello from {}\n", req.path()))
//! })?;
//! let handle = server.start()?;
//! handle.wait(); // until something calls handle.shutdown() or a Stopper
//! # Ok::<(), maitred::Error>(())
//! ```
//!
//! ## Threading model
//!
//! | thread | owns | never does |
//! |---|---|---|
//! | `maitred-acceptor` (1) | the listening sockets, `accept`, the connection cap | read a request, run the handler |
//! | `maitred-io` (1) | every client socket, its buffers and deadlines, parsing, body spooling, writing | run the handler, block on one client |
//! | `maitred-worker-N` (`threads`, fixed) | one complete request at a time | touch a socket |
//!
//! A request reaches a worker only when its head and body are complete, so a slow or idle
//! client costs a buffer, never a worker. The handler's response goes back to the I/O loop,
//! which writes it; a streamed body is handed over in pieces and the worker waits while
//! `max_buffered_output` bytes are unsent. A handler may also offer a fast path the loop takes
//! for a bodiless request it can answer without blocking ([`Handler::respond_on_loop`]; the
//! static file app answers cached files this way). No thread is created per connection or per request:
//! the process runs `threads + 2` threads (plus one for signals when started by [`launch()`], and
//! `maitred-access-log`, which writes access log lines from a bounded queue, when the access
//! log is on).
//!
//! ## Process model
//!
//! One process by default (`workers = 1`): everything above, and nothing else. With
//! `--workers N` (or `auto`: the CPUs this process may use, cgroup quota respected) the
//! process started by [`launch()`] / [`serve_configured`] (or the Python `maitred` command and
//! `maitred.serve()`) becomes a supervisor, Gunicorn's arbiter: it binds every listener once,
//! serves nothing, and runs N worker processes, each the same program *spawned* again (never
//! forked; the Python command spawns `sys.executable`, so each worker imports the application
//! itself), each running the whole engine above with its own `threads`.
//!
//! | process | owns | never does |
//! |---|---|---|
//! | supervisor (1) | the listeners (bound once; it accepts and hands each connection to the next worker in turn: `SCM_RIGHTS` on Unix, `WSADuplicateSocketW` on Windows), the worker table, signals, replacement decisions, the relay of workers' standard output | read from a connection, run the handler |
//! | worker (`workers`) | the engine on the connections handed to it, its part of the load | bind, accept, decide when it is replaced |
//!
//! They talk over the worker's standard input (lines down: `drain`, `cluster` with what the
//! other workers reported, for the metrics path, and `socket` with a connection handed over:
//! on Unix the input is a Unix socket pair and the descriptor travels beside the line
//! (`SCM_RIGHTS`), on Windows the line carries the socket duplicated for that worker by
//! `WSADuplicateSocketW`) and standard output (`ready`, and a `report`
//! of counters, gauges and memory twice a second; every other line, such as the access log,
//! is relayed whole, so lines from several workers never interleave). The supervisor replaces
//! a worker that dies (logging its exit status or signal, backing off on repeated crashes),
//! recycles one past `max_requests` (plus jitter) or `max_worker_memory`, or one that asks to
//! be replaced; a replacement always accepts before the old worker drains. SIGHUP starts
//! workers with the new code and re-read settings, then drains the old ones; SIGTTIN and
//! SIGTTOU add and remove one; SIGTERM/SIGINT drain all (a second one kills them). A worker
//! that exits before it is ready stops the supervisor with that worker's one-line reason and
//! its exit status (a failed reload keeps the running workers instead); a worker whose
//! supervisor is gone (end of its input) drains and exits.
//!
//! ## Limits and deadlines
//!
//! Everything is bounded ([`Config`] lists each limit with its unit and default): open
//! connections (past the cap the connection making the least progress gives way: a partial
//! head, a silent new connection, an idle one, a body or a reader below `min_transfer_rate`;
//! never one with a request in hand or a healthy transfer; else accepting pauses),
//! request line, header line, head size and header count, body size (checked against
//! Content-Length before reading and while de-chunking; bodies past `body_spool_threshold` go
//! to an anonymous temporary file), the dispatch queue (full means `503` with `Retry-After`),
//! buffered output, and threads. Every wait has a deadline: the head (total, from its first
//! byte, so dribbling does not extend it), the body (no progress, or slower than
//! `min_transfer_rate`), keep-alive idle, a slow reader, and the shutdown drain.
//!
//! ## Strictness
//!
//! Framing is decided once and ambiguity is refused: bare CR or LF, obs-fold, whitespace
//! before a colon, invalid names or values, Content-Length that is not plain digits or
//! disagrees with itself, Content-Length with Transfer-Encoding, Transfer-Encoding on
//! HTTP/1.0, anything but a single `chunked`, malformed chunk sizes or missing CRLFs: `400`
//! (`501` for unknown codings), and the connection is closed. After any error the server
//! generates it sends `Connection: close`, half-closes, briefly drains what the client still
//! sends, and closes. HTTP/1.1 needs exactly one valid `Host`.
//!
//! ## HTTPS
//!
//! A `listen` address written `https://HOST:PORT` speaks TLS 1.2 and 1.3 (rustls with the
//! `ring` provider; ALPN `http/1.1`; session tickets and a session cache for resumption) with
//! `tls_cert` and `tls_key`; the other listeners stay plain. The handshake runs on the I/O loop
//! without blocking and counts against `header_timeout` from accept; past the handshake the
//! same parser, limits and deadlines apply. The certificate reloads for new connections on
//! SIGHUP ([`reload_certificates`]) and when its files change; a broken new one keeps the old.
//! With `tls_client_ca`, clients present certificates, and [`Request::tls_client_subject`]
//! gives the verified subject (RFC 4514). [`Request::tls`] says what the session settled.
//!
//! ## What it does not do
//!
//! HTTP/2, `CONNECT` and protocol upgrades (`501`), TLS on Unix-socket listeners, SNI with
//! several certificates, OCSP stapling, client certificate revocation lists, and request
//! trailers (read, checked and dropped). A handler that never returns holds its
//! worker thread forever: the pool does not grow, so size `threads` for the slowest handler you
//! expect, and use the drain's `graceful_timeout` to bound shutdown. The watchdog reports such a
//! call past `worker_timeout` (and a supervisor then replaces the worker process), and the
//! health path answers 503 while no worker thread has been free for 5 s.
//!
//! ## Source layout
//!
//! | folder | owns | never does |
//! |---|---|---|
//! | top level | crate docs and exports, the settings table (`config`), flags and environment (`cli`), a complete `main` ([`launch()`]), signals, [`Handler`], [`Error`] | I/O on a client socket |
//! | `tls/` | the HTTPS layer: certificate and key loading, the non-blocking TLS stream the I/O loop drives, certificate reload, the client subject | parse HTTP, decide anything about a request |
//! | `engine/` | start-up and shutdown, the acceptor, the I/O loop, the connection state machine (with the built-in health and metrics answers), the handoffs between threads, the worker pool and its watchdog, buffers, sockets | parse HTTP itself, decide who the client is behind a proxy |
//! | `http1/` | the head parser and framing decision, body decoders, [`Request`], [`Response`], the encoder, the status mapping of the server's own errors, the shared grammar, dates | I/O, reading [`Config`], blocking |
//! | `ops/` | trusted proxies and forwarded headers, the PROXY protocol, the access log, metrics, the worker report, resident memory, the health check probe | touch a client socket, run the handler |
//! | `apps/static_files/` | the [`static_files`] app: paths, conditional requests, ranges, the file cache | reach into the engine: it is an ordinary [`Handler`] (with a fast path) |
//! | `python/` | the WSGI front end (feature `python`) | touch a socket |
//! | `supervisor/` | worker processes: the supervisor (arbiter), the worker side of the control channel, the connection handoff (its accept loop, the choice of worker, the Unix and Windows transports) | serve a request |
//!
//! `unsafe` lives in three modules, each call with its `SAFETY` argument: `engine::sys`
//! registers sockets with the poller (`polling` requires it; see its guard type),
//! `supervisor::handoff::winsock` (Windows) duplicates an accepted socket for a worker and
//! re-creates it there (two Winsock calls), and, with
//! the `python` feature, `python::raw` keeps each worker thread's interpreter thread state and
//! duplicates the descriptor of a built-in Python file object for `wsgi.file_wrapper`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod apps;
mod cli;
mod config;
mod engine;
mod error;
mod handler;
mod http1;
mod launch;
mod ops;
#[cfg(feature = "python")]
pub mod python;
mod signals;
mod supervisor;
mod tls;

pub use apps::static_files;
pub use config::{Config, ConfigError, Scope, Setting, SETTINGS};
pub use engine::net::ListenAddr;
pub use engine::server::{Server, ServerHandle, Stopper};
pub use error::Error;
pub use handler::Handler;
pub use http1::fields::{Header, Headers};
pub use http1::request::{Request, RequestBody, Version};
pub use http1::response::{Body, Chunks, Response, ResponseHeaders};
pub use launch::{launch, launch_with, serve_configured, serve_until_signal};
pub use ops::access_log::AccessLogFormat;
pub use signals::drain_on_signals;
pub use tls::{reload_certificates, TlsInfo};

/// The head parser and body decoders, exposed for the fuzz targets. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http1::body::{BodyReader, ChunkedDecoder, SpoolBuffer};
    pub use crate::http1::parse::{parse_head, BodyFraming, Head, HeadScanner, HeadSpan, Limits};
    pub use crate::http1::status::Rejection;
}
