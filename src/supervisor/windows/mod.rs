//! Worker processes on Windows: the supervisor accepts every connection and hands it to a
//! worker, because several processes accepting on one listening socket is unreliable there.
//!
//! Owns the handoff of one accepted connection between processes ([`handoff`]). Never binds a
//! listener, spawns a process or runs the engine (the supervisor and the engine do).

pub(crate) mod handoff;
