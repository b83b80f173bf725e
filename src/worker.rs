//! One request's life on a worker thread: call the handler, validate and serialise its
//! response, hand it to the I/O loop, and drive a streamed body through the gate.
//!
//! Workers never touch a socket: every byte they produce goes to the loop as a message.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{error, warn};

use crate::handler::Handler;
use crate::handoff::{ConnRef, Gate, Job, LoopWaker, ToLoop};
use crate::metrics::Metrics;
use crate::response::{encode, Response, ResponseContext, StreamPlan};

/// What every worker shares.
pub(crate) struct WorkerShared {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) waker: Arc<LoopWaker>,
    pub(crate) server_header: String,
    pub(crate) high_water: usize,
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) metrics: Arc<Metrics>,
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

impl WorkerShared {
    /// Serves one job, start to finish. `target` is this worker's reusable buffer for the
    /// request target, kept for error messages.
    pub(crate) fn serve(&self, job: Job, target: &mut String) {
        let Job { conn, received, request, head_request, version, keep_alive } = job;
        self.metrics.worker_busy();
        let keep_alive = keep_alive && !self.draining.load(Ordering::Relaxed);
        target.clear();
        target.push_str(request.target());
        let target = target.as_str();
        let (response, keep_alive) = match catch_unwind(AssertUnwindSafe(|| self.handler.handle(request))) {
            Ok(response) => (response, keep_alive),
            Err(payload) => {
                error!(target: "maitred::worker", "handler panicked on {target}: {}", panic_message(&*payload));
                // Like every error the server produces itself, this one closes the connection.
                (Response::text(500, "500 Internal Server Error\n"), false)
            }
        };
        let ctx = ResponseContext { head_request, version, keep_alive, server_header: &self.server_header };
        let encoded = match catch_unwind(AssertUnwindSafe(|| encode(response, &ctx, Vec::with_capacity(512)))) {
            Ok(Ok(encoded)) => encoded,
            failed => {
                match failed {
                    Ok(Err(invalid)) => {
                        error!(target: "maitred::worker", "handler returned an invalid response for {target}: {}", invalid.0)
                    }
                    Err(payload) => {
                        error!(target: "maitred::worker", "dropping a response panicked for {target}: {}", panic_message(&*payload))
                    }
                    Ok(Ok(_)) => unreachable!(),
                }
                let ctx = ResponseContext { keep_alive: false, ..ctx };
                match encode(Response::text(500, "500 Internal Server Error\n"), &ctx, Vec::new()) {
                    Ok(encoded) => encoded,
                    Err(_) => unreachable!("the built-in 500 response is valid"),
                }
            }
        };
        let status = encoded.status;
        match encoded.stream {
            None => {
                // Counted before the handover, so a client never sees a response the metrics
                // do not know about yet.
                self.metrics.record_response(status, received.elapsed());
                self.waker.send(ToLoop::Response {
                    conn,
                    bytes: encoded.bytes,
                    file: encoded.file,
                    stream: None,
                    close: encoded.close,
                });
            }
            Some(plan) => {
                let gate = Arc::new(Gate::new(self.high_water));
                self.waker.send(ToLoop::Response {
                    conn,
                    bytes: encoded.bytes,
                    file: None,
                    stream: Some(Arc::clone(&gate)),
                    close: encoded.close,
                });
                let complete = self.stream(conn, plan, &gate, target);
                self.metrics.record_response(status, received.elapsed());
                self.waker.send(ToLoop::StreamEnd { conn, complete });
            }
        }
        self.metrics.worker_idle();
    }

    /// Sends the chunks of a streamed body; true when the body went out whole and framed.
    fn stream(&self, conn: ConnRef, plan: StreamPlan, gate: &Gate, target: &str) -> bool {
        let StreamPlan { mut chunks, exact_len, chunked } = plan;
        let mut sent: u64 = 0;
        let mut complete = true;
        loop {
            let data = match catch_unwind(AssertUnwindSafe(|| chunks.next())) {
                Ok(None) => break,
                Ok(Some(Ok(data))) => data,
                Ok(Some(Err(e))) => {
                    error!(target: "maitred::worker", "response stream for {target} failed: {e}");
                    complete = false;
                    break;
                }
                Err(payload) => {
                    error!(target: "maitred::worker", "response stream for {target} panicked: {}", panic_message(&*payload));
                    complete = false;
                    break;
                }
            };
            if data.is_empty() {
                continue;
            }
            let mut data = data;
            let mut overran = false;
            if let Some(exact) = exact_len {
                let room = exact - sent;
                if data.len() as u64 > room {
                    warn!(target: "maitred::worker", "response for {target} is longer than its Content-Length {exact}; cut");
                    data.truncate(room as usize);
                    overran = true;
                }
            }
            let data_len = data.len() as u64;
            let bytes = if chunked {
                let mut framed = Vec::with_capacity(data.len() + 20);
                framed.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
                framed.extend_from_slice(&data);
                framed.extend_from_slice(b"\r\n");
                framed
            } else {
                data
            };
            sent += data_len;
            if !bytes.is_empty() {
                if !gate.reserve(bytes.len()) {
                    complete = false;
                    break;
                }
                self.waker.send(ToLoop::Chunk { conn, bytes });
            }
            if overran {
                complete = false;
                break;
            }
        }
        if catch_unwind(AssertUnwindSafe(move || drop(chunks))).is_err() {
            error!(target: "maitred::worker", "closing the response stream for {target} panicked");
        }
        if let Some(exact) = exact_len {
            if complete && sent != exact {
                warn!(target: "maitred::worker", "response for {target} ended after {sent} of {exact} bytes; connection closed");
                complete = false;
            }
        }
        if complete && chunked && !gate.is_closed() {
            self.waker.send(ToLoop::Chunk { conn, bytes: b"0\r\n\r\n".to_vec() });
        }
        complete
    }
}
