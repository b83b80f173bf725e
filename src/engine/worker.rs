//! One request's life on a worker thread: call the handler, validate and serialise its
//! response, hand it to the I/O loop, and drive a streamed body through the gate.
//!
//! Workers never touch a socket: every byte they produce goes to the loop as a message.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use log::{debug, error, warn};

use crate::engine::handoff::{After, ConnRef, Gate, Job, Outgoing, Source, ToLoop};
use crate::engine::Shared;
use crate::handler::Handler;
use crate::http1::encode::{encode, frame_chunk, Encoded, Payload, ResponseContext, StreamPlan, LAST_CHUNK};
use crate::http1::request::{Origin, Request};
use crate::http1::response::Response;
use crate::ops::access_log::{AccessLogFormat, AccessRecord};

/// What every worker shares.
pub(crate) struct WorkerShared {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) shared: Arc<Shared>,
}

/// Per-worker buffers reused from one request to the next.
pub(crate) struct Scratch {
    /// This worker thread's number (its slot in the watchdog).
    index: usize,
    /// The request target, for error messages and the access log.
    target: String,
    method: String,
    referer: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
}

impl Scratch {
    /// Empty buffers for worker thread `index`.
    pub(crate) fn new(index: usize) -> Scratch {
        Scratch { index, target: String::new(), method: String::new(), referer: None, user_agent: None }
    }
}

/// What the access log needs to know about the request, kept before the handler takes it.
struct Seen {
    client: std::net::IpAddr,
    version: &'static str,
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

/// The 500 answer to a handler's panic while answering `target` (logged here): the panic's
/// message is in the body only with `expose_tracebacks`.
pub(crate) fn panic_response(shared: &Shared, payload: &(dyn Any + Send), target: &str) -> Response {
    error!(target: "maitred::worker", "handler panicked on {target}: {}", panic_message(payload));
    let body = if shared.config.expose_tracebacks {
        format!("500 Internal Server Error\n\nhandler panicked: {}\n", panic_message(payload))
    } else {
        "500 Internal Server Error\n".to_string()
    };
    Response::text(500, body)
}

/// Validates and serialises a handler's `response` to `target` into `out` (an empty buffer
/// lent by the loop, sized here when it has no capacity); one that cannot be sent (an invalid
/// head, or a panic while dropping it) is logged and replaced by a 500 that closes.
pub(crate) fn encode_checked(response: Response, ctx: &ResponseContext<'_>, target: &str, mut out: Vec<u8>) -> Encoded {
    if out.capacity() == 0 {
        out.reserve(512);
    }
    match catch_unwind(AssertUnwindSafe(|| encode(response, ctx, out))) {
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
            let ctx = ResponseContext { keep_alive: false, ..*ctx };
            match encode(Response::text(500, "500 Internal Server Error\n"), &ctx, Vec::new()) {
                Ok(encoded) => encoded,
                Err(_) => unreachable!("the built-in 500 response is valid"),
            }
        }
    }
}

impl WorkerShared {
    /// Serves one job, start to finish, reusing this worker's `scratch` buffers.
    pub(crate) fn serve(&self, job: Job, scratch: &mut Scratch) {
        let Job { conn, received, mut head, body, peer, local, keep_alive, cancelled, tls, out } = job;
        if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            // The client reset the connection while the request waited: nobody would read the
            // answer. A handler already running is never interrupted; this one never starts.
            debug!(target: "maitred::worker", "{peer}: client gone before {} {} reached a worker; dropped", head.method(), head.target());
            self.shared.metrics.requests_cancelled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        self.shared.metrics.worker_busy();
        self.shared.watch.begin(scratch.index, head.method(), &head.target()[head.path.clone()]);
        let (head_request, version) = (head.method() == "HEAD", head.version);
        // Forwarding headers are believed from trusted proxies and removed from everyone else.
        let client = crate::ops::proxy::resolve(&self.shared.trusted, peer, &mut head.headers);
        // Over an https:// listener the scheme is https whatever a proxy says.
        let scheme = if tls.is_some() { "https" } else { client.scheme };
        let origin = Origin { peer, local, client: client.addr, scheme, forwarded_host: client.host, tls };
        let request = Request::new(head, body, origin);
        scratch.target.clear();
        scratch.target.push_str(request.target());
        let seen = if self.shared.config.access_log == AccessLogFormat::Off {
            None
        } else {
            scratch.method.clear();
            scratch.method.push_str(request.method());
            scratch.referer = request.header_values("referer").next().map(<[u8]>::to_vec);
            scratch.user_agent = request.header_values("user-agent").next().map(<[u8]>::to_vec);
            Some(Seen { client: request.client.ip(), version: version.as_str() })
        };
        let target = scratch.target.as_str();
        let (response, keep_alive) = match catch_unwind(AssertUnwindSafe(|| self.handler.handle(request))) {
            Ok(response) => (response, keep_alive),
            // Like every error the server produces itself, this one closes the connection.
            Err(payload) => (panic_response(&self.shared, &*payload, target), false),
        };
        // Read after the handler: a request in flight when the drain began still says close.
        let keep_alive = keep_alive && !self.shared.draining.load(Ordering::Relaxed);
        let ctx =
            ResponseContext { head_request, version, keep_alive, server_header: &self.shared.config.server_header };
        let encoded = encode_checked(response, &ctx, target, out);
        let status = encoded.status;
        let after = if encoded.close { After::Close } else { After::KeepAlive };
        let body_len_hint = encoded.body_len;
        match encoded.payload {
            Payload::Stream(plan) => {
                let gate = Arc::new(Gate::new(self.shared.config.max_buffered_output));
                let response = Outgoing { head: encoded.bytes, source: Source::Stream(Arc::clone(&gate)), after };
                self.shared.waker.send(ToLoop::Response { conn, response });
                let (complete, sent) = self.stream(conn, plan, &gate, target, scratch.index);
                self.shared.metrics.record_response(status, received.elapsed());
                self.log_access(&seen, scratch, status, Some(sent), received);
                self.shared.waker.send(ToLoop::StreamEnd { conn, complete });
            }
            payload => {
                // Counted and logged before the handover, so a client never sees a response
                // the metrics or the log do not know about yet.
                self.shared.metrics.record_response(status, received.elapsed());
                let (source, bytes) = match payload {
                    Payload::Bytes(body) => (Source::Bytes(body), body_len_hint),
                    Payload::File(file, len) => (Source::File(file, len), Some(len)),
                    Payload::None | Payload::Stream(_) => (Source::None, body_len_hint),
                };
                self.log_access(&seen, scratch, status, bytes, received);
                let response = Outgoing { head: encoded.bytes, source, after };
                self.shared.waker.send(ToLoop::Response { conn, response });
            }
        }
        self.shared.metrics.worker_idle();
        self.shared.watch.end(scratch.index);
    }

    /// Writes the access log line for a response, if the access log is on.
    fn log_access(
        &self,
        seen: &Option<Seen>,
        scratch: &mut Scratch,
        status: u16,
        bytes: Option<u64>,
        received: std::time::Instant,
    ) {
        let Some(seen) = seen else { return };
        let duration = received.elapsed();
        let record = AccessRecord {
            client: seen.client,
            time: std::time::SystemTime::now() - duration,
            method: &scratch.method,
            target: &scratch.target,
            version: seen.version,
            status,
            bytes,
            referer: scratch.referer.as_deref(),
            user_agent: scratch.user_agent.as_deref(),
            duration,
            by_server: false,
        };
        self.shared.access_log.write(&record);
    }

    /// Sends the chunks of a streamed body; returns whether the body went out whole and
    /// framed, and how many body bytes were sent.
    fn stream(&self, conn: ConnRef, plan: StreamPlan, gate: &Gate, target: &str, index: usize) -> (bool, u64) {
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
            let bytes = if chunked { frame_chunk(&data) } else { data };
            sent += data_len;
            if !bytes.is_empty() {
                // Waiting for the client is not time spent in the handler.
                self.shared.watch.at_gate(index, true);
                let reserved = gate.reserve(bytes.len());
                self.shared.watch.at_gate(index, false);
                if !reserved {
                    complete = false;
                    break;
                }
                self.shared.waker.send(ToLoop::Chunk { conn, bytes });
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
            self.shared.waker.send(ToLoop::Chunk { conn, bytes: LAST_CHUNK.to_vec() });
        }
        (complete, sent)
    }
}
