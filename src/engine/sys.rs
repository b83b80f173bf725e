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
