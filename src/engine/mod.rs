//! The engine: threads, sockets and the handoffs between them.
//!
//! Owns everything that does I/O or crosses a thread: start-up and shutdown ([`server`]), the
//! acceptor, the I/O loop and its per-connection state machine, the messages between threads
//! ([`handoff`]), the worker pool and one request's life on a worker, the [`watchdog`] over
//! hung handler calls, reusable buffers, socket
//! plumbing and the one module with `unsafe` ([`sys`]). Never parses HTTP itself (that is
//! [`crate::http1`]) and never decides who the client is behind a proxy (that is [`crate::ops`]).

pub(crate) mod acceptor;
pub(crate) mod body_budget;
pub(crate) mod buffer;
pub(crate) mod connection;
pub(crate) mod handoff;
pub(crate) mod io_loop;
pub(crate) mod net;
pub(crate) mod pool;
pub(crate) mod server;
pub(crate) mod sys;
pub(crate) mod watchdog;
pub(crate) mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::Config;
use crate::ops::access_log::AccessLog;
use crate::ops::metrics::Metrics;
use crate::ops::proxy::TrustedProxies;
use acceptor::Gauge;
use handoff::LoopWaker;

/// In a drain, how long a new connection waits for its first request (in every process), and
/// a worker process's kept-alive idle connections for their next one.
pub(crate) const IDLE_DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What the acceptor, the I/O loop and the workers share for the server's whole life: built
/// once by [`server::Server::start`], passed to each thread as one `Arc`.
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    /// `config.trusted_proxies`, parsed once, when the server was bound.
    pub(crate) trusted: TrustedProxies,
    pub(crate) metrics: Metrics,
    /// The drain flag: set the moment a stop is requested, before the listeners close. From
    /// then on the health path answers 503 and every response says `Connection: close`.
    pub(crate) draining: AtomicBool,
    /// Messages to the I/O loop, and its wake-up.
    pub(crate) waker: LoopWaker,
    /// Open connections, counted against `connection_limit`.
    pub(crate) gauge: Gauge,
    /// The memory request bodies being received may hold together.
    pub(crate) body_budget: Arc<body_budget::BodyBudget>,
    /// How long an idle kept-alive connection may wait for one more request when the drain
    /// begins: zero for a process alone (they close at once), [`IDLE_DRAIN_GRACE`] for a worker
    /// process, whose clients the other worker processes keep serving. (A new connection always
    /// gets [`IDLE_DRAIN_GRACE`] for its first request.)
    pub(crate) idle_drain_grace: std::time::Duration,
    /// The access log's writer (lines from workers and from the loop's own answers).
    pub(crate) access_log: AccessLog,
    /// Each worker thread's busy-since time: hung calls and the wedged health answer.
    pub(crate) watch: watchdog::Watch,
    /// The TLS configuration for `https://` listeners, when there are any.
    pub(crate) tls: Option<Arc<crate::tls::Tls>>,
}
