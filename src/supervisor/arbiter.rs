//! The supervisor (Gunicorn's arbiter): binds every listener once, runs `workers` worker
//! processes (this program started again), replaces those that die, recycles them
//! (`max_requests`, `max_worker_memory`, a report asking for it), reloads on SIGHUP, scales on
//! SIGTTIN / SIGTTOU and drains them all on SIGTERM / SIGINT.
//!
//! Owns the worker table and every decision about it; one thread makes them all, from the
//! events of the signal thread and of one reader thread per worker. Never serves a request
//! and never forks: a worker is spawned, so it starts with no thread and no interpreter of
//! this process.
//!
//! A replacement is always accepting before the worker it replaces is told to drain, so
//! recycling and reloading never lower the capacity. A worker that exits before it said
//! `ready` could not start: at start-up (or on a replacement) that stops the supervisor, with
//! the worker's own one-line reason, never a respawn loop; during a reload it abandons the
//! reload and the running workers keep serving.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use log::{debug, error, info, warn};

use super::channel::{self, Down, Up};
use super::handoff::dispatch::Dispatcher;
use super::handoff::roster::Seen;
use super::status::describe;
use crate::config::{Config, MAX_WORKERS};
use crate::engine::net::Listener;
use crate::error::Error;
use crate::ops::metrics::{ClusterView, Snapshot, WorkerGauge, RESTART_REASONS};
use crate::ops::report::Report;
use crate::signals::Order;

/// Longest a worker may take to say `ready` (import the application, start its threads).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Past `drain_delay + graceful_timeout`, how long a draining worker has to exit before it
/// is killed (its own drain force-closes at `graceful_timeout`, then waits 1 s for threads).
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A worker that lived at least this long before crashing resets the crash back-off.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The longest pause before starting a worker again after crashes in a row.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// After a worker exits, how long its output may still be read before it is written off.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// How often each worker is sent its cluster view (the workers report as often).
const CLUSTER_EVERY: Duration = Duration::from_millis(500);

/// Longest line of worker output relayed in one piece.
const MAX_LINE: u64 = 64 * 1024;

/// Control lines queued for one worker at most; a worker that reads none is being drained or
/// killed anyway.
const CONTROL_QUEUE: usize = 64;

/// The program a worker runs: this one again, with the same arguments.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    /// The executable.
    pub(crate) command: PathBuf,
    /// Its arguments (without the program name).
    pub(crate) args: Vec<OsString>,
}

impl Program {
    /// This executable with this process's arguments.
    pub(crate) fn current() -> io::Result<Program> {
        Ok(Program { command: std::env::current_exe()?, args: std::env::args_os().skip(1).collect() })
    }
}

/// Why a worker is replaced; also the `reason` label of the restart counts.
pub(crate) type Reason = &'static str;

/// What the supervisor hears about.
enum Event {
    Signal(Order),
    Ready(u64),
    Report(u64, Box<Report>),
    /// The worker's output ended (after its last report).
    Closed(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Spawned; has not said `ready`.
    Starting,
    /// Accepting connections.
    Ready,
    /// Told to drain (or killed); killed at `kill_at` if still there.
    Draining { kill_at: Instant },
}

struct Worker {
    /// The supervisor's key for this process (never reused).
    serial: u64,
    /// The worker's number in the log and the metrics: the lowest not held by a live worker,
    /// so a replacement reuses the number of one that is gone and the numbers stay few.
    id: u64,
    pid: u32,
    child: Child,
    /// Messages to its standard input; `None` once it was told to drain.
    control: Option<Sender<Down>>,
    state: State,
    started: Instant,
    /// The configuration generation it was started with (SIGHUP starts a new one).
    generation: u64,
    /// Set when it is to be replaced; it keeps serving until a replacement is ready.
    retiring: Option<Reason>,
    report: Report,
    /// `max_requests` plus this worker's jitter; `None` when not limited.
    request_limit: Option<u64>,
    /// Its output has ended: every report it sent has been read.
    output_closed: bool,
    /// When its exit was first seen, with the status, while its output is still being read.
    exit_seen: Option<(Instant, ExitStatus)>,
}

impl Worker {
    fn draining(&self) -> bool {
        matches!(self.state, State::Draining { .. })
    }

    fn fresh(&self, generation: u64) -> bool {
        !self.draining() && self.retiring.is_none() && self.generation == generation
    }

    fn name(&self) -> String {
        format!("worker {} (pid {})", self.id, self.pid)
    }
}

/// How the supervisor ends.
enum End {
    /// Every worker drained: exit status 0.
    Drained,
    /// A second stop signal: workers killed, exit status 1.
    Killed,
    /// A worker could not start. `Some(code)`: it exited with status 1 or 2, after printing
    /// its own one-line reason; otherwise the supervisor says why.
    StartFailed(Option<u8>, String),
}

/// Runs the supervisor until its workers have drained. `config` is final and validated;
/// `reload` re-reads it on SIGHUP (flags, environment and `--config` file again). Returns the
/// exit status: 0 after a drain, 1 after a second stop signal, and the worker's own status (1
/// or 2, after its one-line reason on stderr) when the first worker could not start.
///
/// # Errors
///
/// A listener cannot be bound, the signal handler cannot be installed, no worker can be
/// spawned, or a worker died before it was ready without saying why.
pub(crate) fn supervise(
    config: Config,
    program: Program,
    reload: Box<dyn FnMut() -> Result<Config, String> + Send>,
) -> Result<u8, Error> {
    config.validate()?;
    // Signals first: one that comes while the listeners are bound is acted on once the loop
    // runs, instead of killing the process.
    let (events_tx, events) = unbounded();
    let signals = events_tx.clone();
    crate::signals::forward_supervisor_signals(move |order| {
        let _ = signals.send(Event::Signal(order));
    })?;
    let mut listeners = Vec::with_capacity(config.listen.len());
    for addr in &config.listen {
        let bind_error = |source| Error::Bind { addr: addr.clone(), source };
        listeners.push(Listener::bind(addr, config.backlog).map_err(bind_error)?);
    }
    // The supervisor accepts and hands each connection to a worker (on copies of the
    // listeners; the arbiter keeps its own to report and close them).
    let dispatcher = Dispatcher::start(&listeners, config.connection_limit)?;
    let target = config.worker_count();
    let mut arbiter = Arbiter {
        config,
        program,
        reload,
        listeners,
        dispatcher,
        events_tx,
        workers: Vec::new(),
        target,
        generation: 0,
        next_serial: 0,
        ever_ready: false,
        stopping: false,
        end: None,
        crash_streak: 0,
        next_spawn_at: Instant::now(),
        restarts: HashMap::new(),
        retired: Snapshot::default(),
        cluster_sent: Instant::now(),
    };
    arbiter.run(&events)
}

struct Arbiter {
    config: Config,
    program: Program,
    reload: Box<dyn FnMut() -> Result<Config, String> + Send>,
    /// The listeners as bound, for their addresses; closed when the last worker is gone (a
    /// Unix socket's file is removed then). The dispatcher accepts on copies.
    listeners: Vec<Listener>,
    /// The accept loop that hands connections to the workers it is told about.
    dispatcher: Dispatcher,
    events_tx: Sender<Event>,
    workers: Vec<Worker>,
    /// Workers wanted.
    target: usize,
    generation: u64,
    next_serial: u64,
    /// Whether any worker has said `ready` yet: until one has, workers start one at a time,
    /// so an application that cannot start fails once, with one line.
    ever_ready: bool,
    stopping: bool,
    end: Option<End>,
    crash_streak: u32,
    next_spawn_at: Instant,
    /// Replacements by reason, for the metrics.
    restarts: HashMap<Reason, u64>,
    /// The counters of every worker that is gone, as its last report gave them.
    retired: Snapshot,
    /// When the workers were last sent their cluster view.
    cluster_sent: Instant,
}

impl Arbiter {
    fn run(&mut self, events: &Receiver<Event>) -> Result<u8, Error> {
        self.reconcile()?;
        loop {
            let timeout = self.next_deadline().saturating_duration_since(Instant::now());
            match events.recv_timeout(timeout) {
                Ok(event) => self.on_event(event),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => unreachable!("the arbiter holds a sender"),
            }
            while let Ok(event) = events.try_recv() {
                self.on_event(event);
            }
            self.reap();
            self.enforce_deadlines();
            self.publish();
            if self.cluster_sent.elapsed() >= CLUSTER_EVERY {
                self.send_cluster_views();
            }
            if self.stopping && self.workers.is_empty() {
                break;
            }
            self.reconcile()?;
            self.publish();
        }
        let addrs: Vec<String> =
            self.listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();
        self.listeners.clear();
        debug!(target: "maitred::server", "closed the listeners {addrs:?}");
        match self.end.take() {
            Some(End::Killed) => Ok(1),
            Some(End::StartFailed(Some(code), _)) => Ok(code),
            Some(End::StartFailed(None, message)) => Err(Error::Worker(message)),
            Some(End::Drained) | None => {
                let mut restarts: Vec<String> = self.restarts.iter().map(|(r, n)| format!("{r} {n}")).collect();
                restarts.sort();
                if restarts.is_empty() {
                    info!(target: "maitred::server", "stopped");
                } else {
                    info!(target: "maitred::server", "stopped (workers replaced: {})", restarts.join(", "));
                }
                Ok(0)
            }
        }
    }

    /// Tells the accept loop which workers may take connections now.
    fn publish(&self) {
        let seen = self.workers.iter().map(|w| Seen {
            id: w.id,
            pid: w.pid,
            ready: w.state == State::Ready,
            draining: w.draining(),
            control: w.control.as_ref(),
            open: w.report.open_connections,
        });
        self.dispatcher.roster().publish(seen, self.stopping, self.config.drain_delay);
    }

    /// Tells each worker what the others reported, so whichever answers the metrics path
    /// answers for all: totals over retired and live workers, each live one's gauges, and the
    /// replacements by reason.
    fn send_cluster_views(&mut self) {
        self.cluster_sent = Instant::now();
        let workers: Vec<WorkerGauge> = self
            .workers
            .iter()
            .map(|w| WorkerGauge {
                id: w.id,
                pid: u64::from(w.pid),
                busy_threads: w.report.busy_threads,
                open_connections: w.report.open_connections,
                resident_bytes: w.report.resident_bytes,
                requests_handled: w.report.requests_handled,
            })
            .collect();
        let mut restarts: Vec<(String, u64)> =
            RESTART_REASONS.iter().map(|r| (r.to_string(), self.restarts.get(r).copied().unwrap_or(0))).collect();
        for (reason, count) in &self.restarts {
            if !RESTART_REASONS.contains(reason) {
                restarts.push((reason.to_string(), *count));
            }
        }
        for (i, w) in self.workers.iter().enumerate() {
            let Some(control) = &w.control else { continue };
            let mut others = self.retired.clone();
            for (j, other) in self.workers.iter().enumerate() {
                if i != j {
                    others.add(&other.report.counters);
                }
            }
            let view = ClusterView { others, workers: workers.clone(), restarts: restarts.clone() };
            let _ = control.try_send(format!("{} {}", channel::CLUSTER, view.encode()).into());
        }
    }

    /// When the loop must look again even if nothing happens.
    fn next_deadline(&self) -> Instant {
        let mut at = (self.cluster_sent + CLUSTER_EVERY).max(Instant::now() + Duration::from_millis(20));
        for w in &self.workers {
            if let Some((seen, _)) = w.exit_seen {
                at = at.min(seen + OUTPUT_GRACE);
            }
            match w.state {
                State::Draining { kill_at } => at = at.min(kill_at),
                State::Starting => at = at.min(w.started + START_TIMEOUT),
                State::Ready => {}
            }
        }
        if !self.stopping && self.fresh_count() < self.target {
            at = at.min(self.next_spawn_at.max(Instant::now()));
        }
        // A draining worker leaves the roster when its `drain_delay` ends; only then does its
        // input end, which its I/O loop waits for before it stops.
        if let Some(expiry) = self.dispatcher.roster().next_expiry() {
            at = at.min(expiry.max(Instant::now()));
        }
        at
    }

    fn fresh_count(&self) -> usize {
        self.workers.iter().filter(|w| w.fresh(self.generation)).count()
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Signal(order) => self.on_signal(order),
            Event::Ready(serial) => {
                let Some(w) = self.workers.iter_mut().find(|w| w.serial == serial) else { return };
                if w.state != State::Starting {
                    return;
                }
                w.state = State::Ready;
                info!(target: "maitred::server", "{} started", w.name());
                // Every worker's metrics learn of the new one at once.
                self.cluster_sent = Instant::now() - CLUSTER_EVERY;
                if !self.ever_ready {
                    self.ever_ready = true;
                    for (listener, configured) in self.listeners.iter().zip(&self.config.listen) {
                        if let Ok(bound) = listener.local_addr() {
                            let addr = crate::engine::server::tls_if_https(configured, bound);
                            info!(target: "maitred::server", "listening on {}", addr.url());
                        }
                    }
                    let how = if cfg!(windows) { "press Ctrl-C or Ctrl-Break" } else { "send SIGTERM or press Ctrl-C" };
                    info!(
                        target: "maitred::server",
                        "{} worker processes of {} threads; {how} to stop",
                        self.target, self.config.threads
                    );
                }
            }
            Event::Closed(serial) => {
                if let Some(w) = self.workers.iter_mut().find(|w| w.serial == serial) {
                    w.output_closed = true;
                }
            }
            Event::Report(serial, report) => {
                let limit = self.config.max_worker_memory;
                let Some(i) = self.workers.iter().position(|w| w.serial == serial) else { return };
                let w = &mut self.workers[i];
                w.report = *report;
                if w.report.draining && !w.draining() {
                    // A stop signal reached this worker alone: it serves what it is handed
                    // until its input ends, so stop handing it connections and replace it.
                    info!(target: "maitred::server", "{} is draining on its own (a stop signal); replacing it", w.name());
                    *self.restarts.entry("signal").or_default() += 1;
                    self.drain(i);
                    return;
                }
                if w.retiring.is_some() || w.draining() {
                    return;
                }
                if let Some(reason) = w.report.replace {
                    w.retiring = Some(reason);
                } else if w.request_limit.is_some_and(|n| w.report.requests_handled >= n) {
                    w.retiring = Some("max_requests");
                } else if limit > 0 && w.report.resident_bytes > limit {
                    w.retiring = Some("memory");
                }
            }
        }
    }

    fn on_signal(&mut self, order: Order) {
        match order {
            Order::ChildExited => {} // `reap` looks after every event
            Order::Stop if self.stopping => {
                warn!(target: "maitred::server", "second stop signal; stopping at once");
                for w in &mut self.workers {
                    let _ = w.child.kill();
                    w.control = None;
                    w.state = State::Draining { kill_at: Instant::now() };
                }
                self.end = Some(End::Killed);
            }
            Order::Stop => {
                info!(
                    target: "maitred::server",
                    "stop signal received; draining {} workers (signal again to stop at once)",
                    self.workers.len()
                );
                self.stop_all(End::Drained);
            }
            Order::Reload if self.stopping => {}
            Order::Reload => match (self.reload)() {
                Ok(config) => {
                    if config.listen != self.config.listen {
                        warn!(
                            target: "maitred::server",
                            "reload: the listen addresses changed; they take effect on a restart, the bound ones stay"
                        );
                    }
                    self.target = config.worker_count();
                    self.config = Config { listen: self.config.listen.clone(), ..config };
                    self.generation += 1;
                    info!(
                        target: "maitred::server",
                        "reloading: starting {} workers with the new code and configuration, then draining the old ones",
                        self.target
                    );
                }
                Err(e) => error!(target: "maitred::server", "reload refused: {e}; the running workers keep serving"),
            },
            Order::AddWorker if self.stopping => {}
            Order::AddWorker => {
                if self.target < MAX_WORKERS {
                    self.target += 1;
                }
                info!(target: "maitred::server", "SIGTTIN: {} workers wanted", self.target);
            }
            Order::RemoveWorker if self.stopping => {}
            Order::RemoveWorker => {
                if self.target > 1 {
                    self.target -= 1;
                    info!(target: "maitred::server", "SIGTTOU: {} workers wanted", self.target);
                } else {
                    info!(target: "maitred::server", "SIGTTOU ignored: one worker is the fewest");
                }
            }
        }
    }

    /// Drains every worker and stops once they are gone.
    fn stop_all(&mut self, end: End) {
        self.stopping = true;
        if self.end.is_none() {
            self.end = Some(end);
        }
        // No worker will be started again: the dispatcher's copies keep the sockets open for
        // the drain delay, and a socket closes with them, so a client arriving after that is
        // refused rather than left in the backlog. A Unix socket's file stays until the end
        // (the supervisor removes it).
        #[cfg(unix)]
        self.listeners.retain(|l| matches!(l, Listener::Unix(..)));
        #[cfg(not(unix))]
        self.listeners.clear();
        for i in 0..self.workers.len() {
            if !self.workers[i].draining() {
                self.drain(i);
            }
        }
    }

    /// Tells worker `i` to drain; it is killed if still there after the drain's bound.
    fn drain(&mut self, i: usize) {
        let bound = self.config.drain_delay + self.config.graceful_timeout + KILL_GRACE;
        let w = &mut self.workers[i];
        if let Some(control) = w.control.take() {
            // Dropping the sender after the line ends the worker's input: if the queue is
            // full, the end of input alone makes it drain.
            let _ = control.try_send(channel::DRAIN.to_string().into());
        }
        w.state = State::Draining { kill_at: Instant::now() + bound };
    }

    /// Collects every worker that exited and decides what its exit means.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let w = &mut self.workers[i];
            let status = match w.exit_seen {
                Some((_, status)) => Ok(Some(status)),
                None => w.child.try_wait(),
            };
            match status {
                Ok(Some(status)) => {
                    // Its last report (sent just before it exited) counts: wait for the end
                    // of its output, a moment at most.
                    let (seen, _) = *w.exit_seen.get_or_insert((Instant::now(), status));
                    if !w.output_closed && seen.elapsed() < OUTPUT_GRACE {
                        i += 1;
                        continue;
                    }
                    let w = self.workers.remove(i);
                    self.exited(w, status);
                }
                Ok(None) => i += 1,
                Err(e) => {
                    warn!(target: "maitred::server", "cannot check {}: {e}", self.workers[i].name());
                    i += 1;
                }
            }
        }
        #[cfg(target_os = "linux")]
        {
            let pids: Vec<u32> = self.workers.iter().map(|w| w.pid).collect();
            super::orphans::reap(&pids);
        }
    }

    fn exited(&mut self, w: Worker, status: ExitStatus) {
        let how = describe(status);
        // Its counters stay in the totals: they never go backwards when a worker is replaced.
        self.retired.add(&w.report.counters);
        match w.state {
            State::Draining { .. } => {
                info!(
                    target: "maitred::server",
                    "{} stopped after {} requests ({how})",
                    w.name(),
                    w.report.requests_handled
                );
            }
            // Not needed any more: stopping, replaced, or of a generation a reload superseded.
            State::Starting if self.stopping || w.retiring.is_some() || w.generation < self.generation => {
                debug!(target: "maitred::server", "{} stopped before it was ready ({how})", w.name());
            }
            State::Starting if w.generation == self.generation && self.reloading() => {
                error!(
                    target: "maitred::server",
                    "reload failed: {} exited before it was ready ({how}); the running workers keep serving",
                    w.name()
                );
                self.abandon_reload();
            }
            State::Starting => {
                // The worker said why on stderr when it exited with 1 or 2 (the launcher's
                // and the Python command's start-up failures); otherwise say it here.
                let own = status.code().and_then(|c| u8::try_from(c).ok()).filter(|c| matches!(c, 1 | 2));
                let message = format!("{} could not start: it exited before it was ready ({how})", w.name());
                debug!(target: "maitred::server", "{message}");
                self.stop_all(End::StartFailed(own, message));
            }
            State::Ready => {
                warn!(target: "maitred::server", "{} exited unexpectedly: {how}; replacing it", w.name());
                *self.restarts.entry("crash").or_default() += 1;
                self.crash_streak = if w.started.elapsed() >= STABLE_AFTER { 1 } else { self.crash_streak + 1 };
                let pause = if self.crash_streak <= 1 {
                    Duration::ZERO
                } else {
                    (Duration::from_millis(100) * 2u32.saturating_pow(self.crash_streak - 1)).min(MAX_BACKOFF)
                };
                if !pause.is_zero() {
                    warn!(
                        target: "maitred::server",
                        "{} crashes in a row; starting the next worker in {pause:?}",
                        self.crash_streak
                    );
                }
                self.next_spawn_at = Instant::now() + pause;
            }
        }
    }

    /// Whether a reload is under way: workers of an older generation still serve.
    fn reloading(&self) -> bool {
        self.workers.iter().any(|w| w.generation < self.generation && !w.draining())
    }

    /// Keeps the running workers after a reload whose new workers cannot start.
    fn abandon_reload(&mut self) {
        for i in 0..self.workers.len() {
            if self.workers[i].generation == self.generation && self.workers[i].state == State::Starting {
                let _ = self.workers[i].child.kill();
                self.workers[i].retiring = Some("reload");
                self.drain(i);
            }
        }
        for w in &mut self.workers {
            if w.retiring == Some("reload") && !w.draining() {
                w.retiring = None;
            }
            w.generation = self.generation;
        }
    }

    /// Kills workers past their drain bound and workers that never became ready.
    fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
            match w.state {
                State::Draining { kill_at } if now >= kill_at => {
                    warn!(target: "maitred::server", "{} still running after the drain; killing it", w.name());
                    let _ = w.child.kill();
                    w.state = State::Draining { kill_at: now + Duration::from_secs(3600) };
                }
                State::Starting if now >= w.started + START_TIMEOUT => {
                    warn!(target: "maitred::server", "{} not ready after {START_TIMEOUT:?}; killing it", w.name());
                    let _ = w.child.kill();
                }
                _ => {}
            }
        }
    }

    /// Brings the workers to what is wanted: starts the missing, retires the surplus, and
    /// drains a retiring worker once a replacement accepts in its place.
    fn reconcile(&mut self) -> Result<(), Error> {
        if self.stopping {
            return Ok(());
        }
        let generation = self.generation;
        for w in &mut self.workers {
            if w.generation < generation && w.retiring.is_none() && !w.draining() {
                w.retiring = Some("reload");
            }
        }
        let mut fresh = self.fresh_count();
        while fresh > self.target {
            // The surplus: a starting one first, else the newest.
            let pick = self
                .workers
                .iter()
                .enumerate()
                .filter(|(_, w)| w.fresh(generation))
                .max_by_key(|(_, w)| (w.state == State::Starting, w.id))
                .map(|(i, _)| i);
            let Some(i) = pick else { break };
            self.workers[i].retiring = Some("scale");
            fresh -= 1;
        }
        if fresh < self.target && Instant::now() >= self.next_spawn_at {
            let starting = self.workers.iter().any(|w| w.state == State::Starting);
            let wanted = if self.ever_ready { self.target - fresh } else { usize::from(!starting) };
            for _ in 0..wanted {
                if let Err(e) = self.spawn() {
                    if !self.ever_ready {
                        return Err(Error::Worker(format!("cannot start a worker process: {e}")));
                    }
                    error!(target: "maitred::server", "cannot start a worker process: {e}; retrying");
                    self.next_spawn_at = Instant::now() + Duration::from_secs(1);
                    break;
                }
            }
        }
        loop {
            let serving = self.workers.iter().filter(|w| w.state == State::Ready).count();
            let retiring = self.workers.iter().position(|w| w.retiring.is_some() && !w.draining());
            let Some(i) = retiring else { break };
            if self.workers[i].state == State::Starting {
                let _ = self.workers[i].child.kill();
                self.drain(i);
                continue;
            }
            if serving <= self.target {
                break;
            }
            let w = &self.workers[i];
            let reason = w.retiring.unwrap_or("scale");
            info!(
                target: "maitred::server",
                "replacing {} ({reason}, after {} requests): draining it",
                w.name(),
                w.report.requests_handled
            );
            *self.restarts.entry(reason).or_default() += 1;
            self.drain(i);
        }
        Ok(())
    }

    /// Starts one worker: this program again, with its id and the listeners.
    fn spawn(&mut self) -> io::Result<()> {
        self.next_serial += 1;
        let serial = self.next_serial;
        let id = (1..).find(|n| self.workers.iter().all(|w| w.id != *n)).unwrap_or(serial);
        let mut command = Command::new(&self.program.command);
        command
            .args(&self.program.args)
            .env(super::WORKER_ID_VAR, id.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // The worker's standard input carries the supervisor's messages: on Unix one end of a
        // socket pair (a handed connection travels beside its line), on Windows a pipe.
        #[cfg(unix)]
        let input = {
            let (ours, theirs) = super::handoff::unix::pair()?;
            command.stdin(Stdio::from(theirs));
            Some(ours)
        };
        #[cfg(not(unix))]
        command.stdin(Stdio::piped());
        let spawned = command.spawn();
        // The parent's copy of the child's end closes here, so a worker that is gone makes
        // writing to it fail instead of block.
        drop(command);
        let mut child = spawned?;
        let pid = child.id();
        #[cfg(not(unix))]
        let input = child.stdin.take();
        let stdout = child.stdout.take();
        let (control, messages) = bounded::<Down>(CONTROL_QUEUE);
        if let Some(input) = input {
            std::thread::Builder::new()
                .name(format!("maitred-to-{id}"))
                .spawn(move || write_control(input, &messages))?;
        }
        if let Some(stdout) = stdout {
            let events = self.events_tx.clone();
            std::thread::Builder::new()
                .name(format!("maitred-from-{id}"))
                .spawn(move || relay_output(serial, stdout, &events))?;
        }
        let request_limit = (self.config.max_requests > 0)
            .then(|| self.config.max_requests.saturating_add(jitter(self.config.max_requests_jitter)));
        debug!(target: "maitred::server", "spawned worker {id} (pid {pid})");
        self.workers.push(Worker {
            serial,
            id,
            pid,
            child,
            control: Some(control),
            state: State::Starting,
            started: Instant::now(),
            generation: self.generation,
            retiring: None,
            report: Report::default(),
            request_limit,
            output_closed: false,
            exit_seen: None,
        });
        Ok(())
    }
}

/// A random whole number from 0 to `most` (Gunicorn's `max_requests_jitter`), from the
/// standard library's randomly seeded hasher: no cryptographic quality is needed.
fn jitter(most: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    if most == 0 {
        return 0;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish() % (most + 1)
}

/// Writes queued messages to a worker's standard input until the queue is closed; the input
/// then ends, which the worker takes as "drain". A worker that is gone makes the write fail:
/// what is still queued is dropped (a handed connection with it, closed).
#[cfg(unix)]
fn write_control(input: std::os::unix::net::UnixStream, messages: &Receiver<Down>) {
    for message in messages {
        if super::handoff::unix::send(&input, &message).is_err() {
            break;
        }
    }
}

/// Writes queued messages to a worker's standard input until the queue is closed; the input
/// then ends, which the worker takes as "drain".
#[cfg(not(unix))]
fn write_control(mut input: std::process::ChildStdin, messages: &Receiver<Down>) {
    for message in messages {
        let line = message.line;
        if input.write_all(line.as_bytes()).and_then(|()| input.write_all(b"\n")).and_then(|()| input.flush()).is_err()
        {
            break;
        }
    }
}

/// Reads a worker's standard output: control lines become events, other lines go to this
/// process's standard output, whole lines in one write each batch, so lines of several
/// workers never interleave.
fn relay_output(serial: u64, stdout: ChildStdout, events: &Sender<Event>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(256);
    let mut batch = Vec::with_capacity(64 * 1024);
    let mark = channel::MARK.as_bytes();
    loop {
        line.clear();
        match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match line.windows(mark.len()).position(|w| w == mark) {
            None => batch.extend_from_slice(&line),
            Some(at) => {
                if at > 0 {
                    batch.extend_from_slice(&line[..at]);
                    batch.push(b'\n');
                }
                let text = String::from_utf8_lossy(&line[at..]);
                let (_, message) = channel::parse_up(text.trim_end_matches(['\n', '\r']));
                let event = match message {
                    Some(Up::Ready) => Some(Event::Ready(serial)),
                    Some(Up::Report(payload)) => Report::decode(payload).map(|r| Event::Report(serial, Box::new(r))),
                    Some(Up::Unknown(body)) => {
                        debug!(target: "maitred::server", "unknown control line {body:?}");
                        None
                    }
                    None => None,
                };
                if let Some(event) = event {
                    let _ = events.send(event);
                }
            }
        }
        if !batch.is_empty() && (reader.buffer().is_empty() || batch.len() >= 64 * 1024) {
            let _ = std::io::stdout().lock().write_all(&batch);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        let _ = std::io::stdout().lock().write_all(&batch);
    }
    let _ = std::io::stdout().flush();
    // The exit itself is seen by `reap` (SIGCHLD wakes the loop).
    let _ = events.send(Event::Closed(serial));
}
