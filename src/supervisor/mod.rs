//! Worker processes: a supervisor (the arbiter) that binds the listeners once and runs
//! `workers` copies of the program, and the worker side of their control channel.
//!
//! Owns the process model behind `--workers`: spawning (never forking), supervising,
//! recycling, reloading and scaling worker processes, and the line protocol between them
//! ([`channel`]). Never serves a request itself: each worker runs the ordinary engine
//! ([`crate::engine`]) on the listeners it was given.
//!
//! On Windows the supervisor accepts and hands each connection to a worker ([`windows`]).
//!
//! A process knows it is a worker from its environment ([`WORKER_ID_VAR`], and on Unix
//! [`LISTEN_FDS_VAR`]); the same program started without them is the supervisor (when
//! `workers` is more than 1) or a server alone (when it is 1).

pub(crate) mod arbiter;
pub(crate) mod channel;
#[cfg(unix)]
mod inherit;
#[cfg(target_os = "linux")]
mod orphans;
mod status;
pub(crate) mod windows;
pub(crate) mod worker;

pub(crate) use arbiter::{supervise, Program};

/// The environment variable that makes a process a worker: its id, as the supervisor's log
/// lines name it (`worker 3`).
pub(crate) const WORKER_ID_VAR: &str = "MAITRED_WORKER_ID";

/// Unix: the listening descriptors a worker inherits, comma-separated, in the order of the
/// `listen` setting.
#[cfg(unix)]
pub(crate) const LISTEN_FDS_VAR: &str = "MAITRED_WORKER_FDS";

/// Whether this process was started by a supervisor as one of its workers.
pub(crate) fn is_worker() -> bool {
    std::env::var_os(WORKER_ID_VAR).is_some()
}
