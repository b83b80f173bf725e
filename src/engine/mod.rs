//! The engine: threads, sockets and the handoffs between them.
//!
//! Owns everything that does I/O or crosses a thread: start-up and shutdown ([`server`]), the
//! acceptor, the I/O loop and its per-connection state machine, the messages between threads
//! ([`handoff`]), the worker pool and one request's life on a worker, reusable buffers, socket
//! plumbing and the one module with `unsafe` ([`sys`]). Never parses HTTP itself (that is
//! [`crate::http1`]) and never decides who the client is behind a proxy (that is [`crate::ops`]).

pub(crate) mod acceptor;
pub(crate) mod buffer;
pub(crate) mod connection;
pub(crate) mod handoff;
pub(crate) mod io_loop;
pub(crate) mod net;
pub(crate) mod pool;
pub(crate) mod server;
pub(crate) mod sys;
pub(crate) mod worker;
