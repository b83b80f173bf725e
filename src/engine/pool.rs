//! The fixed pool of worker threads. Its size never changes, whatever the load.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

use log::error;

use crate::engine::handoff::JobReceiver;
use crate::engine::worker::WorkerShared;

/// Counts live workers so shutdown can wait for them with a deadline.
struct Alive {
    count: Mutex<usize>,
    changed: Condvar,
}

/// Decrements the live count when a worker thread ends, however it ends.
struct AliveGuard(Arc<Alive>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *count -= 1;
        self.0.changed.notify_all();
    }
}

/// The running workers.
pub(crate) struct Pool {
    alive: Arc<Alive>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` workers named `maitred-worker-N`, taking jobs from `jobs` until the
    /// loop has stopped.
    pub(crate) fn start(threads: usize, shared: Arc<WorkerShared>, jobs: JobReceiver) -> io::Result<Pool> {
        let alive = Arc::new(Alive { count: Mutex::new(threads), changed: Condvar::new() });
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads {
            let shared = Arc::clone(&shared);
            let mut jobs = jobs.clone();
            let guard = AliveGuard(Arc::clone(&alive));
            let spawned = thread::Builder::new().name(format!("maitred-worker-{index}")).spawn(move || {
                let _guard = guard;
                run(index, &shared, &mut jobs);
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // The guard went down with the closure; the count is already right.
                    return Err(e);
                }
            }
        }
        Ok(Pool { alive, handles })
    }

    /// Waits until every worker has ended or `deadline` passes; true if all ended.
    pub(crate) fn join_until(self, deadline: Instant) -> bool {
        let mut count = self.alive.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            count = self.alive.changed.wait_timeout(count, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(count);
        for handle in self.handles {
            let _ = handle.join();
        }
        true
    }
}

fn run(index: usize, shared: &WorkerShared, jobs: &mut JobReceiver) {
    if catch_unwind(AssertUnwindSafe(|| shared.handler.on_worker_start(index))).is_err() {
        error!(target: "maitred::worker", "on_worker_start panicked on worker {index}");
    }
    let mut scratch = crate::engine::worker::Scratch::new(index);
    while let Some(job) = jobs.recv() {
        shared.serve(job, &mut scratch);
    }
    if catch_unwind(AssertUnwindSafe(|| shared.handler.on_worker_stop(index))).is_err() {
        error!(target: "maitred::worker", "on_worker_stop panicked on worker {index}");
    }
}
