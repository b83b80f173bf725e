//! Worker processes on Windows: the supervisor accepts every connection and hands it to a
//! worker, because several processes accepting on one listening socket is unreliable there
//! (Granian forces a single worker on Windows; `socket.share` of a listener has a trail of bugs).
//!
//! Owns the handoff of accepted connections between processes: the Winsock primitive and its
//! control line ([`handoff`]), the supervisor's accept loop ([`dispatch`]) and its choice of
//! worker ([`roster`]), and the worker's taking of a handed connection ([`receive`]). Never
//! spawns a process or decides a worker's life (the arbiter does) and never runs the engine.

#[cfg(windows)]
pub(crate) mod dispatch;
pub(crate) mod handoff;
#[cfg(windows)]
pub(crate) mod receive;
pub(crate) mod roster;
