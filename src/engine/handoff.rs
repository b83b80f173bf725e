//! What crosses between threads: jobs to the workers, messages to the I/O loop, the loop's
//! wake-up, and the gate that holds a streaming worker at the high-water mark.
//! Owns the message types and the wake-up protocol. Never holds a lock while a socket is written or
//! a handler runs.
//!
//! These are the only shared state between the acceptor, the I/O loop and the workers.

use std::fs::File;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::Sender;
use polling::Poller;

use crate::engine::net::Stream;
use crate::http1::parse::Head;
use crate::http1::request::RequestBody;

/// Names one connection for as long as it lives: a slot, and the generation of the slot so a
/// late message for a closed connection never reaches its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnRef {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

/// A complete request on its way to a worker, which builds the [`crate::Request`] from it
/// (once, after resolving the client through trusted proxies).
pub(crate) struct Job {
    pub(crate) conn: ConnRef,
    /// When the request became complete (for the request duration).
    pub(crate) received: std::time::Instant,
    pub(crate) head: Head,
    pub(crate) body: RequestBody,
    /// The socket's peer and local addresses (or what a PROXY protocol header said).
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// The server is willing to keep the connection open after the response.
    pub(crate) keep_alive: bool,
    /// Set by the I/O loop when the client is gone before a worker took the request: the
    /// worker then drops it without running the handler.
    pub(crate) cancelled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The TLS session's facts, for a request that came over an `https://` listener.
    pub(crate) tls: Option<Arc<crate::tls::TlsInfo>>,
}

/// A response on its way out, as data: its head, where its body comes from, and what becomes
/// of the connection once it is sent. Built by a worker (or by the loop for its own answers),
/// written by the connection.
pub(crate) struct Outgoing {
    /// The head, with a small in-memory body already copied behind it.
    pub(crate) head: Vec<u8>,
    pub(crate) source: Source,
    pub(crate) after: After,
}

/// Where the rest of a response's body comes from, after the head.
pub(crate) enum Source {
    /// Nothing more: the head (with any small body) is the whole response.
    None,
    /// A large in-memory body, sent after the head without being copied into it.
    Bytes(Vec<u8>),
    /// The next `len` bytes of an open file, read and sent by the loop in pieces.
    File(File, u64),
    /// A body the worker streams piece by piece (`ToLoop::Chunk`), held at the gate.
    Stream(Arc<Gate>),
}

/// What becomes of the connection once a response is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// Read the next request (the response said so: no `Connection: close`).
    KeepAlive,
    /// Close (the response said `Connection: close`, or was delimited by the close).
    Close,
    /// An error the server answered by itself: half-close, discard what still arrives for a
    /// moment, then close.
    Linger,
}

impl Outgoing {
    /// The response will never be written (its connection has gone): release its worker.
    pub(crate) fn abandon(self) {
        if let Source::Stream(gate) = self.source {
            gate.close();
        }
    }
}

/// Everything the I/O loop is told.
pub(crate) enum ToLoop {
    /// A new connection from the acceptor.
    Accepted(Stream, SocketAddr),
    /// A new connection from the acceptor on an `https://` listener.
    AcceptedTls(Stream, SocketAddr),
    /// The acceptor is at the connection cap and a client waits: close the connection making
    /// the least progress, if one may give way.
    Evict,
    /// A worker's response.
    Response { conn: ConnRef, response: Outgoing },
    /// The next piece of a streamed body, already framed.
    Chunk { conn: ConnRef, bytes: Vec<u8> },
    /// The end of a streamed body. `complete` is false when it failed or fell short: the
    /// connection is closed after what was sent.
    StreamEnd { conn: ConnRef, complete: bool },
    /// Stop accepting work: close idle connections, close the rest after their response.
    Drain,
}

/// Sends to the I/O loop and wakes it only when it is asleep.
pub(crate) struct LoopWaker {
    poller: Arc<Poller>,
    sleeping: AtomicBool,
    tx: Sender<ToLoop>,
}

impl LoopWaker {
    pub(crate) fn new(poller: Arc<Poller>, tx: Sender<ToLoop>) -> Self {
        LoopWaker { poller, sleeping: AtomicBool::new(false), tx }
    }

    /// Queues `message` for the loop; wakes the loop if it is waiting in the poller.
    pub(crate) fn send(&self, message: ToLoop) {
        if self.tx.send(message).is_ok() {
            self.wake();
        }
    }

    /// Wakes the loop if it is asleep (one `notify` per sleep, however many senders).
    pub(crate) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.poller.notify();
        }
    }

    /// Called by the loop before it waits. After this, the loop must look at its channel once
    /// more before sleeping: a message sent in between either is seen there or wakes it.
    pub(crate) fn going_to_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Called by the loop when it is awake again.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// Holds a streaming worker while too many of its bytes are still unsent.
pub(crate) struct Gate {
    state: Mutex<GateState>,
    ready: Condvar,
    high_water: usize,
}

struct GateState {
    pending: usize,
    closed: bool,
}

impl Gate {
    pub(crate) fn new(high_water: usize) -> Self {
        Gate { state: Mutex::new(GateState { pending: 0, closed: false }), ready: Condvar::new(), high_water }
    }

    /// Worker side: waits until fewer than the high-water mark of bytes are pending, then
    /// counts `len` more. False when the connection has gone: stop producing.
    pub(crate) fn reserve(&self, len: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.pending >= self.high_water && !state.closed {
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return false;
        }
        state.pending += len;
        true
    }

    /// Loop side: `len` bytes were written to the socket.
    pub(crate) fn release(&self, len: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was_full = state.pending >= self.high_water;
        state.pending = state.pending.saturating_sub(len);
        if was_full && state.pending < self.high_water {
            self.ready.notify_all();
        }
    }

    /// Loop side: the connection is gone; release the worker for good.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        self.ready.notify_all();
    }

    /// Bytes reserved by the worker and not yet written by the loop.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).pending
    }

    /// Whether the loop has closed the gate.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }
}
