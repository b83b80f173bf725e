//! What crosses between threads: jobs to the workers, messages to the I/O loop, the loop's
//! wake-up, and the gate that holds a streaming worker at the high-water mark.
//! Owns the message types and the wake-up protocol. Never holds a lock while a socket is written or
//! a handler runs.
//!
//! These are the only shared state between the acceptor, the I/O loop and the workers.

use std::collections::VecDeque;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::engine::net::Stream;
use crate::engine::sys::LoopBell;
use crate::http1::parse::Head;
use crate::http1::request::RequestBody;

/// Names one connection for as long as it lives: a slot, and the generation of the slot so a
/// late message for a closed connection never reaches its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnRef {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

/// A complete request on its way to a worker, which builds the [`crate::Request`] from it
/// (once, after resolving the client through trusted proxies).
pub(crate) struct Job {
    pub(crate) conn: ConnRef,
    /// When the request became complete (for the request duration).
    pub(crate) received: std::time::Instant,
    pub(crate) head: Head,
    pub(crate) body: RequestBody,
    /// The socket's peer and local addresses (or what a PROXY protocol header said).
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// The server is willing to keep the connection open after the response.
    pub(crate) keep_alive: bool,
    /// Set by the I/O loop when the client is gone before a worker took the request: the
    /// worker then drops it without running the handler.
    pub(crate) cancelled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The TLS session's facts, for a request that came over an `https://` listener.
    pub(crate) tls: Option<Arc<crate::tls::TlsInfo>>,
    /// An empty buffer from the loop's pool for the encoded response (no capacity when the
    /// pool had none): the loop takes it back once the response is written.
    pub(crate) out: Vec<u8>,
}

/// How long an idle worker waits for a job before it looks again (every wait has a deadline;
/// nothing is lost by waking: the worker only finds the queue empty and waits again).
const IDLE_WORKER_WAIT: Duration = Duration::from_secs(1);

/// How long a queued job may wait while a worker is awake before another worker is woken for
/// it: the awake worker takes the next job without sleeping when its handler returns, so a
/// second one is needed only when that takes longer than this (a slow or blocked handler).
pub(crate) const SECOND_WORKER_DELAY: Duration = Duration::from_micros(500);

/// The bounded dispatch queue from the I/O loop to the workers, with its own wake-up rule.
///
/// Waking a worker is a system call and, on a busy CPU, two context switches; a worker woken
/// for a job that another worker takes first costs the same for nothing. So:
/// * the loop queues jobs without waking anyone ([`JobSender::try_send`]) and wakes workers
///   once per pass, before it waits ([`JobSender::wake_workers`]): the jobs of a pass go out
///   in one batch, and a woken worker does not preempt the loop in the middle of its pass;
/// * a worker takes the next job without sleeping when one is queued, and blocks on a
///   condition variable of its own when none is (no spinning, no `sched_yield`);
/// * a wake-up goes to the worker that became idle last: its stack and the data it touched
///   are still in the cache, and under a steady load one worker thread keeps serving while the
///   others stay asleep (waking them in turn cost about 10% more CPU per hello request);
/// * an idle worker is woken at once when no worker is awake (busy or already woken), and
///   otherwise only once the oldest queued job has waited [`SECOND_WORKER_DELAY`]: the awake
///   worker is then stuck in a slow handler, and the woken one wakes the next in turn while
///   old jobs are left. The loop looks again by then ([`JobSender::wake_workers`] returns
///   when), so a queued job never waits for a worker that is free for much longer than that.
struct Dispatch {
    state: Mutex<DispatchState>,
    capacity: usize,
}

/// One worker's wake-up: the condition variable it waits on (always with the dispatch lock).
#[derive(Default)]
struct Sleeper {
    ready: Condvar,
}

struct DispatchState {
    jobs: VecDeque<Job>,
    /// Idle workers waiting for a job and not woken yet, the most recently idle last.
    sleepers: Vec<Arc<Sleeper>>,
    /// Workers woken (taken off `sleepers`) that have not run yet.
    woken: usize,
    /// Workers that took a job and have not come back for the next one.
    busy: usize,
    /// The loop has stopped: no job will come, and none is left.
    closed: bool,
}

impl DispatchState {
    /// The idle worker to wake at `now`, if one should be (see [`Dispatch`]): the most recently
    /// idle one, taken off the sleepers and counted as woken. The caller wakes it after
    /// unlocking, so the woken worker does not find the lock still held.
    fn take_wake(&mut self, now: Instant) -> Option<Arc<Sleeper>> {
        let oldest = self.jobs.front()?;
        let wake = self.jobs.len() > self.woken
            && (self.busy + self.woken == 0 || now.saturating_duration_since(oldest.received) >= SECOND_WORKER_DELAY);
        let sleeper = if wake { self.sleepers.pop() } else { None };
        if sleeper.is_some() {
            self.woken += 1;
        }
        sleeper
    }
}

impl Dispatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, DispatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded queue of jobs for the workers, and its two ends: [`JobSender`] (the I/O loop's),
/// [`JobReceiver`] (every worker's).
pub(crate) fn job_queue(capacity: usize) -> (JobSender, JobReceiver) {
    let dispatch = Arc::new(Dispatch {
        state: Mutex::new(DispatchState {
            jobs: VecDeque::new(),
            sleepers: Vec::new(),
            woken: 0,
            busy: 0,
            closed: false,
        }),
        capacity: capacity.max(1),
    });
    (JobSender { dispatch: Arc::clone(&dispatch) }, JobReceiver { dispatch, sleeper: Arc::default(), busy: false })
}

/// Why a job was not queued; the job comes back (boxed: this is the rare path).
pub(crate) enum NotQueued {
    /// The queue holds its capacity already: the request is answered 503.
    Full(Box<Job>),
    /// The workers are gone.
    Closed(Box<Job>),
}

/// The I/O loop's end of the job queue. Dropping it (the loop has stopped, or unwound)
/// discards what is still queued and lets the workers finish.
pub(crate) struct JobSender {
    dispatch: Arc<Dispatch>,
}

impl JobSender {
    /// Queues `job` without waking a worker (see [`JobSender::wake_workers`]). Its age in the
    /// queue counts from `job.received`.
    pub(crate) fn try_send(&self, job: Job) -> Result<(), NotQueued> {
        let mut state = self.dispatch.lock();
        if state.closed {
            return Err(NotQueued::Closed(Box::new(job)));
        }
        if state.jobs.len() >= self.dispatch.capacity {
            return Err(NotQueued::Full(Box::new(job)));
        }
        state.jobs.push_back(job);
        Ok(())
    }

    /// Wakes an idle worker if the queued jobs need one at `now` (see [`Dispatch`]). Returns
    /// when to call again, at the latest, while jobs wait and idle workers could take them.
    /// The loop calls this before every wait in the poller.
    pub(crate) fn wake_workers(&self, now: Instant) -> Option<Instant> {
        let mut state = self.dispatch.lock();
        let wake = state.take_wake(now);
        let again = match state.jobs.front() {
            Some(oldest) if !state.sleepers.is_empty() => {
                Some((oldest.received + SECOND_WORKER_DELAY).max(now + SECOND_WORKER_DELAY / 4))
            }
            _ => None,
        };
        drop(state);
        if let Some(sleeper) = wake {
            sleeper.ready.notify_one();
        }
        again
    }

    /// Jobs waiting for a worker.
    pub(crate) fn len(&self) -> usize {
        self.dispatch.lock().jobs.len()
    }
}

impl Drop for JobSender {
    fn drop(&mut self) {
        // Whatever is still queued belongs to connections that are gone.
        // Every idle worker wakes, finds the queue closed and stops.
        let (discarded, sleepers) = {
            let mut state = self.dispatch.lock();
            state.closed = true;
            let sleepers = std::mem::take(&mut state.sleepers);
            state.woken += sleepers.len();
            (std::mem::take(&mut state.jobs), sleepers)
        };
        for sleeper in sleepers {
            sleeper.ready.notify_one();
        }
        drop(discarded);
    }
}

/// A worker's end of the job queue: each worker thread has its own clone.
pub(crate) struct JobReceiver {
    dispatch: Arc<Dispatch>,
    /// This worker's own wake-up.
    sleeper: Arc<Sleeper>,
    /// This worker has taken a job and not come back for the next one.
    busy: bool,
}

impl Clone for JobReceiver {
    fn clone(&self) -> Self {
        JobReceiver { dispatch: Arc::clone(&self.dispatch), sleeper: Arc::default(), busy: false }
    }
}

impl JobReceiver {
    /// The next job: at once if one is queued, else after waiting for one. `None` once the
    /// loop has stopped.
    pub(crate) fn recv(&mut self) -> Option<Job> {
        let dispatch = &*self.dispatch;
        let mut state = dispatch.lock();
        if std::mem::take(&mut self.busy) {
            state.busy -= 1;
        }
        loop {
            // Returned as popped (no `if let`): the job is moved once, not twice.
            let next = state.jobs.pop_front();
            if next.is_some() {
                state.busy += 1;
                self.busy = true;
                // Old jobs are left: this worker alone is not keeping up; wake the next one.
                let wake = if state.jobs.is_empty() || state.sleepers.is_empty() {
                    None
                } else {
                    state.take_wake(Instant::now())
                };
                drop(state);
                if let Some(sleeper) = wake {
                    sleeper.ready.notify_one();
                }
                return next;
            }
            if state.closed {
                return None;
            }
            state.sleepers.push(Arc::clone(&self.sleeper));
            state = self.sleeper.ready.wait_timeout(state, IDLE_WORKER_WAIT).unwrap_or_else(|e| e.into_inner()).0;
            // Woken by the loop (or the closing queue), which took this worker off the
            // sleepers; or the wait timed out (or woke spuriously) and it is still there.
            match state.sleepers.iter().rposition(|s| Arc::ptr_eq(s, &self.sleeper)) {
                Some(at) => {
                    state.sleepers.remove(at);
                }
                None => state.woken = state.woken.saturating_sub(1),
            }
        }
    }

    /// A queued job, if there is one, without waiting.
    #[cfg(test)]
    pub(crate) fn try_recv(&self) -> Option<Job> {
        self.dispatch.lock().jobs.pop_front()
    }
}

impl Drop for JobReceiver {
    fn drop(&mut self) {
        if self.busy {
            let mut state = self.dispatch.lock();
            state.busy -= 1;
        }
    }
}

/// A response on its way out, as data: its head, where its body comes from, and what becomes
/// of the connection once it is sent. Built by a worker (or by the loop for its own answers),
/// written by the connection.
pub(crate) struct Outgoing {
    /// The head, with a small in-memory body already copied behind it.
    pub(crate) head: Vec<u8>,
    pub(crate) source: Source,
    pub(crate) after: After,
}

/// Where the rest of a response's body comes from, after the head.
pub(crate) enum Source {
    /// Nothing more: the head (with any small body) is the whole response.
    None,
    /// A large in-memory body, sent after the head without being copied into it.
    Bytes(Vec<u8>),
    /// The next `len` bytes of an open file, read and sent by the loop in pieces.
    File(File, u64),
    /// A body the worker streams piece by piece (`ToLoop::Chunk`), held at the gate.
    Stream(Arc<Gate>),
}

/// What becomes of the connection once a response is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// Read the next request (the response said so: no `Connection: close`).
    KeepAlive,
    /// Close (the response said `Connection: close`, or was delimited by the close).
    Close,
    /// An error the server answered by itself: half-close, discard what still arrives for a
    /// moment, then close.
    Linger,
}

impl Outgoing {
    /// The response will never be written (its connection has gone): release its worker.
    pub(crate) fn abandon(self) {
        if let Source::Stream(gate) = self.source {
            gate.close();
        }
    }
}

/// Everything the I/O loop is told.
pub(crate) enum ToLoop {
    /// A new connection from the acceptor.
    Accepted(Stream, SocketAddr),
    /// A new connection from the acceptor on an `https://` listener.
    AcceptedTls(Stream, SocketAddr),
    /// The acceptor is at the connection cap and a client waits: close the connection making
    /// the least progress, if one may give way.
    Evict,
    /// A worker's response.
    Response { conn: ConnRef, response: Outgoing },
    /// The next piece of a streamed body, already framed.
    Chunk { conn: ConnRef, bytes: Vec<u8> },
    /// The end of a streamed body. `complete` is false when it failed or fell short: the
    /// connection is closed after what was sent.
    StreamEnd { conn: ConnRef, complete: bool },
    /// Stop accepting work: close idle connections, close the rest after their response.
    Drain,
    /// No connection will be handed over any more (a worker process: the supervisor's input
    /// ended). Every connection admitted before it was sent is already in the mailbox ahead
    /// of it.
    ArrivalsEnded,
}

/// Messages to the I/O loop, in order.
///
/// A queue under a lock, held only to push one message or to take them all, so that, once the
/// queues have grown to their working size, sending allocates nothing and the loop takes a
/// whole batch with one lock. (An unbounded crossbeam channel allocated, zeroed and freed a
/// block every 31 messages, on the other thread from the one that allocated it, and cost
/// about 350 instructions per message in all; this costs a lock and a move.) Bounded by what
/// can be in flight: one response or piece per busy worker, and accepted connections under
/// `connection_limit`.
struct Mailbox {
    messages: VecDeque<ToLoop>,
    /// The loop has stopped: nothing more is queued.
    closed: bool,
}

fn lock_mailbox(mailbox: &Mutex<Mailbox>) -> std::sync::MutexGuard<'_, Mailbox> {
    mailbox.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new mailbox: its sending end (for [`LoopWaker::new`]) and the loop's end.
pub(crate) fn mailbox() -> (MailboxSender, LoopInbox) {
    let mailbox = Arc::new(Mutex::new(Mailbox { messages: VecDeque::new(), closed: false }));
    (MailboxSender(Arc::clone(&mailbox)), LoopInbox { mailbox, taken: VecDeque::new() })
}

/// The sending end of the loop's mailbox, held by the [`LoopWaker`].
pub(crate) struct MailboxSender(Arc<Mutex<Mailbox>>);

/// The I/O loop's end of its mailbox. Dropping it (the loop has stopped) closes the mailbox:
/// what is queued is dropped (a socket in it closes, a streaming worker is released) and
/// nothing more is queued.
pub(crate) struct LoopInbox {
    mailbox: Arc<Mutex<Mailbox>>,
    /// Messages taken from the mailbox and not handled yet, oldest first.
    taken: VecDeque<ToLoop>,
}

impl LoopInbox {
    /// The oldest message not handled yet, if there is one.
    pub(crate) fn next(&mut self) -> Option<ToLoop> {
        if self.taken.is_empty() {
            // Take everything at once: the mailbox keeps this side's empty queue (and its room).
            std::mem::swap(&mut lock_mailbox(&self.mailbox).messages, &mut self.taken);
        }
        self.taken.pop_front()
    }

    /// Whether no message waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.taken.is_empty() && lock_mailbox(&self.mailbox).messages.is_empty()
    }
}

impl Drop for LoopInbox {
    fn drop(&mut self) {
        let queued = {
            let mut mailbox = lock_mailbox(&self.mailbox);
            mailbox.closed = true;
            std::mem::take(&mut mailbox.messages)
        };
        for message in std::mem::take(&mut self.taken).into_iter().chain(queued) {
            if let ToLoop::Response { response, .. } = message {
                response.abandon();
            }
        }
    }
}

/// Sends to the I/O loop and wakes it only when it is asleep.
pub(crate) struct LoopWaker {
    bell: LoopBell,
    sleeping: AtomicBool,
    mailbox: MailboxSender,
}

impl LoopWaker {
    pub(crate) fn new(bell: LoopBell, mailbox: MailboxSender) -> Self {
        LoopWaker { bell, sleeping: AtomicBool::new(false), mailbox }
    }

    /// What ends the loop's wait (see [`LoopWait`](crate::engine::sys::LoopWait)).
    pub(crate) fn bell(&self) -> &LoopBell {
        &self.bell
    }

    /// Queues `message` for the loop; wakes the loop if it is waiting in the poller. False if
    /// the loop has stopped (the message, and any socket in it, is dropped).
    pub(crate) fn send(&self, message: ToLoop) -> bool {
        {
            let mut mailbox = lock_mailbox(&self.mailbox.0);
            if mailbox.closed {
                return false;
            }
            mailbox.messages.push_back(message);
        }
        self.wake();
        true
    }

    /// Wakes the loop if it is asleep (one ring per sleep, however many senders).
    pub(crate) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.bell.ring();
        }
    }

    /// Called by the loop before it waits. After this, the loop must look at its channel once
    /// more before sleeping: a message sent in between either is seen there or wakes it.
    pub(crate) fn going_to_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Called by the loop when it is awake again.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// Holds a streaming worker while too many of its bytes are still unsent.
pub(crate) struct Gate {
    state: Mutex<GateState>,
    ready: Condvar,
    high_water: usize,
}

struct GateState {
    pending: usize,
    closed: bool,
}

impl Gate {
    pub(crate) fn new(high_water: usize) -> Self {
        Gate { state: Mutex::new(GateState { pending: 0, closed: false }), ready: Condvar::new(), high_water }
    }

    /// Worker side: waits until fewer than the high-water mark of bytes are pending, then
    /// counts `len` more. False when the connection has gone: stop producing.
    pub(crate) fn reserve(&self, len: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.pending >= self.high_water && !state.closed {
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return false;
        }
        state.pending += len;
        true
    }

    /// Loop side: `len` bytes were written to the socket.
    pub(crate) fn release(&self, len: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was_full = state.pending >= self.high_water;
        state.pending = state.pending.saturating_sub(len);
        if was_full && state.pending < self.high_water {
            self.ready.notify_all();
        }
    }

    /// Loop side: the connection is gone; release the worker for good.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        self.ready.notify_all();
    }

    /// Bytes reserved by the worker and not yet written by the loop.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).pending
    }

    /// Whether the loop has closed the gate.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(conn: u64, source: Source) -> ToLoop {
        let conn = ConnRef { slot: 0, generation: conn };
        ToLoop::Response { conn, response: Outgoing { head: Vec::new(), source, after: After::KeepAlive } }
    }

    fn generation(message: Option<ToLoop>) -> Option<u64> {
        match message? {
            ToLoop::Response { conn, .. } => Some(conn.generation),
            _ => None,
        }
    }

    fn job(generation: u64) -> Job {
        use crate::http1::parse::{parse_head, HeadScanner, Limits};
        let bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let limits = Limits::default();
        let span = HeadScanner::new().scan(bytes, &limits).ok().flatten().unwrap();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        Job {
            conn: ConnRef { slot: 0, generation },
            received: Instant::now(),
            head: parse_head(bytes, &span, &limits).ok().unwrap(),
            body: RequestBody::empty(),
            peer: addr,
            local: addr,
            keep_alive: true,
            cancelled: Arc::default(),
            tls: None,
            out: Vec::new(),
        }
    }

    /// Waits until `n` workers are asleep in `recv`.
    fn wait_for_sleepers(jobs: &JobSender, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while jobs.dispatch.lock().sleepers.len() < n {
            assert!(Instant::now() < deadline, "{n} workers never went to sleep");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_job_wakes_the_worker_that_became_idle_last() {
        let (jobs, receiver) = job_queue(8);
        let (taken_tx, taken) = std::sync::mpsc::channel();
        let mut workers = Vec::new();
        for name in ["first idle", "last idle"] {
            let mut receiver = receiver.clone();
            let taken_tx = taken_tx.clone();
            workers.push(std::thread::spawn(move || {
                while let Some(job) = receiver.recv() {
                    taken_tx.send((name, job.conn.generation)).unwrap();
                }
            }));
            wait_for_sleepers(&jobs, workers.len());
        }
        for generation in 0..3 {
            assert!(jobs.try_send(job(generation)).is_ok());
            jobs.wake_workers(Instant::now());
            let (name, got) = taken.recv_timeout(Duration::from_secs(10)).expect("no worker took the job");
            assert_eq!((name, got), ("last idle", generation), "the job went to the colder worker");
            // Back asleep, and again the most recently idle.
            wait_for_sleepers(&jobs, 2);
        }
        drop(jobs);
        for worker in workers {
            worker.join().unwrap();
        }
    }

    #[test]
    fn the_loop_takes_messages_in_the_order_they_were_sent_across_batches() {
        let (sender, mut inbox) = mailbox();
        let bell = LoopBell::new(&Arc::new(polling::Poller::new().unwrap())).unwrap();
        let waker = LoopWaker::new(bell, sender);
        assert!(inbox.is_empty());
        for i in 0..3 {
            assert!(waker.send(response(i, Source::None)));
        }
        assert!(!inbox.is_empty());
        assert_eq!(generation(inbox.next()), Some(0));
        // Sent while the loop holds a taken batch: it comes after that batch.
        assert!(waker.send(response(3, Source::None)));
        let rest: Vec<_> = std::iter::from_fn(|| generation(inbox.next())).collect();
        assert_eq!(rest, [1, 2, 3]);
        assert!(inbox.is_empty());
    }

    #[test]
    fn a_stopped_loop_refuses_messages_and_releases_the_streaming_workers_of_queued_ones() {
        let (sender, mut inbox) = mailbox();
        let bell = LoopBell::new(&Arc::new(polling::Poller::new().unwrap())).unwrap();
        let waker = LoopWaker::new(bell, sender);
        let (taken_gate, queued_gate) = (Arc::new(Gate::new(16)), Arc::new(Gate::new(16)));
        assert!(waker.send(response(0, Source::None)));
        assert!(waker.send(response(1, Source::Stream(Arc::clone(&taken_gate)))));
        assert_eq!(generation(inbox.next()), Some(0));
        assert!(waker.send(response(2, Source::Stream(Arc::clone(&queued_gate)))));
        drop(inbox);
        assert!(taken_gate.is_closed(), "a response taken but not handled kept its worker waiting");
        assert!(queued_gate.is_closed(), "a response still queued kept its worker waiting");
        assert!(!waker.send(response(3, Source::None)), "a stopped loop accepted a message");
    }
}
