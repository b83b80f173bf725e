//! The watchdog: notices handler calls that run too long and a process whose worker threads
//! are all stuck.
//!
//! Owns each worker thread's busy-since time ([`Watch`]), the coarse clock the workers read it
//! from, the `worker_timeout` report (a warning naming method, path and duration, with what the
//! handler can say about the stuck thread, such as its Python stack), the wedged state the
//! health path answers from, and the [`Report`] a worker process sends its supervisor. Never
//! interrupts or kills a handler (a thread cannot be stopped safely; a supervisor replaces the
//! whole process) and never blocks a worker or the I/O loop: workers make two relaxed stores
//! per request, the loop's health answer reads one atomic per thread, and anything that may
//! block (taking the GIL for a stack) runs on the watchdog's own reporter thread.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use log::{info, warn};

use crate::engine::Shared;
use crate::handler::Handler;
use crate::ops::report::Report;

/// How long every worker thread must have been inside one handler call, with none free in
/// between, before the process counts as wedged and the health path answers 503. Long enough
/// that a burst of ordinary requests never trips it (each request that ends frees its thread
/// and restarts the clock), short enough that a load balancer stops sending traffic within its
/// usual two or three failed checks.
pub(crate) const WEDGED_AFTER: Duration = Duration::from_secs(5);

/// How often the watchdog advances the clock and looks at the threads.
const TICK: Duration = Duration::from_millis(100);

/// A thread's busy-since value while it waits for a request.
const IDLE: u64 = 0;

/// A thread's busy-since value while it waits for a slow client to take a streamed body: not
/// stuck in the handler (the I/O loop's `write_timeout` bounds the wait).
const AT_GATE: u64 = u64::MAX;

/// One worker thread's state, alone on its cache line so workers never share one.
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    /// Clock value when the thread's current handler call began; [`IDLE`] or [`AT_GATE`].
    since: AtomicU64,
}

/// Every worker thread's busy-since time and what the watchdog concluded from them.
pub(crate) struct Watch {
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one (so no call ever begins at [`IDLE`]), advanced by
    /// the watchdog every [`TICK`]; what workers stamp their calls with, for the cost of a load.
    clock: AtomicU64,
    slots: Box<[Slot]>,
    /// `METHOD path` of each thread's current request, kept only when `worker_timeout` is set
    /// (the only reader is the timeout warning, so without it a request costs no lock).
    requests: Option<Box<[Mutex<String>]>>,
    timeout: Option<Duration>,
    /// A handler call ran longer than `worker_timeout`: the process asks to be replaced.
    timed_out: AtomicBool,
    /// Tells the watchdog thread to end.
    stop: AtomicBool,
}

impl Watch {
    /// The state of `threads` idle workers; `timeout` is `worker_timeout` (`None` when off).
    pub(crate) fn new(threads: usize, timeout: Option<Duration>) -> Watch {
        Watch {
            epoch: Instant::now(),
            clock: AtomicU64::new(1),
            slots: (0..threads).map(|_| Slot::default()).collect(),
            requests: timeout.map(|_| (0..threads).map(|_| Mutex::new(String::new())).collect()),
            timeout,
            timed_out: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Worker `index` starts serving `method path`.
    pub(crate) fn begin(&self, index: usize, method: &str, path: &str) {
        if let Some(requests) = &self.requests {
            let mut slot = requests[index].lock().unwrap_or_else(|e| e.into_inner());
            slot.clear();
            let _ = write!(slot, "{method} {path}");
        }
        self.slots[index].since.store(self.clock.load(Relaxed), Relaxed);
    }

    /// Worker `index` waits for the client to take streamed output (`true`), or goes back to
    /// calling the handler for the next piece (`false`): a new call, timed from now.
    pub(crate) fn at_gate(&self, index: usize, waiting: bool) {
        let value = if waiting { AT_GATE } else { self.clock.load(Relaxed) };
        self.slots[index].since.store(value, Relaxed);
    }

    /// Worker `index` is done with its request.
    pub(crate) fn end(&self, index: usize) {
        self.slots[index].since.store(IDLE, Relaxed);
    }

    /// True while every worker thread has been inside one handler call for longer than
    /// [`WEDGED_AFTER`]: none has been free in that time. Lock-free; the I/O loop's health
    /// answer calls it.
    pub(crate) fn wedged(&self) -> bool {
        let now = self.now();
        let bound = WEDGED_AFTER.as_millis() as u64;
        !self.slots.is_empty()
            && self.slots.iter().all(|slot| {
                let since = slot.since.load(Relaxed);
                since != IDLE && since != AT_GATE && now.saturating_sub(since) > bound
            })
    }

    /// A handler call ran longer than `worker_timeout` since this process started.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Relaxed)
    }
}

/// A stuck call for the reporter thread to describe.
struct Stuck {
    index: usize,
    request: String,
    running: Duration,
}

/// The running watchdog threads.
pub(crate) struct Watchdog {
    thread: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Watchdog {
    /// Starts the watchdog (`maitred-watchdog`) and, when `worker_timeout` is set, its reporter
    /// (`maitred-watchdog-report`), which asks `handler` about stuck threads.
    pub(crate) fn start(shared: Arc<Shared>, handler: Arc<dyn Handler>) -> std::io::Result<Watchdog> {
        let reporter = match shared.watch.timeout {
            Some(timeout) => {
                let (tx, rx) = bounded::<Stuck>(shared.watch.slots.len());
                thread::Builder::new()
                    .name("maitred-watchdog-report".into())
                    .spawn(move || report_stuck(&rx, &*handler, timeout))?;
                Some(tx)
            }
            None => None,
        };
        let watched = Arc::clone(&shared);
        let thread = thread::Builder::new().name("maitred-watchdog".into()).spawn(move || watch(&watched, reporter))?;
        Ok(Watchdog { thread, shared })
    }

    /// Stops the watchdog and waits for it (its reporter ends by itself once idle).
    pub(crate) fn stop(self) {
        self.shared.watch.stop.store(true, Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// The watchdog thread: advance the clock, report calls past `worker_timeout` once each, and
/// log when the process becomes wedged and when it recovers.
fn watch(shared: &Shared, reporter: Option<Sender<Stuck>>) {
    let w = &shared.watch;
    // The busy-since value each slot had when its call was last reported, so a call is
    // reported once however long it runs.
    let mut reported = vec![IDLE; w.slots.len()];
    let mut was_wedged = false;
    while !w.stop.load(Relaxed) {
        thread::park_timeout(TICK);
        let now = w.now();
        w.clock.store(now, Relaxed);
        if let Some(timeout) = w.timeout {
            let limit = timeout.as_millis() as u64;
            for (index, slot) in w.slots.iter().enumerate() {
                let since = slot.since.load(Relaxed);
                if since == IDLE || since == AT_GATE || reported[index] == since || now.saturating_sub(since) <= limit {
                    continue;
                }
                reported[index] = since;
                shared.metrics.handler_timeouts.fetch_add(1, Relaxed);
                w.timed_out.store(true, Relaxed);
                let request = w
                    .requests
                    .as_ref()
                    .map_or_else(String::new, |r| r[index].lock().unwrap_or_else(|e| e.into_inner()).clone());
                let stuck = Stuck { index, request, running: Duration::from_millis(now.saturating_sub(since)) };
                if let Some(Err(crossbeam_channel::TrySendError::Full(stuck))) =
                    reporter.as_ref().map(|r| r.try_send(stuck))
                {
                    // The reporter is itself stuck (it waits for the GIL): say it without the stack.
                    warn!(target: "maitred::watchdog", "{}", describe(&stuck, timeout, None));
                }
            }
        }
        let wedged = w.wedged();
        if wedged != was_wedged {
            if wedged {
                warn!(
                    target: "maitred::watchdog",
                    "no worker thread has been free for {}s (all {} inside a handler call): the health path answers 503 until one is",
                    WEDGED_AFTER.as_secs(),
                    w.slots.len()
                );
            } else {
                info!(target: "maitred::watchdog", "a worker thread is free again: the health path answers 200");
            }
            was_wedged = wedged;
        }
    }
}

/// The warning for a stuck call, with what the handler said about its thread.
fn describe(stuck: &Stuck, timeout: Duration, stack: Option<String>) -> String {
    let request = if stuck.request.is_empty() { "a request" } else { stuck.request.as_str() };
    let mut text = format!(
        "{request} has been running for {:.1}s on thread maitred-worker-{} of process {}, longer than worker_timeout ({}s)",
        stuck.running.as_secs_f64(),
        stuck.index,
        std::process::id(),
        timeout.as_secs_f64()
    );
    if let Some(stack) = stack {
        let _ = write!(text, "; its stack:\n{}", stack.trim_end());
    }
    text
}

/// The reporter thread: asks the handler about each stuck thread (for Python this takes the
/// GIL, which is why it is not the watchdog's own thread) and logs the warning.
fn report_stuck(stuck: &Receiver<Stuck>, handler: &dyn Handler, timeout: Duration) {
    while let Ok(stuck) = stuck.recv() {
        let stack = catch_unwind(AssertUnwindSafe(|| handler.stuck_stack(stuck.index))).ok().flatten();
        warn!(target: "maitred::watchdog", "{}", describe(&stuck, timeout, stack));
    }
}

impl Shared {
    /// What this worker process tells its supervisor now.
    pub(crate) fn report(&self) -> Report {
        let counters = self.metrics.snapshot();
        Report {
            requests_handled: counters.handled(),
            counters,
            busy_threads: self.metrics.busy_threads(),
            open_connections: self.gauge.current() as u64,
            resident_bytes: crate::ops::memory::resident_bytes().unwrap_or(0),
            wedged: self.watch.wedged(),
            draining: self.draining.load(std::sync::atomic::Ordering::SeqCst),
            replace: self.watch.timed_out().then_some("timeout"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch whose clock says the process has run for the wedge bound and 3 s more, and
    /// whose calls begin `started_ago` before now.
    fn watch_with_calls(threads: usize, started_ago: Duration) -> Watch {
        let mut w = Watch::new(threads, None);
        w.epoch = Instant::now().checked_sub(WEDGED_AFTER + Duration::from_secs(3)).expect("a machine up for 8 s");
        w.clock.store(w.now() - started_ago.as_millis() as u64, Relaxed);
        w
    }

    #[test]
    fn wedged_only_when_every_thread_has_been_in_one_call_past_the_bound() {
        let long = WEDGED_AFTER + Duration::from_secs(1);
        let w = watch_with_calls(2, long);
        assert!(!w.wedged(), "idle threads are free");
        w.begin(0, "GET", "/a");
        assert!(!w.wedged(), "one thread is still free");
        w.begin(1, "GET", "/b");
        assert!(w.wedged(), "both threads in calls older than the bound");
        // A thread waiting for a slow client to take a stream is not stuck in the handler.
        w.at_gate(1, true);
        assert!(!w.wedged());
        w.begin(1, "GET", "/b");
        w.end(0);
        assert!(!w.wedged(), "a thread that finished is free");
        // Calls that began recently (a busy burst of short requests) are not a wedge.
        let recent = watch_with_calls(2, Duration::from_millis(100));
        recent.begin(0, "GET", "/");
        recent.begin(1, "GET", "/");
        assert!(!recent.wedged());
    }

    #[test]
    fn requests_are_remembered_only_with_a_timeout() {
        assert!(Watch::new(2, None).requests.is_none());
        let w = Watch::new(2, Some(Duration::from_secs(1)));
        w.begin(1, "POST", "/upload");
        assert_eq!(*w.requests.as_ref().unwrap()[1].lock().unwrap(), "POST /upload");
    }
}
