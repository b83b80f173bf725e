//! One request's life on a worker thread: call the handler, validate and serialise its
//! response, hand it to the I/O loop, and drive a streamed body through the gate.
//!
//! Workers never touch a socket: every byte they produce goes to the loop as a message.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{error, warn};

use crate::engine::handoff::{ConnRef, Gate, Job, LoopWaker, ToLoop};
use crate::handler::Handler;
use crate::http1::response::{encode, Response, ResponseContext, StreamPlan};
use crate::ops::access_log::{format_line, AccessLogFormat, AccessRecord};
use crate::ops::metrics::Metrics;

/// What every worker shares.
pub(crate) struct WorkerShared {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) waker: Arc<LoopWaker>,
    pub(crate) server_header: String,
    pub(crate) high_water: usize,
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) trusted: Arc<crate::ops::proxy::TrustedProxies>,
    pub(crate) access_log: AccessLogFormat,
    pub(crate) expose_tracebacks: bool,
}

/// Per-worker buffers reused from one request to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The request target, for error messages and the access log.
    target: String,
    method: String,
    referer: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    line: String,
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

impl WorkerShared {
    /// Serves one job, start to finish, reusing this worker's `scratch` buffers.
    pub(crate) fn serve(&self, job: Job, scratch: &mut Scratch) {
        let Job { conn, received, mut request, head_request, version, keep_alive } = job;
        self.metrics.worker_busy();
        // Forwarding headers are believed from trusted proxies and removed from everyone else.
        let client = crate::ops::proxy::resolve(&self.trusted, request.peer, &mut request.headers);
        request.client = client.addr;
        request.scheme = client.scheme;
        request.forwarded_host = client.host;
        scratch.target.clear();
        scratch.target.push_str(request.target());
        let seen = if self.access_log == AccessLogFormat::Off {
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
            Err(payload) => {
                error!(target: "maitred::worker", "handler panicked on {target}: {}", panic_message(&*payload));
                // Like every error the server produces itself, this one closes the connection.
                let body = if self.expose_tracebacks {
                    format!("500 Internal Server Error\n\nhandler panicked: {}\n", panic_message(&*payload))
                } else {
                    "500 Internal Server Error\n".to_string()
                };
                (Response::text(500, body), false)
            }
        };
        // Read after the handler: a request in flight when the drain began still says close.
        let keep_alive = keep_alive && !self.draining.load(Ordering::Relaxed);
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
        let body_len_hint = encoded.body_len;
        match encoded.stream {
            None => {
                // Counted and logged before the handover, so a client never sees a response
                // the metrics or the log do not know about yet.
                self.metrics.record_response(status, received.elapsed());
                let bytes = encoded.file.as_ref().map(|(_, len)| *len).or(body_len_hint);
                self.log_access(&seen, scratch, status, bytes, received);
                self.waker.send(ToLoop::Response {
                    conn,
                    bytes: encoded.bytes,
                    body: encoded.body,
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
                    body: None,
                    file: None,
                    stream: Some(Arc::clone(&gate)),
                    close: encoded.close,
                });
                let (complete, sent) = self.stream(conn, plan, &gate, target);
                self.metrics.record_response(status, received.elapsed());
                self.log_access(&seen, scratch, status, Some(sent), received);
                self.waker.send(ToLoop::StreamEnd { conn, complete });
            }
        }
        self.metrics.worker_idle();
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
        };
        let mut line = std::mem::take(&mut scratch.line);
        line.clear();
        format_line(self.access_log, &record, &mut line);
        log::info!(target: crate::ops::access_log::TARGET, "{line}");
        scratch.line = line;
    }

    /// Sends the chunks of a streamed body; returns whether the body went out whole and
    /// framed, and how many body bytes were sent.
    fn stream(&self, conn: ConnRef, plan: StreamPlan, gate: &Gate, target: &str) -> (bool, u64) {
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
        (complete, sent)
    }
}
