//! Linux: a supervisor running as PID 1 (a container's first process) inherits every process
//! orphaned below it, such as a daemon an application started and left; it must reap them or
//! they stay zombies. Owns that reaping. Never takes a worker's exit status (the arbiter's
//! `Child::try_wait` does), so a worker's exit is never lost.

use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};

/// Reaps every exited child that is not one of `workers` (pids), when this process is PID 1.
/// Returns how many it reaped.
pub(crate) fn reap(workers: &[u32]) -> usize {
    if std::process::id() != 1 {
        return 0;
    }
    let mut reaped = 0;
    loop {
        // Look without taking: the exited child may be a worker, whose status is the arbiter's.
        let peek = waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT);
        let Some(pid) = peek.ok().and_then(|status| match status {
            WaitStatus::StillAlive => None,
            status => status.pid(),
        }) else {
            return reaped;
        };
        if u32::try_from(pid.as_raw()).is_ok_and(|p| workers.contains(&p)) {
            return reaped; // a worker's exit first: the next round takes it, then the rest
        }
        if waitpid(pid, Some(WaitPidFlag::WNOHANG)).is_err() {
            return reaped;
        }
        log::debug!(target: "maitred::server", "reaped orphaned process {pid}");
        reaped += 1;
    }
}
