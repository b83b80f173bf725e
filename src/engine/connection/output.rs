//! Writing one response: the head and body bytes in order, a file (with `sendfile` where the
//! transport can, else in pieces read and written), a streamed body through the output gate,
//! and what happens once it is all sent.
//!
//! Owns the write side of a connection while it is in `Phase::Writing`, the gate accounting
//! that holds a streaming worker at the high-water mark, and the write deadlines' bookkeeping.
//! Never reads a request and never encodes one: it sends bytes the encoder produced.

use std::io::{self, Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use log::warn;

use super::{below_rate, rate_allowance, Connection, LoopCtx, Phase, Step, Transport, CONTINUE, FILE_PIECE};
use crate::config::Config;
use crate::engine::handoff::{After, Outgoing, Source};

/// Bytes read from a file body per step for a client taking it below the minimum rate.
const SLOW_FILE_PIECE: usize = 4 * 1024;
/// Bytes asked of one `sendfile` call at most (the socket takes what its buffer has room for).
const SENDFILE_PIECE: u64 = 1024 * 1024;
/// `Writing` states the loop keeps for the next responses (each a small allocation saved per
/// response; they hold no buffer or file while kept).
pub(super) const KEPT_WRITINGS: usize = 64;

/// A response being written: what is left of it, and the clocks of the write deadline.
pub(crate) struct Writing {
    /// The bytes being written now: the head first, then each piece of the body.
    out: Vec<u8>,
    pos: usize,
    /// Leading bytes of `out[pos..]` not counted by the stream gate (head, file data).
    ungated: usize,
    /// Where the rest of the body comes from once `out` is sent.
    source: Source,
    /// A streamed body has ended (always true for other sources).
    stream_done: bool,
    /// False when a streamed body failed or fell short: the connection then closes.
    complete: bool,
    after: After,
    /// Since when bytes have been waiting for the client (`None` while the response waits
    /// for the handler's next piece: that time is not the client's).
    pending_since: Option<Instant>,
    /// Time bytes spent waiting for the client before `pending_since`.
    busy: Duration,
    last_progress: Instant,
    written: u64,
    /// When a write first found the socket's send buffer full (since the client last caught
    /// up). From then on, what the socket accepts is what the client took: the measure of
    /// progress toward the client, where the bytes before it only filled kernel buffers.
    blocked_at: Option<Instant>,
    /// Bytes accepted by the socket since `blocked_at`.
    since_blocked: u64,
    /// `out` holds a piece of the file body (which can be read again).
    out_from_file: bool,
    /// A file body goes with [`Transport::send_file`] (until the transport or the file
    /// refuses it; then in pieces read and written).
    send_file: bool,
}

impl Writing {
    /// Bytes are waiting to be written.
    pub(super) fn has_unsent(&self) -> bool {
        self.pos < self.out.len() || matches!(self.source, Source::File(_, remaining) if remaining > 0)
    }

    /// The write deadline, `None` while the response waits for the handler's next piece.
    pub(super) fn deadline(&self, config: &Config) -> Option<Instant> {
        // The client must take what it is sent: no write may stall for write_timeout,
        // and over the time it has had bytes waiting, it must average min_transfer_rate
        // (after a grace of write_timeout).
        let pending_since = self.pending_since?;
        let stalled = self.last_progress + config.write_timeout;
        let allowed = config.write_timeout + rate_allowance(self.written, config.min_transfer_rate);
        let slow = pending_since + allowed.saturating_sub(self.busy);
        Some(stalled.min(slow))
    }

    /// Since when the client has been taking this response below `rate` bytes per second, if
    /// it is (measured from the first full send buffer, after `EVICT_GRACE`). `None` while the
    /// response waits for the handler: that time is not the client's.
    pub(super) fn slow_since(&self, now: Instant, rate: u64) -> Option<Instant> {
        self.pending_since?;
        let blocked = self.blocked_at?;
        below_rate(self.since_blocked, now.saturating_duration_since(blocked), rate).then_some(blocked)
    }

    /// Releases a streaming worker waiting at the gate, for good.
    pub(super) fn release_worker(&self) {
        if let Source::Stream(gate) = &self.source {
            gate.close();
        }
    }
}

impl<S: Transport> Connection<S> {
    /// Begins writing `response`, in a `Writing` state the loop kept from an earlier response
    /// when it has one.
    pub(super) fn start_writing(&mut self, ctx: &mut LoopCtx, response: Outgoing, now: Instant) {
        let Outgoing { head: mut out, source, after } = response;
        // A `100 Continue` cut short must be finished before anything else is written; one not
        // begun is no longer needed.
        let interim = std::mem::take(&mut self.interim);
        if !interim.is_empty() && interim.len() < CONTINUE.len() {
            out.splice(0..0, interim.iter().copied());
        }
        let ungated = out.len();
        let writing = Writing {
            out,
            pos: 0,
            ungated,
            stream_done: !matches!(source, Source::Stream(_)),
            source,
            complete: true,
            after,
            pending_since: Some(now),
            busy: Duration::ZERO,
            last_progress: now,
            written: 0,
            blocked_at: None,
            since_blocked: 0,
            out_from_file: false,
            send_file: true,
        };
        self.phase = Phase::Writing(match ctx.writings.pop() {
            Some(mut kept) => {
                *kept = writing;
                kept
            }
            None => Box::new(writing),
        });
    }

    /// A worker's response for this connection's request.
    pub(crate) fn on_response(&mut self, ctx: &mut LoopCtx, response: Outgoing, now: Instant) -> Step {
        if !matches!(self.phase, Phase::Handling) {
            response.abandon();
            return Step::Close;
        }
        self.start_writing(ctx, response, now);
        self.flush(ctx, now)
    }

    /// The next piece of a streamed body.
    pub(crate) fn on_chunk(&mut self, ctx: &mut LoopCtx, bytes: Vec<u8>, now: Instant) -> Step {
        let Phase::Writing(w) = &mut self.phase else { return Step::Open };
        if w.pending_since.is_none() {
            // The client was waiting on the handler, not the other way round: its clock
            // starts again now.
            w.out.clear();
            w.pos = 0;
            w.pending_since = Some(now);
            w.last_progress = now;
            w.blocked_at = None;
            w.since_blocked = 0;
        }
        w.out.extend_from_slice(&bytes);
        self.flush(ctx, now)
    }

    /// The end of a streamed body.
    pub(crate) fn on_stream_end(&mut self, ctx: &mut LoopCtx, complete: bool, now: Instant) -> Step {
        let Phase::Writing(w) = &mut self.phase else { return Step::Open };
        w.stream_done = true;
        w.complete &= complete;
        self.flush(ctx, now)
    }

    /// Writes what can be written without blocking; finishes the response when all is sent.
    pub(super) fn flush(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        let Phase::Writing(w) = &mut self.phase else { return Step::Open };
        loop {
            if w.pos < w.out.len() {
                let file_follows = w.send_file && matches!(w.source, Source::File(_, remaining) if remaining > 0);
                let written = if file_follows {
                    self.io.write_before_file(&w.out[w.pos..])
                } else {
                    self.io.write(&w.out[w.pos..])
                };
                match written {
                    Ok(0) => return Step::Close,
                    Ok(n) => {
                        ctx.shared.metrics.bytes_out.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        w.pos += n;
                        w.written += n as u64;
                        w.last_progress = now;
                        if w.blocked_at.is_some() {
                            w.since_blocked += n as u64;
                        }
                        let from_ungated = n.min(w.ungated);
                        w.ungated -= from_ungated;
                        if let Source::Stream(gate) = &w.source {
                            if n > from_ungated {
                                gate.release(n - from_ungated);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        w.blocked_at.get_or_insert(now);
                        // The socket is full: give back the unsent part of a file piece (the
                        // file is read again when the client takes more), so a slow reader
                        // holds no piece while it waits.
                        let unsent = w.out.len() - w.pos;
                        if w.out_from_file && unsent > SLOW_FILE_PIECE {
                            if let Source::File(file, remaining) = &mut w.source {
                                if file.seek(SeekFrom::Current(-(unsent as i64))).is_ok() {
                                    *remaining += unsent as u64;
                                    w.out = Vec::new();
                                    w.pos = 0;
                                    w.ungated = 0;
                                    w.out_from_file = false;
                                }
                            }
                        }
                        return Step::Open;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Close,
                }
                continue;
            }
            w.pos = 0;
            if matches!(w.source, Source::Bytes(_)) {
                if let Source::Bytes(body) = std::mem::replace(&mut w.source, Source::None) {
                    w.out = body;
                    w.ungated = w.out.len();
                }
                continue;
            }
            w.out.clear();
            // A client taking the file below the minimum rate gets small pieces, so it holds
            // little memory while it keeps its place.
            let slow = w.slow_since(now, ctx.shared.config.min_transfer_rate).is_some();
            if let Source::File(file, remaining) = &mut w.source {
                if *remaining > 0 && w.send_file {
                    // Straight from the page cache to the socket: no piece held in memory,
                    // however slow the client.
                    match self.io.send_file(file, (*remaining).min(SENDFILE_PIECE) as usize) {
                        Some(Ok(0)) => {
                            warn!(target: "maitred::io", "file body for {} ended early; connection closed", self.peer);
                            return Step::Close;
                        }
                        Some(Ok(n)) => {
                            ctx.shared.metrics.bytes_out.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                            *remaining -= n as u64;
                            w.written += n as u64;
                            w.last_progress = now;
                            if w.blocked_at.is_some() {
                                w.since_blocked += n as u64;
                            }
                            continue;
                        }
                        Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                            w.blocked_at.get_or_insert(now);
                            return Step::Open;
                        }
                        Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // The file cannot be sent this way (EINVAL, ENOSYS, EOPNOTSUPP): read
                        // and write it instead, from where it is.
                        Some(Err(e))
                            if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported) =>
                        {
                            w.send_file = false;
                            continue;
                        }
                        Some(Err(_)) => return Step::Close,
                        None => {
                            w.send_file = false;
                            continue;
                        }
                    }
                }
                if *remaining > 0 {
                    let piece_max = if slow { SLOW_FILE_PIECE } else { FILE_PIECE };
                    let piece = (*remaining).min(piece_max as u64) as usize;
                    if w.out.capacity() > 2 * piece_max {
                        w.out.shrink_to(piece_max);
                    }
                    w.out.resize(piece, 0);
                    match file.read(&mut w.out) {
                        Ok(0) | Err(_) => {
                            warn!(target: "maitred::io", "file body for {} ended early; connection closed", self.peer);
                            return Step::Close;
                        }
                        Ok(n) => {
                            w.out.truncate(n);
                            w.ungated = n;
                            w.out_from_file = true;
                            *remaining -= n as u64;
                        }
                    }
                    continue;
                }
                w.source = Source::None;
            }
            if !w.stream_done {
                if let Some(since) = w.pending_since.take() {
                    w.busy += now.saturating_duration_since(since);
                }
                return Step::Open;
            }
            break;
        }
        // The connection's last response: a TLS transport queues its `close_notify` now, so
        // the flush below sends it with the last records instead of leaving it to the close,
        // which cannot wait for a full socket and would cut the client off without it.
        if matches!(w.after, After::Close | After::Linger) {
            self.io.queue_close_notify();
        }
        // A TLS transport may still hold the last records: the response is done once they are out.
        match self.io.flush_output() {
            Ok(true) => {}
            Ok(false) => return Step::Open,
            Err(_) => return Step::Close,
        }
        self.finish_response(ctx, now)
    }

    fn finish_response(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        let Phase::Writing(mut w) = std::mem::replace(&mut self.phase, Phase::Handling) else { unreachable!() };
        ctx.out_buffers.give(std::mem::take(&mut w.out));
        self.served += 1;
        let (after, complete) = (w.after, w.complete);
        if ctx.writings.len() < KEPT_WRITINGS {
            // Kept without anything it held: the source is spent (a file is closed now).
            w.source = Source::None;
            ctx.writings.push(w);
        }
        match after {
            After::Linger => {
                let _ = self.io.shutdown_write();
                self.phase = Phase::Lingering { until: now + ctx.shared.config.linger_timeout, discarded: 0 };
                return if self.peer_closed { Step::Close } else { Step::Open };
            }
            // The response was sent as kept alive, but the stream behind it broke, or the loop
            // began closing connections (the drain) while it was written.
            After::KeepAlive if complete && !ctx.closing => {}
            // A worker process being replaced: its client may send the next request before it
            // can see a close; wait for it (answered with `Connection: close`) for the grace.
            After::KeepAlive if complete && !ctx.shared.idle_drain_grace.is_zero() => {
                self.drain_by = Some(now + ctx.shared.idle_drain_grace);
            }
            After::KeepAlive | After::Close => return Step::Close,
        }
        self.phase = Phase::Idle { since: now, fresh: false };
        self.process_input(ctx, now)
    }
}
