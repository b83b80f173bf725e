//! Worker processes: a supervisor (the arbiter) that binds the listeners once, runs `workers`
//! copies of the program and hands each connection it accepts to one of them, and the worker
//! side of their control channel.
//!
//! Owns the process model behind `--workers`: spawning (never forking), supervising,
//! recycling, reloading and scaling worker processes, the line protocol between them
//! ([`channel`]) and the handoff of accepted connections ([`handoff`]). Never serves a request
//! itself: each worker runs the ordinary engine ([`crate::engine`]) on the connections it is
//! handed.
//!
//! A process knows it is a worker from its environment ([`WORKER_ID_VAR`]); the same program
//! started without it is the supervisor (when `workers` is more than 1) or a server alone
//! (when it is 1).

pub(crate) mod arbiter;
pub(crate) mod channel;
pub(crate) mod handoff;
#[cfg(target_os = "linux")]
mod orphans;
mod status;
pub(crate) mod worker;

pub(crate) use arbiter::{supervise, Program};

/// The environment variable that makes a process a worker: its id, as the supervisor's log
/// lines name it (`worker 3`).
pub(crate) const WORKER_ID_VAR: &str = "MAITRED_WORKER_ID";

/// Whether this process was started by a supervisor as one of its workers.
pub(crate) fn is_worker() -> bool {
    std::env::var_os(WORKER_ID_VAR).is_some()
}
