//! The one place that needs `unsafe`: registering a socket with the poller.
//! Owns the `unsafe` poller registration. Never anything else.
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
