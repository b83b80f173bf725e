//! The acceptor: one thread that owns the listening sockets, accepts, applies the connection
//! cap, and hands each new socket to the I/O loop.
//!
//! It never reads a request and never exits on a transient error: aborted handshakes are
//! skipped, and resource errors (out of file descriptors, out of memory) are logged, answered
//! by asking the loop to free a place, and retried after a growing pause.

use std::io;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use log::{debug, warn};
use polling::{Event, Events, Poller};

use crate::engine::handoff::ToLoop;
use crate::engine::net::{ListenAddr, Listener};
use crate::engine::sys::Registered;
use crate::engine::Shared;

/// Counts open connections, shared by the acceptor (who adds) and the loop (who removes).
#[derive(Default)]
pub(crate) struct Gauge {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Gauge {
    pub(crate) fn add(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    pub(crate) fn remove(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *count = count.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Open connections now.
    pub(crate) fn current(&self) -> usize {
        *self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until fewer than `limit` are open, at most `timeout`.
    fn wait_below(&self, limit: usize, timeout: Duration) {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.changed.wait_timeout_while(count, timeout, |c| *c >= limit);
    }
}

/// What the acceptor thread needs.
pub(crate) struct Acceptor {
    pub(crate) listeners: Vec<Listener>,
    /// Which of `listeners` speak TLS (`https://` in `listen`), by index.
    pub(crate) tls: Vec<bool>,
    pub(crate) poller: Arc<Poller>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: Arc<AtomicBool>,
}

/// Errors after which accepting again at once is right: the failure was the client's.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
    )
}

impl Acceptor {
    /// Accepts until told to stop; then closes the listeners and tells the loop to drain.
    pub(crate) fn run(self) {
        let Acceptor { listeners, tls, poller, shared, stop } = self;
        let arrived = |key: usize, stream, peer| match tls.get(key) {
            Some(true) => ToLoop::AcceptedTls(stream, peer),
            _ => ToLoop::Accepted(stream, peer),
        };
        let (waker, gauge, metrics) = (&shared.waker, &shared.gauge, &shared.metrics);
        let (limit, drain_delay) = (shared.config.connection_limit, shared.config.drain_delay);
        let mut registered = Vec::with_capacity(listeners.len());
        for (key, listener) in listeners.into_iter().enumerate() {
            let addr = listener.local_addr().ok();
            match Registered::new(Arc::clone(&poller), listener, Event::readable(key)) {
                Ok(r) => registered.push(r),
                Err(e) => warn!(target: "maitred::server", "cannot watch listener {addr:?}: {e}"),
            }
        }
        let mut events = Events::new();
        let mut backoff = Duration::from_millis(10);
        let mut last_warning: Option<Instant> = None;
        // Once stop is asked, keep serving for `drain_delay` (the health path already says 503)
        // so a load balancer stops routing here before the listeners close.
        let mut close_at: Option<Instant> = None;
        loop {
            if stop.load(Ordering::SeqCst) {
                let at = *close_at.get_or_insert_with(|| Instant::now() + drain_delay);
                if Instant::now() >= at {
                    break;
                }
            }
            events.clear();
            let timeout = close_at.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = poller.wait(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!(target: "maitred::server", "acceptor wait failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            for event in events.iter() {
                let Some(listener) = registered.get(event.key) else { continue };
                let mut accepted = 0usize;
                loop {
                    if close_at.is_some_and(|at| Instant::now() >= at) {
                        break;
                    }
                    if gauge.current() >= limit {
                        if accepted > 0 {
                            // Full now; the re-armed listener says whether anyone else waits.
                            break;
                        }
                        // Readiness while full: a client is waiting. Ask the loop to close the
                        // connection making the least progress (if one may give way), and pause
                        // accepting until it has.
                        waker.send(ToLoop::Evict);
                        gauge.wait_below(limit, Duration::from_millis(100));
                        if gauge.current() >= limit {
                            break;
                        }
                    }
                    match listener.get().accept(shared.config.send_buffer_size) {
                        Ok((stream, peer)) => {
                            accepted += 1;
                            gauge.add();
                            waker.send(arrived(event.key, stream, peer));
                            backoff = Duration::from_millis(10);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if is_transient(&e) => continue,
                        Err(e) => {
                            // Out of descriptors or memory: free what we can and slow down.
                            if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                                warn!(target: "maitred::server", "accept failed: {e}; retrying in {backoff:?}");
                                last_warning = Some(Instant::now());
                            }
                            metrics.connections_rejected.fetch_add(1, Ordering::Relaxed);
                            waker.send(ToLoop::Evict);
                            std::thread::sleep(backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                            break;
                        }
                    }
                }
                if let Err(e) = listener.modify(Event::readable(event.key)) {
                    warn!(target: "maitred::server", "cannot re-arm listener: {e}");
                }
            }
        }
        // Connections that completed their handshake before the listeners close are taken, not
        // reset: the drain serves those whose request has arrived and closes the silent ones.
        for (key, listener) in registered.iter().enumerate() {
            while gauge.current() < limit {
                match listener.get().accept(shared.config.send_buffer_size) {
                    Ok((stream, peer)) => {
                        gauge.add();
                        waker.send(arrived(key, stream, peer));
                    }
                    Err(e) if is_transient(&e) => continue,
                    Err(_) => break,
                }
            }
        }
        let addrs: Vec<ListenAddr> = registered.iter().filter_map(|l| l.get().local_addr().ok()).collect();
        drop(registered);
        debug!(target: "maitred::server", "stopped accepting on {addrs:?}");
        waker.send(ToLoop::Drain);
    }
}
