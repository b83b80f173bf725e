//! The supervisor's accept loop: it accepts every connection on the listeners and hands each
//! one to a worker process (a `socket` message on the worker's standard input, carrying the
//! connection: [`super::Parcel`]), then closes its own copy.
//!
//! Owns the listeners' accepting copies (while workers run) and handing each connection over.
//! Never reads from a connection, never decides which workers may take one (the [`Roster`]
//! does, from what the arbiter publishes) and never decides a worker's life (the arbiter does).
//!
//! With no worker to take them, connections wait in the listen backlog; once the supervisor
//! stops and the last worker's `drain_delay` has passed, the listeners close. A connection is
//! never dropped silently: if no worker takes it, it is closed with a warning.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, TrySendError};
use log::{debug, warn};
use polling::{Event, Events, Poller};

use super::roster::Roster;
use super::Parcel;
use crate::engine::net::{Listener, Stream};
use crate::engine::sys::Registered;

/// How long the accept loop sleeps at most without news (the roster wakes it on any change).
const IDLE_WAKE: Duration = Duration::from_millis(500);

/// How long handing one connection may wait for a worker whose control queue is full.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

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
        let roster = Arc::new(Roster::new(Arc::clone(&poller), connection_limit));
        let mut registered = Vec::with_capacity(listeners.len());
        for (key, listener) in listeners.iter().enumerate() {
            registered.push(Registered::new(Arc::clone(&poller), listener.try_clone()?, Event::readable(key))?);
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
        let mut last_accept_warning: Option<Instant> = None;
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
                loop {
                    match listener.get().accept_unready() {
                        Ok((stream, peer)) => {
                            let taken = Self::hand(&self.roster, &mut self.turn, event.key, stream, peer);
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
                            // Out of sockets or memory: slow down (the connection waits in the
                            // backlog).
                            if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                                warn!(target: "maitred::server", "accept failed: {e}; retrying");
                                last_accept_warning = Some(Instant::now());
                            }
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

    /// Hands `stream` to one worker: true once a worker's control queue has it.
    fn hand(roster: &Roster, turn: &mut usize, listener: usize, stream: Stream, peer: SocketAddr) -> bool {
        let candidates = roster.candidates();
        let start = *turn;
        *turn = turn.wrapping_add(1);
        let mut parcel = Parcel::new(stream);
        // First a worker whose control queue has room; if every queue is full, wait on one.
        let order = (0..candidates.len()).map(|k| (true, k)).chain((0..candidates.len()).map(|k| (false, k)));
        for (skip_full, k) in order {
            let (id, pid, control) = &candidates[(start + k) % candidates.len()];
            if skip_full && control.is_full() {
                continue;
            }
            let letter = match parcel.letter(listener, *pid) {
                Ok(letter) => letter,
                Err(e) => {
                    debug!(target: "maitred::server", "cannot hand {peer} to worker {id} (pid {pid}): {e}");
                    continue;
                }
            };
            // On Windows the worker now holds a duplicate of the socket: the line must reach
            // it, or the connection stays open in that worker until it exits.
            let undelivered = match control.try_send(letter) {
                Ok(()) => return true,
                Err(TrySendError::Full(letter)) => match control.send_timeout(letter, QUEUE_WAIT) {
                    Ok(()) => return true,
                    Err(SendTimeoutError::Timeout(letter) | SendTimeoutError::Disconnected(letter)) => letter,
                },
                Err(TrySendError::Disconnected(letter)) => letter,
            };
            parcel.returned(undelivered);
            debug!(target: "maitred::server", "worker {id} (pid {pid}) no longer reads its control channel");
        }
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    use crossbeam_channel::{bounded, Receiver, Sender};

    use super::*;
    use crate::supervisor::channel::Down;
    use crate::supervisor::handoff::roster::Seen;

    /// A roster with one ready worker per queue, ids 1, 2, … in the order given.
    fn roster_of(queues: &[&Sender<Down>]) -> Roster {
        let roster = Roster::new(Arc::new(Poller::new().unwrap()), 100);
        let seen = queues.iter().enumerate().map(|(k, control)| Seen {
            id: k as u64 + 1,
            pid: 1000 + k as u32,
            ready: true,
            draining: false,
            control: Some(*control),
            open: 0,
        });
        roster.publish(seen, false, Duration::from_secs(3600));
        roster
    }

    /// A worker's control queue with room for one message, which a filler already takes.
    fn full_queue() -> (Sender<Down>, Receiver<Down>) {
        let (sender, receiver) = bounded(1);
        sender.send(Down::from("filler".to_string())).unwrap();
        (sender, receiver)
    }

    /// An accepted connection as the accept loop sees it, and its client's end.
    fn connection() -> (Stream, SocketAddr, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        (Stream::Tcp(accepted), peer, client)
    }

    /// Hands one connection to the roster's workers, starting with the first; whether a worker's
    /// queue took it, and how long handing it took.
    fn hand_one(roster: &Roster, stream: Stream, peer: SocketAddr) -> (bool, Duration) {
        let started = Instant::now();
        let taken = AcceptLoop::hand(roster, &mut 0, 0, stream, peer);
        (taken, started.elapsed())
    }

    #[test]
    fn a_connection_goes_to_the_next_worker_with_room_without_waiting_for_a_full_queue() {
        let (full, full_rx) = full_queue();
        let (open, open_rx) = bounded(1);
        let roster = roster_of(&[&full, &open]);
        let (stream, peer, _client) = connection();
        let (taken, took) = hand_one(&roster, stream, peer);
        assert!(taken);
        assert!(took < QUEUE_WAIT, "waited {took:?} on the full queue");
        let letter = open_rx.try_recv().expect("the worker with room got the connection");
        assert_eq!(letter.line, "socket 0");
        assert!(letter.connection.is_some());
        assert_eq!(full_rx.len(), 1, "the full queue holds only its filler");
    }

    #[test]
    fn a_connection_waits_for_room_when_every_queue_is_full() {
        let (full, full_rx) = full_queue();
        let roster = roster_of(&[&full]);
        let (stream, peer, _client) = connection();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(full_rx.recv().unwrap().line, "filler");
            full_rx.recv_timeout(Duration::from_secs(10)).expect("the connection, once there was room")
        });
        let (taken, took) = hand_one(&roster, stream, peer);
        assert!(taken);
        assert!(took >= Duration::from_millis(200), "it was queued before there was room ({took:?})");
        let letter = reader.join().unwrap();
        assert_eq!(letter.line, "socket 0");
        assert!(letter.connection.is_some());
    }

    #[test]
    fn a_connection_no_worker_takes_within_queue_wait_is_closed_not_kept() {
        let (first, first_rx) = full_queue();
        let (second, second_rx) = full_queue();
        let roster = roster_of(&[&first, &second]);
        let (stream, peer, mut client) = connection();
        let (taken, took) = hand_one(&roster, stream, peer);
        assert!(!taken);
        // Each full queue was waited on for QUEUE_WAIT before the connection was given up.
        assert!(took >= 2 * QUEUE_WAIT, "gave up after {took:?}");
        assert_eq!((first_rx.len(), second_rx.len()), (1, 1), "no queue took it");
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(client.read(&mut byte).unwrap(), 0, "the client sees the connection closed");
    }
}
