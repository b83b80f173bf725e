//! The built-in answers: the health path and the metrics path, served by the I/O loop itself.
//!
//! Owns deciding that a request is for one of them and building its response (the health path
//! says 503 while draining, and while the watchdog finds every worker thread stuck). Never takes a
//! request with a body or a method other than GET and HEAD (those go to the handler), and
//! never needs a worker, so health checks answer even when every worker is busy.

use std::time::Instant;

use super::{Connection, LoopCtx, Phase, Step, Transport};
use crate::engine::handoff::{After, Outgoing, Source};
use crate::http1::encode::{encode, ResponseContext};
use crate::http1::parse::{BodyFraming, Head};
use crate::http1::response::Response;
use crate::ops::metrics::Gauges;

impl<S: Transport> Connection<S> {
    /// Answers the health and metrics paths from the loop itself, without a worker. Only
    /// bodiless GET and HEAD requests are taken; anything else goes to the handler.
    pub(super) fn answer_builtin(&mut self, ctx: &mut LoopCtx, head: &Head, now: Instant) -> Option<Step> {
        let path = &head.target()[head.path.clone()];
        let config = &ctx.shared.config;
        let is_health = !config.health_path.is_empty() && path == config.health_path;
        let is_metrics = !config.metrics_path.is_empty() && path == config.metrics_path;
        if !(is_health || is_metrics) || head.body != BodyFraming::None || !matches!(head.method(), "GET" | "HEAD") {
            return None;
        }
        let shutting_down = ctx.shared.draining.load(std::sync::atomic::Ordering::Relaxed);
        let wedged = ctx.shared.watch.wedged();
        let response = if is_health {
            let (status, text) = match (shutting_down, wedged) {
                (true, _) => (503, "draining\n"),
                // No worker thread has been free for `WEDGED_AFTER`: a load balancer should
                // send its traffic elsewhere.
                (false, true) => (503, "wedged\n"),
                (false, false) => (200, "ok\n"),
            };
            Response::text(status, text).with_header("Cache-Control", "no-store")
        } else {
            let gauges = Gauges {
                open_connections: ctx.open_connections,
                queue_depth: ctx.jobs.len(),
                queue_capacity: config.queue_capacity(),
                threads: config.threads,
                draining: shutting_down,
                wedged,
            };
            Response::new(200)
                .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .with_header("Cache-Control", "no-store")
                .with_body(ctx.shared.metrics.render(&gauges))
        };
        let keep_alive = self.keep_alive_offer(ctx, head.keep_alive);
        let rctx = ResponseContext {
            head_request: head.method() == "HEAD",
            version: head.version,
            keep_alive,
            server_header: &config.server_header,
        };
        let encoded = encode(response, &rctx, Vec::new()).ok()?;
        self.phase = Phase::Handling;
        let after = if encoded.close { After::Close } else { After::KeepAlive };
        self.start_writing(ctx, Outgoing { head: encoded.bytes, source: Source::None, after }, now);
        Some(self.flush(ctx, now))
    }
}
