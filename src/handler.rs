//! The application: what a worker thread calls with each complete request.
//! Owns the [`Handler`] trait. Never sees a socket: a handler gets a complete [`Request`] on a
//! worker.

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
