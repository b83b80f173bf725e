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
use crate::engine::net::{ListenAddr, Listener, Stream};
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
    /// Told once the listeners are registered with the poller: from then on a connection is
    /// noticed (what "started" and a worker process's `ready` promise).
    pub(crate) registered: crossbeam_channel::Sender<()>,
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

/// At the connection cap, asks the loop to close the connection making the least progress (if
/// one may give way) and waits up to 100 ms for it. True when there is room for one more.
fn make_room(shared: &Shared) -> bool {
    let limit = shared.config.connection_limit;
    if shared.gauge.current() < limit {
        return true;
    }
    shared.waker.send(ToLoop::Evict);
    shared.gauge.wait_below(limit, Duration::from_millis(100));
    shared.gauge.current() < limit
}

/// Admits a connection accepted by another process (with worker processes the supervisor
/// accepts and hands each connection to a worker) exactly as the acceptor admits one of its
/// own: the socket options of [`Listener::accept`], the connection cap (with the same eviction
/// and pause), the gauge, then the I/O loop.
///
/// `listener` is the index in `listen` of the listener it arrived on: an `https://` one makes it
/// a TLS connection, as for the acceptor's own.
///
/// Errors, after which the caller drops (closes) the connection: the client is already gone,
/// the table stays full (counted in `connections_rejected`), or the loop has stopped.
pub(crate) fn admit(shared: &Shared, stream: Stream, listener: usize) -> io::Result<()> {
    let peer = match &stream {
        Stream::Tcp(tcp) => tcp.peer_addr()?,
        #[cfg(unix)]
        Stream::Unix(_) => crate::engine::net::UNIX_PEER,
    };
    let stream = stream.ready(shared.config.send_buffer_size)?;
    if !make_room(shared) {
        shared.metrics.connections_rejected.fetch_add(1, Ordering::Relaxed);
        return Err(io::Error::other("the connection table is full"));
    }
    shared.gauge.add();
    let tls = shared.config.listen.get(listener).is_some_and(ListenAddr::is_tls);
    let arrived = if tls { ToLoop::AcceptedTls(stream, peer) } else { ToLoop::Accepted(stream, peer) };
    if !shared.waker.send(arrived) {
        shared.gauge.remove();
        return Err(io::Error::other("the server has stopped"));
    }
    Ok(())
}

impl Acceptor {
    /// Accepts until told to stop; then closes the listeners and tells the loop to drain.
    pub(crate) fn run(self) {
        let Acceptor { listeners, tls, poller, shared, stop, registered: announce } = self;
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
        let _ = announce.send(());
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
                        // Readiness while full: a client is waiting.
                        if !make_room(&shared) {
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::Ordering;
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::admit;
    use crate::{Config, Request, Response, Server, ServerHandle};

    /// A connected loopback pair: (the server's end, the client's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        (listener.accept().unwrap().0, client)
    }

    fn start(connection_limit: usize, handler: impl crate::Handler) -> ServerHandle {
        let config = Config { listen: vec!["127.0.0.1:0".parse().unwrap()], connection_limit, ..Config::default() };
        Server::bind(config, handler).unwrap().start().unwrap()
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn admitted_connection_is_served_and_counted_like_an_accepted_one() {
        let handle = start(10, |req: Request| Response::text(200, format!("got {}", req.path())));
        let (server_end, mut client) = pair();
        admit(handle.shared(), crate::engine::net::Stream::Tcp(server_end), 0).unwrap();
        assert_eq!(handle.shared().gauge.current(), 1);
        client.write_all(b"GET /handed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\ngot /handed"), "{response}");
        wait_until("the gauge is back to 0", || handle.shared().gauge.current() == 0);
        assert_eq!(handle.shared().metrics.connections_accepted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn admit_refuses_when_the_table_stays_full_and_counts_it() {
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let (entered_tx, released) = (Mutex::new(entered_tx), Arc::new(Mutex::new(released)));
        let handle = start(1, move |_req: Request| {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = released.lock().unwrap().recv_timeout(Duration::from_secs(20));
            Response::text(200, "done")
        });
        // The only place holds a request in hand, which eviction never cuts.
        let (first, mut first_client) = pair();
        admit(handle.shared(), crate::engine::net::Stream::Tcp(first), 0).unwrap();
        first_client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        entered.recv_timeout(Duration::from_secs(20)).unwrap();

        let (second, mut second_client) = pair();
        let refused = admit(handle.shared(), crate::engine::net::Stream::Tcp(second), 0).unwrap_err();
        assert!(refused.to_string().contains("full"), "{refused}");
        assert_eq!(handle.shared().metrics.connections_rejected.load(Ordering::Relaxed), 1);
        // The refused connection is closed, not left hanging.
        let mut buf = [0u8; 16];
        assert!(matches!(second_client.read(&mut buf), Ok(0) | Err(_)));

        release.send(()).unwrap();
        let mut head = [0u8; 15];
        first_client.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200 OK");
    }
}
