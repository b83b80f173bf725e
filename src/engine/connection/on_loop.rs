//! The handler's fast path on the I/O loop: a complete bodiless request answered without the
//! round trip through the worker pool, when the handler has one and takes it.
//!
//! Owns building the request on the loop, calling [`Handler::respond_on_loop`] under
//! `catch_unwind`, and handing its response to the connection's writer with the same
//! validation, framing, metrics and access log line as a worker's. Never runs
//! [`Handler::handle`] and never waits: what the handler declines goes to the workers as a
//! [`Job`](crate::engine::handoff::Job), exactly as it would have without the fast path.
//!
//! [`Handler::respond_on_loop`]: crate::Handler::respond_on_loop
//! [`Handler::handle`]: crate::Handler::handle

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use log::error;

use super::{Connection, LoopCtx, Phase, Step, Transport};
use crate::engine::handoff::{After, Outgoing, Source};
use crate::engine::worker::{encode_checked, panic_response};
use crate::http1::encode::{Payload, ResponseContext};
use crate::http1::parse::Head;
use crate::http1::request::{Origin, Request, RequestBody};
use crate::http1::response::Response;
use crate::ops::access_log::{AccessLogFormat, AccessRecord};

/// Fast-path answers written one inside another at most. A response written whole goes on to
/// the next pipelined request in the same call, so a client pipelining many small requests
/// would otherwise nest one call per request; past this depth the next request goes to a
/// worker, whose answer arrives as a message and starts afresh.
const MAX_DEPTH: usize = 8;

/// What became of a request offered to the fast path.
pub(super) enum Offer {
    /// Answered here; the response is being written.
    Answered(Step),
    /// Declined: the head, to dispatch to a worker.
    Declined(Head),
}

impl<S: Transport> Connection<S> {
    /// Offers the complete bodiless request `head` to the handler's fast path.
    pub(super) fn respond_on_loop(&mut self, ctx: &mut LoopCtx, head: Head, now: Instant) -> Offer {
        if ctx.on_loop_depth >= MAX_DEPTH {
            return Offer::Declined(head);
        }
        let Some(handler) = ctx.on_loop.as_ref().map(Arc::clone) else { return Offer::Declined(head) };
        let (framing, wants_keep_alive, expect_continue) = (head.body, head.keep_alive, head.expect_continue);
        let mut head = head;
        // The worker resolves the client again for a declined request: resolving is
        // idempotent (it only drops the forwarding fields it does not believe).
        let client = crate::ops::proxy::resolve(&ctx.shared.trusted, self.peer, &mut head.headers);
        let tls = self.io.tls_info();
        let origin = Origin {
            peer: self.peer,
            local: self.local,
            client: client.addr,
            scheme: if tls.is_some() { "https" } else { client.scheme },
            forwarded_host: client.host,
            tls,
        };
        let request = Request::new(head, RequestBody::empty(), origin);
        let (response, keep_alive) = match catch_unwind(AssertUnwindSafe(|| handler.respond_on_loop(&request))) {
            Ok(None) => return Offer::Declined(request.into_head(framing, wants_keep_alive, expect_continue)),
            Ok(Some(response)) => (response, true),
            Err(payload) => (panic_response(&ctx.shared, &*payload, request.target()), false),
        };
        let keep_alive = keep_alive && self.keep_alive_offer(ctx, wants_keep_alive);
        let response_ctx = ResponseContext {
            head_request: request.method() == "HEAD",
            version: request.version(),
            keep_alive,
            server_header: &ctx.shared.config.server_header,
        };
        let mut encoded = encode_checked(response, &response_ctx, request.target(), ctx.out_buffers.take());
        if matches!(encoded.payload, Payload::Stream(_)) {
            error!(target: "maitred::worker", "respond_on_loop returned a streamed body for {}; answered 500", request.target());
            let response_ctx = ResponseContext { keep_alive: false, ..response_ctx };
            let out = std::mem::take(&mut encoded.bytes);
            encoded = encode_checked(
                Response::text(500, "500 Internal Server Error\n"),
                &response_ctx,
                request.target(),
                out,
            );
        }
        let (source, bytes) = match encoded.payload {
            Payload::Bytes(body) => (Source::Bytes(body), encoded.body_len),
            Payload::File(file, len) => (Source::File(file, len), Some(len)),
            Payload::None | Payload::Stream(_) => (Source::None, encoded.body_len),
        };
        // Counted and logged before the first byte is written, as on a worker.
        ctx.shared.metrics.record_response(encoded.status, now.elapsed());
        if ctx.shared.config.access_log != AccessLogFormat::Off {
            let duration = now.elapsed();
            ctx.shared.access_log.write(&AccessRecord {
                client: request.client_addr().ip(),
                time: std::time::SystemTime::now() - duration,
                method: request.method(),
                target: request.target(),
                version: request.version().as_str(),
                status: encoded.status,
                bytes,
                referer: request.header_values("referer").next(),
                user_agent: request.header_values("user-agent").next(),
                duration,
                by_server: false,
            });
        }
        let after = if encoded.close { After::Close } else { After::KeepAlive };
        self.phase = Phase::Handling;
        self.start_writing(ctx, Outgoing { head: encoded.bytes, source, after }, now);
        ctx.on_loop_depth += 1;
        let step = self.flush(ctx, now);
        ctx.on_loop_depth -= 1;
        Offer::Answered(step)
    }
}
