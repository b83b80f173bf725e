//! The supervisor's accept loop on Windows: it accepts every connection on the listeners and
//! hands each one to a worker process ([`super::handoff::share`] plus the control line
//! `socket <listener-index> <hex>` on the worker's standard input), then closes its own copy.
//!
//! Owns the listeners (while workers run), the choice of worker for each connection, and the
//! [`Roster`] of workers that may take one. Never reads from a connection and never decides a
//! worker's life (the arbiter does, and publishes what it decided to the roster).
//!
//! Choice: round-robin over the workers that are ready and not draining; workers draining are
//! used only when no other is left (during a stop, for `drain_delay`, while their health path
//! answers 503, as a worker's own acceptor keeps accepting on Unix). With no worker to take
//! them, connections wait in the listen backlog; once the supervisor stops and the last
//! worker's `drain_delay` has passed, the listeners close. A connection is never dropped
//! silently: if no worker takes it, it is closed with a warning.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use log::{debug, warn};
use polling::{Event, Events, Poller};

use super::handoff::{share, SocketLine};
use crate::engine::net::Listener;
use crate::engine::sys::Registered;

/// How long the accept loop sleeps at most without news (the roster wakes it on any change).
const IDLE_WAKE: Duration = Duration::from_millis(500);

/// How long handing one connection may wait for a worker whose control queue is full.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// What the arbiter knows of one worker, each time it publishes.
pub(crate) struct Seen<'a> {
    pub(crate) id: u64,
    pub(crate) pid: u32,
    /// Said `ready` (and is not told to drain).
    pub(crate) ready: bool,
    /// Told to drain.
    pub(crate) draining: bool,
    /// Its control queue while it has one.
    pub(crate) control: Option<&'a Sender<String>>,
    /// Connections open, from its last report.
    pub(crate) open: u64,
}

/// A worker that may be handed connections.
struct Entry {
    pid: u32,
    /// Holds the worker's standard input open while it may still be handed connections.
    control: Sender<String>,
    /// Once told to drain: when it stops being handed connections.
    until: Option<Instant>,
    /// Connections open, from its last report.
    open: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    stopping: bool,
}

/// The workers the accept loop may hand connections to, as the arbiter last published them.
pub(crate) struct Roster {
    state: Mutex<State>,
    poller: Arc<Poller>,
    /// A worker whose last report shows this many open connections is passed over while
    /// another has room (its own cap would refuse the connection).
    connection_limit: u64,
}

impl Roster {
    /// Brings the roster up to the arbiter's view: ready workers join, workers told to drain
    /// stay `drain_delay` more, workers gone leave. `stopping`: the supervisor is stopping;
    /// once no worker is left the accept loop closes the listeners and ends.
    pub(crate) fn publish<'a>(&self, seen: impl IntoIterator<Item = Seen<'a>>, stopping: bool, drain_delay: Duration) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut present = Vec::new();
        let mut changed = state.stopping != stopping;
        for w in seen {
            present.push(w.id);
            match (state.entries.get_mut(&w.id), w.control) {
                (Some(entry), _) => {
                    entry.open = w.open;
                    if w.draining && entry.until.is_none() {
                        entry.until = Some(now + drain_delay);
                        changed = true;
                    }
                }
                (None, Some(control)) if w.ready && !w.draining => {
                    let entry = Entry { pid: w.pid, control: control.clone(), until: None, open: w.open };
                    state.entries.insert(w.id, entry);
                    changed = true;
                }
                _ => {}
            }
        }
        let before = state.entries.len();
        state.entries.retain(|id, e| present.contains(id) && e.until.is_none_or(|t| t > now));
        changed |= state.entries.len() != before;
        state.stopping = stopping;
        drop(state);
        if changed {
            let _ = self.poller.notify();
        }
    }

    /// Candidates in order of preference: workers not draining with room, else those not
    /// draining, else those still within their `drain_delay`; sorted by worker id so the
    /// round-robin is stable.
    fn candidates(&self) -> Vec<(u64, u32, Sender<String>)> {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pick = |keep: &dyn Fn(&Entry) -> bool| {
            let mut v: Vec<_> =
                state.entries.iter().filter(|(_, e)| keep(e)).map(|(id, e)| (*id, e.pid, e.control.clone())).collect();
            v.sort_by_key(|(id, _, _)| *id);
            v
        };
        let tiers: [&dyn Fn(&Entry) -> bool; 3] =
            [&|e| e.until.is_none() && e.open < self.connection_limit, &|e| e.until.is_none(), &|e| {
                e.until.is_some_and(|t| t > now)
            }];
        tiers.iter().map(|keep| pick(*keep)).find(|v| !v.is_empty()).unwrap_or_default()
    }

    /// The supervisor is stopping and no worker may take a connection any more.
    fn finished(&self) -> bool {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.stopping && state.entries.values().all(|e| e.until.is_some_and(|t| t <= now))
    }

    /// When a draining worker's `drain_delay` ends next (the loop must look again then).
    fn next_expiry(&self) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.entries.values().filter_map(|e| e.until).min()
    }
}

/// The running accept loop.
pub(crate) struct Dispatcher {
    roster: Arc<Roster>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts accepting on copies of `listeners` (in the order of the `listen` setting) in a
    /// thread of its own; connections wait in the backlog until a worker is published as
    /// ready. The loop closes its copies when it ends; the caller closes the originals.
    /// `connection_limit`: each worker's cap (see [`Roster`]).
    pub(crate) fn start(listeners: &[Listener], connection_limit: usize) -> io::Result<Dispatcher> {
        let poller = Arc::new(Poller::new()?);
        let roster = Arc::new(Roster {
            state: Mutex::new(State::default()),
            poller: Arc::clone(&poller),
            connection_limit: connection_limit as u64,
        });
        let mut registered = Vec::with_capacity(listeners.len());
        for (key, Listener::Tcp(listener)) in listeners.iter().enumerate() {
            let copy = Listener::Tcp(listener.try_clone()?);
            registered.push(Registered::new(Arc::clone(&poller), copy, Event::readable(key))?);
        }
        let thread = {
            let roster = Arc::clone(&roster);
            std::thread::Builder::new()
                .name("maitred-dispatch".into())
                .spawn(move || AcceptLoop { registered, poller, roster, turn: 0 }.run())?
        };
        Ok(Dispatcher { roster, thread: Some(thread) })
    }

    /// The roster the arbiter publishes to.
    pub(crate) fn roster(&self) -> &Roster {
        &self.roster
    }
}

impl Drop for Dispatcher {
    /// Stops the loop (closing the listeners) and waits for it.
    fn drop(&mut self) {
        self.roster.publish([], true, Duration::ZERO);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct AcceptLoop {
    registered: Vec<Registered<Listener>>,
    poller: Arc<Poller>,
    roster: Arc<Roster>,
    /// Round-robin position.
    turn: usize,
}

impl AcceptLoop {
    fn run(mut self) {
        let mut events = Events::new();
        let mut armed = vec![true; self.registered.len()];
        let mut last_warning: Option<Instant> = None;
        while !self.roster.finished() {
            let ready = !self.roster.candidates().is_empty();
            if ready {
                for (key, listener) in self.registered.iter().enumerate() {
                    if !armed[key] {
                        armed[key] = listener.modify(Event::readable(key)).is_ok();
                    }
                }
            }
            let mut timeout = IDLE_WAKE;
            if let Some(at) = self.roster.next_expiry() {
                timeout = timeout.min(at.saturating_duration_since(Instant::now()));
            }
            events.clear();
            if let Err(e) = self.poller.wait(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!(target: "maitred::server", "dispatcher wait failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            for event in events.iter() {
                let Some(listener) = self.registered.get(event.key) else { continue };
                armed[event.key] = false;
                if !ready {
                    // Leave it in the backlog, unarmed, until a worker is ready.
                    continue;
                }
                let Listener::Tcp(tcp) = listener.get();
                loop {
                    match tcp.accept() {
                        Ok((stream, peer)) => {
                            let taken = Self::hand(&self.roster, &mut self.turn, event.key, &stream, peer);
                            if !taken && last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                                warn!(target: "maitred::server", "no worker could take the connection from {peer}; closed it");
                                last_warning = Some(Instant::now());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::ConnectionAborted
                                    | io::ErrorKind::ConnectionReset
                                    | io::ErrorKind::Interrupted
                            ) =>
                        {
                            continue
                        }
                        Err(e) => {
                            warn!(target: "maitred::server", "accept failed: {e}");
                            std::thread::sleep(Duration::from_millis(50));
                            break;
                        }
                    }
                }
                armed[event.key] = listener.modify(Event::readable(event.key)).is_ok();
            }
        }
        debug!(target: "maitred::server", "dispatcher stopped; closing the listeners");
    }

    /// Hands `stream` to one worker: true once a worker's control queue has its line.
    fn hand(roster: &Roster, turn: &mut usize, listener: usize, stream: &TcpStream, peer: SocketAddr) -> bool {
        let candidates = roster.candidates();
        let start = *turn;
        *turn = turn.wrapping_add(1);
        for k in 0..candidates.len() {
            let (id, pid, control) = &candidates[(start + k) % candidates.len()];
            if control.is_full() {
                continue;
            }
            let payload = match share(stream, *pid) {
                Ok(p) => p,
                Err(e) => {
                    debug!(target: "maitred::server", "cannot hand {peer} to worker {id} (pid {pid}): {e}");
                    continue;
                }
            };
            let line = SocketLine { listener, payload }.encode();
            // The worker now holds a duplicate of the socket: the line must reach it, or the
            // connection stays open in that worker until it exits.
            let sent = match control.try_send(line) {
                Ok(()) => true,
                Err(TrySendError::Full(line)) => match control.send_timeout(line, QUEUE_WAIT) {
                    Ok(()) => true,
                    Err(SendTimeoutError::Timeout(_) | SendTimeoutError::Disconnected(_)) => false,
                },
                Err(TrySendError::Disconnected(_)) => false,
            };
            if sent {
                return true;
            }
            debug!(target: "maitred::server", "worker {id} (pid {pid}) no longer reads its control channel");
        }
        false
    }
}
