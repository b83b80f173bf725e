//! The application: what a worker thread calls with each complete request.
//! Owns the [`Handler`] trait. Never sees a socket: a handler gets a complete [`Request`] on a
//! worker, or, through the optional fast path ([`Handler::respond_on_loop`]), on the I/O loop.

use crate::http1::request::Request;
use crate::http1::response::Response;

/// An application. It receives a complete request (head parsed, body fully received) on one of
/// the fixed worker threads and returns a response. It never sees the socket.
///
/// Closures `Fn(Request) -> Response` implement it. A panic inside [`Handler::handle`] is
/// caught: the client gets 500 and the worker thread lives on.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: Request) -> Response;

    /// Whether [`Handler::respond_on_loop`] may ever answer. Asked once, when the server
    /// starts; `false` (the default) and the loop never builds a request for the fast path.
    fn responds_on_loop(&self) -> bool {
        false
    }

    /// The fast path: answers a request on the I/O loop thread, without the round trip
    /// through the worker pool, or returns `None` to have it go to a worker and
    /// [`Handler::handle`] as usual. Called only when [`Handler::responds_on_loop`] said
    /// `true`, and only for requests without a body.
    ///
    /// The contract, because every connection of the server waits while this runs:
    /// * It never blocks: no reading files, no network, no sleeping, no lock held by code that
    ///   does any of these. At most a few metadata system calls the kernel answers from what it
    ///   holds in memory (a `stat`; an `open` of a file just found unchanged by one). Anything
    ///   more is `None`, and a worker does it. A [`crate::Body::File`] answer is fine: the loop
    ///   sends every file body itself, whoever made the response.
    /// * It is quick (microseconds) and allocates little.
    /// * Its answer is what [`Handler::handle`] would have answered (same status, headers and
    ///   body): the fast path is an optimisation, never a different behaviour.
    ///
    /// A panic here is caught: the client gets 500, the loop lives on. The response goes
    /// through the same validation, framing, metrics and access log as a worker's. A body of
    /// [`crate::Body::Stream`] is not allowed here (it would need a worker to drive it): such a
    /// response is replaced by 500.
    fn respond_on_loop(&self, request: &Request) -> Option<Response> {
        let _ = request;
        None
    }

    /// Runs once on each worker thread, before it takes its first request. `worker` counts
    /// from 0. Use it for per-thread set-up (an interpreter thread state, a connection).
    fn on_worker_start(&self, worker: usize) {
        let _ = worker;
    }

    /// Runs once on each worker thread as it stops, after its last request.
    fn on_worker_stop(&self, worker: usize) {
        let _ = worker;
    }

    /// What the handler can say about worker thread `worker` while it is stuck in a call past
    /// `worker_timeout`, for the warning: the WSGI handler gives that thread's Python stack.
    /// Called on the watchdog's reporter thread, never on a worker or the I/O loop; it may
    /// block (the reporter waits, nothing else does). Defaults to nothing.
    fn stuck_stack(&self, worker: usize) -> Option<String> {
        let _ = worker;
        None
    }
}

impl<F> Handler for F
where
    F: Fn(Request) -> Response + Send + Sync + 'static,
{
    fn handle(&self, request: Request) -> Response {
        self(request)
    }
}
