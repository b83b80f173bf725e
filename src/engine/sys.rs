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

use polling::{AsRawSource, AsSource, Event, Poller};

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
