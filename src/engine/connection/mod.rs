//! One connection's state machine and timers, driven by the I/O loop.
//! Owns one socket after accept: its phase, buffers, deadline and PROXY header. Never runs the
//! handler, never blocks, never parses bytes itself (that is [`crate::http1`]).
//!
//! A connection is in exactly one [`Phase`]. It reads only while it waits for or receives a
//! request, hands one complete request at a time to the workers, writes the response, then
//! goes back to idle (keep-alive), or closes. Pipelined requests wait in its buffer and are
//! answered strictly in order.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use polling::Event;

use crate::config::Config;
use crate::engine::body_budget::Lease;
use crate::engine::buffer::{BufferPool, InBuf, OutPool};
use crate::engine::handoff::{After, ConnRef, Job, JobSender, NotQueued, Outgoing, Source};
use crate::engine::Shared;
use crate::http1::body::{BodyReader, SpoolBuffer};
use crate::http1::encode::encode_error;
use crate::http1::parse::{parse_head, BodyFraming, Head, HeadScanner, Limits};
use crate::http1::request::RequestBody;
use crate::http1::status::Rejection;
use crate::ops::access_log::Refused;
use crate::ops::proxy_protocol::{ProxyHeader, ProxyParse};

/// Writes the access log line of a request the server answers itself with `status`.
fn log_refusal(ctx: &LoopCtx, peer: SocketAddr, status: u16, request: Refused<'_>, duration: Duration) {
    let body_len = crate::http1::encode::error_body_len(status);
    ctx.shared.access_log.write_refusal(peer.ip(), status, body_len, request, duration);
}

/// Bytes read from a file body per step.
const FILE_PIECE: usize = 64 * 1024;
/// Bytes discarded at most while lingering after an error response.
const LINGER_MAX_BYTES: usize = 1024 * 1024;
/// Room asked for before each read of a request head.
const READ_ROOM: usize = 4 * 1024;
/// Room asked for before each read of a request body.
const BODY_READ_ROOM: usize = 64 * 1024;
/// Reads per readiness event at most, so one fast uploader cannot hold up the other clients.
const MAX_READS_PER_EVENT: usize = 16;
/// How long a connection is given before it can be judged for eviction: a new connection
/// whose request has not arrived yet, a body or a response's rate.
pub(crate) const EVICT_GRACE: Duration = Duration::from_secs(1);
/// Header and body deadlines are divided by this while the connection table is nearly full.
pub(crate) const PRESSURE_DIVISOR: u32 = 4;
/// The table is "nearly full" from this share of `connection_limit`, in percent.
pub(crate) const PRESSURE_PERCENT: usize = 90;
/// Bytes read ahead at most while a request is at a worker (the start of a pipelined
/// request; the read is there to see an end-of-file or a reset).
const WATCH_ROOM: usize = READ_ROOM;

mod builtin;
mod on_loop;
mod output;
#[cfg(test)]
mod tests;
mod transport;

pub(crate) use transport::Io;

use output::Writing;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the loop shares with every connection.
pub(crate) struct LoopCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: Limits,
    pub(crate) jobs: JobSender,
    /// The loop has begun closing connections (the drain reached it after `drain_delay`):
    /// a connection closes after its current response.
    pub(crate) closing: bool,
    pub(crate) buffers: BufferPool,
    /// Response buffers lent with each job and given back once the response is written.
    pub(crate) out_buffers: OutPool,
    /// Response states kept for reuse (at most `output::KEPT_WRITINGS`).
    #[allow(clippy::vec_box)] // the boxes are what is kept: `Phase::Writing` holds one
    pub(crate) writings: Vec<Box<output::Writing>>,
    pub(crate) scratch: Vec<u8>,
    /// When the queue-full warning was last logged (it is logged at most once a second).
    pub(crate) last_queue_warning: Option<Instant>,
    /// Open connections, kept by the loop.
    pub(crate) open_connections: usize,
    /// Rate-limited warnings the loop logs (refusals, protection).
    pub(crate) warnings: crate::ops::warn::LoopWarnings,
    /// The handler, when it has a fast path the loop may take
    /// ([`Handler::respond_on_loop`](crate::Handler::respond_on_loop)).
    pub(crate) on_loop: Option<Arc<dyn crate::handler::Handler>>,
    /// Fast-path answers being written one inside another (a response sent whole goes on to
    /// the next pipelined request from within the same call), bounded by `on_loop::MAX_DEPTH`.
    pub(crate) on_loop_depth: usize,
}

impl LoopCtx {
    /// The connection table is nearly full: header and body deadlines tighten.
    pub(crate) fn under_pressure(&self) -> bool {
        self.open_connections * 100 >= self.shared.config.connection_limit * PRESSURE_PERCENT
    }
}

/// Why a connection may lose its place when the table is full, in the order places are taken:
/// the least progress first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cut {
    /// An error response was sent; the connection is only discarding input before closing.
    Lingering,
    /// A request head begun and not finished.
    PartialHead,
    /// A new connection that has sent nothing in `EVICT_GRACE`, read first to be sure.
    Silent,
    /// An idle keep-alive connection.
    IdleKeepAlive,
    /// A request body arriving below `min_transfer_rate`.
    SlowBody,
    /// A response the client takes below `min_transfer_rate`.
    SlowReader,
}

impl Cut {
    /// Every kind, in order.
    pub(crate) const ALL: [Cut; 6] =
        [Cut::Lingering, Cut::PartialHead, Cut::Silent, Cut::IdleKeepAlive, Cut::SlowBody, Cut::SlowReader];

    /// A short name for logs and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cut::Lingering => "lingering",
            Cut::PartialHead => "partial_head",
            Cut::Silent => "silent",
            Cut::IdleKeepAlive => "idle_keepalive",
            Cut::SlowBody => "slow_body",
            Cut::SlowReader => "slow_reader",
        }
    }
}

/// Whether `bytes` moved in `elapsed` is below `rate` bytes per second (after `EVICT_GRACE`).
pub(super) fn below_rate(bytes: u64, elapsed: Duration, rate: u64) -> bool {
    rate > 0 && elapsed >= EVICT_GRACE && (bytes as f64) < rate as f64 * elapsed.as_secs_f64()
}

/// Whether a connection stays open after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Step {
    Open,
    Close,
}

/// Where a connection is in its life.
enum Phase {
    /// Waiting for the first byte of a request. `fresh` for a new connection.
    Idle { since: Instant, fresh: bool },
    /// Reading a request head.
    Head { started: Instant, scanner: HeadScanner },
    /// Reading a request body.
    Body(Box<BodyState>),
    /// A worker has the request.
    Handling,
    /// Writing a response.
    Writing(Box<Writing>),
    /// An error response was sent and the write side shut: discarding input until the client
    /// closes or the linger deadline passes.
    Lingering { until: Instant, discarded: usize },
}

struct BodyState {
    head: Head,
    reader: BodyReader,
    spool: SpoolBuffer,
    /// The memory the body may hold (`None`: it goes to its file from the first byte).
    _memory: Option<Lease>,
    started: Instant,
    last_progress: Instant,
}

/// The byte stream under a connection: a socket registered with the poller in the server, an
/// in-memory script in the unit tests. Non-blocking: `WouldBlock` when nothing can move now.
pub(crate) trait Transport {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Shuts the write side (the client then reads end-of-file).
    fn shutdown_write(&self) -> io::Result<()>;
    /// Sends up to `len` bytes of `file` from its current position (which advances) straight
    /// to the peer, like `write`: `Ok(0)` is the end of the file, `WouldBlock` a full socket.
    /// `None`: this transport cannot (the default; e.g. an encrypting one), and file bodies are
    /// read and written in pieces instead.
    fn send_file(&self, file: &std::fs::File, len: usize) -> Option<io::Result<usize>> {
        let _ = (file, len);
        None
    }
    /// [`Transport::write`] of bytes that [`Transport::send_file`] bytes will follow at once:
    /// where it can, the transport holds them back to leave in full packets with the file.
    fn write_before_file(&self, buf: &[u8]) -> io::Result<usize> {
        self.write(buf)
    }

    // What a transport that keeps bytes of its own (TLS) adds; a plain socket keeps none.

    /// Bytes accepted by `write` still wait for the socket: the connection asks for
    /// writability until they are out, and a response is finished only then.
    fn pending_output(&self) -> bool {
        false
    }
    /// Sends what waits; `Ok(true)` once nothing is left.
    fn flush_output(&self) -> io::Result<bool> {
        Ok(true)
    }
    /// The response being written is the connection's last: a transport with a closing
    /// message of its own (TLS `close_notify`) queues it, so that it is part of the output
    /// [`Transport::flush_output`] sends before the connection closes.
    fn queue_close_notify(&self) {}
    /// Input already taken off the socket waits to be read: the poller will not report it.
    fn buffered_input(&self) -> bool {
        false
    }
    /// The TLS session's facts, once its handshake is done.
    fn tls_info(&self) -> Option<Arc<crate::tls::TlsInfo>> {
        None
    }
}

/// One client connection, over a socket (`S`) in the server and over a script in the tests.
pub(crate) struct Connection<S: Transport = Io> {
    io: S,
    peer: SocketAddr,
    local: SocketAddr,
    pub(crate) id: ConnRef,
    phase: Phase,
    inbuf: InBuf,
    served: usize,
    /// The client shut its write side; answer what is complete, then close.
    peer_closed: bool,
    /// The part of a `100 Continue` interim response still to send.
    interim: &'static [u8],
    /// A PROXY protocol header must come first (a trusted proxy, with `proxy_protocol` on).
    expect_proxy_header: bool,
    /// The interest currently armed in the poller (cleared when an event fires on a oneshot
    /// registration; kept on a level-triggered one, see `sys::stays_armed`).
    pub(crate) armed: Interest,
    /// The deadline the connection currently has.
    pub(crate) deadline: Option<Instant>,
    /// The earliest deadline entered in the loop's timer heap for this connection.
    pub(crate) scheduled: Option<Instant>,
    /// Set when the connection closes while its request waits for a worker: the worker then
    /// drops the request instead of running the handler. One per connection, shared with
    /// each job.
    cancelled: Option<Arc<AtomicBool>>,
    /// During a drain with a grace for idle connections (a worker process being replaced):
    /// when this idle connection closes if no request comes first.
    drain_by: Option<Instant>,
}

/// Readiness a connection waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl Interest {
    pub(crate) const NONE: Interest = Interest { read: false, write: false };
    const READ: Interest = Interest { read: true, write: false };
    const WRITE: Interest = Interest { read: false, write: true };

    pub(crate) fn event(self, key: usize) -> Event {
        match (self.read, self.write) {
            (true, true) => Event::all(key),
            (true, false) => Event::readable(key),
            (false, true) => Event::writable(key),
            (false, false) => Event::none(key),
        }
    }
}

pub(super) fn rate_allowance(bytes: u64, rate: u64) -> Duration {
    if rate == 0 {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        Duration::from_secs_f64(bytes as f64 / rate as f64)
    }
}

impl<S: Transport> Connection<S> {
    pub(crate) fn new(io: S, peer: SocketAddr, local: SocketAddr, id: ConnRef, now: Instant) -> Self {
        Connection {
            io,
            peer,
            local,
            id,
            phase: Phase::Idle { since: now, fresh: true },
            inbuf: InBuf::default(),
            served: 0,
            peer_closed: false,
            interim: b"",
            expect_proxy_header: false,
            armed: Interest::READ,
            deadline: None,
            scheduled: None,
            cancelled: None,
            drain_by: None,
        }
    }

    pub(crate) fn registration(&self) -> &S {
        &self.io
    }

    /// Whether this connection may lose its place to a new client, and its rank: the kind of
    /// cut and since when it has made too little progress (the smallest goes first). `None`
    /// for a connection that must keep its place: a complete request unread, a request at a
    /// worker, a body or a response moving at `min_transfer_rate` or faster, or a new
    /// connection younger than `EVICT_GRACE`.
    pub(crate) fn eviction_rank(&self, config: &Config, now: Instant) -> Option<(Cut, Instant)> {
        match &self.phase {
            Phase::Lingering { until, .. } => Some((Cut::Lingering, *until)),
            Phase::Head { started, .. } => Some((Cut::PartialHead, *started)),
            Phase::Idle { since, fresh: true } if self.inbuf.is_empty() => {
                (now.saturating_duration_since(*since) >= EVICT_GRACE).then_some((Cut::Silent, *since))
            }
            Phase::Idle { since, fresh: false } if self.inbuf.is_empty() => Some((Cut::IdleKeepAlive, *since)),
            Phase::Idle { .. } | Phase::Handling => None,
            Phase::Body(b) => {
                below_rate(b.spool.len(), now.saturating_duration_since(b.started), config.min_transfer_rate)
                    .then_some((Cut::SlowBody, b.started))
            }
            Phase::Writing(w) => w.slow_since(now, config.min_transfer_rate).map(|since| (Cut::SlowReader, since)),
        }
    }

    /// Readiness this connection needs next.
    pub(crate) fn interest(&self) -> Interest {
        let mut want = self.phase_interest();
        // TLS records still to send (handshake, alerts, the end of a response).
        want.write |= self.io.pending_output();
        want
    }

    /// Input the transport holds that the poller cannot see, while the connection would read.
    pub(crate) fn has_buffered_input(&self) -> bool {
        // The transport first: a plain socket answers without looking at the phase.
        self.io.buffered_input() && self.phase_interest().read
    }

    fn phase_interest(&self) -> Interest {
        match &self.phase {
            Phase::Idle { .. } | Phase::Head { .. } | Phase::Lingering { .. } => Interest::READ,
            Phase::Body(_) => Interest { read: true, write: !self.interim.is_empty() },
            // Watched while at a worker, to learn of a reset (see `watch_read`).
            Phase::Handling if self.watching() => Interest::READ,
            Phase::Handling => Interest::NONE,
            Phase::Writing(w) if w.has_unsent() => Interest::WRITE,
            Phase::Writing(_) => Interest::NONE,
        }
    }

    /// The deadline of the current phase. Under `pressure` (the table nearly full) the header
    /// and body deadlines are `PRESSURE_DIVISOR` times shorter.
    pub(crate) fn compute_deadline(&self, config: &Config, pressure: bool) -> Option<Instant> {
        let divisor = if pressure { PRESSURE_DIVISOR } else { 1 };
        let (header_timeout, body_timeout) = (config.header_timeout / divisor, config.body_timeout / divisor);
        match &self.phase {
            Phase::Idle { since, fresh: true } => {
                Some(self.drain_by.map_or(*since + header_timeout, |by| by.min(*since + header_timeout)))
            }
            Phase::Idle { since, fresh: false } => Some(
                self.drain_by.map_or(*since + config.keepalive_timeout, |by| by.min(*since + config.keepalive_timeout)),
            ),
            Phase::Head { started, .. } => Some(*started + header_timeout),
            Phase::Body(b) => {
                let stalled = b.last_progress + body_timeout;
                let slow = b.started + body_timeout + rate_allowance(b.spool.len(), config.min_transfer_rate);
                Some(stalled.min(slow))
            }
            Phase::Handling => None,
            Phase::Writing(w) => w.deadline(config),
            Phase::Lingering { until, .. } => Some(*until),
        }
    }

    /// The socket is readable (or in error).
    pub(crate) fn on_readable(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        match self.phase {
            Phase::Handling => return self.watch_read(ctx),
            Phase::Writing(_) => return Step::Open,
            Phase::Lingering { .. } => return self.linger_read(ctx),
            _ => {}
        }
        let mut eof = false;
        let mut reads = 0;
        loop {
            // A body is read in large pieces once a read has filled its room (a fast upload
            // takes few system calls); a head, and a slow body, in small ones, so a slow client
            // holds little memory.
            let (read, room, direct) = match self.read_body_direct(now) {
                Some((read, room)) => (read, room, true),
                None => {
                    let in_body = matches!(self.phase, Phase::Body(_));
                    let min = if in_body && reads > 0 { BODY_READ_ROOM } else { READ_ROOM };
                    let spare = self.inbuf.spare(&mut ctx.buffers, min);
                    let room = spare.len();
                    (self.io.read(spare), room, false)
                }
            };
            match read {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    if !direct {
                        self.inbuf.filled_more(n);
                    }
                    ctx.shared.metrics.bytes_in.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    reads += 1;
                    if n < room || reads >= MAX_READS_PER_EVENT {
                        break;
                    }
                    // More is waiting: take in what arrived (the head, or body bytes into the
                    // spool) before reading on, so the buffer never holds more than a read.
                    if self.process(ctx, now) == Step::Close {
                        return Step::Close;
                    }
                    if !matches!(self.phase, Phase::Idle { .. } | Phase::Head { .. } | Phase::Body(_)) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Close,
            }
        }
        if eof {
            self.peer_closed = true;
        }
        self.process_input(ctx, now)
    }

    /// Reads body bytes straight into the body's pre-sized memory buffer (no copy through the
    /// input buffer, and reads as large as the rest of the body): for a body of known length
    /// held in memory, once nothing is left in the input buffer. Returns the read's result and
    /// the room it was given, or `None` when the body is not read this way.
    fn read_body_direct(&mut self, now: Instant) -> Option<(io::Result<usize>, usize)> {
        if !self.inbuf.is_empty() {
            return None;
        }
        let Phase::Body(body) = &mut self.phase else { return None };
        let BodyReader::Length { remaining } = &mut body.reader else { return None };
        let room = body.spool.room()?;
        let want = room.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return None;
        }
        let read = self.io.read(&mut room[..want]);
        if let Ok(n) = read {
            body.spool.filled(n);
            *remaining -= n as u64;
            if n > 0 {
                body.last_progress = now;
            }
        }
        Some((read, want))
    }

    /// The socket is writable.
    pub(crate) fn on_writable(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        if self.io.pending_output() && self.io.flush_output().is_err() {
            return Step::Close;
        }
        match &mut self.phase {
            Phase::Body(_) if !self.interim.is_empty() => match self.io.write(self.interim) {
                Ok(n) => {
                    self.interim = &self.interim[n..];
                    Step::Open
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Step::Open,
                Err(_) => Step::Close,
            },
            Phase::Writing(_) => self.flush(ctx, now),
            _ => Step::Open,
        }
    }

    /// Requires a PROXY protocol header before the first request.
    pub(crate) fn expect_proxy_header(&mut self) {
        self.expect_proxy_header = true;
    }

    /// Reads the PROXY protocol header: the client and server addresses it gives replace
    /// the socket's. A malformed header closes the connection without an answer.
    fn read_proxy_header(&mut self) -> Option<Step> {
        match crate::ops::proxy_protocol::parse(self.inbuf.filled()) {
            ProxyParse::Incomplete => Some(Step::Open),
            ProxyParse::Invalid(why) => {
                debug!(target: "maitred::reject", "{}: bad PROXY protocol header: {why}", self.peer);
                Some(Step::Close)
            }
            ProxyParse::Done { header, consumed } => {
                self.inbuf.consume(consumed);
                if let ProxyHeader::Addresses { source, destination } = header {
                    self.peer = source;
                    self.local = destination;
                }
                self.expect_proxy_header = false;
                None
            }
        }
    }

    /// Parses and advances as far as the buffered input allows.
    fn process(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        if self.expect_proxy_header && !self.inbuf.is_empty() {
            if let Some(step) = self.read_proxy_header() {
                return step;
            }
        }
        loop {
            match &mut self.phase {
                Phase::Idle { since, fresh } => {
                    if self.inbuf.is_empty() {
                        return Step::Open;
                    }
                    // A new connection's head deadline runs from accept; a kept-alive one's
                    // from the first byte of its next request.
                    let started = if *fresh { *since } else { now };
                    self.phase = Phase::Head { started, scanner: HeadScanner::new() };
                }
                Phase::Head { scanner, .. } => {
                    let span = match scanner.scan(self.inbuf.filled(), &ctx.limits) {
                        Ok(Some(span)) => span,
                        Ok(None) => return Step::Open,
                        Err(rejection) => return self.reject(ctx, rejection, now),
                    };
                    let head = match parse_head(self.inbuf.filled(), &span, &ctx.limits) {
                        Ok(head) => head,
                        Err(rejection) => return self.reject(ctx, rejection, now),
                    };
                    self.inbuf.consume(span.head.end);
                    if let Some(step) = self.answer_builtin(ctx, &head, now) {
                        return step;
                    }
                    let reader = match head.body {
                        BodyFraming::None => {
                            let step = self.dispatch(ctx, head, RequestBody::empty(), now);
                            if step == Step::Close || matches!(self.phase, Phase::Writing(_)) {
                                return step;
                            }
                            continue;
                        }
                        BodyFraming::Length(n) => BodyReader::length(n),
                        BodyFraming::Chunked => BodyReader::chunked(&ctx.limits),
                    };
                    let expected = match head.body {
                        BodyFraming::Length(n) => Some(n),
                        _ => None,
                    };
                    if head.expect_continue && self.inbuf.is_empty() {
                        self.interim = CONTINUE;
                        match self.io.write(self.interim) {
                            Ok(n) => self.interim = &self.interim[n..],
                            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                            Err(_) => return Step::Close,
                        }
                    }
                    // Memory for a body under the threshold comes from the server's budget for
                    // bodies being received; without it the body is spooled from the start.
                    // A body announced larger than the threshold is spooled anyway: no lease.
                    let threshold = ctx.shared.config.body_spool_threshold;
                    let wanted =
                        expected.map_or(Some(threshold), |n| usize::try_from(n).ok().filter(|n| *n <= threshold));
                    let memory = wanted.filter(|n| *n > 0).and_then(|n| ctx.shared.body_budget.lease(n));
                    self.phase = Phase::Body(Box::new(BodyState {
                        head,
                        reader,
                        spool: SpoolBuffer::new(if memory.is_some() { threshold } else { 0 }, expected),
                        _memory: memory,
                        started: now,
                        last_progress: now,
                    }));
                }
                Phase::Body(body) => {
                    let BodyState { reader, spool, last_progress, .. } = &mut **body;
                    let mut sink = |data: &[u8]| {
                        spool.write(data).map_err(|_| Rejection::Internal("could not spool the request body"))
                    };
                    let consumed = match reader.received(self.inbuf.filled(), &mut sink) {
                        Ok(n) => n,
                        Err(rejection) => return self.reject(ctx, rejection, now),
                    };
                    self.inbuf.consume(consumed);
                    if consumed > 0 {
                        *last_progress = now;
                    }
                    if !reader.is_complete() {
                        return Step::Open;
                    }
                    let Phase::Body(body) = std::mem::replace(&mut self.phase, Phase::Handling) else { unreachable!() };
                    let body = *body;
                    let request_body = match body.spool.finish() {
                        Ok(b) => b,
                        Err(_) => {
                            return self.reject(ctx, Rejection::Internal("could not read back the spooled body"), now)
                        }
                    };
                    let step = self.dispatch(ctx, body.head, request_body, now);
                    if step == Step::Close || matches!(self.phase, Phase::Writing(_)) {
                        return step;
                    }
                }
                Phase::Handling | Phase::Writing(_) | Phase::Lingering { .. } => return Step::Open,
            }
        }
    }

    /// Whether the response to the request now complete may leave the connection open: the one
    /// place that decides keep-alive. The client asked for it (`wants`: HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `keep-alive`), another request fits under
    /// `max_requests_per_connection`, the server is not draining, and the client has not shut
    /// its side with nothing more buffered (it still gets every complete request it pipelined
    /// answered; the last one with `Connection: close`).
    ///
    /// The encoder turns the answer into the `Connection` header and may only lower it (the
    /// handler said `close`, or the body is delimited by the close); a worker lowers it when
    /// the drain began while the handler ran. Whatever the head says then rules the
    /// connection ([`handoff::After`](crate::engine::handoff::After)).
    fn keep_alive_offer(&self, ctx: &LoopCtx, wants: bool) -> bool {
        wants
            && self.served + 1 < ctx.shared.config.max_requests_per_connection
            && !ctx.shared.draining.load(std::sync::atomic::Ordering::Relaxed)
            && !(self.peer_closed && self.inbuf.is_empty())
    }

    /// Hands a complete request to the workers (unless the handler's fast path answers it on
    /// the loop); a full queue gets 503 from here.
    fn dispatch(&mut self, ctx: &mut LoopCtx, head: Head, body: RequestBody, now: Instant) -> Step {
        let head = if ctx.on_loop.is_some() && matches!(head.body, BodyFraming::None) {
            match self.respond_on_loop(ctx, head, now) {
                on_loop::Offer::Answered(step) => return step,
                on_loop::Offer::Declined(head) => head,
            }
        } else {
            head
        };
        let keep_alive = self.keep_alive_offer(ctx, head.keep_alive);
        let cancelled = Arc::clone(self.cancelled.get_or_insert_with(Arc::default));
        let job = Job {
            conn: self.id,
            received: now,
            head,
            body,
            peer: self.peer,
            local: self.local,
            keep_alive,
            cancelled,
            tls: self.io.tls_info(),
            out: ctx.out_buffers.take(),
        };
        match ctx.jobs.try_send(job) {
            Ok(()) => {
                self.phase = Phase::Handling;
                // Requests are waiting for a worker: say so, at most every 10 seconds.
                let depth = ctx.jobs.len();
                if depth > ctx.shared.config.threads
                    && ctx.last_queue_warning.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
                {
                    warn!(
                        target: "maitred::queue",
                        "{depth} requests are waiting for a worker (threads = {}, queue capacity {})",
                        ctx.shared.config.threads,
                        ctx.shared.config.queue_capacity()
                    );
                    ctx.last_queue_warning = Some(now);
                }
                Step::Open
            }
            Err(NotQueued::Full(job)) => {
                if ctx.last_queue_warning.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                    warn!(target: "maitred::queue", "dispatch queue full ({} waiting): answering 503", ctx.jobs.len());
                    ctx.last_queue_warning = Some(now);
                }
                self.reject_request(ctx, Rejection::Overloaded, now, &job.head)
            }
            Err(NotQueued::Closed(job)) => self.reject_request(ctx, Rejection::Overloaded, now, &job.head),
        }
    }

    /// Answers with an error of the server's own, then lingers and closes.
    fn reject(&mut self, ctx: &mut LoopCtx, rejection: Rejection, now: Instant) -> Step {
        let (started, request) = match &self.phase {
            Phase::Body(body) => (body.started, Refused::Head(&body.head)),
            Phase::Head { started, .. } => (*started, Refused::Raw(self.inbuf.filled())),
            _ => (now, Refused::Raw(self.inbuf.filled())),
        };
        let duration = now.saturating_duration_since(started);
        log_refusal(ctx, self.peer, rejection.status(), request, duration);
        self.answer_refusal(ctx, rejection, now)
    }

    /// [`Connection::reject`] for a complete request the queue had no room for.
    fn reject_request(&mut self, ctx: &mut LoopCtx, rejection: Rejection, now: Instant, head: &Head) -> Step {
        log_refusal(ctx, self.peer, rejection.status(), Refused::Head(head), Duration::ZERO);
        self.answer_refusal(ctx, rejection, now)
    }

    /// Sends the error response for `rejection`.
    fn answer_refusal(&mut self, ctx: &mut LoopCtx, rejection: Rejection, now: Instant) -> Step {
        let status = rejection.status();
        debug!(target: "maitred::reject", "{} {}: {}", self.peer, status, rejection.detail());
        let timeout_setting = match self.phase {
            Phase::Body(_) => "body_timeout",
            _ => "header_timeout",
        };
        ctx.warnings.refused(&ctx.shared.config, rejection, timeout_setting, now);
        ctx.shared.metrics.record_rejection(status);
        let retry = (status == 503).then(|| ctx.shared.config.retry_after.as_secs().max(1));
        let out = encode_error(status, &ctx.shared.config.server_header, retry);
        self.inbuf.clear();
        self.start_writing(ctx, Outgoing { head: out, source: Source::None, after: After::Linger }, now);
        self.flush(ctx, now)
    }

    /// Processes buffered input; then closes a connection whose client has stopped sending
    /// with no complete request left, and returns an idle connection's buffer to the pool.
    fn process_input(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        let step = self.process(ctx, now);
        if step == Step::Open
            && self.peer_closed
            && matches!(self.phase, Phase::Idle { .. } | Phase::Head { .. } | Phase::Body(_))
        {
            return Step::Close;
        }
        // A connection holds an input buffer only while it has unparsed bytes (a partial head,
        // pipelined requests): idle, a body whose bytes all went to the spool, a request at a
        // worker and a response being written hold none. The pool makes this cheap.
        self.inbuf.release_if_empty(&mut ctx.buffers);
        step
    }

    /// Whether the socket is watched while the request is at a worker: until the client's
    /// end-of-file or its next (pipelined) bytes, which wait in the buffer unparsed.
    fn watching(&self) -> bool {
        !self.peer_closed && self.inbuf.is_empty()
    }

    /// The socket is readable while the request is at a worker. The rule for "the client is
    /// gone": a reset or any other read error is; an end-of-file is not (a client may shut
    /// its write side after a complete request and still read the answer), so it only stops
    /// the watch. Bytes that arrive (a pipelined request) are kept (one read, at most `WATCH_ROOM`). When
    /// the client is gone the connection closes, which cancels the queued request (`Drop`).
    fn watch_read(&mut self, ctx: &mut LoopCtx) -> Step {
        while self.watching() {
            let spare = self.inbuf.spare(&mut ctx.buffers, READ_ROOM);
            let room = spare.len().min(WATCH_ROOM);
            match self.io.read(&mut spare[..room]) {
                Ok(0) => self.peer_closed = true,
                Ok(n) => {
                    self.inbuf.filled_more(n);
                    ctx.shared.metrics.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(target: "maitred::io", "{}: connection lost while its request waits: {e}", self.peer);
                    return Step::Close;
                }
            }
        }
        Step::Open
    }

    fn linger_read(&mut self, ctx: &mut LoopCtx) -> Step {
        let Phase::Lingering { discarded, .. } = &mut self.phase else { return Step::Close };
        if ctx.scratch.len() < 16 * 1024 {
            ctx.scratch.resize(16 * 1024, 0);
        }
        loop {
            match self.io.read(&mut ctx.scratch) {
                Ok(0) => return Step::Close,
                Ok(n) => {
                    *discarded += n;
                    if *discarded > LINGER_MAX_BYTES {
                        return Step::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Close,
            }
        }
    }

    /// The phase's deadline has passed.
    pub(crate) fn on_deadline(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        match &self.phase {
            Phase::Idle { .. } | Phase::Lingering { .. } => Step::Close,
            Phase::Head { scanner, .. } if !scanner.started() && self.inbuf.is_empty() => Step::Close,
            Phase::Head { .. } | Phase::Body(_) => self.reject(ctx, Rejection::Timeout, now),
            Phase::Writing(_) => {
                // Summarised by the loop's rate-limited warning; one line each only at debug.
                debug!(target: "maitred::io", "{}: response not read in time; connection closed", self.peer);
                ctx.warnings.slow_reader_cut(&ctx.shared.config, now);
                Step::Close
            }
            Phase::Handling => Step::Open,
        }
    }

    /// The server started draining: after a last look for a request already waiting (answered
    /// with `Connection: close`), an idle kept-alive connection closes now and the rest close
    /// after their current response. A new connection that has not sent its request yet waits
    /// [`IDLE_DRAIN_GRACE`](crate::engine::IDLE_DRAIN_GRACE) for it, answered with
    /// `Connection: close`: its client connected a moment ago (many were taken from the backlog
    /// as the listeners closed) and its request is on its way; closing it would fail a request
    /// that a client (a proxy with a POST) cannot safely send again. In a worker process being
    /// replaced (`Shared::idle_drain_grace`), an idle kept-alive connection waits that long too,
    /// since the other worker processes keep serving its client.
    pub(crate) fn on_drain(&mut self, ctx: &mut LoopCtx, now: Instant) -> Step {
        if let Phase::Idle { .. } = self.phase {
            if self.inbuf.is_empty() && self.on_readable(ctx, now) == Step::Close {
                return Step::Close;
            }
        }
        let grace = match self.phase {
            Phase::Idle { fresh: true, .. } => crate::engine::IDLE_DRAIN_GRACE,
            _ => ctx.shared.idle_drain_grace,
        };
        match self.phase {
            Phase::Idle { .. } if self.inbuf.is_empty() && grace.is_zero() => Step::Close,
            Phase::Idle { .. } if self.inbuf.is_empty() => {
                self.drain_by = Some(now + grace);
                Step::Open
            }
            _ => Step::Open,
        }
    }

    /// Releases a streaming worker, if one is waiting on this connection, and cancels a
    /// request still waiting for a worker (one already running is not interrupted).
    pub(crate) fn release_worker(&mut self) {
        match &self.phase {
            Phase::Writing(w) => w.release_worker(),
            Phase::Handling => {
                if let Some(flag) = &self.cancelled {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

impl<S: Transport> Drop for Connection<S> {
    fn drop(&mut self) {
        self.release_worker();
    }
}
