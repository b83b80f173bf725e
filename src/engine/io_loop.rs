//! The I/O loop: one thread that owns every client socket.
//! Owns the connection table, the timer heap and the poller. Never runs the handler and never waits
//! on one client.
//!
//! Each pass handles every message (new connections, responses, stream pieces), every expired
//! deadline, then every ready socket, and only then waits in the poller. Workers wake it only
//! when it is asleep (see [`LoopWaker`](crate::engine::handoff::LoopWaker)), so a busy loop pays for no wake-ups at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use polling::{Event, Poller};

use crate::engine::buffer::{BufferPool, OutPool};
use crate::engine::connection::{Connection, Cut, Interest, Io, LoopCtx, Step};
use crate::engine::handoff::{ConnRef, JobSender, LoopInbox, ToLoop};
use crate::engine::net::Stream;
use crate::engine::sys::{LoopWait, Registered};
use crate::engine::Shared;

/// Messages handled at most per pass before sockets get their turn.
const MESSAGES_PER_PASS: usize = 4096;

/// Connections by slot; a slot is the poller key.
#[derive(Default)]
struct Slab {
    entries: Vec<Option<Connection>>,
    free: Vec<usize>,
    len: usize,
}

impl Slab {
    fn next_slot(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    fn insert(&mut self, conn: Connection) -> usize {
        let slot = self.next_slot();
        if slot == self.entries.len() {
            self.entries.push(Some(conn));
        } else {
            self.free.pop();
            self.entries[slot] = Some(conn);
        }
        self.len += 1;
        slot
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut Connection> {
        self.entries.get_mut(slot).and_then(Option::as_mut)
    }

    fn lookup(&mut self, id: ConnRef) -> Option<&mut Connection> {
        self.get_mut(id.slot).filter(|c| c.id == id)
    }

    fn remove(&mut self, slot: usize) -> Option<Connection> {
        let conn = self.entries.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(conn)
    }

    fn slots(&self) -> Vec<usize> {
        (0..self.entries.len()).filter(|&i| self.entries[i].is_some()).collect()
    }
}

/// The loop's state.
pub(crate) struct IoLoop {
    poller: Arc<Poller>,
    inbox: LoopInbox,
    conns: Slab,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    ctx: LoopCtx,
    next_generation: u64,
    drain_deadline: Option<Instant>,
    /// Connections may still be handed over (a worker process until the supervisor's input
    /// ends): a drained loop waits for that before it stops, so a connection the supervisor
    /// handed over just after it said `drain` is served, not closed unread.
    arrivals_open: bool,
    /// Connections whose transport holds input the poller cannot see (TLS plaintext already
    /// decrypted): read in the next pass, before the loop sleeps.
    buffered: Vec<ConnRef>,
}

impl IoLoop {
    pub(crate) fn new(
        shared: Arc<Shared>,
        poller: Arc<Poller>,
        inbox: LoopInbox,
        jobs: JobSender,
        on_loop: Option<Arc<dyn crate::handler::Handler>>,
        handed_connections: bool,
    ) -> Self {
        let limits = shared.config.limits();
        IoLoop {
            poller,
            inbox,
            conns: Slab::default(),
            timers: BinaryHeap::new(),
            ctx: LoopCtx {
                shared,
                limits,
                jobs,
                closing: false,
                buffers: BufferPool::default(),
                out_buffers: OutPool::default(),
                writings: Vec::new(),
                scratch: Vec::new(),
                last_queue_warning: None,
                open_connections: 0,
                warnings: Default::default(),
                on_loop,
                on_loop_depth: 0,
            },
            next_generation: 0,
            drain_deadline: None,
            arrivals_open: handed_connections,
            buffered: Vec::new(),
        }
    }

    /// Runs until the server has drained (or the drain deadline forced the rest closed).
    pub(crate) fn run(mut self) {
        let mut waiter = LoopWait::new(Arc::clone(&self.poller));
        loop {
            let now = Instant::now();
            self.handle_messages(now);
            self.expire(now);
            if let Some(deadline) = self.drain_deadline {
                if self.conns.len == 0 && !self.arrivals_open {
                    break;
                }
                if now >= deadline {
                    if self.conns.len == 0 {
                        warn!(target: "maitred::server", "graceful_timeout passed and the supervisor has not closed its input; stopping");
                    } else {
                        warn!(target: "maitred::server", "graceful_timeout passed; closing {} connection(s) still open", self.conns.len);
                    }
                    for slot in self.conns.slots() {
                        self.close(slot);
                    }
                    break;
                }
            }
            let mut timeout = self.timers.peek().map(|Reverse((t, _, _))| t.saturating_duration_since(now));
            if let Some(deadline) = self.drain_deadline {
                let left = deadline.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            // The jobs of this pass go to the workers in one batch; while some wait and
            // workers are idle, the loop looks again in time to wake another (see `JobSender`).
            if let Some(again) = self.ctx.jobs.wake_workers(now) {
                let left = again.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            self.ctx.shared.waker.going_to_sleep();
            if !self.inbox.is_empty() || !self.buffered.is_empty() {
                timeout = Some(Duration::ZERO);
            }
            let events = match waiter.wait(self.ctx.shared.waker.bell(), timeout) {
                Ok(events) => events,
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        error!(target: "maitred::io", "poller wait failed: {e}");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    &[]
                }
            };
            self.ctx.shared.waker.awake();
            let now = Instant::now();
            for &event in events {
                self.on_event(event, now);
            }
            self.read_buffered(now);
        }
        // Whatever is still queued belongs to connections that are gone: dropping the loop
        // (its `JobSender`) discards it and lets the workers finish.
        debug!(target: "maitred::io", "I/O loop stopped");
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        let slot = event.key;
        let Some(conn) = self.conns.get_mut(slot) else { return };
        // A level-triggered registration stays armed; a oneshot one is off until re-armed.
        if !crate::engine::sys::stays_armed(&self.poller, conn.armed.event(slot)) {
            conn.armed = Interest::NONE;
        }
        let mut step = Step::Open;
        if event.readable {
            step = conn.on_readable(&mut self.ctx, now);
        }
        if step == Step::Open && event.writable {
            step = conn.on_writable(&mut self.ctx, now);
        }
        self.settle(slot, step);
    }

    /// Reads the connections whose transport holds input already (see `buffered`).
    fn read_buffered(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.buffered) {
            if let Some(conn) = self.conns.lookup(id) {
                let step = conn.on_readable(&mut self.ctx, now);
                self.settle(id.slot, step);
            }
        }
    }

    /// After any step: close, or re-arm the poller and the timer for what comes next.
    fn settle(&mut self, slot: usize, step: Step) {
        if step == Step::Close {
            self.close(slot);
            return;
        }
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let want = conn.interest();
        if want != conn.armed {
            if conn.registration().rearm(want.event(slot)).is_err() {
                self.close(slot);
                return;
            }
            conn.armed = want;
        }
        if conn.has_buffered_input() && !self.buffered.contains(&conn.id) {
            self.buffered.push(conn.id);
        }
        let deadline = conn.compute_deadline(&self.ctx.shared.config, self.ctx.under_pressure());
        conn.deadline = deadline;
        if let Some(d) = deadline {
            // Only an earlier deadline needs a new heap entry; a later one is found when the
            // earlier entry fires (see `expire`).
            if conn.scheduled.is_none_or(|s| d < s) {
                self.timers.push(Reverse((d, slot, conn.id.generation)));
                conn.scheduled = Some(d);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((t, slot, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(slot).filter(|c| c.id.generation == generation) else { continue };
            if conn.scheduled == Some(t) {
                conn.scheduled = None;
            }
            match conn.deadline {
                Some(d) if d <= now => {
                    let step = conn.on_deadline(&mut self.ctx, now);
                    self.settle(slot, step);
                }
                Some(d) if conn.scheduled.is_none() => {
                    self.timers.push(Reverse((d, slot, generation)));
                    conn.scheduled = Some(d);
                }
                _ => {}
            }
        }
    }

    fn handle_messages(&mut self, now: Instant) {
        for _ in 0..MESSAGES_PER_PASS {
            let Some(message) = self.inbox.next() else { return };
            match message {
                ToLoop::Accepted(stream, peer) => self.accept(stream, peer, false, now),
                ToLoop::AcceptedTls(stream, peer) => self.accept(stream, peer, true, now),
                ToLoop::Evict => self.evict(now),
                ToLoop::Drain => self.begin_drain(now),
                ToLoop::ArrivalsEnded => self.arrivals_open = false,
                ToLoop::Response { conn, response } => match self.conns.lookup(conn) {
                    Some(c) => {
                        let step = c.on_response(&mut self.ctx, response, now);
                        self.settle(conn.slot, step);
                    }
                    None => response.abandon(),
                },
                ToLoop::Chunk { conn, bytes } => {
                    if let Some(c) = self.conns.lookup(conn) {
                        let step = c.on_chunk(&mut self.ctx, bytes, now);
                        self.settle(conn.slot, step);
                    }
                }
                ToLoop::StreamEnd { conn, complete } => {
                    if let Some(c) = self.conns.lookup(conn) {
                        let step = c.on_stream_end(&mut self.ctx, complete, now);
                        self.settle(conn.slot, step);
                    }
                }
            }
        }
    }

    fn accept(&mut self, stream: Stream, peer: SocketAddr, tls: bool, now: Instant) {
        let local = stream.local_addr().unwrap_or(peer);
        let slot = self.conns.next_slot();
        let io = match Registered::new_level(Arc::clone(&self.poller), stream, Event::readable(slot)) {
            Ok(io) => io,
            Err(e) => {
                warn!(target: "maitred::io", "cannot watch connection from {peer}: {e}");
                self.ctx.shared.gauge.remove();
                return;
            }
        };
        let io = match (tls, &self.ctx.shared.tls) {
            (false, _) => Io::Plain(io),
            (true, Some(config)) => match crate::tls::stream::TlsStream::new(io, config.server_config()) {
                Ok(stream) => Io::Tls(Box::new(stream)),
                Err(e) => {
                    warn!(target: "maitred::io", "cannot start TLS with {peer}: {e}");
                    self.ctx.shared.gauge.remove();
                    return;
                }
            },
            (true, None) => {
                self.ctx.shared.gauge.remove();
                return;
            }
        };
        let id = ConnRef { slot, generation: self.next_generation };
        self.next_generation += 1;
        let mut conn = Connection::new(io, peer, local, id, now);
        if self.ctx.shared.config.proxy_protocol && self.ctx.shared.trusted.contains(peer.ip()) {
            conn.expect_proxy_header();
        }
        let inserted = self.conns.insert(conn);
        debug_assert_eq!(inserted, slot);
        self.ctx.open_connections = self.conns.len;
        self.ctx.shared.metrics.connections_accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.settle(slot, Step::Open);
    }

    /// The table is full and a client waits: closes the connection making the least progress
    /// ([`Connection::eviction_rank`]), if one may give way. A silent new connection is read
    /// before it is cut, so one whose request is already waiting is served instead.
    fn evict(&mut self, now: Instant) {
        let config = Arc::clone(&self.ctx.shared.config);
        loop {
            let victim = self
                .conns
                .entries
                .iter()
                .enumerate()
                .filter_map(|(slot, c)| Some((c.as_ref()?.eviction_rank(&config, now)?, slot)))
                .min();
            let Some(((cut, _), slot)) = victim else {
                self.ctx.warnings.table_full(&config, now);
                return;
            };
            if cut == Cut::Silent {
                let Some(conn) = self.conns.get_mut(slot) else { return };
                let step = conn.on_readable(&mut self.ctx, now);
                self.settle(slot, step);
                if self.conns.len < config.connection_limit {
                    return; // its client had gone: the place is free
                }
                let still_silent = self.conns.get_mut(slot).and_then(|c| c.eviction_rank(&config, now));
                if !matches!(still_silent, Some((Cut::Silent, _))) {
                    continue; // its request was waiting: it is served, look again
                }
            }
            debug!(target: "maitred::protect", "connection table full: closing a connection ({})", cut.name());
            self.ctx.shared.metrics.record_eviction(cut);
            self.ctx.warnings.evicted(&config, cut, now);
            self.close(slot);
            return;
        }
    }

    fn begin_drain(&mut self, now: Instant) {
        if self.drain_deadline.is_some() {
            return;
        }
        self.ctx.closing = true;
        self.drain_deadline = Some(now + self.ctx.shared.config.graceful_timeout);
        info!(target: "maitred::server", "draining {} connection(s)", self.conns.len);
        for slot in self.conns.slots() {
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            let step = conn.on_drain(&mut self.ctx, now);
            self.settle(slot, step);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.remove(slot) {
            conn.release_worker();
            drop(conn);
            self.ctx.shared.gauge.remove();
            self.ctx.open_connections = self.conns.len;
        }
    }
}
