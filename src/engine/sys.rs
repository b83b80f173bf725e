//! The platform calls: registering a socket with the poller (the one place that needs
//! `unsafe`), and raising the descriptor limit at start.
//! Owns the `unsafe` poller registration and the process's descriptor limit. Never anything else.
//!
//! `polling::Poller::add` is unsafe because the poller must forget a source before the
//! source is closed. [`Registered`] owns both the source and a handle to the poller and
//! deletes the source in `Drop`, before the socket itself is dropped, so the rule holds for
//! every path that closes a socket.
#![allow(unsafe_code)]

use std::io;
use std::sync::Arc;

use polling::{AsRawSource, AsSource, Event, PollMode, Poller};

/// A socket registered with a poller for as long as this value lives.
pub(crate) struct Registered<S: AsSource> {
    poller: Arc<Poller>,
    source: S,
}

impl<S: AsSource> Registered<S>
where
    for<'a> &'a S: AsRawSource,
{
    /// Registers `source` with `poller` in oneshot mode with `interest`.
    pub(crate) fn new(poller: Arc<Poller>, source: S, interest: Event) -> io::Result<Self> {
        // SAFETY: `source` moves into the returned value, whose `Drop` deletes it from the
        // poller before `source` itself is dropped; it is never closed while registered.
        unsafe { poller.add(&source, interest)? };
        Ok(Registered { poller, source })
    }

    /// Registers `source` with `poller` with `interest`, level-triggered (see
    /// [`Registered::rearm`]) where the poller supports it, oneshot otherwise.
    pub(crate) fn new_level(poller: Arc<Poller>, source: S, interest: Event) -> io::Result<Self> {
        let mode = level_mode(&poller, interest);
        // SAFETY: as in `new`: `source` moves into the returned value, whose `Drop` deletes it
        // from the poller before `source` itself is dropped.
        unsafe { poller.add_with_mode(&source, interest, mode)? };
        Ok(Registered { poller, source })
    }
}

/// The mode a connection is registered in for `interest`: level-triggered, so a socket that
/// stays ready keeps being reported and a wait needs no re-arming (`epoll_ctl`) after an event;
/// oneshot for no interest (a hang-up is reported even then, and must not be reported again
/// and again while nobody acts on it) and where the poller has no level mode.
fn level_mode(poller: &Poller, interest: Event) -> PollMode {
    if poller.supports_level() && (interest.readable || interest.writable) {
        PollMode::Level
    } else {
        PollMode::Oneshot
    }
}

/// Whether a registration for `interest` (see [`Registered::new_level`]) stays armed after it
/// reports an event: false when it was oneshot.
pub(crate) fn stays_armed(poller: &Poller, interest: Event) -> bool {
    level_mode(poller, interest) == PollMode::Level
}

impl<S: AsSource> Registered<S> {
    /// The socket.
    pub(crate) fn get(&self) -> &S {
        &self.source
    }

    /// Re-arms the oneshot registration with a new interest.
    pub(crate) fn modify(&self, interest: Event) -> io::Result<()> {
        self.poller.modify(&self.source, interest)
    }

    /// Changes the interest of a registration made by [`Registered::new_level`], in the mode
    /// it picks for `interest`.
    pub(crate) fn rearm(&self, interest: Event) -> io::Result<()> {
        self.poller.modify_with_mode(&self.source, interest, level_mode(&self.poller, interest))
    }
}

impl<S: AsSource> Drop for Registered<S> {
    fn drop(&mut self) {
        let _ = self.poller.delete(&self.source);
    }
}

/// Descriptors kept for the process itself (listeners, poller, logs, temp files, Python).
#[cfg(unix)]
const FD_RESERVE: u64 = 64;

/// Connections the descriptor limit never lowers the cap below: with fewer descriptors than
/// that the process is misconfigured, and the acceptor's back-off on `EMFILE` is what protects it.
#[cfg(unix)]
const FIT_FLOOR: usize = 64;

/// Raises the soft limit on open descriptors to the hard limit, as Go and nginx do, and
/// returns how many connections fit in it (two descriptors each: the socket, and a file being
/// sent; never fewer than `FIT_FLOOR`). `None` where there is no such limit (Windows). Uses the `rlimit` crate, whose
/// `increase_nofile_limit` also handles macOS's `OPEN_MAX` cap, so no `unsafe` is needed here.
pub(crate) fn raise_fd_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        let soft = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => n,
            Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?.0,
        };
        Some(usize::try_from(soft.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX).max(FIT_FLOOR))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The poller key of the loop's bell ([`LoopBell`]); connection slots never reach it, and
/// `polling` keeps `usize::MAX` for its own notifier.
#[cfg(target_os = "linux")]
const BELL_KEY: usize = usize::MAX - 1;

/// Events taken from the poller per wait at most (the rest are reported by the next wait).
const EVENTS_PER_WAIT: usize = 1024;

/// What ends the I/O loop's wait early: rung by the acceptor and the workers when they hand
/// the loop something while it sleeps (see `handoff::LoopWaker`).
///
/// On Linux an eventfd of the loop's own, registered (level-triggered) in the poller's epoll
/// set and read only when it has rung. `polling::Poller::notify` would do, but its `wait`
/// then pays for it on every wait: it reads its eventfd and re-registers it, and arms a
/// timerfd for the timeout (four system calls besides `epoll_wait`). Elsewhere,
/// `Poller::notify`.
pub(crate) struct LoopBell {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    #[cfg(not(target_os = "linux"))]
    poller: Arc<Poller>,
}

impl LoopBell {
    /// A bell that ends the waits of [`LoopWait`] on `poller`.
    pub(crate) fn new(poller: &Arc<Poller>) -> io::Result<LoopBell> {
        #[cfg(target_os = "linux")]
        {
            use rustix::event::{epoll, eventfd, EventfdFlags};
            let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // Closing the eventfd (when the bell drops) takes it out of the epoll set.
            epoll::add(&**poller, &fd, epoll::EventData::new_u64(BELL_KEY as u64), epoll::EventFlags::IN)?;
            Ok(LoopBell { fd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(LoopBell { poller: Arc::clone(poller) })
        }
    }

    /// Ends the loop's current wait, or its next one if it is not waiting.
    pub(crate) fn ring(&self) {
        #[cfg(target_os = "linux")]
        {
            // Can only fail with the counter at its maximum: the loop is woken then anyway.
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = self.poller.notify();
        }
    }

    /// Silences the bell once its ring has woken the loop (Linux: the eventfd is
    /// level-triggered, so it would be reported again until read).
    #[cfg(target_os = "linux")]
    fn silence(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut count);
    }
}

/// The I/O loop's wait in its poller: the readiness of the connections registered there
/// (with [`Registered`]), until a deadline or the [`LoopBell`] rings.
pub(crate) struct LoopWait {
    poller: Arc<Poller>,
    #[cfg(target_os = "linux")]
    raw: Vec<rustix::event::epoll::Event>,
    #[cfg(not(target_os = "linux"))]
    raw: polling::Events,
    ready: Vec<Event>,
}

impl LoopWait {
    pub(crate) fn new(poller: Arc<Poller>) -> LoopWait {
        LoopWait {
            poller,
            #[cfg(target_os = "linux")]
            raw: Vec::with_capacity(EVENTS_PER_WAIT),
            #[cfg(not(target_os = "linux"))]
            raw: polling::Events::with_capacity(std::num::NonZeroUsize::new(EVENTS_PER_WAIT).expect("not zero")),
            ready: Vec::with_capacity(EVENTS_PER_WAIT),
        }
    }

    /// Waits until a registered socket is ready, `timeout` passes (`None`: no limit) or `bell`
    /// rings; returns the sockets' events (none for a timeout or the bell). Linux: one
    /// `epoll_wait` on the poller's epoll set, its timeout rounded up to a millisecond.
    pub(crate) fn wait(&mut self, bell: &LoopBell, timeout: Option<std::time::Duration>) -> io::Result<&[Event]> {
        self.ready.clear();
        #[cfg(target_os = "linux")]
        {
            use rustix::event::{epoll, Timespec};
            // A timeout past what a timespec holds is no timeout.
            let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
            self.raw.clear();
            epoll::wait(&*self.poller, rustix::buffer::spare_capacity(&mut self.raw), timeout.as_ref())?;
            // As `polling` reports them: a hang-up or an error is both readable and writable.
            let read = epoll::EventFlags::IN | epoll::EventFlags::HUP | epoll::EventFlags::ERR | epoll::EventFlags::PRI;
            let write = epoll::EventFlags::OUT | epoll::EventFlags::HUP | epoll::EventFlags::ERR;
            for raw in &self.raw {
                let (flags, key) = (raw.flags, raw.data.u64() as usize);
                if key == BELL_KEY {
                    bell.silence();
                    continue;
                }
                self.ready.push(Event::new(key, flags.intersects(read), flags.intersects(write)));
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = bell;
            self.raw.clear();
            self.poller.wait(&mut self.raw, timeout)?;
            self.ready.extend(self.raw.iter());
        }
        Ok(&self.ready)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use super::*;

    /// A connected pair on 127.0.0.1: (the client, the server's end registered level-triggered
    /// for reading under `key`).
    fn registered_pair(poller: &Arc<Poller>, key: usize) -> (TcpStream, Registered<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, Registered::new_level(Arc::clone(poller), server, Event::readable(key)).unwrap())
    }

    #[test]
    fn a_wait_ends_at_its_timeout_with_no_events() {
        let poller = Arc::new(Poller::new().unwrap());
        let bell = LoopBell::new(&poller).unwrap();
        let mut wait = LoopWait::new(Arc::clone(&poller));
        let started = Instant::now();
        let events = wait.wait(&bell, Some(Duration::from_millis(30))).unwrap();
        assert!(events.is_empty());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "returned after {waited:?}");
        assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    }

    #[test]
    fn the_bell_ends_a_wait_and_is_silenced_by_it() {
        let poller = Arc::new(Poller::new().unwrap());
        let bell = Arc::new(LoopBell::new(&poller).unwrap());
        let mut wait = LoopWait::new(Arc::clone(&poller));
        let ringer = {
            let bell = Arc::clone(&bell);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                bell.ring();
            })
        };
        let started = Instant::now();
        let events = wait.wait(&bell, Some(Duration::from_secs(10))).unwrap();
        assert!(events.is_empty(), "the bell is not a socket event");
        assert!(started.elapsed() < Duration::from_secs(5), "the bell did not end the wait");
        ringer.join().unwrap();
        // Rung once, heard once: the next wait is not ended by the same ring.
        let started = Instant::now();
        assert!(wait.wait(&bell, Some(Duration::from_millis(30))).unwrap().is_empty());
        assert!(started.elapsed() >= Duration::from_millis(30), "the old ring ended the next wait");
        // Rung before the wait: the wait ends at once.
        bell.ring();
        let started = Instant::now();
        assert!(wait.wait(&bell, Some(Duration::from_secs(5))).unwrap().is_empty());
        assert!(started.elapsed() < Duration::from_secs(4), "a ring before the wait was lost");
    }

    #[test]
    fn a_readable_socket_is_reported_under_its_key_until_read() {
        let poller = Arc::new(Poller::new().unwrap());
        let bell = LoopBell::new(&poller).unwrap();
        let mut wait = LoopWait::new(Arc::clone(&poller));
        let (mut client, server) = registered_pair(&poller, 7);
        assert!(wait.wait(&bell, Some(Duration::ZERO)).unwrap().is_empty(), "nothing sent yet");
        client.write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let events = loop {
            let events = wait.wait(&bell, Some(Duration::from_millis(100))).unwrap().to_vec();
            if !events.is_empty() || Instant::now() > deadline {
                break events;
            }
        };
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].key, 7);
        assert!(events[0].readable && !events[0].writable, "{:?}", events[0]);
        // Level-triggered: reported again while unread, not after.
        assert_eq!(wait.wait(&bell, Some(Duration::ZERO)).unwrap().len(), 1);
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut server.get(), &mut byte).unwrap(), 1);
        assert!(wait.wait(&bell, Some(Duration::ZERO)).unwrap().is_empty());
    }
}
