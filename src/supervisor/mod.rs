//! Worker processes: the supervisor that starts and watches them, and a worker's side of the
//! control channel.
//! Owns the platform parts of running several worker processes. Never serves a request itself.

pub(crate) mod windows;
